//! Each surface end to end through the real binary and the tiny fixture models: deploy →
//! poll until SUCCESS/DEPLOYED → generate returns the golden greedy tokens of
//! `tests/fixtures/golden.json` → undeploy/delete. Also SIGTERM with a stream in flight and
//! `kill -9` of a serving agent.

use serde_json::{json, Value};

use crate::kore_lifecycle::{kore_deploy, wait_job};
use crate::support::http::parse_sse;
use crate::support::{fixtures, Agent, AgentConfig, Endpoint, API_KEY, LW_TOKEN, PATIENCE};

/// `golden.json`'s cases for `model` ("gpt2" or "t5"): (prompt, greedy ids, greedy text).
fn golden(model: &str) -> Vec<(String, Vec<u64>, String)> {
    let text = std::fs::read_to_string(fixtures().join("golden.json")).expect("golden.json");
    let golden: Value = serde_json::from_str(&text).expect("golden.json parses");
    golden["models"][model]["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|case| {
            (
                case["prompt"].as_str().unwrap_or_default().to_owned(),
                case["greedy_ids"]
                    .as_array()
                    .expect("greedy_ids")
                    .iter()
                    .filter_map(Value::as_u64)
                    .collect(),
                case["greedy_text"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The golden continuations are 24 tokens.
const GOLDEN_TOKENS: u64 = 24;

fn greedy(prompt: &str) -> Value {
    json!({"prompt": prompt, "parameters": {"temperature": 0, "maxTokens": GOLDEN_TOKENS}})
}

fn ready_kore(agent: &Endpoint, model: &str) -> String {
    let reply = kore_deploy(agent, model, "cpu");
    assert_eq!(reply.status, 202, "{}", reply.text);
    let job = wait_job(
        agent,
        reply.json["dockStatusId"].as_str().unwrap_or_default(),
    );
    assert_eq!(job.json["status"], "SUCCESS", "{}", job.text);
    reply.json["deploymentId"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn kore_deploy_generate_golden_greedy_tokens_then_undeploy() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    let id = ready_kore(&agent, "gpt2-tiny");
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
    let auth = format!("Bearer {LW_TOKEN}");
    let lw = |method: &str, path: &str, body: Option<&Value>| {
        agent.request(method, path, &[("authorization", auth.as_str())], body)
    };
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
    let mut body = crate::kore_lifecycle::kore_body("cpu");
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
    use std::io::{BufRead, BufReader, Write};
    let mut agent = Agent::start(AgentConfig::with_fixture_models());
    ready_kore(&agent, "gpt2-tiny");
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", agent.port)).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let body =
        json!({"prompt": "Hello, my name is", "stream": true, "parameters": {"maxTokens": 100}})
            .to_string();
    write!(
        stream,
        "POST /v1/deployments/gpt2-tiny/generate HTTP/1.1\r\nhost: x\r\nx-api-key: {API_KEY}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while !line.starts_with("data:") {
        line.clear();
        assert!(reader.read_line(&mut line).expect("read") > 0);
    }
    let status = agent.sigterm_in_background();
    let mut rest = String::new();
    while reader.read_line(&mut rest).unwrap_or(0) > 0 {}
    assert!(
        rest.contains("\"finishReason\""),
        "the stream ran to its final event: {rest}"
    );
    assert!(status.join().expect("waiter").success());
}

#[test]
fn kill_9_of_a_serving_agent_serves_the_same_deployment_again_after_restart() {
    let mut agent = Agent::start(AgentConfig::with_fixture_models());
    let id = ready_kore(&agent, "gpt2-tiny");
    agent.kill9_and_restart();
    let settled = agent.wait_phase(&id, &["READY", "FAILED"]);
    assert_eq!(settled.json["phase"], "READY", "{}", settled.text);
    let (prompt, ids, _) = golden("gpt2").remove(0);
    let reply = agent.post_json(&format!("/v1/deployments/{id}/generate"), &greedy(&prompt));
    assert_eq!(reply.json["tokens"], json!(ids), "{}", reply.text);
}
