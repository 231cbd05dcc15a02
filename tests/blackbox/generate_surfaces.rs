//! The generate surfaces (native JSON and SSE, OpenAI completions, Lucidworks prediction),
//! readiness, metrics, undeploy drain and the SIGTERM drain path, over real loopback HTTP
//! against the agent's own server in this process, serving through the scripted backend
//! (`support::scripted`). What they pin down is the translation between the wire and the
//! serving seam; the model's tokens come from the runtime once the integrator wires it in
//! (see `serving_end_to_end`).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::http::parse_sse;
use crate::support::in_process::InProcessAgent;
use crate::support::scripted::{Gate, Script, DRAWN_SEED};
use crate::support::{AgentConfig, Endpoint, Reply, API_KEY, LW_TOKEN, PATIENCE};
use gpu_agent::serving::{GenerateFailure, LoadFailure};

fn serving_agent(script: Script) -> InProcessAgent {
    InProcessAgent::start(AgentConfig::with_fixture_models(), script)
}

fn generate(agent: &Endpoint, id: &str, body: serde_json::Value) -> Reply {
    agent.post_json(&format!("/v1/deployments/{id}/generate"), &body)
}

/// Polls `check` until it holds.
fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_ready_deployment_makes_the_agent_ready_and_shows_its_serving_status() {
    let agent = serving_agent(Script::default());
    let id = agent.deploy_ready("gpt2-tiny");
    let ready = agent.get("/readyz");
    assert_eq!(ready.status, 200, "{}", ready.text);
    assert_eq!(ready.json["servingDeployments"], 1);
    let status = agent.get_with_key(&format!("/v1/deployments/{id}"));
    assert_eq!(status.json["phase"], "READY");
    assert_eq!(status.json["backend"]["kind"], "scripted");
    assert_eq!(status.json["computeType"], "none");
    assert_eq!(status.json["replicas"]["running"], 1);
    assert_eq!(status.json["progress"], 100);
    assert!(status.json["lastError"].is_null());
}

#[test]
fn native_generate_merges_overrides_into_the_deployment_defaults() {
    let agent = serving_agent(Script::default());
    agent.deploy_ready("gpt2-tiny");
    let reply = generate(
        &agent,
        "gpt2-tiny",
        json!({"prompt": "Hello there", "parameters": {"maxTokens": 3, "seed": 9, "stopSequence": ["\n"]}}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.json,
        json!({
            "text": "t0 t1 t2 ",
            "tokens": [0, 1, 2],
            "finishReason": "length",
            "usage": {"promptTokens": 2, "completionTokens": 3},
            "seed": 9,
        })
    );
    let seen = agent.backend.requests();
    let request = seen.last().expect("the request reached the seam");
    // kore_body's hyperParameters: temperature 0, topP 1, topK 1, maxTokens 8.
    assert_eq!(request.prompt, "Hello there");
    assert_eq!(request.max_tokens, 3);
    assert_eq!(
        (request.temperature, request.top_p, request.top_k),
        (0.0, 1.0, 1)
    );
    assert_eq!(request.stop, vec!["\n".to_owned()]);
    assert_eq!(request.seed, Some(9));
    assert_eq!(
        request.timeout,
        Duration::from_secs(300),
        "[batcher] request_timeout_s"
    );
}

#[test]
fn an_absent_seed_is_drawn_by_the_backend_and_returned() {
    let agent = serving_agent(Script::default());
    agent.deploy_ready("gpt2-tiny");
    let reply = generate(&agent, "gpt2-tiny", json!({"prompt": "hi"}));
    assert_eq!(reply.json["seed"], DRAWN_SEED);
    assert_eq!(agent.backend.requests()[0].seed, None);
    assert_eq!(
        reply.json["tokens"].as_array().map(Vec::len),
        Some(8),
        "deployment maxTokens"
    );
}

#[test]
fn an_array_prompt_answers_an_array_in_order() {
    let agent = serving_agent(Script::default());
    let id = agent.deploy_ready("gpt2-tiny");
    let reply = generate(
        &agent,
        &id,
        json!({"prompt": ["one", "two words", "three more words"], "parameters": {"maxTokens": 1}}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    let usage: Vec<_> = reply
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["usage"]["promptTokens"].clone())
        .collect();
    assert_eq!(usage, vec![json!(1), json!(2), json!(3)]);
}

#[test]
fn streamed_generate_sends_one_event_per_token_then_the_full_result() {
    let agent = serving_agent(Script::default());
    agent.deploy_ready("gpt2-tiny");
    let body = json!({"prompt": "hi", "stream": true, "parameters": {"maxTokens": 3, "seed": 1}});
    let reply = generate(&agent, "gpt2-tiny", body);
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(reply
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/event-stream"));
    let events = parse_sse(&reply.text);
    assert_eq!(events.len(), 4, "{}", reply.text);
    for (i, event) in events[..3].iter().enumerate() {
        assert_eq!(
            event.json(),
            json!({"token": {"id": i, "text": format!("t{i} ")}})
        );
    }
    let last = events[3].json();
    assert_eq!(last["text"], "t0 t1 t2 ");
    assert_eq!(last["finishReason"], "length");
    assert_eq!(last["seed"], 1);
}

#[test]
fn accept_event_stream_asks_for_a_stream_too() {
    let agent = serving_agent(Script::default());
    agent.deploy_ready("gpt2-tiny");
    let reply = agent.request(
        "POST",
        "/v1/deployments/gpt2-tiny/generate",
        &[("x-api-key", API_KEY), ("accept", "text/event-stream")],
        Some(&json!({"prompt": "hi", "parameters": {"maxTokens": 2}})),
    );
    assert_eq!(parse_sse(&reply.text).len(), 3, "{}", reply.text);
}

#[test]
fn a_failure_after_tokens_ends_the_stream_with_an_error_event_and_a_json_request_with_its_status() {
    let script = Script {
        failure: Some(GenerateFailure {
            code: "DEADLINE_EXCEEDED".to_owned(),
            message: "the request ran past request_timeout_s (300 s)".to_owned(),
        }),
        ..Script::default()
    };
    let agent = serving_agent(script);
    agent.deploy_ready("gpt2-tiny");
    let streamed = generate(
        &agent,
        "gpt2-tiny",
        json!({"prompt": "hi", "stream": true, "parameters": {"maxTokens": 2}}),
    );
    let events = parse_sse(&streamed.text);
    let last = events.last().expect("events");
    assert_eq!(last.event.as_deref(), Some("error"), "{}", streamed.text);
    assert_eq!(last.json()["error"]["code"], "DEADLINE_EXCEEDED");
    let plain = generate(&agent, "gpt2-tiny", json!({"prompt": "hi"}));
    assert_eq!(plain.status, 504, "{}", plain.text);
    assert_eq!(plain.error_code(), "DEADLINE_EXCEEDED");
}

#[test]
fn openai_completions_answer_in_the_openai_shape_by_model_id_or_deployment_id() {
    let agent = serving_agent(Script::default());
    let id = agent.deploy_ready("gpt2-tiny");
    for model in ["gpt2-tiny", id.as_str()] {
        let reply = agent.post_json(
            "/v1/completions",
            &json!({"model": model, "prompt": "a b", "max_tokens": 2, "temperature": 0.5, "top_p": 0.9, "stop": "\n", "seed": 3}),
        );
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.json["object"], "text_completion");
        assert!(reply.json["id"].as_str().unwrap().starts_with("cmpl-"));
        assert_eq!(reply.json["model"], model);
        assert_eq!(reply.json["choices"][0]["text"], "t0 t1 ");
        assert_eq!(reply.json["choices"][0]["finish_reason"], "length");
        assert_eq!(
            reply.json["usage"],
            json!({"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4})
        );
    }
    let request = agent.backend.requests().pop().unwrap();
    assert_eq!(
        (request.temperature, request.top_p, request.seed),
        (0.5, 0.9, Some(3))
    );
    assert_eq!(request.stop, vec!["\n".to_owned()]);
}

#[test]
fn streamed_completions_send_chunks_then_done() {
    let agent = serving_agent(Script::default());
    agent.deploy_ready("gpt2-tiny");
    let reply = agent.post_json(
        "/v1/completions",
        &json!({"model": "gpt2-tiny", "prompt": "hi", "max_tokens": 2, "stream": true}),
    );
    let events = parse_sse(&reply.text);
    let data: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(data.len(), 4, "{}", reply.text);
    assert_eq!(events[0].json()["choices"][0]["text"], "t0 ");
    assert!(events[0].json()["choices"][0]["finish_reason"].is_null());
    assert_eq!(events[2].json()["choices"][0]["finish_reason"], "length");
    assert_eq!(data[3], "[DONE]");
}

#[test]
fn lucidworks_prediction_runs_every_batch_item_and_reports_tokens_used() {
    let agent = serving_agent(Script::default());
    let id = agent.deploy_ready("gpt2-tiny");
    let auth = format!("Bearer {LW_TOKEN}");
    let reply = agent.request(
        "POST",
        &format!("/ai/prediction/passthrough/{id}"),
        &[("authorization", auth.as_str())],
        Some(&json!({
            "batch": [{"text": "first"}, {"text": "second one"}],
            "useCaseConfig": {},
            "modelConfig": {"maxTokens": 2, "temperature": 0.3},
        })),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.json,
        json!({"predictions": [
            {"response": "t0 t1 ", "tokensUsed": {"promptTokens": 1, "completionTokens": 2, "totalTokens": 3}},
            {"response": "t0 t1 ", "tokensUsed": {"promptTokens": 2, "completionTokens": 2, "totalTokens": 4}},
        ]})
    );
    let prompts: Vec<String> = agent
        .backend
        .requests()
        .into_iter()
        .map(|r| r.prompt)
        .collect();
    assert_eq!(prompts.len(), 2);
    assert!(prompts.contains(&"first".to_owned()) && prompts.contains(&"second one".to_owned()));
}

#[test]
fn a_full_queue_is_429_with_retry_after() {
    let gate = Gate::closed();
    let agent = serving_agent(Script {
        capacity: 1,
        gate: gate.clone(),
        ..Script::default()
    });
    agent.deploy_ready("gpt2-tiny");
    let url = agent.url("/v1/deployments/gpt2-tiny/generate");
    let held = std::thread::spawn(move || {
        crate::support::http::send(
            "POST",
            &url,
            &[("x-api-key", API_KEY)],
            Some(br#"{"prompt": "hold"}"#),
        )
    });
    eventually("the first request is in flight", || {
        agent.backend.requests().len() == 1
    });
    let refused = generate(&agent, "gpt2-tiny", json!({"prompt": "one more"}));
    assert_eq!(refused.status, 429, "{}", refused.text);
    assert_eq!(refused.error_code(), "QUEUE_FULL");
    assert_eq!(refused.header("retry-after"), Some("1"));
    gate.release();
    assert_eq!(held.join().unwrap().status, 200);
}

#[test]
fn a_prompt_too_long_for_the_context_is_422_naming_the_prompt() {
    let agent = serving_agent(Script {
        context: 4,
        ..Script::default()
    });
    agent.deploy_ready("gpt2-tiny");
    let reply = generate(
        &agent,
        "gpt2-tiny",
        json!({"prompt": "a b c", "parameters": {"maxTokens": 2}}),
    );
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(reply.error_code(), "PROMPT_TOO_LONG");
    assert_eq!(reply.error_field(), Some("prompt"));
}

#[test]
fn a_load_failure_fails_the_deploy_in_its_phase_with_the_backends_code() {
    let agent = serving_agent(Script {
        load_failure: Some(LoadFailure::new(
            "MODEL_LOAD_FAILED",
            "model.safetensors: tensor wte.weight has shape [3, 4], expected [50257, 32]",
        )),
        ..Script::default()
    });
    let reply = crate::kore_lifecycle::kore_deploy(&agent, "gpt2-tiny", "cpu");
    let job = crate::kore_lifecycle::wait_job(&agent, reply.json["dockStatusId"].as_str().unwrap());
    assert_eq!(job.json["status"], "FAILED");
    assert_eq!(job.json["error"]["code"], "MODEL_LOAD_FAILED");
    assert_eq!(job.json["error"]["phase"], "LOADING");
    assert!(job.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("wte.weight"));
}

#[test]
fn a_client_that_disconnects_mid_stream_cancels_its_request() {
    let gate = Gate::closed();
    // Slow enough that the server writes to the closed connection long before the last
    // of 500 tokens: the failed write drops the stream and with it the receiver.
    let agent = serving_agent(Script {
        gate: gate.clone(),
        token_interval: Duration::from_millis(10),
        ..Script::default()
    });
    agent.deploy_ready("gpt2-tiny");
    {
        use std::io::{BufRead, BufReader, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", agent.port)).unwrap();
        let body = r#"{"prompt": "hi", "stream": true, "parameters": {"maxTokens": 500}}"#;
        write!(
            stream,
            "POST /v1/deployments/gpt2-tiny/generate HTTP/1.1\r\nhost: x\r\nx-api-key: {API_KEY}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        while !line.starts_with("data:") {
            line.clear();
            assert!(
                reader.read_line(&mut line).unwrap() > 0,
                "the stream ended early"
            );
        }
        assert!(line.contains("\"token\""), "{line}");
        // The connection closes here, with the generation held after its first token.
    }
    gate.release();
    eventually("the backend sees the receiver gone", || {
        agent.backend.observed.cancelled.load(Ordering::SeqCst) == 1
    });
    assert_eq!(agent.backend.observed.completed.load(Ordering::SeqCst), 0);
}

#[test]
fn undeploy_drains_an_in_flight_request_before_undeployed() {
    let gate = Gate::closed();
    let agent = serving_agent(Script {
        gate: gate.clone(),
        ..Script::default()
    });
    agent.deploy_ready("gpt2-tiny");
    let url = agent.url("/v1/deployments/gpt2-tiny/generate");
    let in_flight = std::thread::spawn(move || {
        crate::support::http::send(
            "POST",
            &url,
            &[("x-api-key", API_KEY)],
            Some(br#"{"prompt": "x"}"#),
        )
    });
    eventually("the request is in flight", || {
        agent.backend.requests().len() == 1
    });
    let undeploy = agent.post_json("/api/public/models/gpt2-tiny/undeploy", &json!({}));
    assert_eq!(undeploy.status, 202, "{}", undeploy.text);
    let draining = agent.wait_phase("gpt2-tiny", &["DRAINING"]);
    assert_eq!(draining.json["desired"], "REMOVED");
    let refused = generate(&agent, "gpt2-tiny", json!({"prompt": "late"}));
    assert_eq!(refused.status, 503, "{}", refused.text);
    assert_eq!(refused.error_code(), "DRAINING");
    gate.release();
    let finished = in_flight.join().unwrap();
    assert_eq!(
        finished.status, 200,
        "the in-flight request completes: {}",
        finished.text
    );
    agent.wait_phase("gpt2-tiny", &["UNDEPLOYED"]);
    assert_eq!(agent.backend.observed.drains.load(Ordering::SeqCst), 1);
}

#[test]
fn shutdown_turns_readiness_off_refuses_new_work_and_lets_in_flight_work_finish() {
    let gate = Gate::closed();
    let mut agent = serving_agent(Script {
        gate: gate.clone(),
        ..Script::default()
    });
    agent.deploy_ready("gpt2-tiny");
    let url = agent.url("/v1/deployments/gpt2-tiny/generate");
    let in_flight = std::thread::spawn(move || {
        crate::support::http::send(
            "POST",
            &url,
            &[("x-api-key", API_KEY)],
            Some(br#"{"prompt": "x", "parameters": {"maxTokens": 4}}"#),
        )
    });
    eventually("the request is in flight", || {
        agent.backend.requests().len() == 1
    });
    agent.begin_shutdown();
    eventually("readiness turns off", || agent.get("/readyz").status == 503);
    let ready = agent.get("/readyz");
    assert_eq!(ready.error_code(), "DRAINING");
    assert_eq!(ready.header("retry-after"), Some("5"));
    let refused = generate(&agent, "gpt2-tiny", json!({"prompt": "late"}));
    assert_eq!(refused.status, 503, "{}", refused.text);
    let deploy = crate::kore_lifecycle::kore_deploy(&agent, "t5-tiny", "cpu");
    assert_eq!(deploy.status, 503, "{}", deploy.text);
    gate.release();
    let finished = in_flight.join().unwrap();
    assert_eq!(finished.status, 200, "{}", finished.text);
    assert_eq!(finished.json["tokens"], json!([0, 1, 2, 3]));
    assert_eq!(agent.wait_stopped(), Ok(()));
}

#[test]
fn generation_metrics_are_recorded_under_their_contract_names() {
    let agent = InProcessAgent::start(
        AgentConfig::default().model(
            "metrics-probe",
            &crate::support::fixtures()
                .join("gpt2-tiny")
                .display()
                .to_string(),
        ),
        Script::default(),
    );
    agent.deploy_ready("metrics-probe");
    generate(
        &agent,
        "metrics-probe",
        json!({"prompt": "a", "parameters": {"maxTokens": 3}}),
    );
    let long = generate(
        &agent,
        "metrics-probe",
        json!({"prompt": "a", "parameters": {"maxTokens": 512}}),
    );
    assert_eq!(long.status, 200, "{}", long.text);
    let text = agent.get("/metrics").text;
    for expected in [
        "gpu_agent_requests_total{deployment=\"metrics-probe\",outcome=\"ok\"} 2",
        "gpu_agent_generated_tokens_total{deployment=\"metrics-probe\"} 515",
        "gpu_agent_time_to_first_token_seconds_count{deployment=\"metrics-probe\"} 2",
        "gpu_agent_request_duration_seconds_count{deployment=\"metrics-probe\"} 2",
        "gpu_agent_queue_depth{deployment=\"metrics-probe\"} 0",
        "gpu_agent_running_sequences{deployment=\"metrics-probe\"} 0",
        "gpu_agent_deployment_phase{deployment=\"metrics-probe\",phase=\"READY\"} 1",
    ] {
        assert!(text.contains(expected), "missing {expected}:\n{text}");
    }
    assert!(
        text.contains("gpu_agent_inter_token_latency_seconds_bucket{deployment=\"metrics-probe\","),
        "{text}"
    );
    for histogram in [
        "gpu_agent_time_to_first_token_seconds",
        "gpu_agent_inter_token_latency_seconds",
        "gpu_agent_request_duration_seconds",
    ] {
        assert!(
            text.contains(&format!("# TYPE {histogram} histogram")),
            "{histogram}:\n{text}"
        );
    }
}
