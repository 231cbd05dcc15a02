//! Readiness, metrics names and phases.

use serde_json::{json, Value};

use crate::support::kore::{kore_deploy, wait_job};
use crate::support::{Agent, AgentConfig, HangingHub, API_KEY, LW_TOKEN};

#[test]
fn readyz_is_503_with_reason_and_retry_after_while_a_deploy_is_in_progress() {
    let hub = HangingHub::start();
    let agent = Agent::start_with_env(AgentConfig::default(), &hub.env());
    assert_eq!(agent.get("/readyz").status, 200);
    kore_deploy(&agent, "org%2Fslow-model", "cpu");
    agent.wait_phase("org%2Fslow-model", &["FETCHING"]);
    let reply = agent.get("/readyz");
    assert_eq!(reply.status, 503);
    assert_eq!(reply.error_code(), "NOT_READY");
    assert!(
        reply.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("FETCHING"),
        "{}",
        reply.text
    );
    assert_eq!(reply.header("retry-after"), Some("5"));
}

#[test]
fn metrics_expose_the_deployment_phase_gauge_under_its_contract_name() {
    let agent = Agent::start(AgentConfig::default().model("outside", "/"));
    let reply = kore_deploy(&agent, "outside", "cpu");
    wait_job(&agent, reply.json["dockStatusId"].as_str().unwrap());
    let text = agent.get("/metrics").text;
    assert!(
        text.contains("gpu_agent_deployment_phase{deployment=\"outside\",phase=\"FAILED\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("gpu_agent_deployment_phase{deployment=\"outside\",phase=\"FETCHING\"} 0"),
        "{text}"
    );
}

/// Method, path, headers and body of one request.
type Request<'a> = (
    &'a str,
    &'a str,
    &'a [(&'a str, &'a str)],
    Option<&'a Value>,
);

#[test]
fn every_response_carries_a_request_id_and_a_given_one_is_echoed() {
    let agent = Agent::start(AgentConfig::default());
    // Every route of every surface, answered and refused: success, 401, 404, 405, 422.
    let auth = format!("Bearer {LW_TOKEN}");
    let key = [("x-api-key", API_KEY)];
    let bearer = [("authorization", auth.as_str())];
    let empty = json!({});
    let requests: [Request; 18] = [
        ("GET", "/healthz", &[], None),
        ("GET", "/readyz", &[], None),
        ("GET", "/metrics", &[], None),
        ("GET", "/v1/gpus", &key, None),
        ("GET", "/v1/gpus", &[], None),
        ("POST", "/api/public/models/m/deploy", &key, Some(&empty)),
        ("POST", "/api/public/models/m/undeploy", &key, Some(&empty)),
        ("GET", "/api/public/dock-status/ds-none", &key, None),
        ("GET", "/customers/acme/ai/deployments", &bearer, None),
        (
            "POST",
            "/customers/acme/ai/deployments",
            &bearer,
            Some(&empty),
        ),
        ("GET", "/customers/acme/ai/deployments/none", &bearer, None),
        (
            "DELETE",
            "/customers/acme/ai/deployments/none",
            &bearer,
            None,
        ),
        (
            "POST",
            "/ai/prediction/passthrough/none",
            &bearer,
            Some(&empty),
        ),
        ("GET", "/v1/deployments", &key, None),
        ("POST", "/v1/deployments/none/generate", &key, Some(&empty)),
        ("POST", "/v1/completions", &key, Some(&empty)),
        ("GET", "/no/such/route", &[], None),
        ("PUT", "/healthz", &[], None),
    ];
    for (method, path, headers, body) in requests {
        let reply = agent.request(method, path, headers, body);
        assert!(reply.status > 0, "{method} {path}: {}", reply.text);
        assert!(
            reply
                .header("x-request-id")
                .is_some_and(|id| !id.is_empty()),
            "{method} {path} answered {} without x-request-id",
            reply.status
        );
    }
    let echoed = crate::support::http::send(
        "GET",
        &agent.url("/healthz"),
        &[("x-request-id", "req-42")],
        None,
    );
    assert_eq!(echoed.header("x-request-id"), Some("req-42"));
    assert!(agent.log().contains("req-42"));
}
