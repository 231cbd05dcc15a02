//! The fleet artifacts under `deploy/` (Kubernetes, Prometheus, Grafana, the Debian package,
//! the container image), each checked by the tool that consumes it and held against the
//! code: the real binary, `configs/`, and each other.
//!
//! A tool missing on this machine skips its check with a printed reason; with
//! `FLEET_TOOLS_REQUIRED=1` (set by `.ci/run`, which installs them) a missing tool fails.

mod cloud_init;
mod image;
mod kubernetes;
mod monitoring;
mod package;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("repository root")
}

pub fn read(relative: &str) -> String {
    std::fs::read_to_string(repo().join(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

/// Whether `tool` can run here (`tool --version`, or the given probe arguments). When it
/// cannot, prints why the check is skipped, or fails under `FLEET_TOOLS_REQUIRED=1`.
pub fn have_tool(tool: &str, probe: &[&str], check: &str) -> bool {
    let works = Command::new(tool)
        .args(probe)
        .output()
        .is_ok_and(|output| output.status.success());
    if !works {
        let reason = format!("`{tool}` is not installed here (.ci/run installs it)");
        assert!(
            std::env::var_os("FLEET_TOOLS_REQUIRED").is_none(),
            "{check}: {reason}, but FLEET_TOOLS_REQUIRED is set"
        );
        crate::support::skip::report_skip(check, &reason);
    }
    works
}

/// Runs `command`, panicking with its output when it fails.
pub fn run_ok(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Every `gpu_agent_*` metric name in `text` (a PromQL expression, a dashboard).
pub fn metric_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("gpu_agent_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}
