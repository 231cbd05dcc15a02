//! What a caller hands the batcher and what it gets back.

use std::time::Instant;

use kernels::SamplingParams;
use tokio::sync::mpsc;

use crate::text::FinishReason;

/// One generation request, already tokenized and validated by the engine.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    pub prompt_ids: Vec<u32>,
    pub sampling: SamplingParams,
    /// New tokens to generate at most (`maxTokens`, `docs/api.md` § Validation table).
    pub max_new_tokens: usize,
    /// Stop strings, matched on decoded text and excluded from the output.
    pub stop: Vec<String>,
    /// Seed of this request's own random stream; echoed in the result.
    pub seed: u64,
    /// After this instant the request fails with [`GenerateError::DeadlineExceeded`].
    pub deadline: Option<Instant>,
}

/// The finished result of a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub text: String,
    /// Generated token ids (the EOS token, when it ended generation, is not included).
    pub tokens: Vec<u32>,
    pub finish_reason: FinishReason,
    pub prompt_tokens: usize,
    pub seed: u64,
}

/// Why a request failed after it was accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GenerateError {
    #[error("the request did not finish within its deadline")]
    DeadlineExceeded,
    #[error("the replica stopped before the request finished: {0}")]
    ReplicaStopped(String),
    #[error("model failure: {0}")]
    Model(String),
}

/// What the batcher sends a request's receiver, in order: zero or more `Token`s, then
/// exactly one `Finished` or `Failed`.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A generated token and the text it released. The text can be empty while a
    /// multi-byte character or a possible stop sequence is still undecided.
    Token {
        id: u32,
        text: String,
    },
    Finished(Completion),
    Failed(GenerateError),
}

/// The receiving half a caller keeps; dropping it cancels the request at the next step.
pub type EventReceiver = mpsc::UnboundedReceiver<Event>;
pub(crate) type EventSender = mpsc::UnboundedSender<Event>;

/// A queued request with its reply channel.
pub(crate) struct Job {
    pub request: GenerateRequest,
    pub events: EventSender,
}

impl Job {
    /// The client dropped its receiver (disconnected): nobody is listening.
    pub fn is_cancelled(&self) -> bool {
        self.events.is_closed()
    }

    pub fn is_expired(&self, now: Instant) -> bool {
        self.request
            .deadline
            .is_some_and(|deadline| now >= deadline)
    }
}
