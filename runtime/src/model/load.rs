//! From a validated model directory to a ready [`Model`].

use std::sync::Arc;

use candle_core::{DType, Device};

use super::{gpt2, t5, Model};
use crate::model_dir::{LoadError, ModelConfig, ModelDir};

/// Loads the checkpoint in `dir` onto `device`, computing in `dtype` (F32 on CPU; F16/BF16
/// on CUDA). Norms and softmax always run in f32 and logits are returned as f32.
pub fn load_model(
    dir: &ModelDir,
    device: &Device,
    dtype: DType,
) -> Result<Arc<dyn Model>, LoadError> {
    check_dtype(device, dtype)?;
    Ok(match dir.config() {
        ModelConfig::Gpt2(config) => Arc::new(gpt2::Gpt2::load(dir, config, device, dtype)?),
        ModelConfig::T5(config) => Arc::new(t5::T5::load(dir, config, device, dtype)?),
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
