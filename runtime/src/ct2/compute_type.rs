//! The compute type CTranslate2 will really run, decided before loading.
//!
//! CTranslate2 resolves a requested type against the device (`resolve_compute_type` in
//! `src/types.cc`) but, when asked explicitly for a type the device cannot run (e.g.
//! `int8_float16` on CPU), it throws instead of falling back. So the backend resolves the
//! type itself with the same rules — with fallback — passes the *effective* type to
//! CTranslate2, and reports both. On top of CTranslate2's rules, T5 never runs float16
//! activations: Flan-T5 overflows to NaN in float16, so bfloat16 (sm ≥ 8.0) or float32
//! (e.g. T4, sm 7.5) activations are used instead.

use std::fmt;
use std::str::FromStr;

use super::convert::Architecture;
use crate::checkpoint::Checkpoint;
use crate::model::MemoryEstimate;

/// CTranslate2's compute types (weights and activations), named as CTranslate2 names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ComputeType {
    /// The best type for the device (int8_float16 on CUDA, int8_float32 on CPU).
    Auto,
    Float32,
    Float16,
    Bfloat16,
    /// int8 weights with the float type the model was saved with.
    Int8,
    Int8Float32,
    Int8Float16,
    Int8Bfloat16,
    Int16,
}

impl ComputeType {
    pub const ALL: [ComputeType; 9] = [
        ComputeType::Auto,
        ComputeType::Float32,
        ComputeType::Float16,
        ComputeType::Bfloat16,
        ComputeType::Int8,
        ComputeType::Int8Float32,
        ComputeType::Int8Float16,
        ComputeType::Int8Bfloat16,
        ComputeType::Int16,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ComputeType::Auto => "auto",
            ComputeType::Float32 => "float32",
            ComputeType::Float16 => "float16",
            ComputeType::Bfloat16 => "bfloat16",
            ComputeType::Int8 => "int8",
            ComputeType::Int8Float32 => "int8_float32",
            ComputeType::Int8Float16 => "int8_float16",
            ComputeType::Int8Bfloat16 => "int8_bfloat16",
            ComputeType::Int16 => "int16",
        }
    }

    /// Bytes per weight element once loaded (int8 types: one byte per quantized weight;
    /// their per-row scales, norms and biases stay in float and are a small share left out).
    /// `Auto` counts as float32: resolve it with [`effective_compute_type`] first.
    pub fn weight_bytes(self) -> u64 {
        match self {
            ComputeType::Int8
            | ComputeType::Int8Float32
            | ComputeType::Int8Float16
            | ComputeType::Int8Bfloat16 => 1,
            ComputeType::Int16 | ComputeType::Float16 | ComputeType::Bfloat16 => 2,
            ComputeType::Auto | ComputeType::Float32 => 4,
        }
    }

    /// Bytes per activation element, the type CTranslate2's KV caches are kept in.
    pub fn activation_bytes(self) -> u64 {
        match self {
            ComputeType::Float16
            | ComputeType::Bfloat16
            | ComputeType::Int8Float16
            | ComputeType::Int8Bfloat16 => 2,
            _ => 4,
        }
    }
}

impl fmt::Display for ComputeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A compute type name that CTranslate2 does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown compute type {given:?} (allowed: auto, float32, float16, bfloat16, int8, int8_float32, int8_float16, int8_bfloat16, int16)")]
pub struct UnknownComputeType {
    pub given: String,
}

impl FromStr for ComputeType {
    type Err = UnknownComputeType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ComputeType::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| UnknownComputeType {
                given: s.to_string(),
            })
    }
}

/// Where CTranslate2 runs the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ct2Device {
    /// The CPU with the oneDNN and Ruy backends (int8 GEMM; no int16, no float16/bfloat16).
    Cpu,
    /// A CUDA GPU of compute capability `major.minor` (T4: 7.5, A10G: 8.6, H100: 9.0).
    Cuda { major: u32, minor: u32 },
}

impl Ct2Device {
    fn supports_int8(self) -> bool {
        match self {
            Ct2Device::Cpu => true, // oneDNN (Ruy too)
            Ct2Device::Cuda { major, minor } => major > 6 || (major == 6 && minor == 1),
        }
    }

    fn supports_int16(self) -> bool {
        false // CPU int16 needs MKL (oneDNN has no s16 GEMM), not built here; CUDA has none
    }

    fn supports_float16(self) -> bool {
        matches!(self, Ct2Device::Cuda { major, .. } if major >= 7)
    }

    fn supports_bfloat16(self) -> bool {
        matches!(self, Ct2Device::Cuda { major, .. } if major >= 8)
    }
}

/// The compute type that runs `arch` on `device` when `requested` is asked for: CTranslate2's
/// fallback rules, then the T5 no-float16 rule. `Int8` is resolved as for a float32-saved
/// model (what the converter writes unless asked for an int8_* quantization).
pub fn effective_compute_type(
    requested: ComputeType,
    device: Ct2Device,
    arch: Architecture,
) -> ComputeType {
    let resolved = resolve_like_ctranslate2(requested, device);
    if arch != Architecture::T5 {
        return resolved;
    }
    match resolved {
        ComputeType::Int8Float16 if device.supports_bfloat16() => ComputeType::Int8Bfloat16,
        ComputeType::Int8Float16 => ComputeType::Int8Float32,
        ComputeType::Float16 if device.supports_bfloat16() => ComputeType::Bfloat16,
        ComputeType::Float16 => ComputeType::Float32,
        other => other,
    }
}

/// What one replica needs when CTranslate2 runs the model in `dir` as `effective` (a type
/// [`effective_compute_type`] resolved): its weights and one slot's caches at full context.
pub fn memory_estimate(dir: &Checkpoint, effective: ComputeType) -> MemoryEstimate {
    MemoryEstimate {
        weights_bytes: dir.parameter_count() * effective.weight_bytes(),
        kv_bytes_per_slot: dir.kv_elements_per_slot() * effective.activation_bytes(),
    }
}

/// `ctranslate2::resolve_compute_type` with fallback enabled.
fn resolve_like_ctranslate2(requested: ComputeType, device: Ct2Device) -> ComputeType {
    let (int8, int16) = (device.supports_int8(), device.supports_int16());
    let (f16, bf16) = (device.supports_float16(), device.supports_bfloat16());
    let cuda = matches!(device, Ct2Device::Cuda { .. });
    match requested {
        ComputeType::Float32 => ComputeType::Float32,
        ComputeType::Float16 if f16 => ComputeType::Float16,
        ComputeType::Bfloat16 if bf16 => ComputeType::Bfloat16,
        ComputeType::Float16 | ComputeType::Bfloat16 => ComputeType::Float32,
        ComputeType::Int16 if int16 => ComputeType::Int16,
        ComputeType::Int16 if !cuda && int8 => ComputeType::Int8Float32,
        ComputeType::Int16 if cuda && f16 => ComputeType::Float16,
        ComputeType::Int16 => ComputeType::Float32,
        ComputeType::Int8 | ComputeType::Int8Float32 if int8 => ComputeType::Int8Float32,
        ComputeType::Int8 | ComputeType::Int8Float32 if !cuda && int16 => ComputeType::Int16,
        ComputeType::Int8 | ComputeType::Int8Float32 if cuda && f16 => ComputeType::Float16,
        ComputeType::Int8 | ComputeType::Int8Float32 => ComputeType::Float32,
        ComputeType::Int8Float16 if int8 && f16 => ComputeType::Int8Float16,
        ComputeType::Int8Float16 if int8 => ComputeType::Int8Float32,
        ComputeType::Int8Float16 if f16 => ComputeType::Float16,
        ComputeType::Int8Float16 if int16 => ComputeType::Int16,
        ComputeType::Int8Float16 => ComputeType::Float32,
        ComputeType::Int8Bfloat16 if int8 && bf16 => ComputeType::Int8Bfloat16,
        ComputeType::Int8Bfloat16 if int8 => ComputeType::Int8Float32,
        ComputeType::Int8Bfloat16 if bf16 => ComputeType::Bfloat16,
        ComputeType::Int8Bfloat16 => ComputeType::Float32,
        ComputeType::Auto if cuda && int8 && f16 => ComputeType::Int8Float16,
        ComputeType::Auto if int8 => ComputeType::Int8Float32,
        ComputeType::Auto if cuda && f16 => ComputeType::Float16,
        ComputeType::Auto if int16 => ComputeType::Int16,
        ComputeType::Auto => ComputeType::Float32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ComputeType::*;

    const T4: Ct2Device = Ct2Device::Cuda { major: 7, minor: 5 };
    const A10G: Ct2Device = Ct2Device::Cuda { major: 8, minor: 6 };
    const H100: Ct2Device = Ct2Device::Cuda { major: 9, minor: 0 };
    const P100: Ct2Device = Ct2Device::Cuda { major: 6, minor: 0 };

    #[test]
    fn cpu_runs_int8_float16_as_int8_float32_for_every_architecture() {
        for arch in [Architecture::Gpt2, Architecture::T5] {
            assert_eq!(
                effective_compute_type(Int8Float16, Ct2Device::Cpu, arch),
                Int8Float32
            );
            assert_eq!(
                effective_compute_type(Int8Bfloat16, Ct2Device::Cpu, arch),
                Int8Float32
            );
        }
    }

    #[test]
    fn cpu_has_no_half_precision_and_no_int16() {
        let cpu = Ct2Device::Cpu;
        let gpt2 = Architecture::Gpt2;
        assert_eq!(effective_compute_type(Float16, cpu, gpt2), Float32);
        assert_eq!(effective_compute_type(Bfloat16, cpu, gpt2), Float32);
        assert_eq!(effective_compute_type(Int16, cpu, gpt2), Int8Float32);
        assert_eq!(effective_compute_type(Int8, cpu, gpt2), Int8Float32);
        assert_eq!(effective_compute_type(Auto, cpu, gpt2), Int8Float32);
        assert_eq!(effective_compute_type(Float32, cpu, gpt2), Float32);
    }

    #[test]
    fn gpt2_keeps_int8_float16_on_gpus_with_float16_tensor_cores() {
        for gpu in [T4, A10G, H100] {
            assert_eq!(
                effective_compute_type(Int8Float16, gpu, Architecture::Gpt2),
                Int8Float16
            );
            assert_eq!(
                effective_compute_type(Auto, gpu, Architecture::Gpt2),
                Int8Float16
            );
        }
    }

    #[test]
    fn t5_avoids_float16_activations_with_bfloat16_from_sm80_and_float32_before() {
        let t5 = Architecture::T5;
        assert_eq!(effective_compute_type(Int8Float16, A10G, t5), Int8Bfloat16);
        assert_eq!(effective_compute_type(Int8Float16, H100, t5), Int8Bfloat16);
        assert_eq!(effective_compute_type(Int8Float16, T4, t5), Int8Float32);
        assert_eq!(effective_compute_type(Float16, H100, t5), Bfloat16);
        assert_eq!(effective_compute_type(Float16, T4, t5), Float32);
        assert_eq!(effective_compute_type(Auto, T4, t5), Int8Float32);
        assert_eq!(effective_compute_type(Int8Bfloat16, T4, t5), Int8Float32);
    }

    #[test]
    fn old_gpus_fall_back_as_ctranslate2_does() {
        let gpt2 = Architecture::Gpt2;
        // sm 6.0: no int8, no float16.
        assert_eq!(effective_compute_type(Int8Float16, P100, gpt2), Float32);
        assert_eq!(effective_compute_type(Int8Float32, P100, gpt2), Float32);
        // sm 6.1 has int8 but no float16 tensor cores.
        let p40 = Ct2Device::Cuda { major: 6, minor: 1 };
        assert_eq!(effective_compute_type(Int8Float16, p40, gpt2), Int8Float32);
        assert_eq!(effective_compute_type(Bfloat16, T4, gpt2), Float32);
        assert_eq!(effective_compute_type(Int16, T4, gpt2), Float16);
    }

    #[test]
    fn compute_type_names_round_trip_and_unknown_names_are_refused() {
        for c in ComputeType::ALL {
            assert_eq!(c.name().parse::<ComputeType>(), Ok(c));
        }
        let err = "fp8".parse::<ComputeType>().unwrap_err();
        assert!(err.to_string().contains("int8_float16"), "{err}");
    }
}
