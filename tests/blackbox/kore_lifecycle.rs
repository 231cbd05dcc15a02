//! The Kore surface end to end, as far as it goes without a serving backend: accept,
//! dock-status, conflicts, undeploy, not-found answers.

use serde_json::json;

use crate::support::kore::{kore_deploy, wait_job};
use crate::support::{Agent, AgentConfig, HangingHub};

#[test]
fn deploy_answers_202_with_the_job_id_under_both_spellings() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    let reply = kore_deploy(&agent, "gpt2-tiny", "cpu");
    assert_eq!(reply.status, 202, "{}", reply.text);
    let id = reply.json["dockStatusId"].as_str().unwrap();
    assert!(id.starts_with("ds-"), "{id}");
    assert_eq!(reply.json["dock-statusId"], id);
    assert_eq!(reply.json["modelId"], "gpt2-tiny");
    assert_eq!(reply.json["jobType"], "MODELS");
    assert_eq!(reply.json["action"], "DEPLOY");
    assert_eq!(reply.json["status"], "IN_PROGRESS");
}

#[test]
fn dock_status_reports_phase_and_rising_progress_until_a_local_cpu_model_is_ready() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    let reply = kore_deploy(&agent, "gpt2-tiny", "cpu");
    let job = reply.json["dockStatusId"].as_str().unwrap().to_owned();
    // Every answer until the job ends: each names its phase, and progress only rises.
    let mut seen: Vec<(String, u64)> = Vec::new();
    let done = agent.poll(
        &format!("/api/public/dock-status/{job}"),
        "the job to end",
        |r| {
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(r.json["_id"], job.as_str());
            assert_eq!(r.json["action"], "DEPLOY");
            let phase = r.json["phase"].as_str().expect("a phase").to_owned();
            let progress = r.json["progress"].as_u64().expect("progress");
            assert!(progress <= 100, "{}", r.text);
            if let Some((_, before)) = seen.last() {
                assert!(
                    progress >= *before,
                    "progress fell: {seen:?} then {}",
                    r.text
                );
            }
            seen.push((phase, progress));
            r.json["status"] != "IN_PROGRESS"
        },
    );
    assert_eq!(done.json["status"], "SUCCESS", "{}", done.text);
    assert_eq!(done.json["phase"], "READY", "{}", done.text);
    assert_eq!(done.json["progress"], 100);
}

#[test]
fn a_second_deploy_of_a_deploying_model_is_409() {
    let hub = HangingHub::start();
    let agent = Agent::start_with_env(AgentConfig::default(), &hub.env());
    let first = kore_deploy(&agent, "org%2Fslow-model", "cpu");
    assert_eq!(first.status, 202, "{}", first.text);
    agent.wait_phase("org%2Fslow-model", &["FETCHING"]);
    let second = kore_deploy(&agent, "org%2Fslow-model", "cpu");
    assert_eq!(second.status, 409, "{}", second.text);
    assert_eq!(second.error_code(), "DEPLOY_IN_PROGRESS");
}

#[test]
fn undeploy_during_a_hanging_fetch_completes() {
    let hub = HangingHub::start();
    let agent = Agent::start_with_env(AgentConfig::default(), &hub.env());
    let deploy = kore_deploy(&agent, "org%2Fslow-model", "cpu");
    agent.wait_phase("org%2Fslow-model", &["FETCHING"]);
    let undeploy = agent.post_json("/api/public/models/org%2Fslow-model/undeploy", &json!({}));
    assert_eq!(undeploy.status, 202, "{}", undeploy.text);
    assert_eq!(undeploy.json["action"], "UNDEPLOY");
    let undeploy_job = wait_job(&agent, undeploy.json["dockStatusId"].as_str().unwrap());
    assert_eq!(
        undeploy_job.json["status"], "SUCCESS",
        "{}",
        undeploy_job.text
    );
    let deploy_job = wait_job(&agent, deploy.json["dockStatusId"].as_str().unwrap());
    assert_eq!(deploy_job.json["status"], "FAILED", "{}", deploy_job.text);
    assert_eq!(deploy_job.json["error"]["code"], "UNDEPLOYED");
    let status = agent.get_with_key("/v1/deployments/org%2Fslow-model");
    assert_eq!(status.json["phase"], "UNDEPLOYED");
}

#[test]
fn undeploy_of_a_failed_deployment_succeeds_and_a_new_deploy_replaces_it() {
    let config = AgentConfig::default().model("outside", "/");
    let agent = Agent::start(config);
    let deploy = kore_deploy(&agent, "outside", "cpu");
    let job = wait_job(&agent, deploy.json["dockStatusId"].as_str().unwrap());
    assert_eq!(job.json["status"], "FAILED");
    let again = kore_deploy(&agent, "outside", "cpu");
    assert_eq!(
        again.status, 202,
        "a failed deployment does not block a new deploy: {}",
        again.text
    );
    wait_job(&agent, again.json["dockStatusId"].as_str().unwrap());
    let undeploy = agent.post_json("/api/public/models/outside/undeploy", &json!({}));
    assert_eq!(undeploy.status, 202, "{}", undeploy.text);
    let undeploy_job = wait_job(&agent, undeploy.json["dockStatusId"].as_str().unwrap());
    assert_eq!(undeploy_job.json["status"], "SUCCESS");
    let again = agent.post_json("/api/public/models/outside/undeploy", &json!({}));
    assert_eq!(again.status, 409, "{}", again.text);
}

#[test]
fn unknown_ids_are_404_with_the_error_shape() {
    let agent = Agent::start(AgentConfig::default());
    let replies = [
        agent.get_with_key("/api/public/dock-status/ds-does-not-exist"),
        agent.post_json("/api/public/models/never-deployed/undeploy", &json!({})),
        agent.get_with_key("/v1/deployments/never-deployed"),
        agent.post_json(
            "/v1/deployments/never-deployed/generate",
            &json!({"prompt": "hi"}),
        ),
        agent.get_with_key("/no/such/route"),
    ];
    for reply in replies {
        assert_eq!(reply.status, 404, "{}", reply.text);
        assert_eq!(reply.error_code(), "NOT_FOUND");
        assert!(reply.json["error"]["message"].is_string());
    }
    // The OpenAI route answers in OpenAI's shape (docs/api.md § OpenAI-compatible API).
    let completion = agent.post_json(
        "/v1/completions",
        &json!({"model": "never-deployed", "prompt": "hi"}),
    );
    assert_eq!(completion.status, 404, "{}", completion.text);
    assert_eq!(completion.error_code(), "model_not_found");
    assert_eq!(completion.error_param(), Some("model"));
}
