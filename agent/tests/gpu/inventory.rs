//! The inventory reads what NVML reports, through nvml-wrapper and the fake libnvidia-ml.

use std::sync::Arc;
use std::thread;

use crate::common::FakeHost;
use fake_nvml::{FakeHardware, FakeMig};
use gpu_agent::gpu::{
    ComputeCapability, CudaDriverVersion, GpuInventory, GpuMemory, InventoryState, MigMode, MIB,
};

fn available(state: &InventoryState) -> &gpu_agent::gpu::GpuHost {
    match state {
        InventoryState::Available(host) => host,
        InventoryState::NvmlUnavailable { reason } => panic!("NVML unavailable: {reason}"),
    }
}

fn unavailable_reason(state: &InventoryState) -> &str {
    match state {
        InventoryState::NvmlUnavailable { reason } => reason,
        InventoryState::Available(host) => panic!("expected NVML to be unavailable, got {host:?}"),
    }
}

#[test]
fn one_t4_is_reported_with_name_uuid_memory_capability_and_driver() {
    let hardware = FakeHardware::t4(1).with_memory_used(0, 300);
    let host = FakeHost::new(&hardware);
    let state = host.inventory.state();
    let reported = available(&state);

    assert_eq!(reported.driver_version, "550.54.15");
    assert_eq!(
        reported.cuda_driver_version,
        Some(CudaDriverVersion {
            major: 12,
            minor: 4
        })
    );
    assert_eq!(reported.gpus.len(), 1);
    let gpu = &reported.gpus[0];
    assert_eq!(gpu.index, 0);
    assert_eq!(gpu.name, "Tesla T4");
    assert_eq!(gpu.uuid, hardware.gpus[0].uuid);
    assert_eq!(
        gpu.memory,
        GpuMemory {
            total_bytes: 15360 * MIB,
            used_bytes: 300 * MIB,
            free_bytes: 15060 * MIB,
        }
    );
    assert_eq!(
        gpu.compute_capability,
        ComputeCapability { major: 7, minor: 5 }
    );
    assert_eq!(gpu.mig, MigMode::Unsupported);
}

#[test]
fn eight_a10gs_are_reported_in_index_order_with_distinct_uuids() {
    let host = FakeHost::new(&FakeHardware::a10g(8));
    let state = host.inventory.state();
    let gpus = &available(&state).gpus;

    assert_eq!(
        gpus.iter().map(|g| g.index).collect::<Vec<_>>(),
        (0..8).collect::<Vec<_>>()
    );
    assert!(gpus
        .iter()
        .all(|g| g.name == "NVIDIA A10G" && g.memory.total_bytes == 23028 * MIB));
    let mut uuids: Vec<&str> = gpus.iter().map(|g| g.uuid.as_str()).collect();
    uuids.sort_unstable();
    uuids.dedup();
    assert_eq!(uuids.len(), 8);
}

#[test]
fn mig_mode_is_reported_where_the_gpu_supports_it() {
    let mut hardware = FakeHardware::uniform("NVIDIA A100-SXM4-40GB", 40960, (8, 0), 3);
    hardware.gpus[1].mig = FakeMig::Disabled;
    hardware.gpus[2].mig = FakeMig::Enabled;
    let host = FakeHost::new(&hardware);
    let state = host.inventory.state();

    let modes: Vec<MigMode> = available(&state).gpus.iter().map(|g| g.mig).collect();
    assert_eq!(
        modes,
        [MigMode::Unsupported, MigMode::Disabled, MigMode::Enabled]
    );
}

#[test]
fn refresh_sees_memory_taken_by_another_process() {
    let host = FakeHost::new(&FakeHardware::l40s(1));
    assert_eq!(
        available(&host.inventory.state()).gpus[0].memory.used_bytes,
        0
    );

    host.fake
        .set_hardware(&FakeHardware::l40s(1).with_memory_used(0, 40000))
        .expect("rewrite the fake hardware");
    // The last scan is kept until the next refresh.
    assert_eq!(
        available(&host.inventory.state()).gpus[0].memory.used_bytes,
        0
    );

    let refreshed = host.inventory.refresh();
    let memory = available(&refreshed).gpus[0].memory;
    assert_eq!(memory.used_bytes, 40000 * MIB);
    assert_eq!(memory.free_bytes, 6068 * MIB);
    assert_eq!(host.inventory.state(), refreshed);
}

#[test]
fn a_missing_library_is_nvml_unavailable_naming_the_path() {
    let missing = tempfile::tempdir()
        .expect("temp dir")
        .path()
        .join("libnvidia-ml.so.1");
    let inventory = GpuInventory::open(&missing);
    let state = inventory.state();

    let reason = unavailable_reason(&state);
    assert!(reason.contains("cannot load the NVML library"), "{reason}");
    assert!(reason.contains(&missing.display().to_string()), "{reason}");
    assert!(state.gpus().is_empty());
}

#[test]
fn a_driver_that_fails_to_initialise_is_nvml_unavailable() {
    let host = FakeHost::new(&FakeHardware::failing_driver());
    let state = host.inventory.state();

    let reason = unavailable_reason(&state);
    assert!(reason.contains("failed to initialise"), "{reason}");
    assert!(reason.contains("NVIDIA driver is not loaded"), "{reason}");
}

#[test]
fn a_library_that_is_not_nvml_is_nvml_unavailable() {
    // glibc is loadable everywhere and exports no NVML symbol.
    let inventory = GpuInventory::open("libc.so.6");
    let state = inventory.state();

    let reason = unavailable_reason(&state);
    assert!(
        reason.contains("libc.so.6 is not a usable NVML library"),
        "{reason}"
    );
}

#[test]
fn a_driver_loaded_after_start_is_picked_up_by_refresh() {
    let host = FakeHost::new(&FakeHardware::failing_driver());
    unavailable_reason(&host.inventory.state());

    host.fake
        .set_hardware(&FakeHardware::t4(4))
        .expect("rewrite the fake hardware");
    let state = host.inventory.refresh();

    assert_eq!(available(&state).gpus.len(), 4);
}

#[test]
fn a_gpu_fallen_off_the_bus_makes_nvml_unavailable_naming_it_until_it_answers_again() {
    let host = FakeHost::new(&FakeHardware::t4(4));
    let mut lost = FakeHardware::t4(4);
    lost.gpus[3].lost = true;
    host.fake
        .set_hardware(&lost)
        .expect("rewrite the fake hardware");

    let state = host.inventory.refresh();
    let reason = unavailable_reason(&state);
    assert!(reason.contains("GPU 3's name"), "{reason}");
    assert!(reason.contains("fell off the bus"), "{reason}");

    host.fake
        .set_hardware(&FakeHardware::t4(4))
        .expect("rewrite the fake hardware");
    assert_eq!(available(&host.inventory.refresh()).gpus.len(), 4);
}

#[test]
fn the_inventory_is_shared_across_threads() {
    let host = Arc::new(FakeHost::new(&FakeHardware::t4(8)));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let host = Arc::clone(&host);
            thread::spawn(move || {
                (0..25)
                    .map(|_| host.inventory.refresh().gpus().len())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for reader in readers {
        let counts = reader.join().expect("reader thread");
        assert!(counts.iter().all(|n| *n == 8), "{counts:?}");
    }
}
