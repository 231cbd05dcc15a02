//! GPT-2's `config.json`, as `transformers`' `GPT2Config` writes it.

use std::path::Path;

use serde::Deserialize;

use crate::load_error::LoadError;
use crate::model::activation::Activation;
use crate::model::config_check::{positive, ConfigCheck};
use crate::model::ContextLimits;

#[derive(Debug, Clone, Deserialize)]
pub struct Gpt2Config {
    pub vocab_size: usize,
    pub n_positions: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    /// MLP width; `null` means `4 * n_embd`.
    #[serde(default)]
    pub n_inner: Option<usize>,
    #[serde(default = "default_activation")]
    pub activation_function: String,
    #[serde(default = "default_layer_norm_epsilon")]
    pub layer_norm_epsilon: f64,
    #[serde(default = "default_eos")]
    pub eos_token_id: u32,
    #[serde(default = "default_true")]
    pub scale_attn_weights: bool,
    #[serde(default)]
    pub scale_attn_by_inverse_layer_idx: bool,
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
}

fn default_activation() -> String {
    "gelu_new".to_string()
}

fn default_layer_norm_epsilon() -> f64 {
    1e-5
}

fn default_eos() -> u32 {
    50256
}

fn default_true() -> bool {
    true
}

impl Gpt2Config {
    pub fn head_dim(&self) -> usize {
        self.n_embd / self.n_head
    }

    pub fn inner_dim(&self) -> usize {
        self.n_inner.unwrap_or(4 * self.n_embd)
    }

    pub fn activation(&self) -> Option<Activation> {
        Activation::from_hf_name(&self.activation_function)
    }

    /// Learned positions bound everything: prompt and generated tokens share `n_positions`.
    pub fn limits(&self) -> ContextLimits {
        ContextLimits {
            max_prompt_tokens: self.n_positions,
            max_total_tokens: Some(self.n_positions),
            max_new_tokens: self.n_positions,
        }
    }

    pub(crate) fn validate(&self, path: &Path) -> Result<(), LoadError> {
        let check = ConfigCheck::new(path);
        positive(&check, "vocab_size", self.vocab_size)?;
        positive(&check, "n_positions", self.n_positions)?;
        positive(&check, "n_embd", self.n_embd)?;
        positive(&check, "n_layer", self.n_layer)?;
        positive(&check, "n_head", self.n_head)?;
        positive(&check, "n_inner", self.inner_dim())?;
        if !self.n_embd.is_multiple_of(self.n_head) {
            return Err(check.invalid(
                "n_embd",
                format!("must be a multiple of n_head ({})", self.n_head),
                self.n_embd,
            ));
        }
        if self.eos_token_id as usize >= self.vocab_size {
            return Err(check.invalid(
                "eos_token_id",
                format!("must be below vocab_size ({})", self.vocab_size),
                self.eos_token_id,
            ));
        }
        if self.activation().is_none() {
            return Err(check.invalid(
                "activation_function",
                format!("must be one of {}", Activation::SUPPORTED),
                format!("{:?}", self.activation_function),
            ));
        }
        Ok(())
    }
}
