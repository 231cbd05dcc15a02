//! The `[gpu]` table of the agent's config.

use std::path::PathBuf;

use serde::Deserialize;

/// Where models of GPU device classes run, as configured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Execution {
    /// On the admitted GPUs through CUDA; a build without the `cuda` feature refuses GPU
    /// device classes rather than silently running them on the CPU.
    #[default]
    Auto,
    /// Check the device class with NVML exactly as for CUDA, then run on the CPU
    /// (hosts or builds without CUDA, CI).
    Cpu,
}

/// `[gpu]` in `agent.toml`. Every key has a default, so an absent table is valid.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GpuConfig {
    /// Path or file name of the NVML library, handed to the dynamic loader.
    pub nvml_library: PathBuf,
    pub execution: Execution,
    /// Memory kept free on every GPU used by a deployment, for the CUDA context and
    /// workspace buffers that the weights + KV cache estimate does not count.
    pub reserve_mib: u64,
    /// A device-class catalog to use instead of the one built into the binary
    /// (`configs/device-classes.toml` at build time).
    pub device_classes: Option<PathBuf>,
}

impl Default for GpuConfig {
    fn default() -> Self {
        GpuConfig {
            nvml_library: PathBuf::from("libnvidia-ml.so.1"),
            execution: Execution::Auto,
            reserve_mib: 512,
            device_classes: None,
        }
    }
}
