//! Scaled dot-product attention for one sequence over its own cached keys and values, plus
//! the head split/merge reshapes both models share.

use candle_core::{DType, Result, Tensor};

use super::cpu_attention;
use super::slot::KvCache;

/// `[n, heads * head_dim]` → `[heads, n, head_dim]` (contiguous, ready for the cache).
pub(crate) fn split_heads(xs: &Tensor, heads: usize) -> Result<Tensor> {
    let (n, hidden) = xs.dims2()?;
    xs.reshape((n, heads, hidden / heads))?
        .transpose(0, 1)?
        .contiguous()
}

/// `[heads, n, head_dim]` → `[n, heads * head_dim]`.
pub(crate) fn merge_heads(xs: &Tensor) -> Result<Tensor> {
    let (heads, n, head_dim) = xs.dims3()?;
    xs.transpose(0, 1)?.reshape((n, heads * head_dim))
}

/// `softmax(q kᵀ · scale + bias) v` with `queries` `[heads, n_q, d]`, `keys`/`values`
/// `[heads, n_k, d]` and an optional additive f32 `bias` broadcastable to `[heads, n_q, n_k]`
/// (causal mask, T5's position bias). Scores and softmax are f32; the result
/// `[heads, n_q, d]` is in the inputs' dtype.
pub(crate) fn attend(
    queries: &Tensor,
    keys: &Tensor,
    values: &Tensor,
    scale: Option<f64>,
    bias: Option<&Tensor>,
) -> Result<Tensor> {
    let dtype = queries.dtype();
    let mut scores = queries.matmul(&keys.t()?)?.to_dtype(DType::F32)?;
    if let Some(scale) = scale {
        scores = (scores * scale)?;
    }
    if let Some(bias) = bias {
        scores = scores.broadcast_add(bias)?;
    }
    let weights = candle_nn::ops::softmax_last_dim(&scores)?.to_dtype(dtype)?;
    weights.matmul(values)
}

/// One decode step of attention for a batch of sequences, each over its own cache.
///
/// `queries` (and `new`'s keys/values, when given) are `[b, heads * head_dim]`, row `i`
/// belonging to the sequence whose cache is `caches[i]`, holding `lens[i]` positions before
/// this step. With `new`, row `i`'s key/value is written at position `lens[i]` and attended
/// to with the cached ones (self-attention); without, the cache is read as it is
/// (cross-attention). `biases[i]`, when given, is added to sequence `i`'s scores
/// (`[heads, 1, keys]`). Returns `[b, heads * head_dim]`.
///
/// Head splitting and merging, and the score scale, are done once for the whole batch so the
/// per-sequence work is only the cache write and the two small attention products. On the
/// CPU in f32 the attention itself is one pass over every slot (`cpu_attention`).
pub(crate) struct DecodeAttention<'a> {
    pub heads: usize,
    pub scale: Option<f64>,
    pub caches: &'a [&'a KvCache],
    pub lens: &'a [usize],
    pub biases: Option<&'a [Tensor]>,
}

impl DecodeAttention<'_> {
    pub(crate) fn forward(
        &self,
        queries: &Tensor,
        new: Option<(&Tensor, &Tensor)>,
    ) -> Result<Tensor> {
        let (batch, hidden) = queries.dims2()?;
        let head_dim = hidden / self.heads;
        let by_row = |t: &Tensor| t.reshape((batch, self.heads, head_dim));
        let mut queries = by_row(queries)?;
        if let Some(scale) = self.scale {
            queries = (queries * scale)?;
        }
        let new = match new {
            Some((keys, values)) => Some((by_row(keys)?, by_row(values)?)),
            None => None,
        };
        let row = |t: &Tensor, i: usize| t.narrow(0, i, 1)?.reshape((self.heads, 1, head_dim));
        let mut keys_lens = Vec::with_capacity(batch);
        for (i, (cache, &len)) in self.caches.iter().zip(self.lens).enumerate() {
            keys_lens.push(match &new {
                Some((keys, values)) => {
                    cache.write(&row(keys, i)?, &row(values, i)?, len)?;
                    len + 1
                }
                None => len,
            });
        }
        if cpu_attention::supports(&queries) {
            return cpu_attention::attend_slots(&queries, self.caches, &keys_lens, self.biases);
        }
        let mut attended = Vec::with_capacity(batch);
        for (i, (cache, &keys_len)) in self.caches.iter().zip(&keys_lens).enumerate() {
            let (keys, values) = cache.view(keys_len)?;
            let bias = self.biases.map(|b| &b[i]);
            attended.push(attend(&row(&queries, i)?, &keys, &values, None, bias)?);
        }
        // [heads, b, head_dim] → [b, heads * head_dim]
        Tensor::cat(&attended, 1)?
            .transpose(0, 1)?
            .reshape((batch, hidden))
    }
}
