//! Dense projections. Weights are kept as contiguous `[in, out]` matrices so every projection
//! is one `x[n, in] · W[in, out]` matmul over all rows of a batch, whichever convention the
//! checkpoint used (GPT-2's Conv1D stores `[in, out]`, torch's Linear `[out, in]`).

use candle_core::{Result, Tensor};

use crate::load_error::LoadError;

pub(crate) struct Linear {
    /// `[in, out]`, contiguous.
    weight: Tensor,
    /// `[out]`, when the layer has one.
    bias: Option<Tensor>,
}

impl Linear {
    /// From a Conv1D weight, already `[in, out]`.
    pub(crate) fn from_in_out(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self { weight, bias }
    }

    /// From torch Linear weights (`[out, in]` each), concatenated along `out`, so several
    /// projections of the same input (T5's q, k, v) run as one matmul.
    pub(crate) fn from_out_in(weights: &[Tensor]) -> std::result::Result<Self, LoadError> {
        let transposed = weights
            .iter()
            .map(|w| w.t())
            .collect::<Result<Vec<_>>>()
            .map_err(LoadError::prepare)?;
        let weight = Tensor::cat(&transposed, 1)
            .and_then(|w| w.contiguous())
            .map_err(LoadError::prepare)?;
        Ok(Self { weight, bias: None })
    }

    /// `xs`: `[rows, in]` → `[rows, out]`.
    pub(crate) fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let ys = xs.matmul(&self.weight)?;
        match &self.bias {
            Some(bias) => ys.broadcast_add(bias),
            None => Ok(ys),
        }
    }
}
