//! GPU memory gauges for `/metrics` (`docs/api.md` § Metrics), through the `metrics` facade.

use metrics::{describe_gauge, gauge, Unit};

use super::device::InventoryState;

pub const GPU_MEMORY_USED_BYTES: &str = "gpu_agent_gpu_memory_used_bytes";
pub const GPU_MEMORY_TOTAL_BYTES: &str = "gpu_agent_gpu_memory_total_bytes";
/// 1 when the last NVML scan succeeded, 0 when NVML was unavailable.
pub const NVML_AVAILABLE: &str = "gpu_agent_nvml_available";

/// Registers the gauges' help texts; call once after installing the recorder.
pub fn describe_gpu_gauges() {
    describe_gauge!(
        GPU_MEMORY_USED_BYTES,
        Unit::Bytes,
        "GPU memory in use as NVML reports it, per GPU index"
    );
    describe_gauge!(
        GPU_MEMORY_TOTAL_BYTES,
        Unit::Bytes,
        "Total GPU memory as NVML reports it, per GPU index"
    );
    describe_gauge!(
        NVML_AVAILABLE,
        "1 when the last NVML scan succeeded, 0 when NVML was unavailable"
    );
}

/// Sets the gauges from an inventory scan, labelled `gpu` (NVML index) and `name`. While
/// NVML is unavailable `gpu_agent_nvml_available` is 0 and the memory gauges keep their
/// last values; the reason shows in `/v1/gpus` and the agent's log.
pub fn record_gpu_gauges(state: &InventoryState) {
    let available = matches!(state, InventoryState::Available(_));
    gauge!(NVML_AVAILABLE).set(if available { 1.0 } else { 0.0 });
    for gpu in state.gpus() {
        let labels = [("gpu", gpu.index.to_string()), ("name", gpu.name.clone())];
        // f64 holds byte counts exactly up to 2^53 (8 PiB), beyond any GPU.
        gauge!(GPU_MEMORY_USED_BYTES, &labels).set(gpu.memory.used_bytes as f64);
        gauge!(GPU_MEMORY_TOTAL_BYTES, &labels).set(gpu.memory.total_bytes as f64);
    }
}
