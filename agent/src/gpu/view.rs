//! The inventory as `GET /v1/gpus` shows it and `gpu-agent status` summarises it.

use serde::{Deserialize, Serialize};

use super::device::{describe_groups, mib, InventoryState, MigMode};

/// Whether the agent could read NVML at the last scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NvmlStatus {
    Available,
    Unavailable,
}

/// The body of `GET /v1/gpus`. Deserializable too, so `gpu-agent status` can summarise what
/// a running agent answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryView {
    pub nvml: NvmlStatus,
    /// Why NVML is unavailable; absent when it is available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub driver_version: Option<String>,
    /// "12.4": the newest CUDA the driver supports.
    pub cuda_driver_version: Option<String>,
    pub gpus: Vec<GpuView>,
}

/// One GPU in [`InventoryView`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GpuView {
    pub index: u32,
    pub name: String,
    pub uuid: String,
    pub memory_total_bytes: u64,
    pub memory_used_bytes: u64,
    pub memory_free_bytes: u64,
    /// "8.6".
    pub compute_capability: String,
    pub mig: MigMode,
}

impl From<&InventoryState> for InventoryView {
    fn from(state: &InventoryState) -> Self {
        match state {
            InventoryState::NvmlUnavailable { reason } => InventoryView {
                nvml: NvmlStatus::Unavailable,
                reason: Some(reason.clone()),
                driver_version: None,
                cuda_driver_version: None,
                gpus: Vec::new(),
            },
            InventoryState::Available(host) => InventoryView {
                nvml: NvmlStatus::Available,
                reason: None,
                driver_version: Some(host.driver_version.clone()),
                cuda_driver_version: host.cuda_driver_version.map(|v| v.to_string()),
                gpus: host
                    .gpus
                    .iter()
                    .map(|gpu| GpuView {
                        index: gpu.index,
                        name: gpu.name.clone(),
                        uuid: gpu.uuid.clone(),
                        memory_total_bytes: gpu.memory.total_bytes,
                        memory_used_bytes: gpu.memory.used_bytes,
                        memory_free_bytes: gpu.memory.free_bytes,
                        compute_capability: gpu.compute_capability.to_string(),
                        mig: gpu.mig,
                    })
                    .collect(),
            },
        }
    }
}

impl InventoryView {
    /// One line for `gpu-agent status`, e.g.
    /// "GPUs: 4× Tesla T4 (15360 MiB), 61440 MiB free of 61440 MiB; driver 550.54.15, CUDA 12.4".
    pub fn summary_line(&self) -> String {
        if self.nvml == NvmlStatus::Unavailable {
            let reason = self.reason.as_deref().unwrap_or("no reason given");
            return format!("GPUs: NVML unavailable ({reason})");
        }
        let models = describe_models(&self.gpus);
        let free_mib: u64 = self.gpus.iter().map(|gpu| mib(gpu.memory_free_bytes)).sum();
        let total_mib: u64 = self
            .gpus
            .iter()
            .map(|gpu| mib(gpu.memory_total_bytes))
            .sum();
        let driver = self.driver_version.as_deref().unwrap_or("unknown");
        let cuda = match &self.cuda_driver_version {
            Some(version) => format!(", CUDA {version}"),
            None => String::new(),
        };
        if self.gpus.is_empty() {
            return format!("GPUs: none; driver {driver}{cuda}");
        }
        format!("GPUs: {models}, {free_mib} MiB free of {total_mib} MiB; driver {driver}{cuda}")
    }
}

/// The same grouping admission messages use, from the wire view.
fn describe_models(gpus: &[GpuView]) -> String {
    describe_groups(gpus.iter().map(|gpu| {
        (
            gpu.name.as_str(),
            format!("{} MiB", mib(gpu.memory_total_bytes)),
        )
    }))
}
