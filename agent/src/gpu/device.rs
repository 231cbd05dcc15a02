//! What NVML reports about the host's GPUs, as plain values that outlive the NVML handle.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// Bytes in a MiB, the unit `nvidia-smi` and the device-class catalog use.
pub const MIB: u64 = 1 << 20;

/// Whole MiB in `bytes`, rounded down.
pub(crate) fn mib(bytes: u64) -> u64 {
    bytes / MIB
}

/// CUDA compute capability (`sm_86` is 8.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ComputeCapability {
    pub major: u32,
    pub minor: u32,
}

impl fmt::Display for ComputeCapability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("compute capability must be MAJOR.MINOR such as \"8.6\", given {given:?}")]
pub struct ComputeCapabilityParseError {
    pub given: String,
}

impl FromStr for ComputeCapability {
    type Err = ComputeCapabilityParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || ComputeCapabilityParseError {
            given: text.to_owned(),
        };
        let (major, minor) = text.split_once('.').ok_or_else(error)?;
        Ok(ComputeCapability {
            major: major.parse().map_err(|_| error())?,
            minor: minor.parse().map_err(|_| error())?,
        })
    }
}

impl Serialize for ComputeCapability {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ComputeCapability {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Multi-Instance GPU mode. T4, A10G and L40S have no MIG; A100/H100 do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MigMode {
    Unsupported,
    Disabled,
    Enabled,
}

/// Frame-buffer memory of one GPU, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpuMemory {
    pub total_bytes: u64,
    pub used_bytes: u64,
    pub free_bytes: u64,
}

/// One GPU at the moment of the last inventory scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gpu {
    /// NVML index (PCI bus order); see `docs/gpu-admission.md` for how it maps to CUDA.
    pub index: u32,
    pub name: String,
    pub uuid: String,
    pub memory: GpuMemory,
    pub compute_capability: ComputeCapability,
    pub mig: MigMode,
}

/// The CUDA version the driver supports (not a toolkit version).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CudaDriverVersion {
    pub major: u32,
    pub minor: u32,
}

impl CudaDriverVersion {
    /// From NVML's encoding, 1000 × major + 10 × minor (12040 is 12.4).
    pub(crate) fn from_nvml(encoded: i32) -> Option<Self> {
        let encoded = u32::try_from(encoded).ok().filter(|v| *v > 0)?;
        Some(CudaDriverVersion {
            major: encoded / 1000,
            minor: encoded % 1000 / 10,
        })
    }
}

impl fmt::Display for CudaDriverVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The driver and every GPU NVML reports, read in one scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpuHost {
    pub driver_version: String,
    /// `None` when the driver cannot say (NVML answers it through libcuda).
    pub cuda_driver_version: Option<CudaDriverVersion>,
    pub gpus: Vec<Gpu>,
}

/// The outcome of the last inventory scan. Missing NVML is a state the agent reports and
/// keeps serving in, not an error that stops it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InventoryState {
    Available(GpuHost),
    /// No library, a driver that fails to initialise, or a query that failed; `reason`
    /// names which, for operators.
    NvmlUnavailable {
        reason: String,
    },
}

impl InventoryState {
    /// The GPUs, or none when NVML is unavailable.
    pub fn gpus(&self) -> &[Gpu] {
        match self {
            InventoryState::Available(host) => &host.gpus,
            InventoryState::NvmlUnavailable { .. } => &[],
        }
    }
}

/// GPUs grouped by model as messages show them: "4× Tesla T4 (15360 MiB)", groups joined
/// with " + " in index order, or "no GPUs". With `show_capability`, each group also names
/// its compute capability.
pub(crate) fn describe_gpus(gpus: &[Gpu], show_capability: bool) -> String {
    describe_groups(gpus.iter().map(|gpu| {
        let total = mib(gpu.memory.total_bytes);
        let detail = if show_capability {
            format!("{total} MiB, compute capability {}", gpu.compute_capability)
        } else {
            format!("{total} MiB")
        };
        (gpu.name.as_str(), detail)
    }))
}

/// Counts equal (name, detail) pairs, keeping first-seen order: "2× Tesla T4 (15360 MiB)".
pub(crate) fn describe_groups<'a>(gpus: impl IntoIterator<Item = (&'a str, String)>) -> String {
    let mut groups: Vec<(&str, String, usize)> = Vec::new();
    for (name, detail) in gpus {
        match groups.iter_mut().find(|g| g.0 == name && g.1 == detail) {
            Some(group) => group.2 += 1,
            None => groups.push((name, detail, 1)),
        }
    }
    if groups.is_empty() {
        return "no GPUs".to_owned();
    }
    groups
        .iter()
        .map(|(name, detail, count)| format!("{count}× {name} ({detail})"))
        .collect::<Vec<_>>()
        .join(" + ")
}
