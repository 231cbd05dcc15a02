//! GPT-2 (`GPT2LMHeadModel`).

mod config;

pub use config::Gpt2Config;
