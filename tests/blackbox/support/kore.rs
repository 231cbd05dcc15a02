//! The Kore deployment surface as the tests drive it: a valid body, a deploy, polling a
//! dock-status job, and "deploy and wait for SUCCESS".

use serde_json::{json, Value};

use super::{Endpoint, Reply};

/// A valid Kore deploy body for `device_type`: greedy defaults (maxTokens 8), a batch of
/// four, one replica.
pub fn kore_body(device_type: &str) -> Value {
    json!({
        "name": "blackbox",
        "hyperParameters": {"temperature": 0, "maxTokens": 8, "topP": 1, "topK": 1},
        "scalingParameters": {"maxBatchSize": 4, "minReplicas": 1, "maxReplicas": 1},
        "deviceType": device_type,
    })
}

/// `POST /api/public/models/{model}/deploy` with [`kore_body`]; `model` is a path segment
/// (a repo id's `/` written `%2F`).
pub fn kore_deploy(agent: &Endpoint, model: &str, device_type: &str) -> Reply {
    agent.post_json(
        &format!("/api/public/models/{model}/deploy?modelType=openSource"),
        &kore_body(device_type),
    )
}

/// Polls a dock-status job until it is no longer IN_PROGRESS.
pub fn wait_job(agent: &Endpoint, job: &str) -> Reply {
    agent.poll(
        &format!("/api/public/dock-status/{job}"),
        "the job to end",
        |r| r.status == 200 && r.json["status"] != "IN_PROGRESS",
    )
}

/// Deploys `model` through Kore with `body`, asserts the job ends in SUCCESS, and returns
/// the deployment id.
pub fn deploy_and_wait_for_success(agent: &Endpoint, model: &str, body: &Value) -> String {
    let reply = agent.post_json(
        &format!("/api/public/models/{model}/deploy?modelType=openSource"),
        body,
    );
    assert_eq!(reply.status, 202, "{}", reply.text);
    let job = wait_job(
        agent,
        reply.json["dockStatusId"].as_str().unwrap_or_default(),
    );
    assert_eq!(
        job.json["status"],
        "SUCCESS",
        "{}\n{}",
        job.text,
        agent.log()
    );
    reply.json["deploymentId"]
        .as_str()
        .expect("deploymentId")
        .to_owned()
}
