//! The generate surfaces (native JSON and SSE, OpenAI completions, Lucidworks prediction),
//! readiness, metrics, deadlines, undeploy drain and the SIGTERM drain, through the real
//! binary serving the tiny fixture models (`gpt2-tiny`, `t5-tiny`) and, where a request
//! must stay in flight long enough to be caught, the slow random-weight GPT-2 of
//! `support::slow_model`.

use std::io::Write;

use serde_json::{json, Value};

use crate::support::golden::golden_cases;
use crate::support::http::parse_sse;
use crate::support::serving::{
    deploy_ready, deploy_ready_with, eventually, generate, generate_in_background, metric,
    metric_now, OpenStream,
};
use crate::support::slow_model::SLOW_MODEL;
use crate::support::{Agent, AgentConfig, API_KEY};

fn ids(reply: &Value) -> Vec<u32> {
    reply["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .filter_map(Value::as_u64)
        .map(|id| id as u32)
        .collect()
}

/// A request to the slow model that runs for a while: a long prompt and the most new
/// tokens a request may ask for.
fn long_request() -> Value {
    json!({"prompt": "the slow model keeps going ".repeat(40), "parameters": {"temperature": 0, "maxTokens": 512}})
}

#[test]
fn a_ready_deployment_makes_the_agent_ready_and_shows_its_serving_status() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    let id = deploy_ready(&agent, "gpt2-tiny");
    let ready = agent.get("/readyz");
    assert_eq!(ready.status, 200, "{}", ready.text);
    assert_eq!(ready.json["servingDeployments"], 1);
    let status = agent.get_with_key(&format!("/v1/deployments/{id}"));
    assert_eq!(status.json["phase"], "READY", "{}", status.text);
    assert_eq!(status.json["backend"]["kind"], "candle", "{}", status.text);
    assert_eq!(status.json["computeType"], "float32", "{}", status.text);
    assert_eq!(status.json["replicas"]["running"], 1, "{}", status.text);
    assert_eq!(status.json["progress"], 100);
    assert!(status.json["lastError"].is_null());
}

#[test]
fn native_generate_merges_overrides_into_the_deployment_defaults() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    deploy_ready(&agent, "gpt2-tiny");
    let case = &golden_cases("gpt2-tiny")[0];
    // kore_body's hyperParameters: temperature 0, topP 1, topK 1, maxTokens 8.
    let defaults = generate(&agent, "gpt2-tiny", json!({"prompt": case.prompt}));
    assert_eq!(defaults.status, 200, "{}", defaults.text);
    assert_eq!(ids(&defaults.json).len(), 8, "deployment maxTokens");
    case.assert_prefix_matches(&ids(&defaults.json), 8, "greedy by default");
    let reply = generate(
        &agent,
        "gpt2-tiny",
        json!({"prompt": case.prompt, "parameters": {"maxTokens": 3, "seed": 9, "stopSequence": ["\u{1}"]}}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    let tokens = ids(&reply.json);
    case.assert_prefix_matches(&tokens, 3, "maxTokens override");
    assert_eq!(tokens.len(), 3);
    assert_eq!(reply.json["finishReason"], "length");
    assert_eq!(reply.json["seed"], 9);
    assert_eq!(
        reply.json["usage"],
        json!({"promptTokens": case.prompt_ids.len(), "completionTokens": 3})
    );
    assert!(defaults.json["text"]
        .as_str()
        .unwrap()
        .starts_with(reply.json["text"].as_str().unwrap()));
}

#[test]
fn an_absent_seed_is_drawn_and_returned_and_reproduces_the_sample() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    deploy_ready(&agent, "gpt2-tiny");
    let sampled = json!({"prompt": "hi", "parameters": {"temperature": 1.0, "topK": 50, "topP": 0.95, "maxTokens": 12}});
    let first = generate(&agent, "gpt2-tiny", sampled.clone());
    assert_eq!(first.status, 200, "{}", first.text);
    let seed = first.json["seed"]
        .as_u64()
        .expect("a drawn seed is returned");
    // Drawn afresh for each request: two draws of 63 bits agree by chance once in 2^63.
    let other = generate(&agent, "gpt2-tiny", sampled.clone());
    assert_eq!(other.status, 200, "{}", other.text);
    assert_ne!(other.json["seed"], json!(seed), "the same seed drawn twice");
    let mut again = sampled;
    again["parameters"]["seed"] = json!(seed);
    let second = generate(&agent, "gpt2-tiny", again);
    assert_eq!(second.json["tokens"], first.json["tokens"], "seed {seed}");
}

#[test]
fn a_seed_beyond_the_documented_range_is_422_not_clamped() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    deploy_ready(&agent, "gpt2-tiny");
    let reply = generate(
        &agent,
        "gpt2-tiny",
        json!({"prompt": "hi", "parameters": {"seed": 1u64 << 63}}),
    );
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(reply.error_code(), "OUT_OF_RANGE");
    assert_eq!(reply.error_field(), Some("parameters.seed"));
    let openai = agent.post_json(
        "/v1/completions",
        &json!({"model": "gpt2-tiny", "prompt": "hi", "seed": u64::MAX}),
    );
    assert_eq!(openai.status, 400, "{}", openai.text);
    assert_eq!(openai.error_param(), Some("seed"));
}

#[test]
fn an_array_prompt_answers_an_array_in_order() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    let id = deploy_ready(&agent, "gpt2-tiny");
    let cases = golden_cases("gpt2-tiny");
    let prompts: Vec<&str> = cases[..3].iter().map(|c| c.prompt.as_str()).collect();
    let reply = generate(
        &agent,
        &id,
        json!({"prompt": prompts, "parameters": {"maxTokens": 4}}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    let answers = reply.json.as_array().expect("an array");
    assert_eq!(answers.len(), 3, "{}", reply.text);
    for (case, answer) in cases.iter().zip(answers) {
        assert_eq!(answer["usage"]["promptTokens"], case.prompt_ids.len());
        case.assert_prefix_matches(&ids(answer), 4, "array item");
    }
}

#[test]
fn streamed_generate_sends_one_event_per_token_then_the_full_result() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    deploy_ready(&agent, "gpt2-tiny");
    let case = &golden_cases("gpt2-tiny")[1];
    let body =
        json!({"prompt": case.prompt, "stream": true, "parameters": {"maxTokens": 3, "seed": 1}});
    let reply = generate(&agent, "gpt2-tiny", body);
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(reply
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/event-stream"));
    let events = parse_sse(&reply.text);
    assert_eq!(events.len(), 4, "{}", reply.text);
    let mut text = String::new();
    for (i, event) in events[..3].iter().enumerate() {
        let token = &event.json()["token"];
        assert_eq!(token["id"], case.greedy_ids[i], "{}", reply.text);
        text.push_str(token["text"].as_str().expect("token text"));
    }
    let last = events[3].json();
    assert_eq!(last["text"], text.as_str());
    assert_eq!(last["finishReason"], "length");
    assert_eq!(last["seed"], 1);
}

#[test]
fn accept_event_stream_asks_for_a_stream_too() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    deploy_ready(&agent, "gpt2-tiny");
    let reply = agent.request(
        "POST",
        "/v1/deployments/gpt2-tiny/generate",
        &[("x-api-key", API_KEY), ("accept", "text/event-stream")],
        Some(
            &json!({"prompt": golden_cases("gpt2-tiny")[0].prompt, "parameters": {"maxTokens": 2}}),
        ),
    );
    assert_eq!(parse_sse(&reply.text).len(), 3, "{}", reply.text);
}

#[test]
fn a_deadline_passed_after_tokens_ends_the_stream_with_an_error_event_and_a_json_request_with_504()
{
    // Work that cannot finish within the 1 s deadline on any CPU, without timing anything:
    // once the stream's first token is in, it shares every step with requests that each
    // prefill a 500-token prompt and ask for 512 tokens (~1 TFLOP in all on the slow model).
    const COMPANIONS: usize = 23;
    let mut config = AgentConfig::with_fixture_models().with_slow_model();
    config.extra = "[batcher]\nrequest_timeout_s = 1\n".to_owned();
    let agent = Agent::start(config);
    deploy_ready_with(
        &agent,
        SLOW_MODEL,
        json!({"maxBatchSize": COMPANIONS + 1, "minReplicas": 1, "maxReplicas": 1}),
    );
    let mut stream = OpenStream::start(
        &agent,
        SLOW_MODEL,
        json!({"prompt": "Once", "parameters": {"temperature": 0, "maxTokens": 512}}),
    );
    let first = stream.next_data().expect("a first event");
    assert!(first.contains("\"token\""), "tokens come first: {first}");
    let companions: Vec<_> = (0..COMPANIONS)
        .map(|i| {
            let prompt = format!("{i} ").repeat(250);
            generate_in_background(
                &agent,
                SLOW_MODEL,
                json!({"prompt": prompt, "parameters": {"temperature": 0, "maxTokens": 512}}),
            )
        })
        .collect();
    let events: Vec<_> = std::iter::from_fn(|| stream.next_event()).collect();
    let last = events.last().expect("events");
    assert_eq!(last.event.as_deref(), Some("error"), "{events:?}");
    assert_eq!(
        last.json()["error"]["code"],
        "DEADLINE_EXCEEDED",
        "{events:?}"
    );
    let tokens = events
        .iter()
        .filter(|e| e.json()["token"].is_object())
        .count();
    assert!(
        tokens + 1 < 512,
        "cut short: {tokens} more tokens after the first"
    );
    for companion in companions {
        let plain = companion.join().expect("request thread");
        assert_eq!(plain.status, 504, "{}", plain.text);
        assert_eq!(plain.error_code(), "DEADLINE_EXCEEDED");
    }
}

#[test]
fn openai_completions_answer_in_the_openai_shape_by_model_id_or_deployment_id() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    let id = deploy_ready(&agent, "gpt2-tiny");
    let case = &golden_cases("gpt2-tiny")[0];
    let n = case.prompt_ids.len();
    let mut sampled_texts = Vec::new();
    for model in ["gpt2-tiny", id.as_str()] {
        let greedy = agent.post_json(
            "/v1/completions",
            &json!({"model": model, "prompt": case.prompt, "max_tokens": 2, "temperature": 0}),
        );
        assert_eq!(greedy.status, 200, "{}", greedy.text);
        assert_eq!(greedy.json["object"], "text_completion");
        assert!(greedy.json["id"].as_str().unwrap().starts_with("cmpl-"));
        assert_eq!(greedy.json["model"], model);
        assert_eq!(greedy.json["choices"][0]["finish_reason"], "length");
        assert_eq!(
            greedy.json["usage"],
            json!({"prompt_tokens": n, "completion_tokens": 2, "total_tokens": n + 2})
        );
        let native = generate(
            &agent,
            model,
            json!({"prompt": case.prompt, "parameters": {"maxTokens": 2}}),
        );
        assert_eq!(greedy.json["choices"][0]["text"], native.json["text"]);
        let sampled = agent.post_json(
            "/v1/completions",
            &json!({"model": model, "prompt": case.prompt, "max_tokens": 6, "temperature": 0.9, "top_p": 0.9, "stop": "\u{1}", "seed": 3}),
        );
        assert_eq!(sampled.status, 200, "{}", sampled.text);
        sampled_texts.push(sampled.json["choices"][0]["text"].clone());
    }
    assert_eq!(
        sampled_texts[0], sampled_texts[1],
        "the seed reaches the sampler"
    );
}

#[test]
fn streamed_completions_send_chunks_then_done() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    deploy_ready(&agent, "gpt2-tiny");
    let reply = agent.post_json(
        "/v1/completions",
        &json!({"model": "gpt2-tiny", "prompt": golden_cases("gpt2-tiny")[0].prompt, "max_tokens": 2, "stream": true}),
    );
    let events = parse_sse(&reply.text);
    let data: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(data.len(), 4, "{}", reply.text);
    assert!(events[0].json()["choices"][0]["text"].is_string());
    assert!(events[0].json()["choices"][0]["finish_reason"].is_null());
    assert_eq!(events[2].json()["choices"][0]["finish_reason"], "length");
    assert_eq!(data[3], "[DONE]");
}

#[test]
fn lucidworks_prediction_runs_every_batch_item_and_reports_tokens_used() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    let id = deploy_ready(&agent, "gpt2-tiny");
    let cases = golden_cases("gpt2-tiny");
    let reply = agent.lucidworks(
        "POST",
        &format!("/ai/prediction/passthrough/{id}"),
        Some(&json!({
            "batch": [{"text": cases[0].prompt}, {"text": cases[1].prompt}],
            "useCaseConfig": {},
            "modelConfig": {"maxTokens": 2, "temperature": 0},
        })),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    for (i, case) in cases[..2].iter().enumerate() {
        let single = generate(
            &agent,
            &id,
            json!({"prompt": case.prompt, "parameters": {"maxTokens": 2}}),
        );
        let n = case.prompt_ids.len();
        assert_eq!(
            reply.json["predictions"][i],
            json!({"response": single.json["text"], "tokensUsed": {"promptTokens": n, "completionTokens": 2, "totalTokens": n + 2}})
        );
    }
}

#[test]
fn a_full_queue_is_429_with_retry_after() {
    let mut config = AgentConfig::with_fixture_models().with_slow_model();
    config.extra = "[batcher]\nmax_queue = 1\n".to_owned();
    let agent = Agent::start(config);
    deploy_ready_with(
        &agent,
        SLOW_MODEL,
        json!({"maxBatchSize": 1, "minReplicas": 1, "maxReplicas": 1}),
    );
    let running = format!("gpu_agent_running_sequences{{deployment=\"{SLOW_MODEL}\"}}");
    let queued = format!("gpu_agent_queue_depth{{deployment=\"{SLOW_MODEL}\"}}");
    let first = generate_in_background(&agent, SLOW_MODEL, long_request());
    eventually("the first request runs", || {
        metric_now(&agent, &running) == 1.0
    });
    // Short, so that waiting for the long first one keeps it inside the client's timeout on
    // a loaded runner.
    let second = generate_in_background(
        &agent,
        SLOW_MODEL,
        json!({"prompt": "queued", "parameters": {"temperature": 0, "maxTokens": 16}}),
    );
    eventually("the second request waits in the queue", || {
        metric_now(&agent, &queued) == 1.0
    });
    let refused = generate(&agent, SLOW_MODEL, json!({"prompt": "one more"}));
    assert_eq!(refused.status, 429, "{}", refused.text);
    assert_eq!(refused.error_code(), "QUEUE_FULL");
    let retry: u64 = refused
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!(retry >= 1);
    assert_eq!(first.join().unwrap().status, 200);
    assert_eq!(second.join().unwrap().status, 200);
}

#[test]
fn a_prompt_too_long_for_the_context_or_empty_is_422_naming_the_prompt() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    deploy_ready(&agent, "gpt2-tiny");
    // gpt2-tiny: n_positions 128.
    let reply = generate(
        &agent,
        "gpt2-tiny",
        json!({"prompt": "word ".repeat(120), "parameters": {"maxTokens": 20}}),
    );
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(reply.error_code(), "PROMPT_TOO_LONG");
    assert_eq!(reply.error_field(), Some("prompt"));
    // GPT-2 has no start token: an empty prompt leaves nothing to condition on.
    let reply = generate(&agent, "gpt2-tiny", json!({"prompt": ""}));
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(reply.error_code(), "EMPTY_PROMPT");
    assert_eq!(reply.error_field(), Some("prompt"));
    let reply = agent.post_json(
        "/v1/completions",
        &json!({"model": "gpt2-tiny", "prompt": ""}),
    );
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.error_code(), "empty_prompt");
}

#[test]
fn a_load_failure_fails_the_deploy_in_its_phase_with_the_backends_code() {
    let broken = tempfile::tempdir().expect("temp dir");
    let dir = broken.path().join("gpt2-broken");
    std::fs::create_dir(&dir).unwrap();
    let tiny = crate::support::fixtures().join("gpt2-tiny");
    for file in [
        "config.json",
        "vocab.json",
        "merges.txt",
        "tokenizer_config.json",
    ] {
        std::fs::copy(tiny.join(file), dir.join(file)).unwrap();
    }
    // A well-formed safetensors file whose embedding has the wrong shape.
    let header =
        br#"{"transformer.wte.weight":{"dtype":"F32","shape":[3,4],"data_offsets":[0,48]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&[0u8; 48]);
    std::fs::write(dir.join("model.safetensors"), bytes).unwrap();
    let mut config = AgentConfig::default().model("gpt2-broken", &dir.display().to_string());
    config.model_roots.push(broken.path().to_owned());
    let agent = Agent::start(config);
    let reply = crate::support::kore::kore_deploy(&agent, "gpt2-broken", "cpu");
    assert_eq!(reply.status, 202, "{}", reply.text);
    let job = crate::support::kore::wait_job(&agent, reply.json["dockStatusId"].as_str().unwrap());
    assert_eq!(job.json["status"], "FAILED", "{}", job.text);
    assert_eq!(
        job.json["error"]["code"], "MODEL_LOAD_FAILED",
        "{}",
        job.text
    );
    assert_eq!(job.json["error"]["phase"], "LOADING", "{}", job.text);
    assert!(
        job.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("wte"),
        "{}",
        job.text
    );
}

#[test]
fn a_client_that_disconnects_mid_stream_cancels_its_request() {
    let agent = Agent::start(AgentConfig::with_fixture_models().with_slow_model());
    deploy_ready(&agent, SLOW_MODEL);
    {
        let mut stream = OpenStream::start(&agent, SLOW_MODEL, long_request());
        let first = stream.next_data().expect("a first event");
        assert!(first.contains("\"token\""), "{first}");
        // The connection closes here, long before the last of 512 tokens.
    }
    let cancelled =
        format!("gpu_agent_requests_total{{deployment=\"{SLOW_MODEL}\",outcome=\"cancelled\"}}");
    eventually("the request is counted as cancelled", || {
        metric_now(&agent, &cancelled) == 1.0
    });
    let text = agent.get("/metrics").text;
    assert_eq!(
        metric(
            &text,
            &format!("gpu_agent_requests_total{{deployment=\"{SLOW_MODEL}\",outcome=\"ok\"}}")
        ),
        None,
        "{text}"
    );
}

#[test]
fn a_client_that_disconnects_while_waiting_for_a_json_answer_cancels_its_request() {
    let agent = Agent::start(AgentConfig::with_fixture_models().with_slow_model());
    deploy_ready(&agent, SLOW_MODEL);
    let running = format!("gpu_agent_running_sequences{{deployment=\"{SLOW_MODEL}\"}}");
    {
        let body = long_request().to_string();
        let mut connection =
            std::net::TcpStream::connect(("127.0.0.1", agent.port)).expect("connect");
        write!(
            connection,
            "POST /v1/deployments/{SLOW_MODEL}/generate HTTP/1.1\r\nhost: x\r\nx-api-key: {API_KEY}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .expect("send the request");
        eventually("the request is running", || {
            metric_now(&agent, &running) == 1.0
        });
        // The connection closes here, long before the last of 512 tokens.
    }
    let cancelled =
        format!("gpu_agent_requests_total{{deployment=\"{SLOW_MODEL}\",outcome=\"cancelled\"}}");
    eventually("the request is counted as cancelled", || {
        metric_now(&agent, &cancelled) == 1.0
    });
    eventually("its slot is free", || metric_now(&agent, &running) == 0.0);
}

#[test]
fn undeploy_drains_an_in_flight_request_before_undeployed() {
    let agent = Agent::start(AgentConfig::with_fixture_models().with_slow_model());
    deploy_ready(&agent, SLOW_MODEL);
    let running = format!("gpu_agent_running_sequences{{deployment=\"{SLOW_MODEL}\"}}");
    let in_flight = generate_in_background(&agent, SLOW_MODEL, long_request());
    eventually("the request is in flight", || {
        metric_now(&agent, &running) == 1.0
    });
    let undeploy = agent.post_json(
        &format!("/api/public/models/{SLOW_MODEL}/undeploy"),
        &json!({}),
    );
    assert_eq!(undeploy.status, 202, "{}", undeploy.text);
    let draining = agent.wait_phase(SLOW_MODEL, &["DRAINING"]);
    assert_eq!(draining.json["desired"], "REMOVED");
    let refused = generate(&agent, SLOW_MODEL, json!({"prompt": "late"}));
    assert_eq!(refused.status, 503, "{}", refused.text);
    assert_eq!(refused.error_code(), "DRAINING");
    let finished = in_flight.join().unwrap();
    assert_eq!(
        finished.status, 200,
        "the in-flight request completes: {}",
        finished.text
    );
    assert_eq!(ids(&finished.json).len(), 512);
    agent.wait_phase(SLOW_MODEL, &["UNDEPLOYED"]);
}

#[test]
fn sigterm_turns_readiness_off_refuses_new_work_lets_in_flight_work_finish_and_exits_0() {
    let mut config = AgentConfig::with_fixture_models().with_slow_model();
    config.drain_timeout_s = 120;
    let mut agent = Agent::start(config);
    deploy_ready(&agent, SLOW_MODEL);
    let running = format!("gpu_agent_running_sequences{{deployment=\"{SLOW_MODEL}\"}}");
    let in_flight = generate_in_background(&agent, SLOW_MODEL, long_request());
    eventually("the request is in flight", || {
        metric_now(&agent, &running) == 1.0
    });
    let exit = agent.sigterm_in_background();
    eventually("readiness turns off", || agent.get("/readyz").status == 503);
    let ready = agent.get("/readyz");
    assert_eq!(ready.error_code(), "DRAINING", "{}", ready.text);
    assert!(ready.header("retry-after").is_some());
    let refused = generate(&agent, SLOW_MODEL, json!({"prompt": "late"}));
    assert_eq!(refused.status, 503, "{}", refused.text);
    let deploy = crate::support::kore::kore_deploy(&agent, "t5-tiny", "cpu");
    assert_eq!(deploy.status, 503, "{}", deploy.text);
    let finished = in_flight.join().unwrap();
    assert_eq!(finished.status, 200, "{}", finished.text);
    assert_eq!(ids(&finished.json).len(), 512);
    let status = exit.join().expect("waiter");
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn generation_metrics_are_recorded_under_their_contract_names() {
    let agent = Agent::start(
        AgentConfig::default().model(
            "metrics-probe",
            &crate::support::fixtures()
                .join("gpt2-tiny")
                .display()
                .to_string(),
        ),
    );
    deploy_ready(&agent, "metrics-probe");
    let prompt = &golden_cases("gpt2-tiny")[0].prompt;
    for max in [3, 24] {
        let reply = generate(
            &agent,
            "metrics-probe",
            json!({"prompt": prompt, "parameters": {"maxTokens": max}}),
        );
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    let text = agent.get("/metrics").text;
    for expected in [
        "gpu_agent_requests_total{deployment=\"metrics-probe\",outcome=\"ok\"} 2",
        "gpu_agent_generated_tokens_total{deployment=\"metrics-probe\"} 27",
        "gpu_agent_time_to_first_token_seconds_count{deployment=\"metrics-probe\"} 2",
        "gpu_agent_request_duration_seconds_count{deployment=\"metrics-probe\"} 2",
        "gpu_agent_queue_depth{deployment=\"metrics-probe\"} 0",
        "gpu_agent_running_sequences{deployment=\"metrics-probe\"} 0",
        "gpu_agent_replicas{deployment=\"metrics-probe\"} 1",
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
        "gpu_agent_batch_size",
    ] {
        assert!(
            text.contains(&format!("# TYPE {histogram} histogram")),
            "{histogram}:\n{text}"
        );
    }
}
