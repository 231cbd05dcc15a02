//! Files the store cannot read are moved aside, never deleted, and reported, so an
//! operator can inspect them and nothing acknowledged disappears without a trace.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::durable_file;
use super::error::StateError;
use super::file_name::QUARANTINE_DIR;

/// A file moved to `<state_dir>/quarantine/<kind>/`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QuarantinedFile {
    pub kind: String,
    /// The id its name stands for, when the name is one the store writes.
    pub id: Option<String>,
    pub original: PathBuf,
    pub moved_to: PathBuf,
    /// Why it could not be used, e.g. the JSON parse error.
    pub reason: String,
}

/// Moves `path` (a file of `kind`) into the quarantine, under a name not yet taken there.
pub fn quarantine(
    root: &Path,
    kind: &str,
    path: &Path,
    id: Option<String>,
    reason: String,
) -> Result<QuarantinedFile, StateError> {
    let dir = root.join(QUARANTINE_DIR).join(kind);
    durable_file::ensure_dir(&dir)?;
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "unnamed".to_owned());
    let mut moved_to = dir.join(&name);
    let mut attempt = 1;
    while moved_to.exists() {
        moved_to = dir.join(format!("{name}.{attempt}"));
        attempt += 1;
    }
    durable_file::move_file(path, &moved_to)?;
    tracing::error!(
        kind,
        file = %path.display(),
        moved_to = %moved_to.display(),
        reason = %reason,
        "state file quarantined: it could not be read and was moved aside for inspection"
    );
    Ok(QuarantinedFile {
        kind: kind.to_owned(),
        id,
        original: path.to_owned(),
        moved_to,
        reason,
    })
}
