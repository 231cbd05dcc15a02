//! GPU inventory (NVML), device-class catalog, admission checks and replica placement.
//!
//! The flow in phase CHECKING_DEVICE: look the deploy's `deviceType` up in the
//! [`DeviceCatalog`], [`GpuInventory::refresh`] for current free memory, then
//! [`AdmissionPolicy::admit`] → a [`Placement`] whose [`Placement::next_replica`] says where
//! each replica runs, or an [`AdmissionError`] whose `code()` the deployment reports.
//! Decisions are written down in `docs/gpu-admission.md`.

mod admission;
mod catalog;
mod config;
mod device;
mod gauges;
mod inventory;
mod placement;
mod view;

pub use admission::{
    AdmissionError, AdmissionPolicy, AdmissionRequest, GpuExecution, MemoryNeed, CUDA_COMPILED,
    DEVICE_MISMATCH, NVML_UNAVAILABLE,
};
pub use catalog::{
    CatalogError, ClassHardware, DeviceCatalog, DeviceClass, GpuRequirement, UnknownDeviceType,
    BUILT_IN_CATALOG,
};
pub use config::{Execution, GpuConfig};
pub use device::{
    ComputeCapability, ComputeCapabilityParseError, CudaDriverVersion, Gpu, GpuHost, GpuMemory,
    InventoryState, MigMode, MIB,
};
pub use gauges::{
    describe_gpu_gauges, record_gpu_gauges, GPU_MEMORY_TOTAL_BYTES, GPU_MEMORY_USED_BYTES,
    NVML_AVAILABLE,
};
pub use inventory::GpuInventory;
pub use placement::{next_gpu, ExecutionDevice, GpuCapacity, Placement, ReplicaDevice};
pub use view::{GpuView, InventoryView, NvmlStatus};
