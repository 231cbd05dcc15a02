//! Why a model could not be put in the store, with the codes of docs/api.md § Error codes.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// 401/403: a gated or private repo, or a bad token.
    #[error("the Hugging Face Hub refused access to {repo} (HTTP {status}): set HF_TOKEN or [store] token_file to a token that can read it, and accept the model's terms on the Hub if it is gated")]
    AccessDenied { repo: String, status: u16 },
    #[error("{repo}@{revision} was not found on the Hugging Face Hub ({what}): check the repo id and the revision")]
    NotFound {
        repo: String,
        revision: String,
        what: String,
    },
    #[error("{file} of {repo} did not match its sha256 from the Hub twice (expected {expected}, got {actual}); the partial file was deleted")]
    ChecksumMismatch {
        repo: String,
        file: String,
        expected: String,
        actual: String,
    },
    #[error("{repo} needs {needed} bytes; {detail}")]
    InsufficientDisk {
        repo: String,
        needed: u64,
        detail: String,
    },
    #[error("fetching {file} of {repo} from the Hugging Face Hub failed: {reason}")]
    FetchFailed {
        repo: String,
        file: String,
        reason: String,
    },
}

impl StoreError {
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::AccessDenied { .. } => "MODEL_ACCESS_DENIED",
            StoreError::NotFound { .. } => "MODEL_NOT_FOUND",
            StoreError::ChecksumMismatch { .. } => "CHECKSUM_MISMATCH",
            StoreError::InsufficientDisk { .. } => "INSUFFICIENT_DISK",
            StoreError::FetchFailed { .. } => "MODEL_FETCH_FAILED",
        }
    }

    /// The message for callers: the `Display` text holds no paths except for a fetch
    /// failure, whose reason may name local files (the log keeps it).
    pub(crate) fn caller_message(&self) -> String {
        match self {
            StoreError::FetchFailed { repo, file, .. } => format!(
                "fetching {file} of {repo} from the Hugging Face Hub failed; the agent's log has the details"
            ),
            other => other.to_string(),
        }
    }
}
