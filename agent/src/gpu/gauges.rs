//! GPU memory gauges for `/metrics` (`docs/api.md` § Metrics), through the `metrics` facade.

use metrics::{describe_gauge, gauge, Unit};

use super::device::InventoryState;

pub const GPU_MEMORY_USED_BYTES: &str = "gpu_agent_gpu_memory_used_bytes";
pub const GPU_MEMORY_TOTAL_BYTES: &str = "gpu_agent_gpu_memory_total_bytes";

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
}

/// Sets the gauges from an inventory scan, labelled `gpu` (NVML index) and `name`. While
/// NVML is unavailable nothing is set: the gauges keep their last values, and the
/// unavailability shows in `/v1/gpus` and the agent's log.
pub fn record_gpu_gauges(state: &InventoryState) {
    for gpu in state.gpus() {
        let labels = [("gpu", gpu.index.to_string()), ("name", gpu.name.clone())];
        // f64 holds byte counts exactly up to 2^53 (8 PiB), beyond any GPU.
        gauge!(GPU_MEMORY_USED_BYTES, &labels).set(gpu.memory.used_bytes as f64);
        gauge!(GPU_MEMORY_TOTAL_BYTES, &labels).set(gpu.memory.total_bytes as f64);
    }
}
