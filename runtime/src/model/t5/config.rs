//! T5's `config.json`, as `transformers`' `T5Config` writes it (T5 v1.0, v1.1 and Flan-T5).

use std::path::Path;

use serde::Deserialize;

use crate::load_error::LoadError;
use crate::model::activation::Activation;
use crate::model::config_check::{positive, ConfigCheck};
use crate::model::ContextLimits;

/// T5 has no learned positions, so nothing in the checkpoint bounds the lengths; these
/// bounds are ours (the lengths T5 was trained on) and size each slot's caches.
pub const T5_MAX_PROMPT_TOKENS: usize = 512;
pub const T5_MAX_NEW_TOKENS: usize = 512;

#[derive(Debug, Clone, Deserialize)]
pub struct T5Config {
    pub vocab_size: usize,
    pub d_model: usize,
    pub d_kv: usize,
    pub d_ff: usize,
    pub num_layers: usize,
    /// Decoder depth; `null`/absent means the same as the encoder.
    #[serde(default)]
    pub num_decoder_layers: Option<usize>,
    pub num_heads: usize,
    #[serde(default = "default_buckets")]
    pub relative_attention_num_buckets: usize,
    #[serde(default = "default_max_distance")]
    pub relative_attention_max_distance: usize,
    #[serde(default = "default_layer_norm_epsilon")]
    pub layer_norm_epsilon: f64,
    /// `relu` (T5 v1.0), `gated-gelu` (v1.1, Flan-T5), or `[gated-]<activation>`.
    #[serde(default = "default_feed_forward_proj")]
    pub feed_forward_proj: String,
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
    #[serde(default)]
    pub decoder_start_token_id: Option<u32>,
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    #[serde(default = "default_eos")]
    pub eos_token_id: u32,
}

fn default_buckets() -> usize {
    32
}

fn default_max_distance() -> usize {
    128
}

fn default_layer_norm_epsilon() -> f64 {
    1e-6
}

fn default_feed_forward_proj() -> String {
    "relu".to_string()
}

fn default_true() -> bool {
    true
}

fn default_eos() -> u32 {
    1
}

/// The feed-forward block `feed_forward_proj` describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedForwardKind {
    /// `act(wi_0 x) * wi_1 x` when gated, `act(wi x)` otherwise.
    pub gated: bool,
    pub activation: Activation,
}

impl T5Config {
    pub fn decoder_layers(&self) -> usize {
        self.num_decoder_layers.unwrap_or(self.num_layers)
    }

    /// Width of the attention projections (`num_heads * d_kv`, not always `d_model`).
    pub fn inner_dim(&self) -> usize {
        self.num_heads * self.d_kv
    }

    /// The first decoder input; Hugging Face falls back to the pad token (0).
    pub fn decoder_start_token_id(&self) -> u32 {
        self.decoder_start_token_id
            .or(self.pad_token_id)
            .unwrap_or(0)
    }

    /// Parsed as `transformers` does: `gated-<act>` or `<act>`, with `gated-gelu` meaning
    /// the tanh approximation (`gelu_new`).
    pub fn feed_forward(&self) -> Option<FeedForwardKind> {
        let (gated, name) = match self.feed_forward_proj.split_once('-') {
            Some(("gated", name)) => (true, name),
            Some(_) => return None,
            None => (false, self.feed_forward_proj.as_str()),
        };
        let activation = if gated && name == "gelu" {
            Activation::GeluTanh
        } else {
            Activation::from_hf_name(name)?
        };
        Some(FeedForwardKind { gated, activation })
    }

    pub fn limits(&self) -> ContextLimits {
        ContextLimits {
            max_prompt_tokens: T5_MAX_PROMPT_TOKENS,
            max_total_tokens: None,
            max_new_tokens: T5_MAX_NEW_TOKENS,
        }
    }

    pub(crate) fn validate(&self, path: &Path) -> Result<(), LoadError> {
        let check = ConfigCheck::new(path);
        positive(&check, "vocab_size", self.vocab_size)?;
        positive(&check, "d_model", self.d_model)?;
        positive(&check, "d_kv", self.d_kv)?;
        positive(&check, "d_ff", self.d_ff)?;
        positive(&check, "num_layers", self.num_layers)?;
        positive(&check, "num_decoder_layers", self.decoder_layers())?;
        positive(&check, "num_heads", self.num_heads)?;
        if self.relative_attention_num_buckets < 4 {
            return Err(check.invalid(
                "relative_attention_num_buckets",
                "must be at least 4".to_string(),
                self.relative_attention_num_buckets,
            ));
        }
        if self.relative_attention_max_distance <= self.relative_attention_num_buckets / 2 {
            return Err(check.invalid(
                "relative_attention_max_distance",
                format!(
                    "must exceed half of relative_attention_num_buckets ({})",
                    self.relative_attention_num_buckets / 2
                ),
                self.relative_attention_max_distance,
            ));
        }
        for (field, id) in [
            ("eos_token_id", self.eos_token_id),
            ("decoder_start_token_id", self.decoder_start_token_id()),
        ] {
            if id as usize >= self.vocab_size {
                return Err(check.invalid(
                    field,
                    format!("must be below vocab_size ({})", self.vocab_size),
                    id,
                ));
            }
        }
        if self.feed_forward().is_none() {
            return Err(check.invalid(
                "feed_forward_proj",
                format!(
                    "must be \"<activation>\" or \"gated-<activation>\" with an activation among {}",
                    Activation::SUPPORTED
                ),
                format!("{:?}", self.feed_forward_proj),
            ));
        }
        Ok(())
    }
}
