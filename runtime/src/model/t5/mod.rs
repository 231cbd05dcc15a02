//! T5 and Flan-T5 (`T5ForConditionalGeneration`): an encoder run once per prompt, a decoder
//! run once per token, RMS norms, relative position biases, gated-gelu (v1.1, Flan-T5) or
//! relu (v1.0) feed-forward, and a tied (rescaled) or untied output head.

mod attention;
mod buckets;
mod config;
mod feed_forward;
mod position_bias;
mod stack;

use candle_core::{DType, Device, Tensor};

pub use config::{FeedForwardKind, T5Config, T5_MAX_NEW_TOKENS, T5_MAX_PROMPT_TOKENS};

use self::stack::{Decoder, Encoder};
use super::inputs::{check_decode, start_prefill};
use super::projection::Projection;
use super::skinny_matmul::aligned;
use super::slot::SlotLayout;
use super::weights::Weights;
use super::{Architecture, ContextLimits, Model, ModelError, Slot};
use crate::load_error::LoadError;

pub struct T5 {
    config: T5Config,
    /// `[vocab, d_model]`, shared by encoder and decoder inputs.
    shared: Tensor,
    encoder: Encoder,
    decoder: Decoder,
    /// `[vocab, d_model]`: `lm_head.weight`, or `shared` when tied.
    lm_head: Projection,
    /// `d_model^-0.5` when the head is tied (T5 v1.0), as transformers rescales; else 1.
    head_scale: Option<f64>,
    decoder_start_token_id: u32,
    layout: SlotLayout,
    device: Device,
}

impl T5 {
    /// Builds the model from `weights` (their device and dtype) as `config` describes it.
    pub(crate) fn load(weights: &Weights, config: &T5Config) -> Result<Self, LoadError> {
        let (device, dtype) = (weights.device().clone(), weights.dtype());
        let (vocab, d) = (config.vocab_size, config.d_model);
        let kind = config
            .feed_forward()
            .ok_or_else(|| LoadError::InvalidConfig {
                // Unreachable for configs the checkpoint reader validated.
                path: "config.json".into(),
                field: "feed_forward_proj",
                expected: "a supported feed-forward kind".to_string(),
                found: config.feed_forward_proj.clone(),
            })?;
        let shared = aligned(weights.first_of(
            &["shared.weight", "encoder.embed_tokens.weight"],
            &[vocab, d],
        )?)
        .map_err(LoadError::prepare)?;
        let (lm_head, head_scale) = if config.tie_word_embeddings {
            (
                Projection::new(&shared, weights.format())?,
                Some((d as f64).powf(-0.5)),
            )
        } else {
            let head = weights.tensor("lm_head.weight", &[vocab, d])?;
            (Projection::new(&head, weights.format())?, None)
        };
        let limits = config.limits();
        Ok(Self {
            encoder: Encoder::load(weights, config, kind)?,
            decoder: Decoder::load(weights, config, kind, limits.max_new_tokens, &device)?,
            shared,
            lm_head,
            head_scale,
            decoder_start_token_id: config.decoder_start_token_id(),
            layout: SlotLayout {
                architecture: Architecture::T5,
                layers: config.decoder_layers(),
                heads: config.num_heads,
                head_dim: config.d_kv,
                capacity: limits.max_new_tokens,
                cross_capacity: limits.max_prompt_tokens,
                dtype,
                device: device.location(),
            },
            config: config.clone(),
            device,
        })
    }

    fn embed(&self, ids: &[u32]) -> candle_core::Result<Tensor> {
        self.shared
            .index_select(&Tensor::new(ids, &self.device)?, 0)
    }

    /// One decoder step over `slots` (already checked), advancing each by one position.
    fn step(&self, slots: &mut [&mut Slot], tokens: &[u32]) -> candle_core::Result<Vec<f32>> {
        let embedded = self.embed(tokens)?;
        let views: Vec<&Slot> = slots.iter().map(|s| &**s).collect();
        let mut hidden = self.decoder.step(&embedded, &views)?;
        for slot in slots.iter_mut() {
            slot.advance(1);
        }
        if let Some(scale) = self.head_scale {
            hidden = (hidden * scale)?;
        }
        let logits = self.lm_head.forward(&hidden)?;
        logits.to_dtype(DType::F32)?.flatten_all()?.to_vec1()
    }
}

impl Model for T5 {
    fn architecture(&self) -> Architecture {
        Architecture::T5
    }

    fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }

    fn eos_token_id(&self) -> u32 {
        self.config.eos_token_id
    }

    fn limits(&self) -> ContextLimits {
        self.config.limits()
    }

    fn new_slot(&self) -> Result<Slot, ModelError> {
        Ok(Slot::new(self.layout.clone(), &self.device)?)
    }

    /// Encodes the prompts, stores their cross-attention K/V, then feeds the decoder its
    /// start token: the logits returned are for the first generated token.
    fn prefill_batch(
        &self,
        slots: &mut [&mut Slot],
        prompts: &[&[u32]],
    ) -> Result<Vec<f32>, ModelError> {
        let (max_prompt, vocab) = (self.layout.cross_capacity, self.config.vocab_size);
        let Some(packed) = start_prefill(slots, prompts, &self.layout, max_prompt, vocab)? else {
            return Ok(Vec::new());
        };
        let encoded = self.encoder.forward(&self.embed(&packed.ids)?, &packed)?;
        self.decoder
            .store_encoder_output(&encoded, &packed, slots)?;
        for (slot, prompt) in slots.iter_mut().zip(prompts) {
            slot.set_encoder_len(prompt.len());
        }
        let starts = vec![self.decoder_start_token_id; slots.len()];
        Ok(self.step(slots, &starts)?)
    }

    fn decode(&self, slots: &mut [&mut Slot], last: &[u32]) -> Result<Vec<f32>, ModelError> {
        check_decode(slots, last, &self.layout, self.config.vocab_size)?;
        if slots.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.step(slots, last)?)
    }
}
