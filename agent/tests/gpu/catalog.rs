//! The device-class catalog file and the `[gpu]` config table.

use std::fs;

use gpu_agent::gpu::{
    CatalogError, ClassHardware, ComputeCapability, DeviceCatalog, Execution, GpuConfig,
    GpuRequirement, UnknownDeviceType,
};

/// The deviceType enum (`docs/api.md` § Validation table), in the catalog's order.
const SPEC_DEVICE_TYPES: [&str; 8] = [
    "g4dn.xlarge",
    "g4dn.12xlarge",
    "g4dn.metal",
    "g5.xlarge",
    "g5.2xlarge",
    "g5.12xlarge",
    "g5.48xlarge",
    "g6e.xlarge",
];

#[test]
fn the_built_in_catalog_accepts_exactly_the_spec_device_types() {
    let catalog = DeviceCatalog::built_in(false).expect("built-in catalog");
    assert_eq!(catalog.names(), SPEC_DEVICE_TYPES);
}

#[test]
fn the_cpu_class_is_accepted_only_when_allow_cpu_is_set() {
    let allowed = DeviceCatalog::built_in(true).expect("built-in catalog");
    assert_eq!(allowed.names().last(), Some(&"cpu"));
    assert_eq!(
        allowed.lookup("cpu").map(|c| &c.hardware),
        Ok(&ClassHardware::Cpu)
    );

    let refused = DeviceCatalog::built_in(false).expect("built-in catalog");
    let error = refused.lookup("cpu").expect_err("cpu refused");
    assert!(matches!(error, UnknownDeviceType::CpuNotAllowed { .. }));
    assert!(error.to_string().contains("allow_cpu = true"), "{error}");
}

#[test]
fn an_unknown_device_type_is_refused_with_the_accepted_names() {
    let catalog = DeviceCatalog::built_in(false).expect("built-in catalog");
    let error = catalog.lookup("p4d.24xlarge").expect_err("unknown");
    assert_eq!(
        error.to_string(),
        format!(
            "deviceType must be one of {}; given \"p4d.24xlarge\"",
            SPEC_DEVICE_TYPES.join(", ")
        )
    );
}

#[test]
fn g5_xlarge_is_one_a10g_with_23028_mib_at_sm_86_and_ten_percent_tolerance() {
    let catalog = DeviceCatalog::built_in(false).expect("built-in catalog");
    let class = catalog.lookup("g5.xlarge").expect("g5.xlarge");
    assert_eq!(
        class.gpus(),
        Some(&GpuRequirement {
            count: 1,
            name_contains: "NVIDIA A10G".to_owned(),
            memory_mib: 23028,
            compute_capability: ComputeCapability { major: 8, minor: 6 },
            memory_tolerance_percent: 10,
        })
    );
}

#[test]
fn a_catalog_named_in_the_config_replaces_the_built_in_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("device-classes.toml");
    fs::write(
        &path,
        r#"
memory_tolerance_percent = 5
[[device_class]]
device_type = "p4d.24xlarge"
gpu_count = 8
gpu_name = "NVIDIA A100-SXM4-40GB"
memory_mib = 40960
compute_capability = "8.0"
"#,
    )
    .expect("write catalog");
    let config = GpuConfig {
        device_classes: Some(path),
        ..GpuConfig::default()
    };

    let catalog = DeviceCatalog::load(&config, false).expect("custom catalog");
    assert_eq!(catalog.names(), ["p4d.24xlarge"]);
    assert_eq!(
        catalog
            .lookup("p4d.24xlarge")
            .ok()
            .and_then(|c| c.gpus())
            .map(|g| g.memory_tolerance_percent),
        Some(5)
    );
}

#[test]
fn a_missing_catalog_file_is_an_error_naming_the_path() {
    let config = GpuConfig {
        device_classes: Some("/nonexistent/device-classes.toml".into()),
        ..GpuConfig::default()
    };
    let error = DeviceCatalog::load(&config, false).expect_err("missing file");
    assert!(matches!(error, CatalogError::Read { .. }));
    assert!(
        error
            .to_string()
            .contains("/nonexistent/device-classes.toml"),
        "{error}"
    );
}

#[test]
fn invalid_catalogs_are_refused_with_the_class_and_the_rule() {
    let gpu = |extra: &str| {
        format!("memory_tolerance_percent = 10\n[[device_class]]\ndevice_type = \"x\"\n{extra}")
    };
    let cases = [
        (
            gpu("gpu_count = 1\ngpu_name = \"T\"\ncompute_capability = \"7.5\""),
            "device class \"x\": gpu_count = 1 needs memory_mib",
        ),
        (
            gpu("gpu_count = 1\nmemory_mib = 1\ncompute_capability = \"7.5\""),
            "gpu_count = 1 needs gpu_name",
        ),
        (
            gpu("gpu_count = 1\ngpu_name = \"T\"\nmemory_mib = 1"),
            "gpu_count = 1 needs compute_capability",
        ),
        (
            gpu("gpu_count = 1\ngpu_name = \"T\"\nmemory_mib = 0\ncompute_capability = \"7.5\""),
            "memory_mib must be at least 1",
        ),
        (
            gpu("gpu_count = 1\ngpu_name = \"T\"\nmemory_mib = 1\ncompute_capability = \"sm_75\""),
            "compute capability must be MAJOR.MINOR",
        ),
        (
            gpu("gpu_count = 0\ngpu_name = \"T\""),
            "a CPU class (gpu_count = 0) must not set gpu_name",
        ),
        (gpu("gpu_count = 0\nvram = 3"), "unknown field `vram`"),
        (
            format!(
                "{}\n[[device_class]]\ndevice_type = \"x\"\ngpu_count = 0",
                gpu("gpu_count = 0")
            ),
            "device class \"x\": defined twice",
        ),
        (
            "memory_tolerance_percent = 150\n[[device_class]]\ndevice_type = \"c\"\ngpu_count = 0"
                .to_owned(),
            "memory_tolerance_percent must be 0–100, given 150",
        ),
        (
            "memory_tolerance_percent = 10".to_owned(),
            "defines no device classes",
        ),
    ];
    for (text, expected) in cases {
        let error = DeviceCatalog::parse(&text, "test.toml", true).expect_err(expected);
        assert!(
            error.to_string().contains(expected),
            "expected {expected:?} in: {error}"
        );
        assert!(error.to_string().contains("test.toml"), "{error}");
    }
}

#[test]
fn an_empty_gpu_table_takes_the_documented_defaults() {
    let config: GpuConfig = toml::from_str("").expect("empty table");
    assert_eq!(config.nvml_library.to_str(), Some("libnvidia-ml.so.1"));
    assert_eq!(config.execution, Execution::Auto);
    assert_eq!(config.reserve_mib, 512);
    assert_eq!(config.device_classes, None);
}

#[test]
fn every_gpu_key_is_read() {
    let config: GpuConfig = toml::from_str(
        r#"
nvml_library = "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1"
execution = "cpu"
reserve_mib = 1024
device_classes = "/etc/gpu-agent/device-classes.toml"
"#,
    )
    .expect("full table");
    assert_eq!(
        config.nvml_library.to_str(),
        Some("/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1")
    );
    assert_eq!(config.execution, Execution::Cpu);
    assert_eq!(config.reserve_mib, 1024);
    assert_eq!(
        config.device_classes.as_deref().and_then(|p| p.to_str()),
        Some("/etc/gpu-agent/device-classes.toml")
    );
}

#[test]
fn an_unknown_execution_or_key_is_refused() {
    let error = toml::from_str::<GpuConfig>("execution = \"gpu\"").expect_err("bad execution");
    assert!(
        error.to_string().contains("unknown variant `gpu`"),
        "{error}"
    );
    let error = toml::from_str::<GpuConfig>("reserve = 5").expect_err("typo");
    assert!(
        error.to_string().contains("unknown field `reserve`"),
        "{error}"
    );
}
