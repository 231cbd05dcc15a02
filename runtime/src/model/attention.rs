//! Scaled dot-product attention for one sequence over its own cached keys and values, plus
//! the head split/merge reshapes both models share.

use candle_core::{DType, Result, Tensor};

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
