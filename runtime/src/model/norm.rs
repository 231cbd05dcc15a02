//! Normalisation layers, computed in f32 whatever the compute dtype (half-precision variance
//! overflows and loses the digits the reference keeps).

use candle_core::{DType, Result, Tensor, D};

/// GPT-2's LayerNorm: `(x - mean) / sqrt(var + eps) * weight + bias`.
#[derive(Debug)]
pub(crate) struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    /// `weight` and `bias` are `[hidden]`; they are kept in f32.
    pub(crate) fn new(weight: Tensor, bias: Tensor, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: weight.to_dtype(DType::F32)?,
            bias: bias.to_dtype(DType::F32)?,
            eps,
        })
    }

    pub(crate) fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let dtype = xs.dtype();
        let xs = xs.to_dtype(DType::F32)?;
        // Two passes (mean, then variance of the centred values) as PyTorch does: the
        // one-pass E[x²] - E[x]² loses precision when the mean is large.
        let centred = xs.broadcast_sub(&xs.mean_keepdim(D::Minus1)?)?;
        let variance = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centred.broadcast_div(&(variance + self.eps)?.sqrt()?)?;
        normed
            .broadcast_mul(&self.weight)?
            .broadcast_add(&self.bias)?
            .to_dtype(dtype)
    }
}

/// T5's LayerNorm: a root-mean-square norm, no mean subtraction and no bias.
#[derive(Debug)]
pub(crate) struct RmsNorm {
    weight: Tensor,
    eps: f32,
}

impl RmsNorm {
    pub(crate) fn new(weight: Tensor, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: weight.to_dtype(DType::F32)?,
            eps: eps as f32,
        })
    }

    pub(crate) fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let dtype = xs.dtype();
        let xs = xs.to_dtype(DType::F32)?.contiguous()?;
        candle_nn::ops::rms_norm(&xs, &self.weight, self.eps)?.to_dtype(dtype)
    }
}
