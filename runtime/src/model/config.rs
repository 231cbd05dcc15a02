//! A checkpoint's parsed `config.json`, one variant per supported architecture.

use super::gpt2::Gpt2Config;
use super::t5::T5Config;
use super::{Architecture, ContextLimits};

/// The checkpoint's architecture and its parsed `config.json`.
#[derive(Debug, Clone)]
pub enum ModelConfig {
    Gpt2(Gpt2Config),
    T5(T5Config),
}

impl ModelConfig {
    pub fn architecture(&self) -> Architecture {
        match self {
            Self::Gpt2(_) => Architecture::Gpt2,
            Self::T5(_) => Architecture::T5,
        }
    }

    pub fn limits(&self) -> ContextLimits {
        match self {
            Self::Gpt2(c) => c.limits(),
            Self::T5(c) => c.limits(),
        }
    }

    pub fn eos_token_id(&self) -> u32 {
        match self {
            Self::Gpt2(c) => c.eos_token_id,
            Self::T5(c) => c.eos_token_id,
        }
    }

    /// Elements of the token embedding table (`vocab × width`).
    pub fn embedding_elements(&self) -> u64 {
        let elements = match self {
            Self::Gpt2(c) => c.vocab_size * c.n_embd,
            Self::T5(c) => c.vocab_size * c.d_model,
        };
        elements as u64
    }

    /// Elements of one slot's caches at full context: GPT-2's self-attention K/V for
    /// `n_positions` tokens; T5's decoder self-attention K/V for the most new tokens plus the
    /// cross-attention K/V for the longest prompt.
    pub fn kv_elements_per_slot(&self) -> u64 {
        let elements = match self {
            Self::Gpt2(c) => 2 * c.n_layer * c.n_positions * c.n_embd,
            Self::T5(c) => {
                let limits = c.limits();
                2 * c.decoder_layers()
                    * (limits.max_new_tokens + limits.max_prompt_tokens)
                    * c.inner_dim()
            }
        };
        elements as u64
    }
}
