//! The same inventory and admission code against the host's real NVML driver. On a host
//! without one (CI) the test passes after printing `SKIPPED: ...` with the reason (shown
//! without `--nocapture`, see `skip.rs`); on a GPU host it runs:
//! `cargo test -p gpu-agent --test gpu real_nvml -- --nocapture`.

use gpu_agent::gpu::{
    AdmissionPolicy, AdmissionRequest, ClassHardware, DeviceCatalog, GpuConfig, GpuInventory,
    InventoryState, InventoryView, MemoryNeed, MIB,
};

#[test]
fn the_real_driver_reports_its_gpus_and_admission_names_them() {
    let config = GpuConfig::default();
    let inventory = GpuInventory::open(&config.nvml_library);
    let state = inventory.refresh();
    let host = match &*state {
        InventoryState::Available(host) => host,
        InventoryState::NvmlUnavailable { reason } => {
            crate::skip::report_skip(
                "the_real_driver_reports_its_gpus_and_admission_names_them",
                &format!("no NVIDIA driver on this host ({reason})"),
            );
            return;
        }
    };
    let view = InventoryView::from(&*state);
    println!(
        "{}",
        serde_json::to_string_pretty(&view).unwrap_or_default()
    );
    println!("{}", view.summary_line());

    assert!(!host.gpus.is_empty(), "a GPU host reports GPUs");
    assert!(!host.driver_version.is_empty());
    for gpu in &host.gpus {
        assert!(!gpu.name.is_empty());
        assert!(gpu.uuid.starts_with("GPU-"), "{}", gpu.uuid);
        assert!(gpu.memory.total_bytes >= 1024 * MIB, "{gpu:?}");
        // NVML's v2 memory struct counts driver-reserved memory apart from used and free.
        assert!(
            gpu.memory.used_bytes + gpu.memory.free_bytes <= gpu.memory.total_bytes,
            "{gpu:?}"
        );
        assert!(gpu.compute_capability.major >= 3, "{gpu:?}");
    }

    // Each GPU class either is this host or is refused naming what the driver reports.
    let catalog = DeviceCatalog::built_in(false).expect("built-in catalog");
    let policy = AdmissionPolicy::for_build(&config, true);
    for class in catalog
        .classes()
        .filter(|c| c.hardware != ClassHardware::Cpu)
    {
        let request = AdmissionRequest {
            class,
            memory: MemoryNeed {
                weights_bytes: 500 * MIB,
                kv_bytes_per_slot: 72 * MIB,
            },
            max_batch_size: 16,
            min_replicas: 1,
            max_replicas: 1,
        };
        match policy.admit(&request, &state) {
            Ok(placement) => println!("{}: admitted, {placement:?}", class.name),
            Err(error) => {
                println!("{}: {}: {error}", class.name, error.code());
                assert_eq!(error.code(), "DEVICE_MISMATCH", "{error}");
                assert!(error.to_string().contains(&host.gpus[0].name), "{error}");
            }
        }
    }
}
