//! Each surface end to end through the real binary and the tiny fixture models: deploy →
//! poll until SUCCESS/DEPLOYED → generate returns the golden greedy tokens of
//! `tests/fixtures/golden.json` → undeploy/delete. Also SIGTERM with a stream in flight and
//! `kill -9` of a serving agent.

use serde_json::{json, Value};

use crate::support::golden::golden_cases;
use crate::support::http::parse_sse;
use crate::support::kore::wait_job;
use crate::support::serving::{deploy_ready, eventually, metric_now, OpenStream};
use crate::support::slow_model::SLOW_MODEL;
use crate::support::{Agent, AgentConfig, API_KEY};

/// `golden.json`'s cases for `model` ("gpt2" or "t5"): (prompt, greedy ids, greedy text).
fn golden(model: &str) -> Vec<(String, Vec<u32>, String)> {
    golden_cases(&format!("{model}-tiny"))
        .into_iter()
        .map(|case| (case.prompt, case.greedy_ids, case.greedy_text))
        .collect()
}

/// The golden continuations are 24 tokens.
const GOLDEN_TOKENS: u64 = 24;

fn greedy(prompt: &str) -> Value {
    json!({"prompt": prompt, "parameters": {"temperature": 0, "maxTokens": GOLDEN_TOKENS}})
}

#[test]
fn kore_deploy_generate_golden_greedy_tokens_then_undeploy() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    let id = deploy_ready(&agent, "gpt2-tiny");
    assert_eq!(agent.get("/readyz").status, 200);
    for (prompt, ids, text) in golden("gpt2") {
        let reply = agent.post_json(&format!("/v1/deployments/{id}/generate"), &greedy(&prompt));
        assert_eq!(reply.status, 200, "{prompt:?}: {}", reply.text);
        assert_eq!(reply.json["tokens"], json!(ids), "{prompt:?}");
        assert_eq!(reply.json["text"], text.as_str(), "{prompt:?}");
        assert_eq!(reply.json["finishReason"], "length");
    }
    let undeploy = agent.post_json("/api/public/models/gpt2-tiny/undeploy", &json!({}));
    let job = wait_job(
        &agent,
        undeploy.json["dockStatusId"].as_str().unwrap_or_default(),
    );
    assert_eq!(job.json["status"], "SUCCESS", "{}", job.text);
    agent.wait_phase(&id, &["UNDEPLOYED"]);
}

#[test]
fn lucidworks_create_predict_golden_t5_batch_then_delete() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    let lw = |method: &str, path: &str, body: Option<&Value>| agent.lucidworks(method, path, body);
    let created = lw(
        "POST",
        "/customers/acme/ai/deployments",
        Some(
            &json!({"modelId": "t5-tiny", "region": "local", "config": {"deviceType": "cpu", "maxBatchSize": 8}}),
        ),
    );
    assert_eq!(created.status, 200, "{}", created.text);
    let id = created.json["id"].as_str().unwrap_or_default().to_owned();
    let path = format!("/customers/acme/ai/deployments/{id}");
    agent.poll(&format!("/v1/deployments/{id}"), "READY", |r| {
        r.json["phase"] == "READY"
    });
    assert_eq!(lw("GET", &path, None).json["state"], "DEPLOYED");
    let cases = golden("t5");
    let batch: Vec<Value> = cases.iter().map(|(p, _, _)| json!({"text": p})).collect();
    let predicted = lw(
        "POST",
        &format!("/ai/prediction/passthrough/{id}"),
        Some(
            &json!({"batch": batch, "modelConfig": {"temperature": 0, "maxTokens": GOLDEN_TOKENS}}),
        ),
    );
    assert_eq!(predicted.status, 200, "{}", predicted.text);
    for (i, (prompt, _, text)) in cases.iter().enumerate() {
        let prediction = &predicted.json["predictions"][i];
        assert_eq!(prediction["response"], text.as_str(), "{prompt:?}");
        assert_eq!(prediction["tokensUsed"]["completionTokens"], GOLDEN_TOKENS);
    }
    assert_eq!(lw("DELETE", &path, None).status, 200);
    agent.poll(&format!("/v1/deployments/{id}"), "UNDEPLOYED", |r| {
        r.json["phase"] == "UNDEPLOYED"
    });
    assert_eq!(lw("GET", &path, None).json["state"], "DELETED");
}

#[test]
fn native_create_then_openai_completions_and_streams_match_golden() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    let mut body = crate::support::kore::kore_body("cpu");
    body["modelId"] = json!("gpt2-tiny");
    let created = agent.post_json("/v1/deployments", &body);
    assert_eq!(created.status, 202, "{}", created.text);
    let settled = agent.wait_phase("gpt2-tiny", &["READY", "FAILED"]);
    assert_eq!(settled.json["phase"], "READY", "{}", settled.text);
    let (prompt, ids, text) = golden("gpt2").remove(0);
    let completion = agent.post_json(
        "/v1/completions",
        &json!({"model": "gpt2-tiny", "prompt": prompt, "max_tokens": GOLDEN_TOKENS, "temperature": 0}),
    );
    assert_eq!(
        completion.json["choices"][0]["text"],
        text.as_str(),
        "{}",
        completion.text
    );
    let mut stream_body = greedy(&prompt);
    stream_body["stream"] = json!(true);
    let streamed = agent.post_json("/v1/deployments/gpt2-tiny/generate", &stream_body);
    let events = parse_sse(&streamed.text);
    let (tokens, last) = events.split_at(events.len() - 1);
    let streamed_ids: Vec<Value> = tokens
        .iter()
        .map(|e| e.json()["token"]["id"].clone())
        .collect();
    let streamed_text: String = tokens
        .iter()
        .map(|e| {
            e.json()["token"]["text"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(json!(streamed_ids), json!(ids));
    assert_eq!(streamed_text, text);
    assert_eq!(last[0].json()["text"], text.as_str());
    let delete = agent.request(
        "DELETE",
        "/v1/deployments/gpt2-tiny",
        &[("x-api-key", API_KEY)],
        None,
    );
    assert_eq!(delete.status, 202);
    agent.wait_phase("gpt2-tiny", &["UNDEPLOYED"]);
}

#[test]
fn sigterm_lets_a_stream_in_flight_finish_then_exits_0() {
    // The slow model: the tiny one answers 100 tokens faster than a test can catch them.
    let mut config = AgentConfig::with_fixture_models().with_slow_model();
    config.drain_timeout_s = 120;
    let mut agent = Agent::start(config);
    deploy_ready(&agent, SLOW_MODEL);
    let max_tokens = 256;
    let mut stream = OpenStream::start(
        &agent,
        SLOW_MODEL,
        json!({"prompt": "Hello, my name is", "parameters": {"temperature": 0, "maxTokens": max_tokens}}),
    );
    let first = stream.next_data().expect("a first event");
    assert!(first.contains("\"token\""), "{first}");
    let exit = agent.sigterm_in_background();
    eventually("readiness turns off", || agent.get("/readyz").status == 503);
    // Draining has begun and the stream's sequence is still running: it is in flight.
    let running = format!("gpu_agent_running_sequences{{deployment=\"{SLOW_MODEL}\"}}");
    assert_eq!(
        metric_now(&agent, &running),
        1.0,
        "still generating at SIGTERM"
    );
    let rest: Vec<Value> = std::iter::from_fn(|| stream.next_data())
        .map(|data| serde_json::from_str(&data).expect("JSON events"))
        .collect();
    let (last, tokens) = rest.split_last().expect("the final event");
    assert!(
        tokens.iter().all(|e| e["token"].is_object()),
        "only token events before the final one: {rest:?}"
    );
    assert_eq!(tokens.len() + 1, max_tokens, "every token was streamed");
    assert_eq!(last["finishReason"], "length", "{last}");
    assert_eq!(last["usage"]["completionTokens"], max_tokens, "{last}");
    let status = exit.join().expect("waiter");
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn kill_9_of_a_serving_agent_serves_the_same_deployment_again_after_restart() {
    let mut agent = Agent::start(AgentConfig::with_fixture_models());
    let id = deploy_ready(&agent, "gpt2-tiny");
    agent.kill9_and_restart();
    let settled = agent.wait_phase(&id, &["READY", "FAILED"]);
    assert_eq!(settled.json["phase"], "READY", "{}", settled.text);
    let (prompt, ids, _) = golden("gpt2").remove(0);
    let reply = agent.post_json(&format!("/v1/deployments/{id}/generate"), &greedy(&prompt));
    assert_eq!(reply.json["tokens"], json!(ids), "{}", reply.text);
}
