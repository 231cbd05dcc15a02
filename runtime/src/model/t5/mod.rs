//! T5 and Flan-T5 (`T5ForConditionalGeneration`).

mod config;

pub use config::{FeedForwardKind, T5Config, T5_MAX_NEW_TOKENS, T5_MAX_PROMPT_TOKENS};
