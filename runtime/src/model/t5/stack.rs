//! T5's two stacks: the encoder (bidirectional self-attention + feed-forward), run once per
//! prompt, and the decoder (causal self-attention + cross-attention + feed-forward), run
//! once per generated token over the caller's slots. Every sublayer is pre-norm (RMS) with
//! a residual connection.

use candle_core::{DType, Device, Result, Tensor};

use super::attention::{CrossAttention, SelfAttention};
use super::config::{FeedForwardKind, T5Config};
use super::feed_forward::FeedForward;
use super::position_bias::{DecoderBias, PositionBias};
use crate::load_error::LoadError;
use crate::model::norm::RmsNorm;
use crate::model::packed::PackedPrompts;
use crate::model::slot::{KvCache, Slot};
use crate::model::weights::Weights;

type LoadResult<T> = std::result::Result<T, LoadError>;

fn rms_norm(weights: &Weights, config: &T5Config, name: &str) -> LoadResult<RmsNorm> {
    let weight = weights.tensor_f32(name, &[config.d_model])?;
    RmsNorm::new(weight, config.layer_norm_epsilon).map_err(LoadError::prepare)
}

fn position_bias(
    weights: &Weights,
    config: &T5Config,
    stack: &str,
    bidirectional: bool,
) -> LoadResult<PositionBias> {
    let table = weights.tensor_f32(
        &format!("{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight"),
        &[config.relative_attention_num_buckets, config.num_heads],
    )?;
    PositionBias::new(
        table,
        bidirectional,
        config.relative_attention_num_buckets,
        config.relative_attention_max_distance,
    )
    .map_err(LoadError::prepare)
}

/// Half precision overflows in T5's residual stream; like transformers, keep it finite.
fn clamp_half(xs: Tensor) -> Result<Tensor> {
    if xs.dtype() == DType::F16 {
        // f16::MAX is 65504.
        let limit = 65504.0 - 1000.0;
        xs.clamp(-limit, limit)
    } else {
        Ok(xs)
    }
}

struct EncoderBlock {
    attention_norm: RmsNorm,
    attention: SelfAttention,
    feed_forward_norm: RmsNorm,
    feed_forward: FeedForward,
}

pub(crate) struct Encoder {
    blocks: Vec<EncoderBlock>,
    bias: PositionBias,
    final_norm: RmsNorm,
}

impl Encoder {
    pub(crate) fn load(
        weights: &Weights,
        config: &T5Config,
        kind: FeedForwardKind,
    ) -> LoadResult<Self> {
        let blocks = (0..config.num_layers)
            .map(|i| {
                let p = format!("encoder.block.{i}.layer");
                Ok(EncoderBlock {
                    attention_norm: rms_norm(weights, config, &format!("{p}.0.layer_norm.weight"))?,
                    attention: SelfAttention::load(
                        weights,
                        config,
                        &format!("{p}.0.SelfAttention."),
                    )?,
                    feed_forward_norm: rms_norm(
                        weights,
                        config,
                        &format!("{p}.1.layer_norm.weight"),
                    )?,
                    feed_forward: FeedForward::load(
                        weights,
                        config,
                        kind,
                        &format!("{p}.1.DenseReluDense."),
                    )?,
                })
            })
            .collect::<LoadResult<Vec<_>>>()?;
        Ok(Self {
            blocks,
            bias: position_bias(weights, config, "encoder", true)?,
            final_norm: rms_norm(weights, config, "encoder.final_layer_norm.weight")?,
        })
    }

    /// Embedded packed prompts `[rows, d_model]` → encoder output `[rows, d_model]`, each
    /// prompt encoded on its own.
    pub(crate) fn forward(&self, embedded: &Tensor, prompts: &PackedPrompts) -> Result<Tensor> {
        let biases = prompts
            .spans
            .iter()
            .map(|span| {
                let positions: Vec<usize> = (0..span.len()).collect();
                self.bias.bias(&positions, span.len(), embedded.device())
            })
            .collect::<Result<Vec<_>>>()?;
        let mut xs = embedded.clone();
        for block in &self.blocks {
            let attended =
                block
                    .attention
                    .encode(&block.attention_norm.forward(&xs)?, prompts, &biases)?;
            xs = clamp_half((xs + attended)?)?;
            let fed = block
                .feed_forward
                .forward(&block.feed_forward_norm.forward(&xs)?)?;
            xs = clamp_half((xs + fed)?)?;
        }
        self.final_norm.forward(&xs)
    }
}

struct DecoderBlock {
    self_attention_norm: RmsNorm,
    self_attention: SelfAttention,
    cross_attention_norm: RmsNorm,
    cross_attention: CrossAttention,
    feed_forward_norm: RmsNorm,
    feed_forward: FeedForward,
}

pub(crate) struct Decoder {
    blocks: Vec<DecoderBlock>,
    bias: DecoderBias,
    final_norm: RmsNorm,
}

impl Decoder {
    pub(crate) fn load(
        weights: &Weights,
        config: &T5Config,
        kind: FeedForwardKind,
        capacity: usize,
        device: &Device,
    ) -> LoadResult<Self> {
        let blocks = (0..config.decoder_layers())
            .map(|i| {
                let p = format!("decoder.block.{i}.layer");
                Ok(DecoderBlock {
                    self_attention_norm: rms_norm(
                        weights,
                        config,
                        &format!("{p}.0.layer_norm.weight"),
                    )?,
                    self_attention: SelfAttention::load(
                        weights,
                        config,
                        &format!("{p}.0.SelfAttention."),
                    )?,
                    cross_attention_norm: rms_norm(
                        weights,
                        config,
                        &format!("{p}.1.layer_norm.weight"),
                    )?,
                    cross_attention: CrossAttention::load(
                        weights,
                        config,
                        &format!("{p}.1.EncDecAttention."),
                    )?,
                    feed_forward_norm: rms_norm(
                        weights,
                        config,
                        &format!("{p}.2.layer_norm.weight"),
                    )?,
                    feed_forward: FeedForward::load(
                        weights,
                        config,
                        kind,
                        &format!("{p}.2.DenseReluDense."),
                    )?,
                })
            })
            .collect::<LoadResult<Vec<_>>>()?;
        let bias = position_bias(weights, config, "decoder", false)?;
        Ok(Self {
            blocks,
            bias: DecoderBias::new(&bias, capacity, device).map_err(LoadError::prepare)?,
            final_norm: rms_norm(weights, config, "decoder.final_layer_norm.weight")?,
        })
    }

    /// Projects the packed encoder output into the slots' cross-attention caches (prompt
    /// `i` into `slots[i]`), once per prompt.
    pub(crate) fn store_encoder_output(
        &self,
        encoded: &Tensor,
        prompts: &PackedPrompts,
        slots: &[&mut Slot],
    ) -> Result<()> {
        for (layer, block) in self.blocks.iter().enumerate() {
            let caches: Vec<&KvCache> = slots.iter().map(|s| s.cross_attention(layer)).collect();
            block.cross_attention.store(encoded, prompts, &caches)?;
        }
        Ok(())
    }

    /// One decoder step: row `i` of `embedded` `[b, d_model]` is the next input of
    /// `slots[i]`, at position `slots[i].len()`. Returns the normed hidden states
    /// `[b, d_model]`; the caller advances the slots.
    pub(crate) fn step(&self, embedded: &Tensor, slots: &[&Slot]) -> Result<Tensor> {
        let lens: Vec<usize> = slots.iter().map(|s| s.len()).collect();
        let encoder_lens: Vec<usize> = slots.iter().map(|s| s.encoder_len()).collect();
        let biases = lens
            .iter()
            .map(|&p| self.bias.at(p))
            .collect::<Result<Vec<_>>>()?;
        let mut xs = embedded.clone();
        for (layer, block) in self.blocks.iter().enumerate() {
            let own: Vec<&KvCache> = slots.iter().map(|s| s.self_attention(layer)).collect();
            let normed = block.self_attention_norm.forward(&xs)?;
            let attended = block.self_attention.decode(&normed, &own, &lens, &biases)?;
            xs = clamp_half((xs + attended)?)?;

            let encoder: Vec<&KvCache> = slots.iter().map(|s| s.cross_attention(layer)).collect();
            let normed = block.cross_attention_norm.forward(&xs)?;
            let attended = block
                .cross_attention
                .decode(&normed, &encoder, &encoder_lens)?;
            xs = clamp_half((xs + attended)?)?;

            let fed = block
                .feed_forward
                .forward(&block.feed_forward_norm.forward(&xs)?)?;
            xs = clamp_half((xs + fed)?)?;
        }
        self.final_norm.forward(&xs)
    }
}
