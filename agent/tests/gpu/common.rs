//! Shared by the `gpu_*` tests: a host with fake GPUs, read through the real nvml-wrapper.
#![allow(dead_code)] // not every helper is used by every module

use fake_nvml::{FakeHardware, FakeNvml};
use gpu_agent::gpu::{
    AdmissionError, AdmissionPolicy, AdmissionRequest, DeviceCatalog, Execution, GpuConfig,
    GpuInventory, MemoryNeed, Placement, MIB,
};

/// An inventory reading a private fake library. Fields drop in order: the inventory (and
/// its NVML handle) before the fake's directory.
pub struct FakeHost {
    pub inventory: GpuInventory,
    pub fake: FakeNvml,
}

impl FakeHost {
    pub fn new(hardware: &FakeHardware) -> Self {
        let fake = hardware.install().expect("install the fake NVML library");
        let inventory = GpuInventory::open(fake.library());
        FakeHost { inventory, fake }
    }

    /// Admits `device_type` from the built-in catalog on this host's freshly refreshed state.
    pub fn admit(
        &self,
        device_type: &str,
        deploy: &Deploy,
        policy: &AdmissionPolicy,
    ) -> Result<Placement, AdmissionError> {
        admit_on(&self.inventory, device_type, deploy, policy)
    }
}

pub fn admit_on(
    inventory: &GpuInventory,
    device_type: &str,
    deploy: &Deploy,
    policy: &AdmissionPolicy,
) -> Result<Placement, AdmissionError> {
    let catalog = DeviceCatalog::built_in(true).expect("built-in catalog parses");
    let class = catalog
        .lookup(device_type)
        .expect("device type is in the catalog");
    let request = AdmissionRequest {
        class,
        memory: deploy.memory,
        max_batch_size: deploy.max_batch_size,
        min_replicas: deploy.min_replicas,
        max_replicas: deploy.max_replicas,
    };
    policy.admit(&request, &inventory.refresh())
}

/// The parts of a deploy that admission reads.
#[derive(Clone, Copy, Debug)]
pub struct Deploy {
    pub memory: MemoryNeed,
    pub max_batch_size: u32,
    pub min_replicas: u32,
    pub max_replicas: u32,
}

impl Deploy {
    /// GPT-2 small in f32 (≈ 500 MB of weights, 72 MiB of KV cache per 1024-token slot),
    /// maxBatchSize 16, one replica.
    pub fn gpt2_small() -> Self {
        Deploy {
            memory: MemoryNeed {
                weights_bytes: 498 * 1_000_000,
                kv_bytes_per_slot: 12 * 2 * 1024 * 768 * 4,
            },
            max_batch_size: 16,
            min_replicas: 1,
            max_replicas: 1,
        }
    }

    /// A model needing exactly `weights_mib` + `kv_mib_per_slot` × slots.
    pub fn needing_mib(weights_mib: u64, kv_mib_per_slot: u64, max_batch_size: u32) -> Self {
        Deploy {
            memory: MemoryNeed {
                weights_bytes: weights_mib * MIB,
                kv_bytes_per_slot: kv_mib_per_slot * MIB,
            },
            max_batch_size,
            min_replicas: 1,
            max_replicas: 1,
        }
    }

    pub fn replicas(self, min_replicas: u32, max_replicas: u32) -> Self {
        Deploy {
            min_replicas,
            max_replicas,
            ..self
        }
    }
}

/// A CUDA build with the default 512 MiB reserve.
pub fn cuda_policy() -> AdmissionPolicy {
    AdmissionPolicy::for_build(&GpuConfig::default(), true)
}

/// `[gpu] execution = "cpu"` on a build without CUDA, as in CI.
pub fn cpu_execution_policy() -> AdmissionPolicy {
    let config = GpuConfig {
        execution: Execution::Cpu,
        ..GpuConfig::default()
    };
    AdmissionPolicy::for_build(&config, false)
}
