//! A `[out, in]` weight matrix as `x · Wᵀ` reads it, in the format the deploy asked for
//! (docs/models.md § int8 weights): dense in the compute dtype (f32 on the CPU, copied to
//! 64-byte boundaries for [`skinny_matmul`](super::skinny_matmul)), or int8 with per-row
//! scales on the CPU ([`int8_matmul`](super::int8_matmul)).

use candle_core::{Result, Tensor};

use super::int8_matmul::{matmul_int8, quantizable, Int8Matrix};
use super::skinny_matmul::{aligned, matmul_wt};
use super::target::WeightFormat;
use crate::load_error::LoadError;

pub(crate) enum Projection {
    Dense(Tensor),
    Int8(Int8Matrix),
}

impl Projection {
    /// `weight` `[out, in]` (any layout) in `format`.
    pub(crate) fn new(
        weight: &Tensor,
        format: WeightFormat,
    ) -> std::result::Result<Self, LoadError> {
        match format {
            WeightFormat::Float => Ok(Projection::Dense(
                aligned(weight.contiguous().map_err(LoadError::prepare)?)
                    .map_err(LoadError::prepare)?,
            )),
            WeightFormat::Int8 if quantizable(weight) => {
                let (outs, inner) = weight.dims2().map_err(LoadError::prepare)?;
                let values = weight
                    .flatten_all()
                    .and_then(|w| w.to_vec1::<f32>())
                    .map_err(LoadError::prepare)?;
                Ok(Projection::Int8(Int8Matrix::quantize(&values, outs, inner)))
            }
            WeightFormat::Int8 => Err(LoadError::UnsupportedWeightFormat {
                format: format.name(),
                device: format!("{:?}", weight.device().location()),
                reason: "int8 weights run on the CPU in float32; on GPUs use optimizationType \
                         \"ctranslate2\" for int8_float16",
            }),
        }
    }

    /// `xs` `[rows, in]` → `[rows, out]`.
    pub(crate) fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Projection::Dense(weight) => matmul_wt(xs, weight),
            Projection::Int8(matrix) => matmul_int8(xs, matrix),
        }
    }
}
