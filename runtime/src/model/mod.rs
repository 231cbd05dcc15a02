//! Transformer models over caller-owned caches.
//!
//! A [`Model`] holds only weights; every piece of per-sequence state (self-attention K/V, the
//! encoder's cross-attention K/V, the current position) lives in a [`Slot`] the caller owns.
//! That is what lets a batcher run sequences of different lengths through one `decode` call
//! and let sequences join and leave between steps.

mod activation;
mod config_check;
mod error;
pub mod gpt2;
pub mod t5;

pub use error::ModelError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// Decoder-only `GPT2LMHeadModel`.
    Gpt2,
    /// Encoder-decoder `T5ForConditionalGeneration` (T5 v1.0, v1.1, Flan-T5).
    T5,
}

/// How many tokens a model accepts; validation (`PROMPT_TOO_LONG`) and slot sizing use these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextLimits {
    /// Longest prompt `prefill` accepts.
    pub max_prompt_tokens: usize,
    /// Bound on prompt + new tokens together: GPT-2's `n_positions`; `None` for T5, whose
    /// prompt and output live in separate stacks.
    pub max_total_tokens: Option<usize>,
    /// Most tokens one sequence may generate.
    pub max_new_tokens: usize,
}
