//! CHECKING_DEVICE: a deploy runs only on the device class it asked for, and only where its
//! replicas fit in free GPU memory (`docs/gpu-admission.md`).

use crate::common::{admit_on, cpu_execution_policy, cuda_policy, Deploy, FakeHost};
use fake_nvml::FakeHardware;
use gpu_agent::gpu::{
    AdmissionError, AdmissionPolicy, ClassHardware, DeviceCatalog, Execution, GpuConfig,
    GpuExecution, GpuInventory, ReplicaDevice,
};

/// A fake-nvml preset for one GPU model: `count` of them.
type GpuModel = fn(usize) -> FakeHardware;

/// The hardware each catalog class stands for: (deviceType, GPU model preset, GPU count).
/// Presets carry real drivers' names and memory, independent of the catalog file.
const CLASS_HARDWARE: &[(&str, GpuModel, usize)] = &[
    ("g4dn.xlarge", FakeHardware::t4, 1),
    ("g4dn.12xlarge", FakeHardware::t4, 4),
    ("g4dn.metal", FakeHardware::t4, 8),
    ("g5.xlarge", FakeHardware::a10g, 1),
    ("g5.2xlarge", FakeHardware::a10g, 1),
    ("g5.12xlarge", FakeHardware::a10g, 4),
    ("g5.48xlarge", FakeHardware::a10g, 8),
    ("g6e.xlarge", FakeHardware::l40s, 1),
];

const GPU_MODELS: &[fn(usize) -> FakeHardware] =
    &[FakeHardware::t4, FakeHardware::a10g, FakeHardware::l40s];

fn gpu_name(model: GpuModel) -> String {
    model(1).gpus[0].name.clone()
}

/// Another GPU model than `model`, for the wrong-name cases.
fn other_model(model: GpuModel) -> GpuModel {
    *GPU_MODELS
        .iter()
        .find(|candidate| gpu_name(**candidate) != gpu_name(model))
        .expect("at least two GPU models")
}

/// A different GPU count, for the wrong-count cases.
fn other_count(count: usize) -> usize {
    if count == 8 {
        4
    } else {
        count * 4
    }
}

fn expect_error(result: Result<gpu_agent::gpu::Placement, AdmissionError>) -> AdmissionError {
    match result {
        Ok(placement) => panic!("expected admission to fail, got {placement:?}"),
        Err(error) => error,
    }
}

#[test]
fn the_class_table_covers_every_gpu_class_in_the_catalog() {
    let catalog = DeviceCatalog::built_in(false).expect("built-in catalog");
    let gpu_classes: Vec<&str> = catalog
        .classes()
        .filter(|class| class.hardware != ClassHardware::Cpu)
        .map(|class| class.name.as_str())
        .collect();
    let tested: Vec<&str> = CLASS_HARDWARE.iter().map(|(name, _, _)| *name).collect();
    assert_eq!(gpu_classes, tested);
}

#[test]
fn every_device_class_is_admitted_on_its_matching_hardware() {
    for (device_type, model, count) in CLASS_HARDWARE {
        let host = FakeHost::new(&model(*count));
        let placement = host
            .admit(
                device_type,
                &Deploy::gpt2_small().replicas(1, 1),
                &cuda_policy(),
            )
            .unwrap_or_else(|error| {
                panic!("{device_type} on {count}× {}: {error}", gpu_name(*model))
            });
        assert_eq!(
            placement.initial(1),
            [ReplicaDevice::Cuda { gpu: 0 }],
            "{device_type}"
        );
        assert_eq!(placement.capacity().len(), *count, "{device_type}");
    }
}

#[test]
fn every_device_class_fails_with_device_mismatch_on_another_gpu_model() {
    for (device_type, model, count) in CLASS_HARDWARE {
        let wrong = other_model(*model);
        let host = FakeHost::new(&wrong(*count));
        let error = expect_error(host.admit(device_type, &Deploy::gpt2_small(), &cuda_policy()));
        assert_eq!(error.code(), "DEVICE_MISMATCH", "{device_type}: {error}");
        let message = error.to_string();
        assert!(
            message.starts_with(&format!(
                "requested {device_type} ({count}× {}",
                gpu_name(*model)
            )),
            "{message}"
        );
        assert!(
            message.contains(&format!("but NVML reports {count}× {}", gpu_name(wrong))),
            "{message}"
        );
    }
}

#[test]
fn every_device_class_fails_with_device_mismatch_on_another_gpu_count() {
    for (device_type, model, count) in CLASS_HARDWARE {
        let wrong_count = other_count(*count);
        let host = FakeHost::new(&model(wrong_count));
        let error = expect_error(host.admit(device_type, &Deploy::gpt2_small(), &cuda_policy()));
        assert_eq!(error.code(), "DEVICE_MISMATCH", "{device_type}: {error}");
        assert!(
            error.to_string().contains(&format!(
                "but NVML reports {wrong_count}× {}",
                gpu_name(*model)
            )),
            "{error}"
        );
    }
}

#[test]
fn a10g_requested_on_a_t4_names_both_in_one_sentence() {
    let host = FakeHost::new(&FakeHardware::t4(1));
    let error = expect_error(host.admit("g5.xlarge", &Deploy::gpt2_small(), &cuda_policy()));
    assert_eq!(
        error.to_string(),
        "requested g5.xlarge (1× NVIDIA A10G, 23028 MiB) but NVML reports 1× Tesla T4 (15360 MiB)"
    );
}

#[test]
fn a_host_with_mixed_gpus_is_reported_group_by_group() {
    let mut hardware = FakeHardware::t4(2);
    hardware.gpus[1] = FakeHardware::a10g(1).gpus.remove(0);
    let host = FakeHost::new(&hardware);
    let error = expect_error(host.admit("g4dn.12xlarge", &Deploy::gpt2_small(), &cuda_policy()));
    assert_eq!(
        error.to_string(),
        "requested g4dn.12xlarge (4× Tesla T4, 15360 MiB) but NVML reports 1× Tesla T4 (15360 MiB) + 1× NVIDIA A10G (23028 MiB)"
    );
}

#[test]
fn total_memory_within_ten_percent_of_the_class_matches_and_beyond_does_not() {
    // 23028 MiB − 10 % = 20725.2 MiB.
    for (total_mib, admitted) in [
        (23028, true),
        (25330, true),
        (20726, true),
        (20725, false),
        (25331, false),
    ] {
        let mut hardware = FakeHardware::a10g(1);
        hardware.gpus[0].memory_total_mib = total_mib;
        let host = FakeHost::new(&hardware);
        let result = host.admit("g5.xlarge", &Deploy::needing_mib(1, 0, 1), &cuda_policy());
        assert_eq!(result.is_ok(), admitted, "{total_mib} MiB: {result:?}");
        if let Err(error) = result {
            assert_eq!(error.code(), "DEVICE_MISMATCH");
            assert!(
                error
                    .to_string()
                    .ends_with(&format!("1× NVIDIA A10G ({total_mib} MiB)")),
                "{error}"
            );
        }
    }
}

#[test]
fn a_gpu_with_the_right_name_but_another_compute_capability_is_a_mismatch() {
    let mut hardware = FakeHardware::a10g(1);
    hardware.gpus[0].compute_capability = (8, 0);
    let host = FakeHost::new(&hardware);
    let error = expect_error(host.admit("g5.xlarge", &Deploy::gpt2_small(), &cuda_policy()));
    assert_eq!(
        error.to_string(),
        "requested g5.xlarge (1× NVIDIA A10G, 23028 MiB, compute capability 8.6) \
         but NVML reports 1× NVIDIA A10G (23028 MiB, compute capability 8.0)"
    );
}

#[test]
fn a_nearly_full_gpu_fails_with_insufficient_gpu_memory_naming_need_and_free() {
    let host = FakeHost::new(&FakeHardware::full_a10g());
    let error = expect_error(host.admit(
        "g5.xlarge",
        &Deploy::needing_mib(500, 64, 16),
        &cuda_policy(),
    ));
    assert_eq!(error.code(), "INSUFFICIENT_GPU_MEMORY");
    assert_eq!(
        error.to_string(),
        "g5.xlarge: minReplicas = 1 need 1524 MiB each (weights 500 MiB + KV cache 1024 MiB for maxBatchSize 16) \
         plus 512 MiB reserved per GPU, but NVML reports 128 MiB free of 23028 MiB on GPU 0: room for 0"
    );
}

#[test]
fn free_memory_must_hold_min_replicas_and_the_reserve() {
    // 1024 MiB per replica; free = 512 MiB reserve + 2 replicas exactly.
    let hardware = FakeHardware::t4(1).with_memory_used(0, 15360 - 512 - 2 * 1024);
    let host = FakeHost::new(&hardware);
    let deploy = Deploy::needing_mib(512, 32, 16);

    let placement = host
        .admit("g4dn.xlarge", &deploy.replicas(2, 5), &cuda_policy())
        .expect("two replicas fit exactly");
    assert_eq!(placement.max_replicas(), 2);

    let error = expect_error(host.admit("g4dn.xlarge", &deploy.replicas(3, 5), &cuda_policy()));
    assert_eq!(error.code(), "INSUFFICIENT_GPU_MEMORY");
    assert!(
        error
            .to_string()
            .ends_with("but NVML reports 2560 MiB free of 15360 MiB on GPU 0: room for 2"),
        "{error}"
    );
}

#[test]
fn a_larger_reserve_from_config_leaves_less_room() {
    let hardware = FakeHardware::t4(1).with_memory_used(0, 15360 - 4096);
    let host = FakeHost::new(&hardware);
    let deploy = Deploy::needing_mib(1024, 0, 1);
    let policy_with_reserve = |reserve_mib| {
        AdmissionPolicy::for_build(
            &GpuConfig {
                reserve_mib,
                ..GpuConfig::default()
            },
            true,
        )
    };

    let default_reserve = host.admit(
        "g4dn.xlarge",
        &deploy.replicas(1, 10),
        &policy_with_reserve(512),
    );
    assert_eq!(default_reserve.map(|p| p.max_replicas()), Ok(3));
    let large_reserve = host.admit(
        "g4dn.xlarge",
        &deploy.replicas(1, 10),
        &policy_with_reserve(2048),
    );
    assert_eq!(large_reserve.map(|p| p.max_replicas()), Ok(2));
}

#[test]
fn a_missing_nvml_library_fails_gpu_classes_with_nvml_unavailable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let inventory = GpuInventory::open(dir.path().join("libnvidia-ml.so.1"));
    let error = expect_error(admit_on(
        &inventory,
        "g4dn.xlarge",
        &Deploy::gpt2_small(),
        &cuda_policy(),
    ));
    assert_eq!(error.code(), "NVML_UNAVAILABLE");
    assert!(
        error.to_string().starts_with(
            "requested g4dn.xlarge (1× Tesla T4, 15360 MiB) but NVML is unavailable: cannot load the NVML library"
        ),
        "{error}"
    );
}

#[test]
fn a_driver_that_fails_to_initialise_fails_gpu_classes_with_nvml_unavailable() {
    let host = FakeHost::new(&FakeHardware::failing_driver());
    let error = expect_error(host.admit("g6e.xlarge", &Deploy::gpt2_small(), &cuda_policy()));
    assert_eq!(error.code(), "NVML_UNAVAILABLE");
    assert!(
        error.to_string().ends_with("NVIDIA driver is not loaded"),
        "{error}"
    );
}

#[test]
fn the_cpu_class_is_admitted_without_nvml() {
    let host = FakeHost::new(&FakeHardware::failing_driver());
    let placement = host
        .admit("cpu", &Deploy::gpt2_small().replicas(2, 3), &cuda_policy())
        .expect("cpu class needs no GPU");
    assert_eq!(placement.initial(2), [ReplicaDevice::Cpu { gpu: None }; 2]);
    assert_eq!(placement.max_replicas(), 3);
}

#[test]
fn a_gpu_class_on_a_build_without_cuda_fails_with_cuda_not_compiled() {
    let host = FakeHost::new(&FakeHardware::a10g(1));
    let policy = AdmissionPolicy::for_build(&GpuConfig::default(), false);
    let error = expect_error(host.admit("g5.xlarge", &Deploy::gpt2_small(), &policy));
    assert_eq!(error.code(), "CUDA_NOT_COMPILED");
    assert!(error.to_string().contains("execution = \"cpu\""), "{error}");
}

#[test]
fn cpu_execution_checks_the_gpus_and_runs_replicas_on_the_cpu() {
    let host = FakeHost::new(&FakeHardware::a10g(4));
    let placement = host
        .admit(
            "g5.12xlarge",
            &Deploy::gpt2_small().replicas(2, 2),
            &cpu_execution_policy(),
        )
        .expect("matching hardware");
    assert_eq!(
        placement.initial(2),
        [
            ReplicaDevice::Cpu { gpu: Some(0) },
            ReplicaDevice::Cpu { gpu: Some(1) }
        ]
    );

    // The device check still applies.
    let t4_host = FakeHost::new(&FakeHardware::t4(4));
    let error = expect_error(t4_host.admit(
        "g5.12xlarge",
        &Deploy::gpt2_small(),
        &cpu_execution_policy(),
    ));
    assert_eq!(error.code(), "DEVICE_MISMATCH");
}

#[test]
fn cpu_execution_also_checks_memory_fit() {
    let host = FakeHost::new(&FakeHardware::full_a10g());
    let error =
        expect_error(host.admit("g5.xlarge", &Deploy::gpt2_small(), &cpu_execution_policy()));
    assert_eq!(error.code(), "INSUFFICIENT_GPU_MEMORY");
}

#[test]
fn execution_auto_means_cuda_only_in_a_cuda_build_and_cpu_always_means_cpu() {
    let cases = [
        (Execution::Auto, true, GpuExecution::Cuda),
        (Execution::Auto, false, GpuExecution::CudaNotCompiled),
        (Execution::Cpu, true, GpuExecution::Cpu),
        (Execution::Cpu, false, GpuExecution::Cpu),
    ];
    for (execution, cuda_compiled, expected) in cases {
        let config = GpuConfig {
            execution,
            ..GpuConfig::default()
        };
        assert_eq!(
            AdmissionPolicy::for_build(&config, cuda_compiled).execution,
            expected,
            "{execution:?} with cuda_compiled = {cuda_compiled}"
        );
    }
}
