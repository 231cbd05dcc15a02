//! Failures of the durable store. Each names the file or directory involved.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state: cannot {action} {path}: {source}")]
    Io {
        /// What the store was doing: "create", "write", "sync", "rename", "read", ...
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "state directory {path} is in use by another process (an agent already runs with \
         this state_dir); stop it or give this agent its own state_dir"
    )]
    Locked { path: PathBuf },
    #[error("state: cannot serialize {kind}/{id} as JSON: {source}")]
    Serialize {
        kind: String,
        id: String,
        source: serde_json::Error,
    },
    #[error("state: {path} does not hold the expected document: {source}")]
    Decode {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "state: kind {kind:?} is not allowed: use 1-64 characters from a-z, 0-9, '_' and '-', \
         other than \"quarantine\""
    )]
    InvalidKind { kind: String },
    #[error("state: id {id:?} cannot be stored: {reason}")]
    InvalidId { id: String, reason: &'static str },
}

impl StateError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        StateError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
