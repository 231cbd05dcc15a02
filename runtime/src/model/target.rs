//! Where a model runs and in which precision, chosen from what the agent knows of the
//! device (NVML's compute capability), so callers need no tensor library types.

use candle_core::{DType, Device};

use super::Architecture;
use crate::load_error::LoadError;

/// Device memory one replica needs, before anything is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryEstimate {
    pub weights_bytes: u64,
    /// One slot's caches at full context; a replica holds up to `maxBatchSize` slots.
    pub kv_bytes_per_slot: u64,
}

/// A compute precision, named as status pages show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    Float32,
    Float16,
    Bfloat16,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::Float32 => "float32",
            Precision::Float16 => "float16",
            Precision::Bfloat16 => "bfloat16",
        }
    }

    pub fn dtype(self) -> DType {
        match self {
            Precision::Float32 => DType::F32,
            Precision::Float16 => DType::F16,
            Precision::Bfloat16 => DType::BF16,
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "float32" | "f32" => Ok(Precision::Float32),
            "float16" | "f16" => Ok(Precision::Float16),
            "bfloat16" | "bf16" => Ok(Precision::Bfloat16),
            other => Err(format!(
                "unknown precision {other:?}; expected float32, float16 or bfloat16"
            )),
        }
    }
}

/// How projection weights are held: in the compute precision, or int8 with per-row scales
/// (CPU only; docs/models.md § int8 weights).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightFormat {
    #[default]
    Float,
    Int8,
}

impl WeightFormat {
    pub fn name(self) -> &'static str {
        match self {
            WeightFormat::Float => "float",
            WeightFormat::Int8 => "int8",
        }
    }

    /// The compute type status pages show for a model in `precision` with these weights:
    /// int8 weights with float32 activations read `int8_float32`, as CTranslate2 names it.
    pub fn compute_type(self, precision: Precision) -> &'static str {
        match self {
            WeightFormat::Float => precision.name(),
            WeightFormat::Int8 => "int8_float32",
        }
    }
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
    /// The default precision here: f32 on the CPU; on CUDA bf16 where the GPU has it
    /// (sm ≥ 8.0), otherwise f16 for GPT-2 and f32 for T5 (T5's activations overflow
    /// float16).
    pub fn precision(&self, architecture: Architecture) -> Precision {
        match *self {
            Target::Cpu => Precision::Float32,
            Target::Cuda {
                capability: Some((major, _)),
                ..
            } if major >= 8 => Precision::Bfloat16,
            Target::Cuda { .. } if architecture == Architecture::Gpt2 => Precision::Float16,
            Target::Cuda { .. } => Precision::Float32,
        }
    }

    /// The device to load onto (opens the CUDA device).
    pub fn device(&self) -> Result<Device, LoadError> {
        match *self {
            Target::Cpu => Ok(Device::Cpu),
            Target::Cuda { ordinal, .. } => {
                Device::new_cuda(ordinal).map_err(|e| LoadError::OpenDevice {
                    device: format!("cuda:{ordinal}"),
                    message: e.to_string(),
                })
            }
        }
    }
}
