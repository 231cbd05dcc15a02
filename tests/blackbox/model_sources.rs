//! Model source resolution through the binary: `model_roots` confinement and the Hugging
//! Face cache in offline mode.

use std::path::Path;

use crate::kore_lifecycle::{kore_deploy, wait_job};
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

/// A Hugging Face cache as Python lays it out: blobs, snapshot symlinks, `refs/main`.
fn fake_hf_cache(hf_home: &Path, repo: &str, fixture: &str) {
    let commit = "4f1c0b7e9d2a3c5b6e8f0a1b2c3d4e5f60718293";
    let repo_dir = hf_home
        .join("hub")
        .join(format!("models--{}", repo.replace('/', "--")));
    let snapshot = repo_dir.join("snapshots").join(commit);
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::create_dir_all(repo_dir.join("blobs")).unwrap();
    std::fs::create_dir_all(repo_dir.join("refs")).unwrap();
    std::fs::write(repo_dir.join("refs/main"), commit).unwrap();
    for entry in std::fs::read_dir(fixtures().join(fixture)).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let blob = repo_dir.join("blobs").join(format!("blob-{name}"));
        std::fs::copy(&path, &blob).unwrap();
        std::os::unix::fs::symlink(
            Path::new("../../blobs").join(format!("blob-{name}")),
            snapshot.join(&name),
        )
        .unwrap();
    }
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
    if job.json["status"] == "FAILED" {
        let phase = job.json["error"]["phase"].as_str().unwrap();
        assert!(
            !["CHECKING_DEVICE", "FETCHING"].contains(&phase),
            "{}",
            job.text
        );
    }
    let miss = failure(&agent, "blackbox%2Fnot-cached");
    assert_eq!(miss["code"], "MODEL_NOT_CACHED", "{miss}");
    assert_eq!(miss["phase"], "FETCHING");
}
