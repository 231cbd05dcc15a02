//! The CHECKING_DEVICE phase: is this host the device class the deploy asked for, and do
//! the model's replicas fit in its free GPU memory?

use thiserror::Error;

use super::catalog::{ClassHardware, DeviceClass, GpuRequirement};
use super::config::{Execution, GpuConfig};
use super::device::{describe_gpus, mib, Gpu, InventoryState, MIB};
use super::placement::{ExecutionDevice, GpuCapacity, Placement};

/// GPU memory one replica of a model needs, estimated from the checkpoint elsewhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryNeed {
    /// Weights at the dtype/quantization they will be loaded in.
    pub weights_bytes: u64,
    /// KV cache of one batch slot at the model's full context.
    pub kv_bytes_per_slot: u64,
}

impl MemoryNeed {
    /// Nothing known yet (the checkpoint is not on disk, or does not open as a model).
    pub(crate) const UNKNOWN: MemoryNeed = MemoryNeed {
        weights_bytes: 0,
        kv_bytes_per_slot: 0,
    };

    /// KV cache for `max_batch_size` slots.
    pub(crate) fn kv_cache_bytes(&self, max_batch_size: u32) -> u64 {
        self.kv_bytes_per_slot
            .saturating_mul(u64::from(max_batch_size))
    }

    /// Weights plus KV cache for `max_batch_size` slots.
    pub(crate) fn per_replica_bytes(&self, max_batch_size: u32) -> u64 {
        self.weights_bytes
            .saturating_add(self.kv_cache_bytes(max_batch_size))
    }
}

/// What a deploy asks of the host, already validated against the API's ranges.
#[derive(Clone, Copy, Debug)]
pub struct AdmissionRequest<'a> {
    pub class: &'a DeviceClass,
    pub memory: MemoryNeed,
    pub max_batch_size: u32,
    pub min_replicas: u32,
    pub max_replicas: u32,
}

/// How GPU device classes execute, from `[gpu] execution` and how the binary was built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GpuExecution {
    Cuda,
    /// Admitted on the GPUs exactly as for CUDA, run on the CPU.
    Cpu,
    /// `execution = "auto"` in a build without the `cuda` feature: GPU classes are refused.
    CudaNotCompiled,
}

impl GpuExecution {
    pub(crate) fn resolve(execution: Execution, cuda_compiled: bool) -> Self {
        match (execution, cuda_compiled) {
            (Execution::Cpu, _) => GpuExecution::Cpu,
            (Execution::Auto, true) => GpuExecution::Cuda,
            (Execution::Auto, false) => GpuExecution::CudaNotCompiled,
        }
    }
}

/// Whether this binary was built with the `cuda` feature.
pub const CUDA_COMPILED: bool = cfg!(feature = "cuda");

/// Why a deploy cannot run on this host. [`code`](Self::code) is the machine-readable code
/// the deployment's status carries; `Display` is the sentence.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AdmissionError {
    #[error(
        "deviceType {device_type} runs on CUDA, but this gpu-agent was built without the `cuda` feature; \
         rebuild with `--features cuda`, or set [gpu] execution = \"cpu\" to check the GPUs and run on the CPU"
    )]
    CudaNotCompiled { device_type: String },

    #[error("requested {device_type} ({requested}) but NVML is unavailable: {reason}")]
    NvmlUnavailable {
        device_type: String,
        requested: String,
        reason: String,
    },

    #[error("requested {device_type} ({requested}) but NVML reports {reported}")]
    DeviceMismatch {
        device_type: String,
        requested: String,
        reported: String,
    },

    #[error(
        "{device_type}: minReplicas = {min_replicas} need {per_replica_mib} MiB each (weights {weights_mib} MiB \
         + KV cache {kv_cache_mib} MiB for maxBatchSize {max_batch_size}) plus {reserve_mib} MiB reserved per GPU, \
         but NVML reports {free}: room for {placeable}"
    )]
    InsufficientGpuMemory {
        device_type: String,
        min_replicas: u32,
        max_batch_size: u32,
        per_replica_mib: u64,
        weights_mib: u64,
        kv_cache_mib: u64,
        reserve_mib: u64,
        /// Free memory per GPU, e.g. "128 MiB free of 23028 MiB on GPU 0".
        free: String,
        placeable: u32,
    },
}

/// The code of a host that is not the device class asked for: the GPUs, or the instance
/// type (`crate::instance`).
pub const DEVICE_MISMATCH: &str = "DEVICE_MISMATCH";
/// The code of a GPU deploy on a host whose GPUs cannot be read (NVML absent or failing).
pub const NVML_UNAVAILABLE: &str = "NVML_UNAVAILABLE";

impl AdmissionError {
    pub fn code(&self) -> &'static str {
        match self {
            AdmissionError::CudaNotCompiled { .. } => "CUDA_NOT_COMPILED",
            AdmissionError::NvmlUnavailable { .. } => NVML_UNAVAILABLE,
            AdmissionError::DeviceMismatch { .. } => DEVICE_MISMATCH,
            AdmissionError::InsufficientGpuMemory { .. } => "INSUFFICIENT_GPU_MEMORY",
        }
    }
}

/// The rules admission applies on this host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdmissionPolicy {
    pub execution: GpuExecution,
    /// Kept free on each GPU for the CUDA context and workspace.
    pub(crate) reserve_bytes: u64,
}

impl AdmissionPolicy {
    /// The policy of this binary under `config`.
    pub(crate) fn from_config(config: &GpuConfig) -> Self {
        Self::for_build(config, CUDA_COMPILED)
    }

    /// The policy `config` gives a build with or without CUDA (tests check both).
    pub fn for_build(config: &GpuConfig, cuda_compiled: bool) -> Self {
        AdmissionPolicy {
            execution: GpuExecution::resolve(config.execution, cuda_compiled),
            reserve_bytes: config.reserve_mib.saturating_mul(MIB),
        }
    }

    /// Checks the request against the inventory (refresh it just before, so free memory is
    /// current) and places the replicas. In order: CPU classes pass without NVML; then
    /// CUDA_NOT_COMPILED, NVML_UNAVAILABLE, DEVICE_MISMATCH, INSUFFICIENT_GPU_MEMORY.
    pub fn admit(
        &self,
        request: &AdmissionRequest<'_>,
        inventory: &InventoryState,
    ) -> Result<Placement, AdmissionError> {
        let class = request.class;
        let max_replicas = request.max_replicas.max(request.min_replicas);
        let requirement = match &class.hardware {
            ClassHardware::Cpu => return Ok(Placement::cpu(max_replicas)),
            ClassHardware::Gpus(requirement) => requirement,
        };
        let execution = match self.execution {
            GpuExecution::Cuda => ExecutionDevice::Cuda,
            GpuExecution::Cpu => ExecutionDevice::Cpu,
            GpuExecution::CudaNotCompiled => {
                return Err(AdmissionError::CudaNotCompiled {
                    device_type: class.name.clone(),
                })
            }
        };
        let host = match inventory {
            InventoryState::Available(host) => host,
            InventoryState::NvmlUnavailable { reason } => {
                return Err(AdmissionError::NvmlUnavailable {
                    device_type: class.name.clone(),
                    requested: requirement.to_string(),
                    reason: reason.clone(),
                })
            }
        };
        check_class(&class.name, requirement, &host.gpus)?;
        let capacity = self.capacity(request, &host.gpus, max_replicas);
        let placement = Placement::on_gpus(execution, capacity, max_replicas);
        if placement.max_replicas() < request.min_replicas {
            return Err(self.insufficient_memory(request, &host.gpus, placement.max_replicas()));
        }
        Ok(placement)
    }

    /// Replicas that fit on each GPU: (free − reserve) / per-replica need, at most `max_replicas`.
    fn capacity(
        &self,
        request: &AdmissionRequest<'_>,
        gpus: &[Gpu],
        max_replicas: u32,
    ) -> Vec<GpuCapacity> {
        let per_replica = request.memory.per_replica_bytes(request.max_batch_size);
        gpus.iter()
            .map(|gpu| {
                let fit = if gpu.memory.free_bytes <= self.reserve_bytes {
                    0
                } else {
                    let usable = gpu.memory.free_bytes - self.reserve_bytes;
                    // A model that needs no memory is bounded by maxReplicas alone.
                    usable
                        .checked_div(per_replica)
                        .unwrap_or(u64::from(max_replicas))
                };
                GpuCapacity {
                    gpu: gpu.index,
                    replicas: u32::try_from(fit).unwrap_or(u32::MAX).min(max_replicas),
                }
            })
            .collect()
    }

    fn insufficient_memory(
        &self,
        request: &AdmissionRequest<'_>,
        gpus: &[Gpu],
        placeable: u32,
    ) -> AdmissionError {
        let free = gpus
            .iter()
            .map(|gpu| {
                format!(
                    "{} MiB free of {} MiB on GPU {}",
                    mib(gpu.memory.free_bytes),
                    mib(gpu.memory.total_bytes),
                    gpu.index
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        AdmissionError::InsufficientGpuMemory {
            device_type: request.class.name.clone(),
            min_replicas: request.min_replicas,
            max_batch_size: request.max_batch_size,
            per_replica_mib: mib_rounded_up(
                request.memory.per_replica_bytes(request.max_batch_size),
            ),
            weights_mib: mib_rounded_up(request.memory.weights_bytes),
            kv_cache_mib: mib_rounded_up(request.memory.kv_cache_bytes(request.max_batch_size)),
            reserve_mib: mib_rounded_up(self.reserve_bytes),
            free,
            placeable,
        }
    }
}

/// Exactly `count` GPUs, each with the class's name, memory (within tolerance) and compute
/// capability.
fn check_class(
    device_type: &str,
    requirement: &GpuRequirement,
    gpus: &[Gpu],
) -> Result<(), AdmissionError> {
    let count_matches = u32::try_from(gpus.len()).is_ok_and(|n| n == requirement.count);
    let matches = |gpu: &Gpu| {
        gpu.name.contains(&requirement.name_contains)
            && requirement.memory_matches(mib(gpu.memory.total_bytes))
    };
    let all_match = gpus.iter().all(matches);
    let capability_matches = gpus
        .iter()
        .all(|gpu| gpu.compute_capability == requirement.compute_capability);
    if count_matches && all_match && capability_matches {
        return Ok(());
    }
    // Name the compute capability only when it is what differs; otherwise it is noise.
    let show_capability = count_matches && all_match;
    let requested = if show_capability {
        format!(
            "{requirement}, compute capability {}",
            requirement.compute_capability
        )
    } else {
        requirement.to_string()
    };
    Err(AdmissionError::DeviceMismatch {
        device_type: device_type.to_owned(),
        requested,
        reported: describe_gpus(gpus, show_capability),
    })
}

/// MiB for a need: rounded up, so a need is never shown smaller than it is.
fn mib_rounded_up(bytes: u64) -> u64 {
    bytes.div_ceil(MIB)
}
