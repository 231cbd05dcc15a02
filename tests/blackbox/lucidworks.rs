//! The Lucidworks surface: create/list/get/delete, states, the config blob kept verbatim,
//! visibility across surfaces, prediction validation.

use serde_json::{json, Value};

use crate::support::kore::{kore_deploy, wait_job};
use crate::support::{Agent, AgentConfig, Endpoint, Reply};

const CUSTOMER: &str = "/customers/acme/ai/deployments";

fn create_body(model: &str) -> Value {
    json!({
        "modelId": model,
        "region": "us-east-1",
        "minReplicas": 1,
        "maxReplicas": 2,
        "config": {
            "deviceType": "cpu",
            "maxBatchSize": 8,
            "hyperParameters": {"temperature": 0, "maxTokens": 8, "topP": 1, "topK": 1},
            "vendorSpecific": {"keep": ["me", 1, null]}
        }
    })
}

fn wait_state(agent: &Endpoint, id: &str, states: &[&str]) -> Reply {
    let deadline = std::time::Instant::now() + crate::support::PATIENCE;
    loop {
        let reply = agent.lucidworks("GET", &format!("{CUSTOMER}/{id}"), None);
        if states.contains(&reply.json["state"].as_str().unwrap_or("")) {
            return reply;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "state never in {states:?}: {}",
            reply.text
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn create_get_list_delete_follow_the_documented_states_and_keep_the_config_verbatim() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    let body = create_body("gpt2-tiny");
    let created = agent.lucidworks("POST", CUSTOMER, Some(&body));
    assert_eq!(created.status, 200, "{}", created.text);
    assert_eq!(created.json["state"], "DEPLOYING");
    assert_eq!(created.json["config"], body["config"]);
    assert_eq!(created.json["region"], "us-east-1");
    assert_eq!(created.json["minReplicas"], 1);
    assert_eq!(created.json["maxReplicas"], 2);
    let deployed_at = created.json["deployedAt"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(deployed_at).is_ok(),
        "{deployed_at}"
    );
    let id = created.json["id"].as_str().unwrap().to_owned();

    let settled = wait_state(&agent, &id, &["DEPLOYED", "DEPLOY_FAILED"]);
    assert_eq!(settled.json["state"], "DEPLOYED", "{}", settled.text);
    assert_eq!(settled.json["config"], body["config"]);
    let listed = agent.lucidworks("GET", CUSTOMER, None);
    assert_eq!(listed.status, 200);
    assert!(listed
        .json
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["id"] == id.as_str()));
    let native = agent.get_with_key(&format!("/v1/deployments/{id}"));
    assert_eq!(native.json["lucidworks"]["region"], "us-east-1");

    let deleted = agent.lucidworks("DELETE", &format!("{CUSTOMER}/{id}"), None);
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert!(["DELETING", "DELETED"].contains(&deleted.json["state"].as_str().unwrap()));
    let gone = wait_state(&agent, &id, &["DELETED"]);
    assert_eq!(gone.json["config"], body["config"]);
}

#[test]
fn create_reads_the_kore_keys_from_the_config_blob() {
    let agent = Agent::start(AgentConfig::default());
    let mut body = create_body("m");
    body["config"]["hyperParameters"]["topK"] = json!(0);
    let reply = agent.lucidworks("POST", CUSTOMER, Some(&body));
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(reply.error_field(), Some("config.hyperParameters.topK"));
    let mut body = create_body("m");
    body["config"]["optimizationType"] = json!("vllm");
    let reply = agent.lucidworks("POST", CUSTOMER, Some(&body));
    assert_eq!(reply.error_code(), "UNSUPPORTED_OPTIMIZATION");
    assert_eq!(reply.error_field(), Some("config.optimizationType"));
    let mut body = create_body("m");
    body["config"].as_object_mut().unwrap().remove("deviceType");
    assert_eq!(
        agent
            .lucidworks("POST", CUSTOMER, Some(&body))
            .error_field(),
        Some("config.deviceType")
    );
    let mut body = create_body("m");
    body["maxReplicas"] = json!(0);
    assert_eq!(
        agent
            .lucidworks("POST", CUSTOMER, Some(&body))
            .error_field(),
        Some("maxReplicas")
    );
    let mut body = create_body("m");
    body["config"] = json!("not an object");
    assert_eq!(agent.lucidworks("POST", CUSTOMER, Some(&body)).status, 400);
    let body = json!({"region": "x", "config": {"deviceType": "cpu"}});
    assert_eq!(
        agent
            .lucidworks("POST", CUSTOMER, Some(&body))
            .error_field(),
        Some("modelId")
    );
}

#[test]
fn a_kore_deployment_is_visible_through_the_lucidworks_surface() {
    let agent = Agent::start(AgentConfig::default().model("outside", "/"));
    let reply = kore_deploy(&agent, "outside", "cpu");
    wait_job(&agent, reply.json["dockStatusId"].as_str().unwrap());
    let seen = agent.lucidworks("GET", &format!("{CUSTOMER}/outside"), None);
    assert_eq!(seen.status, 200, "{}", seen.text);
    assert_eq!(seen.json["state"], "DEPLOY_FAILED");
    assert_eq!(seen.json["config"]["deviceType"], "cpu");
}

#[test]
fn another_customers_deployment_is_404() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    let created = agent.lucidworks("POST", CUSTOMER, Some(&create_body("gpt2-tiny")));
    let id = created.json["id"].as_str().unwrap();
    let other = agent.lucidworks(
        "GET",
        &format!("/customers/globex/ai/deployments/{id}"),
        None,
    );
    assert_eq!(other.status, 404, "{}", other.text);
    assert_eq!(
        agent
            .lucidworks("GET", &format!("{CUSTOMER}/dep-unknown"), None)
            .status,
        404
    );
}

#[test]
fn prediction_batches_are_validated_before_anything_runs() {
    let agent = Agent::start(AgentConfig::default());
    let path = "/ai/prediction/passthrough/some-deployment";
    let item = json!({"text": "hello"});
    let cases = [
        (json!({"batch": []}), 422, "batch"),
        (json!({"batch": vec![item.clone(); 33]}), 422, "batch"),
        (json!({}), 422, "batch"),
        (json!({"batch": "hello"}), 400, "batch"),
        (json!({"batch": [{"txt": "hello"}]}), 422, "batch[0].text"),
        (
            json!({"batch": [item.clone(), {"text": 5}]}),
            400,
            "batch[1].text",
        ),
        (
            json!({"batch": [item.clone()], "modelConfig": {"temperature": 3}}),
            422,
            "modelConfig.temperature",
        ),
    ];
    for (body, status, field) in cases {
        let reply = agent.lucidworks("POST", path, Some(&body));
        assert_eq!(reply.status, status, "{body}: {}", reply.text);
        assert_eq!(reply.error_field(), Some(field), "{body}: {}", reply.text);
    }
    let unknown = agent.lucidworks("POST", path, Some(&json!({"batch": [item]})));
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    let use_case = agent.lucidworks(
        "POST",
        "/ai/prediction/rag/some-deployment",
        Some(&json!({"batch": [{"text": "x"}]})),
    );
    assert_eq!(use_case.status, 404, "{}", use_case.text);
}
