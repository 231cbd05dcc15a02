//! What `GET /v1/gpus`, `/metrics` and `gpu-agent status` show of the inventory.

use crate::common::FakeHost;
use fake_nvml::FakeHardware;
use gpu_agent::gpu::{describe_gpu_gauges, record_gpu_gauges, GpuInventory, InventoryView};
use metrics_exporter_prometheus::PrometheusBuilder;
use serde_json::json;

#[test]
fn the_gpus_view_lists_every_gpu_with_memory_capability_and_driver() {
    let hardware = FakeHardware::t4(2).with_memory_used(1, 1024);
    let host = FakeHost::new(&hardware);
    let view = InventoryView::from(&*host.inventory.state());

    assert_eq!(
        serde_json::to_value(&view).expect("serialize"),
        json!({
            "nvml": "available",
            "driverVersion": "550.54.15",
            "cudaDriverVersion": "12.4",
            "gpus": [
                {
                    "index": 0, "name": "Tesla T4", "uuid": hardware.gpus[0].uuid,
                    "memoryTotalBytes": 16106127360u64, "memoryUsedBytes": 0, "memoryFreeBytes": 16106127360u64,
                    "computeCapability": "7.5", "mig": "unsupported"
                },
                {
                    "index": 1, "name": "Tesla T4", "uuid": hardware.gpus[1].uuid,
                    "memoryTotalBytes": 16106127360u64, "memoryUsedBytes": 1073741824u64, "memoryFreeBytes": 15032385536u64,
                    "computeCapability": "7.5", "mig": "unsupported"
                }
            ]
        })
    );
}

#[test]
fn the_gpus_view_says_why_nvml_is_unavailable() {
    let host = FakeHost::new(&FakeHardware::failing_driver());
    let view = InventoryView::from(&*host.inventory.state());
    let body = serde_json::to_value(&view).expect("serialize");

    assert_eq!(body["nvml"], "unavailable");
    assert_eq!(body["gpus"], json!([]));
    let reason = body["reason"].as_str().expect("reason");
    assert!(reason.ends_with("NVIDIA driver is not loaded"), "{reason}");
}

#[test]
fn the_status_line_summarises_models_free_memory_and_driver() {
    let host = FakeHost::new(&FakeHardware::a10g(4).with_memory_used(0, 3028));
    let view = InventoryView::from(&*host.inventory.state());
    assert_eq!(
        view.summary_line(),
        "GPUs: 4× NVIDIA A10G (23028 MiB), 89084 MiB free of 92112 MiB; driver 550.54.15, CUDA 12.4"
    );
}

#[test]
fn the_status_line_reads_back_what_the_agent_served() {
    // `gpu-agent status` summarises the JSON a running agent answered.
    let host = FakeHost::new(&FakeHardware::l40s(1));
    let served =
        serde_json::to_string(&InventoryView::from(&*host.inventory.state())).expect("serialize");
    let read: InventoryView = serde_json::from_str(&served).expect("deserialize");
    assert_eq!(read.summary_line(), "GPUs: 1× NVIDIA L40S (46068 MiB), 46068 MiB free of 46068 MiB; driver 550.54.15, CUDA 12.4");
}

#[test]
fn the_status_line_reports_nvml_unavailable() {
    let inventory = GpuInventory::open("/nonexistent/libnvidia-ml.so.1");
    let line = InventoryView::from(&*inventory.state()).summary_line();
    assert!(
        line.starts_with(
            "GPUs: NVML unavailable (cannot load the NVML library /nonexistent/libnvidia-ml.so.1"
        ),
        "{line}"
    );
}

#[test]
fn memory_gauges_carry_gpu_index_and_name() {
    let host = FakeHost::new(&FakeHardware::t4(2).with_memory_used(1, 1024));
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        describe_gpu_gauges();
        record_gpu_gauges(&host.inventory.state());
    });
    let text = handle.render();

    for line in [
        "# TYPE gpu_agent_gpu_memory_used_bytes gauge",
        "gpu_agent_gpu_memory_used_bytes{gpu=\"0\",name=\"Tesla T4\"} 0",
        "gpu_agent_gpu_memory_used_bytes{gpu=\"1\",name=\"Tesla T4\"} 1073741824",
        "# TYPE gpu_agent_gpu_memory_total_bytes gauge",
        "gpu_agent_gpu_memory_total_bytes{gpu=\"0\",name=\"Tesla T4\"} 16106127360",
        "gpu_agent_gpu_memory_total_bytes{gpu=\"1\",name=\"Tesla T4\"} 16106127360",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
}

#[test]
fn memory_gauges_follow_a_refresh() {
    let host = FakeHost::new(&FakeHardware::l40s(1));
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    host.fake
        .set_hardware(&FakeHardware::l40s(1).with_memory_used(0, 2048))
        .expect("rewrite the fake hardware");
    metrics::with_local_recorder(&recorder, || record_gpu_gauges(&host.inventory.refresh()));

    let expected = "gpu_agent_gpu_memory_used_bytes{gpu=\"0\",name=\"NVIDIA L40S\"} 2147483648";
    assert!(
        handle.render().lines().any(|l| l == expected),
        "{}",
        handle.render()
    );
}
