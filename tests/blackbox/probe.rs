//! `gpu-agent status`, the probe: one line or JSON, exit 0 ready, 1 up but not ready,
//! 2 unreachable.

use std::process::Command;

use crate::support::kore::kore_deploy;
use crate::support::{Agent, AgentConfig, HangingHub, API_KEY};

/// Runs `gpu-agent status` with `args`; (exit code, stdout).
fn status(args: &[&str]) -> (i32, String) {
    let output = Command::new(crate::support::agent_binary())
        .arg("status")
        .args(args)
        .env_remove("GPU_AGENT_PROBE_API_KEY")
        .output()
        .expect("run gpu-agent status");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn status_exits_0_when_ready_with_a_gpu_summary_given_a_key() {
    let agent = Agent::start(AgentConfig::default());
    let url = agent.url("");
    let (code, line) = status(&["--url", &url, "--api-key", API_KEY]);
    assert_eq!(code, 0, "{line}");
    assert!(line.starts_with(&format!("ready at {url}")), "{line}");
    assert!(line.contains("GPUs:"), "{line}");
    assert_eq!(line.lines().count(), 1, "{line}");
}

#[test]
fn status_exits_1_while_a_deploy_is_in_progress_and_says_why() {
    let hub = HangingHub::start();
    let agent = Agent::start_with_env(AgentConfig::default(), &hub.env());
    kore_deploy(&agent, "org%2Fslow-model", "cpu");
    agent.wait_phase("org%2Fslow-model", &["FETCHING"]);
    let (code, line) = status(&["--url", &agent.url("")]);
    assert_eq!(code, 1, "{line}");
    assert!(line.starts_with("not ready"), "{line}");
    assert!(line.contains("org/slow-model"), "{line}");
    let (code, json) = status(&["--url", &agent.url(""), "--json"]);
    assert_eq!(code, 1);
    let json: serde_json::Value = serde_json::from_str(&json).expect("--json prints JSON");
    assert_eq!(json["readiness"], "not_ready");
    assert_eq!(json["httpStatus"], 503);
    assert_eq!(json["exitCode"], 1);
}

#[test]
fn status_exits_2_when_nothing_listens() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let (code, line) = status(&["--url", &format!("http://127.0.0.1:{port}")]);
    assert_eq!(code, 2, "{line}");
    assert!(line.starts_with("unreachable"), "{line}");
}
