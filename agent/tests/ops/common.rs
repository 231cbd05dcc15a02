//! Fixtures shared by the ops tests.

use std::path::PathBuf;

/// `tests/fixtures/` at the workspace root.
pub fn fixture(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(relative)
}
