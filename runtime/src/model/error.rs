//! Why a prefill or decode step was refused or failed. Input errors name the limit and the
//! value given, so the batcher can pass them on to the client unchanged.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ModelError {
    #[error("the prompt is empty; at least one token is needed")]
    EmptyPrompt,

    #[error("the prompt has {given} tokens; this model accepts at most {max}")]
    PromptTooLong { given: usize, max: usize },

    #[error("the slot is full: all {capacity} positions are used, no further token fits")]
    SlotFull { capacity: usize },

    #[error("the slot holds no sequence; prefill it before decoding")]
    SlotEmpty,

    #[error("token id {token} is outside the vocabulary (0..{vocab_size})")]
    TokenOutOfRange { token: u32, vocab_size: usize },

    #[error("decode got {slots} slots but {tokens} last tokens; there must be one per slot")]
    BatchMismatch { slots: usize, tokens: usize },

    #[error("prefill got {slots} slots but {prompts} prompts; there must be one per slot")]
    PrefillMismatch { slots: usize, prompts: usize },

    #[error("the slot was made by a different model ({found}); use a slot from this model's new_slot ({expected})")]
    ForeignSlot { expected: String, found: String },

    #[error("this model cannot score its prompt: an encoder-decoder's prompt is the encoder input, which the decoder does not predict")]
    PromptScoringUnsupported,

    #[error("tensor computation failed: {0}")]
    Tensor(#[from] candle_core::Error),
}
