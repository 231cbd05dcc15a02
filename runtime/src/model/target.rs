//! Where a model runs and in which precision, chosen from what the agent knows of the
//! device (NVML's compute capability), so callers need no tensor library types.

use std::sync::Arc;

use candle_core::{DType, Device};

use super::{load_model, Architecture, Model};
use crate::model_dir::{LoadError, ModelDir};

/// Device memory one replica needs, before anything is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryEstimate {
    pub weights_bytes: u64,
    /// One slot's caches at full context; a replica holds up to `maxBatchSize` slots.
    pub kv_bytes_per_slot: u64,
}

/// A device to run a candle model on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Cpu,
    /// CUDA device `ordinal` with compute capability `major.minor` (when known).
    Cuda {
        ordinal: usize,
        capability: Option<(u32, u32)>,
    },
}

impl Target {
    /// f32 on the CPU; on CUDA bf16 where the GPU has it (sm ≥ 8.0), otherwise f16 for
    /// GPT-2 and f32 for T5 (T5's activations overflow float16).
    pub fn dtype(&self, architecture: Architecture) -> DType {
        match *self {
            Target::Cpu => DType::F32,
            Target::Cuda {
                capability: Some((major, _)),
                ..
            } if major >= 8 => DType::BF16,
            Target::Cuda { .. } if architecture == Architecture::Gpt2 => DType::F16,
            Target::Cuda { .. } => DType::F32,
        }
    }

    /// The dtype's name as status pages show it.
    pub fn precision(&self, architecture: Architecture) -> &'static str {
        match self.dtype(architecture) {
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
            _ => "float32",
        }
    }

    /// What a replica of the model in `dir` needs here, in [`Target::dtype`].
    pub fn memory_estimate(&self, dir: &ModelDir) -> MemoryEstimate {
        let dtype = self.dtype(dir.architecture());
        MemoryEstimate {
            weights_bytes: dir.weights_bytes(dtype),
            kv_bytes_per_slot: dir.kv_bytes_per_slot(dtype),
        }
    }

    /// Loads the model in `dir` here, in [`Target::dtype`].
    pub fn load(&self, dir: &ModelDir) -> Result<Arc<dyn Model>, LoadError> {
        let device = match *self {
            Target::Cpu => Device::Cpu,
            Target::Cuda { ordinal, .. } => {
                Device::new_cuda(ordinal).map_err(|e| LoadError::OpenDevice {
                    device: format!("cuda:{ordinal}"),
                    message: e.to_string(),
                })?
            }
        };
        load_model(dir, &device, self.dtype(dir.architecture()))
    }
}
