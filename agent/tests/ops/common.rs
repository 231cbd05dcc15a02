//! Fixtures shared by the ops tests.

use std::path::PathBuf;

/// `tests/fixtures/` at the workspace root.
pub fn fixture(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(relative)
}

/// Starts this test binary again, running only the `#[ignore]`d helper test `test_name`
/// with `envs` set. Env vars are process-global, so tests that need their own (like
/// `NOTIFY_SOCKET`) or that must be killed (`kill -9`) run in such a child.
pub fn child_test(test_name: &str, envs: &[(&str, &str)]) -> std::process::Command {
    let exe = std::env::current_exe().expect("test binary path");
    let mut command = std::process::Command::new(exe);
    command.args([
        test_name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    for (key, value) in envs {
        command.env(key, value);
    }
    command
}

pub mod http_stub;
