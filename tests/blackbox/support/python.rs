//! A Python interpreter for tests that drive a real Python client (the `openai` SDK,
//! `huggingface_hub`). `.ci/run` installs the pinned clients in one venv and names it in
//! `$<VAR>_PYTHON` with `$<VAR>_REQUIRED=1`; elsewhere `python3` is used when it can import
//! the module, and a test without one prints `SKIPPED` and its reason.

use std::path::PathBuf;
use std::process::Command;

/// An interpreter that imports `module`: `$<var>_PYTHON`, else `python3`. `None` after
/// printing `SKIPPED: <test>: <reason>`; a panic instead when `$<var>_REQUIRED` is set.
pub fn python_importing(module: &str, var: &str, test: &str) -> Option<PathBuf> {
    let python = std::env::var_os(format!("{var}_PYTHON"))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"));
    let probe = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output();
    let reason = match probe {
        Ok(output) if output.status.success() => return Some(python),
        Ok(output) => format!(
            "{} cannot import {module} ({}); .ci/run installs it and sets {var}_PYTHON",
            python.display(),
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or_default()
        ),
        Err(error) => format!("cannot run {}: {error}", python.display()),
    };
    assert!(
        std::env::var_os(format!("{var}_REQUIRED")).is_none(),
        "{reason}, but {var}_REQUIRED is set"
    );
    super::skip::report_skip(test, &reason);
    None
}
