//! Readiness, metrics names and phases.

use crate::kore_lifecycle::{kore_deploy, wait_job};
use crate::support::{Agent, AgentConfig, HangingHub};

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

#[test]
fn every_response_carries_a_request_id_and_a_given_one_is_echoed() {
    let agent = Agent::start(AgentConfig::default());
    let generated = agent.get("/healthz");
    assert!(generated
        .header("x-request-id")
        .is_some_and(|id| !id.is_empty()));
    let echoed = crate::support::http::send(
        "GET",
        &agent.url("/healthz"),
        &[("x-request-id", "req-42")],
        None,
    );
    assert_eq!(echoed.header("x-request-id"), Some("req-42"));
    assert!(agent.log().contains("req-42"));
}
