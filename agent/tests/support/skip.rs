//! Telling the reader of a test run that a test checked nothing on this host.
//!
//! The test harness captures `println!`/`eprintln!` and shows it only for failing tests, so
//! a skip reported that way is invisible in a passing run (CI's included). Writing to the
//! process's stderr handle directly bypasses the capture: the line appears in the output of
//! a plain `cargo test`, next to the test's `ok`.

use std::io::Write;

/// Prints `SKIPPED: <test>: <reason>` where every run shows it.
pub fn report_skip(test: &str, reason: &str) {
    let line = format!("SKIPPED: {test}: {reason}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}
