//! From a parsed config and the checkpoint's tensors to a ready [`Model`] — the models'
//! `load(weights, &config)`, as candle-transformers' `load(vb, &cfg)`. No file is opened
//! here: [`crate::checkpoint::Checkpoint`] reads the directory and calls this.

use std::sync::Arc;

use candle_core::{DType, Device};

use super::config::ModelConfig;
use super::weights::Weights;
use super::{gpt2, t5, Model};
use crate::load_error::LoadError;

/// Builds the model `config` describes from `weights`, on their device and in their
/// compute dtype (F32 on CPU; F16/BF16 on CUDA). Norms and softmax always run in f32 and
/// logits are returned as f32.
pub fn load_model(config: &ModelConfig, weights: &Weights) -> Result<Arc<dyn Model>, LoadError> {
    check_dtype(weights.device(), weights.dtype())?;
    Ok(match config {
        ModelConfig::Gpt2(config) => Arc::new(gpt2::Gpt2::load(weights, config)?),
        ModelConfig::T5(config) => Arc::new(t5::T5::load(weights, config)?),
    })
}

fn check_dtype(device: &Device, dtype: DType) -> Result<(), LoadError> {
    let unsupported = |reason| LoadError::UnsupportedDtype {
        dtype: format!("{dtype:?}"),
        device: format!("{:?}", device.location()),
        reason,
    };
    match dtype {
        DType::F32 => Ok(()),
        DType::F16 | DType::BF16 if !device.is_cpu() => Ok(()),
        DType::F16 | DType::BF16 => Err(unsupported(
            "half precision is for GPUs; use F32 on the CPU",
        )),
        _ => Err(unsupported("models compute in F32, F16 or BF16")),
    }
}
