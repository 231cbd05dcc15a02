//! One GPT-2 transformer block: pre-norm causal self-attention and MLP, each added back to
//! the residual stream.

use candle_core::{Result, Tensor};

use super::config::Gpt2Config;
use crate::load_error::LoadError;
use crate::model::activation::Activation;
use crate::model::attention::{attend, merge_heads, DecodeAttention};
use crate::model::linear::Linear;
use crate::model::norm::LayerNorm;
use crate::model::packed::PackedPrompts;
use crate::model::slot::KvCache;
use crate::model::weights::Weights;

pub(crate) struct Block {
    ln_1: LayerNorm,
    /// Fused q, k, v projection (Conv1D, `[n_embd, 3 * n_embd]`).
    c_attn: Linear,
    attn_proj: Linear,
    ln_2: LayerNorm,
    c_fc: Linear,
    mlp_proj: Linear,
    activation: Activation,
    heads: usize,
    /// `1/sqrt(head_dim)` (and `1/(layer + 1)` when the config asks for it).
    scale: Option<f64>,
}

impl Block {
    pub(crate) fn load(
        weights: &Weights,
        config: &Gpt2Config,
        activation: Activation,
        layer: usize,
    ) -> std::result::Result<Self, LoadError> {
        let d = config.n_embd;
        let inner = config.inner_dim();
        let p = |name: &str| format!("h.{layer}.{name}");
        let layer_norm = |name: &str| {
            let weight = weights.tensor_f32(&p(&format!("{name}.weight")), &[d])?;
            let bias = weights.tensor_f32(&p(&format!("{name}.bias")), &[d])?;
            LayerNorm::new(weight, bias, config.layer_norm_epsilon).map_err(LoadError::prepare)
        };
        let conv1d = |name: &str, n_in: usize, n_out: usize| {
            Linear::from_in_out(
                &weights.tensor(&p(&format!("{name}.weight")), &[n_in, n_out])?,
                Some(weights.tensor(&p(&format!("{name}.bias")), &[n_out])?),
                weights.format(),
            )
        };
        let mut scale = None;
        if config.scale_attn_weights {
            scale = Some(1.0 / (config.head_dim() as f64).sqrt());
        }
        if config.scale_attn_by_inverse_layer_idx {
            scale = Some(scale.unwrap_or(1.0) / (layer + 1) as f64);
        }
        Ok(Self {
            ln_1: layer_norm("ln_1")?,
            c_attn: conv1d("attn.c_attn", d, 3 * d)?,
            attn_proj: conv1d("attn.c_proj", d, d)?,
            ln_2: layer_norm("ln_2")?,
            c_fc: conv1d("mlp.c_fc", d, inner)?,
            mlp_proj: conv1d("mlp.c_proj", inner, d)?,
            activation,
            heads: config.n_head,
            scale,
        })
    }

    /// `xs` `[rows, n_embd]`: the packed prompts, prompt `i` written to `caches[i]` from
    /// position 0 and attending over its own rows under `masks[i]`, the additive causal
    /// mask `[n_i, n_i]` (f32). With `keep`, only those rows (ids into `xs`) go on through
    /// the output projection and MLP and are returned: the last layer needs its keys and
    /// values for every row but its output only for the rows the head reads.
    pub(crate) fn prefill(
        &self,
        xs: &Tensor,
        prompts: &PackedPrompts,
        caches: &[&KvCache],
        masks: &[Tensor],
        keep: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (queries, keys, values) = self.qkv(&self.ln_1.forward(xs)?)?;
        let attended = caches
            .iter()
            .zip(masks)
            .enumerate()
            .map(|(i, (cache, mask))| {
                let heads = |t: &Tensor| prompts.prompt_heads(t, i, self.heads);
                let (queries, keys, values) = (heads(&queries)?, heads(&keys)?, heads(&values)?);
                cache.write(&keys, &values, 0)?;
                merge_heads(&attend(&queries, &keys, &values, self.scale, Some(mask))?)
            })
            .collect::<Result<Vec<_>>>()?;
        let attended = Tensor::cat(&attended, 0)?;
        match keep {
            Some(rows) => self.finish(&xs.index_select(rows, 0)?, &attended.index_select(rows, 0)?),
            None => self.finish(xs, &attended),
        }
    }

    /// `xs` `[b, n_embd]`: one new token per sequence; row `i` is at position `lens[i]` of
    /// `caches[i]`. Projections and MLP run as one matmul over the batch, attention per
    /// sequence over its own cache.
    pub(crate) fn decode(
        &self,
        xs: &Tensor,
        caches: &[&KvCache],
        lens: &[usize],
    ) -> Result<Tensor> {
        let (queries, keys, values) = self.qkv(&self.ln_1.forward(xs)?)?;
        let attention = DecodeAttention {
            heads: self.heads,
            scale: self.scale,
            caches,
            lens,
            biases: None,
        };
        let attended = attention.forward(&queries, Some((&keys, &values)))?;
        self.finish(xs, &attended)
    }

    fn qkv(&self, xs: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let qkv = self.c_attn.forward(xs)?;
        let d = qkv.dim(1)? / 3;
        Ok((
            qkv.narrow(1, 0, d)?,
            qkv.narrow(1, d, d)?,
            qkv.narrow(1, 2 * d, d)?,
        ))
    }

    /// Output projection, residual, then the MLP and its residual.
    fn finish(&self, residual: &Tensor, attended: &Tensor) -> Result<Tensor> {
        let xs = (residual + self.attn_proj.forward(attended)?)?;
        let hidden = self
            .activation
            .apply(&self.c_fc.forward(&self.ln_2.forward(&xs)?)?)?;
        xs + self.mlp_proj.forward(&hidden)?
    }
}
