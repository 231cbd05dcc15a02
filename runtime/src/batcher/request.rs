//! What a caller hands the batcher and what it gets back.

use std::time::Instant;

use kernels::{SamplingParams, TokenLogprob};
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
    /// `None`: no log-probabilities. `Some(k)`: every generated token's logprob and the
    /// `k` most likely alternatives (`k ≤ MAX_TOP_LOGPROBS`), from the raw log-softmax
    /// before temperature, top-k and top-p (`docs/sampling.md` § Log-probabilities).
    pub logprobs: Option<usize>,
    /// Score the prompt too (OpenAI's `echo` with `logprobs`): each prompt token's logprob
    /// given the tokens before it, with `logprobs`' alternatives. With it,
    /// `max_new_tokens` may be 0 (score only).
    pub prompt_logprobs: bool,
}

/// The finished result of a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub text: String,
    /// Generated token ids (the EOS token, when it ended generation, is not included).
    pub tokens: Vec<u32>,
    pub finish_reason: FinishReason,
    pub prompt_tokens: usize,
    /// The seed used (the one given, or the one drawn); `None` where sending it back would
    /// not replay the request (CTranslate2 keeps one generator per worker thread), so none
    /// is offered (docs/api.md).
    pub seed: Option<u64>,
    /// One entry per entry of `tokens`, when the request asked for `logprobs`.
    pub token_logprobs: Option<Vec<TokenLogprob>>,
    /// The scored prompt, when the request asked for `prompt_logprobs`.
    pub prompt_logprobs: Option<PromptLogprobs>,
}

/// A prompt scored token by token (echo scoring).
#[derive(Debug, Clone, PartialEq)]
pub struct PromptLogprobs {
    /// The prompt's token ids, as the model saw them.
    pub tokens: Vec<u32>,
    /// One entry per prompt token: its logprob given the tokens before it. The first is
    /// `None` (nothing predicts it; OpenAI sends `null` there).
    pub logprobs: Vec<Option<TokenLogprob>>,
}

impl PromptLogprobs {
    /// The sum of the prompt's logprobs: its log-likelihood given its first token (the
    /// number evaluation harnesses compare).
    pub fn total(&self) -> f64 {
        self.logprobs
            .iter()
            .flatten()
            .map(|l| f64::from(l.logprob))
            .sum()
    }
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

impl GenerateError {
    /// The code a client sees: whether to retry later with a longer budget, or report a
    /// failure of the deployment.
    pub fn code(&self) -> FailureCode {
        match self {
            GenerateError::DeadlineExceeded => FailureCode::DeadlineExceeded,
            GenerateError::ReplicaStopped(_) | GenerateError::Model(_) => {
                FailureCode::GenerationFailed
            }
        }
    }
}

/// The stable code of a [`GenerateError`], as the HTTP error bodies spell it
/// (`docs/api.md`, error codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCode {
    /// The request passed its deadline (`[batcher] request_timeout_s`).
    DeadlineExceeded,
    /// The model or its replica failed while generating.
    GenerationFailed,
}

impl FailureCode {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureCode::DeadlineExceeded => "DEADLINE_EXCEEDED",
            FailureCode::GenerationFailed => "GENERATION_FAILED",
        }
    }
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
        /// Present when the request asked for `logprobs`.
        logprob: Option<TokenLogprob>,
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
