//! The native and OpenAI surfaces without a serving model: status views, request
//! validation, and answers for deployments that are not serving.

use serde_json::json;

use crate::support::kore::{kore_body, kore_deploy, wait_job};
use crate::support::{Agent, AgentConfig, HangingHub};

#[test]
fn native_status_names_phase_backend_device_replicas_and_last_error() {
    let agent = Agent::start(AgentConfig::default().model("outside", "/"));
    let reply = kore_deploy(&agent, "outside", "cpu");
    wait_job(&agent, reply.json["dockStatusId"].as_str().unwrap());
    let status = agent.get_with_key("/v1/deployments/outside");
    assert_eq!(status.status, 200);
    let s = &status.json;
    assert_eq!(s["phase"], "FAILED");
    assert_eq!(s["backend"]["kind"], "candle");
    assert_eq!(s["deviceType"], "cpu");
    assert_eq!(s["replicas"]["min"], 1);
    assert_eq!(s["queueDepth"], 0);
    assert!(s["gpuIndices"].is_array() && s.get("computeType").is_some());
    assert_eq!(s["lastError"]["code"], "SOURCE_OUTSIDE_MODEL_ROOTS");
    let by_id = agent.get_with_key(&format!("/v1/deployments/{}", s["id"].as_str().unwrap()));
    assert_eq!(by_id.json, status.json);
    let list = agent.get_with_key("/v1/deployments");
    assert_eq!(list.json["deployments"].as_array().unwrap().len(), 1);
}

#[test]
fn native_create_and_delete_drive_the_same_lifecycle() {
    let agent = Agent::start(AgentConfig::default().model("outside", "/"));
    let mut body = kore_body("cpu");
    body["modelId"] = json!("outside");
    let created = agent.post_json("/v1/deployments", &body);
    assert_eq!(created.status, 202, "{}", created.text);
    assert!(created.json["dockStatusId"]
        .as_str()
        .unwrap()
        .starts_with("ds-"));
    agent.wait_phase("outside", &["FAILED"]);
    let deleted = agent.request(
        "DELETE",
        "/v1/deployments/outside",
        &[("x-api-key", crate::support::API_KEY)],
        None,
    );
    assert_eq!(deleted.status, 202, "{}", deleted.text);
    agent.wait_phase("outside", &["UNDEPLOYED"]);
}

#[test]
fn generate_and_completion_bodies_are_validated_naming_the_field() {
    let agent = Agent::start(AgentConfig::default());
    let generate = "/v1/deployments/anything/generate";
    let cases = [
        (json!({}), 422, "prompt"),
        (json!({"prompt": 5}), 400, "prompt"),
        (json!({"prompt": ["a", 5]}), 400, "prompt[1]"),
        (json!({"prompt": []}), 422, "prompt"),
        (
            json!({"prompt": "hi", "parameters": {"topK": 0}}),
            422,
            "parameters.topK",
        ),
        (
            json!({"prompt": "hi", "parameters": {"maxTokens": 513}}),
            422,
            "parameters.maxTokens",
        ),
        (
            json!({"prompt": "hi", "parameters": {"seed": -1}}),
            422,
            "parameters.seed",
        ),
        (
            json!({"prompt": "hi", "parameters": {"stopSequence": [""]}}),
            422,
            "parameters.stopSequence[0]",
        ),
        (json!({"prompt": ["a", "b"], "stream": true}), 422, "prompt"),
        (json!({"prompt": "hi", "stream": "yes"}), 400, "stream"),
    ];
    for (body, status, field) in cases {
        let reply = agent.post_json(generate, &body);
        assert_eq!(reply.status, status, "{body}: {}", reply.text);
        assert_eq!(reply.error_field(), Some(field), "{body}: {}", reply.text);
    }
    // The OpenAI route answers every invalid parameter 400, naming it as `param`.
    let completions = [
        (json!({"prompt": "hi"}), 400, "model"),
        (json!({"model": "m"}), 400, "prompt"),
        (json!({"model": "m", "prompt": "hi", "n": 17}), 400, "n"),
        (
            json!({"model": "m", "prompt": "hi", "temperature": 2.5}),
            400,
            "temperature",
        ),
        (
            json!({"model": "m", "prompt": "hi", "stop": [1]}),
            400,
            "stop[0]",
        ),
    ];
    for (body, status, field) in completions {
        let reply = agent.post_json("/v1/completions", &body);
        assert_eq!(reply.status, status, "{body}: {}", reply.text);
        assert_eq!(reply.error_param(), Some(field), "{body}: {}", reply.text);
    }
}

#[test]
fn generate_on_a_deploying_model_is_503_with_retry_after_and_on_a_failed_one_409() {
    let hub = HangingHub::start();
    let agent = Agent::start_with_env(AgentConfig::default().model("outside", "/"), &hub.env());
    kore_deploy(&agent, "org%2Fslow-model", "cpu");
    agent.wait_phase("org%2Fslow-model", &["FETCHING"]);
    let busy = agent.post_json(
        "/v1/deployments/org%2Fslow-model/generate",
        &json!({"prompt": "hi"}),
    );
    assert_eq!(busy.status, 503, "{}", busy.text);
    assert_eq!(busy.error_code(), "NOT_READY");
    assert!(busy.header("retry-after").is_some());
    let busy = agent.post_json(
        "/v1/completions",
        &json!({"model": "org/slow-model", "prompt": "hi"}),
    );
    assert_eq!(busy.status, 503, "{}", busy.text);

    let reply = kore_deploy(&agent, "outside", "cpu");
    wait_job(&agent, reply.json["dockStatusId"].as_str().unwrap());
    let failed = agent.post_json("/v1/deployments/outside/generate", &json!({"prompt": "hi"}));
    assert_eq!(failed.status, 409, "{}", failed.text);
    assert_eq!(failed.error_code(), "NOT_SERVING");
}
