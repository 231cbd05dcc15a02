//! Dense projections `y = x Wᵀ (+ b)`. Weights are kept as contiguous `[out, in]` matrices
//! whichever convention the checkpoint used (GPT-2's Conv1D stores `[in, out]`, torch's
//! Linear `[out, in]`): with `Wᵀ` as the right-hand side, each output column reads one
//! contiguous weight row, which is what the CPU gemm streams fastest when a decode batch
//! has few rows, and what `skinny_matmul` reads in place (see docs/benchmarks.md) — or, with
//! int8 weights, what `int8_matmul` quantizes row by row. Several projections of the same
//! input (q, k, v) are concatenated into one matrix so they run as one matmul.

use candle_core::{Result, Tensor};

use super::projection::Projection;
use super::target::WeightFormat;
use crate::load_error::LoadError;

pub(crate) struct Linear {
    /// `[out, in]`.
    weight: Projection,
    /// `[out]`, when the layer has one.
    bias: Option<Tensor>,
}

impl Linear {
    /// From a Conv1D weight (`[in, out]`).
    pub(crate) fn from_in_out(
        weight: &Tensor,
        bias: Option<Tensor>,
        format: WeightFormat,
    ) -> std::result::Result<Self, LoadError> {
        let weight = weight.t().map_err(LoadError::prepare)?;
        Ok(Self {
            weight: Projection::new(&weight, format)?,
            bias,
        })
    }

    /// From torch Linear weights (`[out, in]` each), stacked along `out`.
    pub(crate) fn from_out_in(
        weights: &[Tensor],
        format: WeightFormat,
    ) -> std::result::Result<Self, LoadError> {
        let weight = Tensor::cat(weights, 0).map_err(LoadError::prepare)?;
        Ok(Self {
            weight: Projection::new(&weight, format)?,
            bias: None,
        })
    }

    /// `xs`: `[rows, in]` → `[rows, out]`.
    pub(crate) fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let ys = self.weight.forward(xs)?;
        match &self.bias {
            Some(bias) => ys.broadcast_add(bias),
            None => Ok(ys),
        }
    }
}
