//! The official `openai` Python client against the real binary: the checks are in
//! `openai_client.py`, next to this file. The interpreter is `$OPENAI_CLIENT_PYTHON`
//! (`.ci/run` installs a pinned `openai` in a venv and sets it, with
//! `OPENAI_CLIENT_REQUIRED=1`), else `python3` when it can import `openai`; without one
//! the test prints `SKIPPED` and its reason, or fails under `OPENAI_CLIENT_REQUIRED`.

use std::path::PathBuf;
use std::process::Command;

use crate::support::golden::golden_cases;
use crate::support::python::python_importing;
use crate::support::serving::deploy_ready_with;
use crate::support::{Agent, AgentConfig, API_KEY};

const TEST: &str = "openai_client::the_official_python_client_works_against_the_agent";

#[test]
fn the_official_python_client_works_against_the_agent() {
    let Some(python) = python_importing("openai", "OPENAI_CLIENT", TEST) else {
        return;
    };
    let agent = Agent::start(AgentConfig::with_fixture_models());
    let deployment = deploy_ready_with(
        &agent,
        "gpt2-tiny",
        serde_json::json!({"maxBatchSize": 8, "minReplicas": 1, "maxReplicas": 1}),
    );
    // A reference case whose every greedy step is decided beyond float noise.
    let case = golden_cases("gpt2-tiny")
        .into_iter()
        .find(|c| c.comparable() == c.greedy_ids.len())
        .expect("a golden case with no near-tie");
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/blackbox/openai_client.py");
    let output = Command::new(&python)
        .arg(&script)
        .env("AGENT_BASE_URL", agent.url("/v1"))
        .env("AGENT_API_KEY", API_KEY)
        .env("AGENT_MODEL", "gpt2-tiny")
        .env("AGENT_DEPLOYMENT", &deployment)
        .env("GOLDEN_PROMPT", &case.prompt)
        .env("GOLDEN_TEXT", &case.greedy_text)
        .env("GOLDEN_TOKENS", case.greedy_ids.len().to_string())
        .output()
        .expect("run the client script");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the openai client's checks failed:\n{stdout}\n{stderr}\nagent log:\n{}",
        agent.log()
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
    eprintln!("{stdout}");
}
