//! T5's attention sublayers. Unlike GPT-2 the scores are not scaled by `1/sqrt(d_kv)` (T5
//! folds that into its initialisation), and the projections have no bias.

use candle_core::{Result, Tensor};

use super::config::T5Config;
use crate::load_error::LoadError;
use crate::model::attention::{attend, merge_heads, DecodeAttention};
use crate::model::linear::Linear;
use crate::model::packed::PackedPrompts;
use crate::model::slot::KvCache;
use crate::model::weights::Weights;

/// Self-attention with q, k and v fused into one `[d_model, 3 * inner]` projection.
pub(crate) struct SelfAttention {
    qkv: Linear,
    o: Linear,
    heads: usize,
}

/// The decoder's attention over the encoder output: queries from the decoder, keys and
/// values projected once per sequence (at prefill) into the slot.
pub(crate) struct CrossAttention {
    q: Linear,
    kv: Linear,
    o: Linear,
    heads: usize,
}

fn projection(
    weights: &Weights,
    prefix: &str,
    names: &[&str],
    shape: [usize; 2],
) -> std::result::Result<Linear, LoadError> {
    let tensors = names
        .iter()
        .map(|name| weights.tensor(&format!("{prefix}{name}.weight"), &shape))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Linear::from_out_in(&tensors, weights.format())
}

impl SelfAttention {
    /// `prefix` is the sublayer's `...SelfAttention.` path.
    pub(crate) fn load(
        weights: &Weights,
        config: &T5Config,
        prefix: &str,
    ) -> std::result::Result<Self, LoadError> {
        let (d, inner) = (config.d_model, config.inner_dim());
        Ok(Self {
            qkv: projection(weights, prefix, &["q", "k", "v"], [inner, d])?,
            o: projection(weights, prefix, &["o"], [d, inner])?,
            heads: config.num_heads,
        })
    }

    /// Queries, keys and values of `xs` `[rows, d_model]`, each `[rows, inner]`.
    fn project(&self, xs: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let qkv = self.qkv.forward(xs)?;
        let inner = qkv.dim(1)? / 3;
        Ok((
            qkv.narrow(1, 0, inner)?,
            qkv.narrow(1, inner, inner)?,
            qkv.narrow(1, 2 * inner, inner)?,
        ))
    }

    /// The encoder's attention over packed prompts `[rows, d_model]`: every token sees every
    /// token of its own prompt, prompt `i` with `biases[i]` `[heads, n_i, n_i]`. Nothing is
    /// cached: the encoder runs once per prompt.
    pub(crate) fn encode(
        &self,
        xs: &Tensor,
        prompts: &PackedPrompts,
        biases: &[Tensor],
    ) -> Result<Tensor> {
        let (q, k, v) = self.project(xs)?;
        let attended = biases
            .iter()
            .enumerate()
            .map(|(i, bias)| {
                let heads = |t: &Tensor| prompts.prompt_heads(t, i, self.heads);
                merge_heads(&attend(
                    &heads(&q)?,
                    &heads(&k)?,
                    &heads(&v)?,
                    None,
                    Some(bias),
                )?)
            })
            .collect::<Result<Vec<_>>>()?;
        self.o.forward(&Tensor::cat(&attended, 0)?)
    }

    /// The decoder's attention for one new token per sequence: row `i` of `xs` is at
    /// position `lens[i]` of `caches[i]`, with `biases[i]` `[heads, 1, lens[i] + 1]`.
    pub(crate) fn decode(
        &self,
        xs: &Tensor,
        caches: &[&KvCache],
        lens: &[usize],
        biases: &[Tensor],
    ) -> Result<Tensor> {
        let (q, k, v) = self.project(xs)?;
        let attention = DecodeAttention {
            heads: self.heads,
            scale: None,
            caches,
            lens,
            biases: Some(biases),
        };
        self.o.forward(&attention.forward(&q, Some((&k, &v)))?)
    }
}

impl CrossAttention {
    /// `prefix` is the sublayer's `...EncDecAttention.` path.
    pub(crate) fn load(
        weights: &Weights,
        config: &T5Config,
        prefix: &str,
    ) -> std::result::Result<Self, LoadError> {
        let (d, inner) = (config.d_model, config.inner_dim());
        Ok(Self {
            q: projection(weights, prefix, &["q"], [inner, d])?,
            kv: projection(weights, prefix, &["k", "v"], [inner, d])?,
            o: projection(weights, prefix, &["o"], [d, inner])?,
            heads: config.num_heads,
        })
    }

    /// Projects the packed encoder output `[rows, d_model]` into the caches, prompt `i`
    /// into `caches[i]` (positions `0..n_i`).
    pub(crate) fn store(
        &self,
        encoded: &Tensor,
        prompts: &PackedPrompts,
        caches: &[&KvCache],
    ) -> Result<()> {
        let kv = self.kv.forward(encoded)?;
        let inner = kv.dim(1)? / 2;
        let (keys, values) = (kv.narrow(1, 0, inner)?, kv.narrow(1, inner, inner)?);
        for (i, cache) in caches.iter().enumerate() {
            let heads = |t: &Tensor| prompts.prompt_heads(t, i, self.heads);
            cache.write(&heads(&keys)?, &heads(&values)?, 0)?;
        }
        Ok(())
    }

    /// Row `i` of `xs` attends over the first `encoder_lens[i]` entries of `caches[i]`.
    pub(crate) fn decode(
        &self,
        xs: &Tensor,
        caches: &[&KvCache],
        encoder_lens: &[usize],
    ) -> Result<Tensor> {
        let attention = DecodeAttention {
            heads: self.heads,
            scale: None,
            caches,
            lens: encoder_lens,
            biases: None,
        };
        self.o
            .forward(&attention.forward(&self.q.forward(xs)?, None)?)
    }
}
