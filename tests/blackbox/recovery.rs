//! Durable state: what was acknowledged survives `kill -9` and restarts; SIGTERM drains and
//! exits 0; corrupt state files are quarantined and reported.

use serde_json::json;

use crate::support::golden::golden_cases;
use crate::support::hub::fake_hf_cache;
use crate::support::kore::{kore_deploy, wait_job};
use crate::support::serving::generate;
use crate::support::{Agent, AgentConfig, HangingHub};

#[test]
fn kill_9_mid_deploy_restores_the_deploy_and_its_job_after_restart() {
    let hub = HangingHub::start();
    let mut agent = Agent::start_with_env(AgentConfig::default(), &hub.env());
    let reply = kore_deploy(&agent, "org%2Fslow-model", "cpu");
    let job = reply.json["dockStatusId"].as_str().unwrap().to_owned();
    let deployment = reply.json["deploymentId"].as_str().unwrap().to_owned();
    agent.wait_phase(&deployment, &["FETCHING"]);

    agent.kill9_and_restart();

    // The same deployment is deployed again from PENDING and is back in FETCHING.
    let status = agent.wait_phase(&deployment, &["FETCHING"]);
    assert_eq!(status.json["modelId"], "org/slow-model");
    let job_status = agent.get_with_key(&format!("/api/public/dock-status/{job}"));
    assert_eq!(job_status.status, 200, "{}", job_status.text);
    assert_eq!(job_status.json["status"], "IN_PROGRESS");
    // Still deploying, so a second deploy is a conflict and the agent is not ready.
    assert_eq!(kore_deploy(&agent, "org%2Fslow-model", "cpu").status, 409);
    let ready = agent.get("/readyz");
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert!(ready.header("retry-after").is_some());
    assert!(ready.text.contains("org/slow-model"), "{}", ready.text);
}

#[test]
fn a_deploy_acknowledged_just_before_kill_9_is_not_lost() {
    let hub = HangingHub::start();
    let mut agent = Agent::start_with_env(AgentConfig::default(), &hub.env());
    let reply = kore_deploy(&agent, "org%2Fjust-acked", "cpu");
    assert_eq!(reply.status, 202);
    let job = reply.json["dockStatusId"].as_str().unwrap().to_owned();
    let deployment = reply.json["deploymentId"].as_str().unwrap().to_owned();
    agent.kill9_and_restart();
    // Deployed again from the start: back in FETCHING from the (still hanging) hub.
    let status = agent.wait_phase(&deployment, &["FETCHING"]);
    assert_eq!(status.json["modelId"], "org/just-acked", "{}", status.text);
    let job_status = agent.get_with_key(&format!("/api/public/dock-status/{job}"));
    assert_eq!(job_status.status, 200, "{}", job_status.text);
    assert_eq!(
        job_status.json["status"], "IN_PROGRESS",
        "{}",
        job_status.text
    );
    assert_eq!(job_status.json["action"], "DEPLOY", "{}", job_status.text);
    assert_eq!(
        job_status.json["modelId"], "org/just-acked",
        "{}",
        job_status.text
    );
}

#[test]
fn a_real_deploy_killed_before_ready_comes_back_ready_and_serves_golden_tokens() {
    // The first run fetches from a hub that never answers, so the deploy is held in
    // FETCHING when it is killed; the second run finds the model in the Hugging Face cache.
    let hub = HangingHub::start();
    let hf_home = tempfile::tempdir().unwrap();
    let home = hf_home.path().display().to_string();
    let mut agent = Agent::start_with_env(
        AgentConfig::default(),
        &[
            ("HF_ENDPOINT", hub.url.as_str()),
            ("HF_HOME", home.as_str()),
        ],
    );
    let reply = kore_deploy(&agent, "blackbox%2Ft5-tiny", "cpu");
    assert_eq!(reply.status, 202, "{}", reply.text);
    let job = reply.json["dockStatusId"].as_str().unwrap().to_owned();
    let deployment = reply.json["deploymentId"].as_str().unwrap().to_owned();
    agent.wait_phase(&deployment, &["FETCHING"]);
    agent.kill9();

    fake_hf_cache(hf_home.path(), "blackbox/t5-tiny", "t5-tiny");
    agent.set_env("HF_HUB_OFFLINE", "1");
    agent.restart();
    let status = agent.wait_phase(&deployment, &["READY", "FAILED"]);
    assert_eq!(status.json["phase"], "READY", "{}", status.text);
    let job_status = wait_job(&agent, &job);
    assert_eq!(job_status.json["status"], "SUCCESS", "{}", job_status.text);
    let case = &golden_cases("t5-tiny")[0];
    let reply = generate(
        &agent,
        &deployment,
        json!({"prompt": case.prompt, "parameters": {"temperature": 0, "maxTokens": 24}}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    let tokens = crate::support::golden::tokens_of(&reply.json);
    case.assert_matches(&tokens, "after kill -9 mid-deploy");
}

#[test]
fn a_failed_deployment_and_its_job_survive_a_restart_unchanged() {
    let mut agent = Agent::start(AgentConfig::default().model("outside", "/"));
    let reply = kore_deploy(&agent, "outside", "cpu");
    let job = reply.json["dockStatusId"].as_str().unwrap().to_owned();
    let before = wait_job(&agent, &job);
    assert_eq!(before.json["status"], "FAILED");
    agent.kill9_and_restart();
    let after = agent.get_with_key(&format!("/api/public/dock-status/{job}"));
    assert_eq!(after.json["status"], "FAILED");
    assert_eq!(after.json["error"], before.json["error"]);
    let status = agent.get_with_key("/v1/deployments/outside");
    assert_eq!(status.json["phase"], "FAILED");
    assert_eq!(
        status.json["lastError"]["code"],
        "SOURCE_OUTSIDE_MODEL_ROOTS"
    );
}

#[test]
fn undeployed_deployments_stay_undeployed_after_a_restart() {
    let mut agent = Agent::start(AgentConfig::default().model("outside", "/"));
    let reply = kore_deploy(&agent, "outside", "cpu");
    wait_job(&agent, reply.json["dockStatusId"].as_str().unwrap());
    let undeploy = agent.post_json("/api/public/models/outside/undeploy", &json!({}));
    wait_job(&agent, undeploy.json["dockStatusId"].as_str().unwrap());
    agent.kill9_and_restart();
    let status = agent.get_with_key("/v1/deployments/outside");
    assert_eq!(status.json["phase"], "UNDEPLOYED", "{}", status.text);
    assert_eq!(agent.get("/readyz").status, 200);
}

/// Readiness turning off at SIGTERM (503 `DRAINING` while in-flight work finishes) is shown
/// in `generate_surfaces`, where a request keeps the agent draining long enough to ask.
#[test]
fn sigterm_exits_0_and_state_survives_a_restart() {
    let mut agent = Agent::start(AgentConfig::default().model("outside", "/"));
    let reply = kore_deploy(&agent, "outside", "cpu");
    wait_job(&agent, reply.json["dockStatusId"].as_str().unwrap());
    let status = agent.sigterm_and_wait();
    assert_eq!(
        status.code(),
        Some(0),
        "exit status {status}; log:\n{}",
        agent.log()
    );
    agent.restart();
    let status = agent.get_with_key("/v1/deployments/outside");
    assert_eq!(status.json["phase"], "FAILED", "{}", status.text);
    assert_eq!(
        status.json["lastError"]["code"], "SOURCE_OUTSIDE_MODEL_ROOTS",
        "{}",
        status.text
    );
}

#[test]
fn a_corrupt_state_file_is_quarantined_and_reported_and_the_rest_restored() {
    let mut agent = Agent::start(AgentConfig::default().model("outside", "/"));
    let reply = kore_deploy(&agent, "outside", "cpu");
    wait_job(&agent, reply.json["dockStatusId"].as_str().unwrap());
    agent.kill9();
    let corrupt = agent
        .state_dir()
        .join("deployments")
        .join("dep-corrupt.json");
    std::fs::write(&corrupt, b"{\"id\": \"dep-corr").unwrap();
    agent.restart();
    assert!(!corrupt.exists(), "the corrupt file was moved away");
    let quarantine = agent.state_dir().join("quarantine").join("deployments");
    let moved: Vec<_> = std::fs::read_dir(&quarantine).unwrap().flatten().collect();
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert_eq!(
        std::fs::read(moved[0].path()).unwrap(),
        b"{\"id\": \"dep-corr",
        "kept byte for byte for inspection"
    );
    assert!(agent.log().contains("quarantined"), "{}", agent.log());
    assert_eq!(
        agent.get_with_key("/v1/deployments/outside").json["phase"],
        "FAILED"
    );
}
