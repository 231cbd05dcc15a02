//! Model source resolution through the binary: `model_roots` confinement and the Hugging
//! Face cache in offline mode.

use serde_json::json;

use crate::support::golden::golden_cases;
use crate::support::hub::fake_hf_cache;
use crate::support::kore::{kore_deploy, wait_job};
use crate::support::serving::generate;
use crate::support::{fixtures, Agent, AgentConfig};

fn failure(agent: &Agent, model_path: &str) -> serde_json::Value {
    let reply = kore_deploy(agent, model_path, "cpu");
    assert_eq!(reply.status, 202, "{}", reply.text);
    wait_job(agent, reply.json["dockStatusId"].as_str().unwrap()).json["error"].clone()
}

#[test]
fn local_sources_outside_model_roots_fail_in_fetching() {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("model")).unwrap();
    std::os::unix::fs::symlink(outside.path(), root.path().join("escape")).unwrap();
    let root_text = root.path().display().to_string();
    let config = AgentConfig {
        model_roots: vec![root.path().to_owned()],
        ..AgentConfig::default()
    }
    .model("dotdot", &format!("{root_text}/model/../../etc"))
    .model("absolute", &outside.path().display().to_string())
    .model("symlink", "escape");
    let agent = Agent::start(config);
    for model in ["dotdot", "absolute", "symlink"] {
        let error = failure(&agent, model);
        assert_eq!(
            error["code"], "SOURCE_OUTSIDE_MODEL_ROOTS",
            "{model}: {error}"
        );
        assert_eq!(error["phase"], "FETCHING", "{model}");
        // Callers are not shown host paths (docs/operations.md); the log keeps them.
        assert!(
            !error["message"].as_str().unwrap().contains(&root_text),
            "{error}"
        );
    }
}

#[test]
fn a_missing_local_source_fails_with_model_not_found() {
    let config = AgentConfig::default().model(
        "ghost",
        &fixtures().join("no-such-model").display().to_string(),
    );
    let agent = Agent::start(config);
    assert_eq!(failure(&agent, "ghost")["code"], "MODEL_NOT_FOUND");
}

#[test]
fn offline_mode_serves_a_repo_id_from_the_hugging_face_cache_and_refuses_a_miss() {
    let hf_home = tempfile::tempdir().unwrap();
    fake_hf_cache(hf_home.path(), "blackbox/gpt2-tiny", "gpt2-tiny");
    let home = hf_home.path().display().to_string();
    let agent = Agent::start_with_env(
        AgentConfig::default(),
        &[("HF_HOME", home.as_str()), ("HF_HUB_OFFLINE", "1")],
    );
    let reply = kore_deploy(&agent, "blackbox%2Fgpt2-tiny", "cpu");
    let job = wait_job(&agent, reply.json["dockStatusId"].as_str().unwrap());
    assert_eq!(job.json["status"], "SUCCESS", "{}", job.text);
    let id = reply.json["deploymentId"].as_str().expect("deploymentId");
    let case = &golden_cases("gpt2-tiny")[0];
    let answer = generate(
        &agent,
        id,
        json!({"prompt": case.prompt, "parameters": {"temperature": 0, "maxTokens": 24}}),
    );
    assert_eq!(answer.status, 200, "{}", answer.text);
    let tokens = crate::support::golden::tokens_of(&answer.json);
    case.assert_matches(&tokens, "served from the cache");
    let miss = failure(&agent, "blackbox%2Fnot-cached");
    assert_eq!(miss["code"], "MODEL_NOT_CACHED", "{miss}");
    assert_eq!(miss["phase"], "FETCHING");
}
