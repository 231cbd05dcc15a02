//! CHECKING_DEVICE through the real binary and the real nvml-wrapper code path, on fake
//! NVML hardware (`tests/fake-nvml`).

use fake_nvml::FakeHardware;

use crate::support::kore::{kore_deploy, wait_job};
use crate::support::{Agent, AgentConfig};

fn failed_job(agent: &Agent, device_type: &str) -> serde_json::Value {
    let reply = kore_deploy(agent, "gpt2-tiny", device_type);
    assert_eq!(reply.status, 202, "{}", reply.text);
    let job = wait_job(agent, reply.json["dockStatusId"].as_str().unwrap());
    assert_eq!(job.json["status"], "FAILED", "{}", job.text);
    job.json
}

#[test]
fn deploy_of_g5_xlarge_on_a_t4_host_fails_with_device_mismatch() {
    let fake = FakeHardware::t4(1).install().expect("fake NVML");
    let agent = Agent::start(AgentConfig::with_fixture_models().nvml(fake.library()));
    let job = failed_job(&agent, "g5.xlarge");
    assert_eq!(job["error"]["code"], "DEVICE_MISMATCH");
    assert_eq!(job["error"]["phase"], "CHECKING_DEVICE");
    assert_eq!(
        job["error"]["message"],
        "requested g5.xlarge (1× NVIDIA A10G, 23028 MiB) but NVML reports 1× Tesla T4 (15360 MiB)"
    );
    assert_eq!(job["phase"], "FAILED");
}

#[test]
fn deploy_of_a_gpu_class_without_nvml_fails_with_nvml_unavailable_and_the_agent_keeps_serving() {
    let config = AgentConfig::with_fixture_models()
        .nvml(std::path::Path::new("/nonexistent/libnvidia-ml.so.1"));
    let agent = Agent::start(config);
    let job = failed_job(&agent, "g4dn.xlarge");
    assert_eq!(job["error"]["code"], "NVML_UNAVAILABLE");
    // The library path stays in the log; callers see a placeholder (docs/operations.md).
    let message = job["error"]["message"].as_str().unwrap();
    assert!(message.contains("<nvml library>"), "{message}");
    assert!(!message.contains("/nonexistent/"), "{message}");
    assert_eq!(agent.get("/healthz").status, 200);
    let gpus = agent.get_with_key("/v1/gpus");
    assert_eq!(gpus.status, 200);
    assert_eq!(gpus.json["nvml"], "unavailable");
}

#[test]
fn deploy_on_a_t4_with_its_memory_used_fails_with_insufficient_gpu_memory() {
    let fake = FakeHardware::t4(1)
        .with_memory_used(0, 15_200)
        .install()
        .expect("fake NVML");
    let agent = Agent::start(AgentConfig::with_fixture_models().nvml(fake.library()));
    let job = failed_job(&agent, "g4dn.xlarge");
    assert_eq!(job["error"]["code"], "INSUFFICIENT_GPU_MEMORY", "{job}");
    assert_eq!(job["error"]["phase"], "CHECKING_DEVICE");
}

/// A fake-nvml preset: `count` GPUs of one model, as real drivers report them.
type GpuModel = fn(usize) -> FakeHardware;

/// Each fake host and the catalog classes it satisfies (g5.xlarge and g5.2xlarge are both
/// one A10G). Every other GPU class is wrong for it by GPU name or by count.
const HOSTS: &[(GpuModel, usize, &str, &[&str])] = &[
    (FakeHardware::t4, 1, "Tesla T4", &["g4dn.xlarge"]),
    (FakeHardware::t4, 4, "Tesla T4", &["g4dn.12xlarge"]),
    (FakeHardware::t4, 8, "Tesla T4", &["g4dn.metal"]),
    (
        FakeHardware::a10g,
        1,
        "NVIDIA A10G",
        &["g5.xlarge", "g5.2xlarge"],
    ),
    (FakeHardware::a10g, 4, "NVIDIA A10G", &["g5.12xlarge"]),
    (FakeHardware::a10g, 8, "NVIDIA A10G", &["g5.48xlarge"]),
    (FakeHardware::l40s, 1, "NVIDIA L40S", &["g6e.xlarge"]),
];

const GPU_CLASSES: &[&str] = &[
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
fn every_device_class_deploys_on_its_hardware_and_is_refused_on_any_other() {
    let gpt2 = crate::support::fixtures().join("gpt2-tiny");
    for (model, count, gpu_name, matching) in HOSTS {
        let fake = model(*count).install().expect("fake NVML");
        let mut config = AgentConfig::default().nvml(fake.library());
        for class in GPU_CLASSES {
            config = config.model(&format!("m-{class}"), &gpt2.display().to_string());
        }
        let agent = Agent::start(config);
        let jobs: Vec<(&str, String)> = GPU_CLASSES
            .iter()
            .map(|class| {
                let reply = kore_deploy(&agent, &format!("m-{class}"), class);
                assert_eq!(reply.status, 202, "{}", reply.text);
                let job = reply.json["dockStatusId"].as_str().unwrap_or_default();
                (*class, job.to_owned())
            })
            .collect();
        let host = format!("{count}× {gpu_name}");
        for (class, job) in jobs {
            let job = wait_job(&agent, &job);
            if matching.contains(&class) {
                assert_eq!(
                    job.json["status"], "SUCCESS",
                    "{class} on {host}: {}",
                    job.text
                );
                let status = agent.get_with_key(&format!("/v1/deployments/m-{class}"));
                assert_eq!(status.json["phase"], "READY", "{}", status.text);
                assert_eq!(
                    status.json["gpuIndices"],
                    serde_json::json!([0]),
                    "{}",
                    status.text
                );
            } else {
                assert_eq!(
                    job.json["status"], "FAILED",
                    "{class} on {host}: {}",
                    job.text
                );
                assert_eq!(job.json["error"]["code"], "DEVICE_MISMATCH", "{}", job.text);
                assert_eq!(job.json["error"]["phase"], "CHECKING_DEVICE");
                let message = job.json["error"]["message"].as_str().unwrap_or_default();
                assert!(
                    message.starts_with(&format!("requested {class} (")),
                    "{message}"
                );
                assert!(
                    message.contains(&format!("but NVML reports {host}")),
                    "{message}"
                );
            }
        }
    }
}

/// Whether the binary under test (maybe another build, `BLACKBOX_AGENT_BIN`) was built with
/// `cuda`, as its `--version` says.
fn binary_has_cuda() -> bool {
    let output = std::process::Command::new(crate::support::agent_binary())
        .arg("--version")
        .output()
        .expect("run gpu-agent --version");
    let version = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{version}");
    match version.trim().rsplit_once("(features: ") {
        Some((_, features)) => features
            .trim_end_matches(')')
            .split(", ")
            .any(|f| f == "cuda"),
        None => panic!("--version names no features: {version:?}"),
    }
}

#[test]
fn gpu_classes_need_the_cuda_feature_when_execution_is_auto() {
    let fake = FakeHardware::t4(1).install().expect("fake NVML");
    let config = AgentConfig {
        execution: "auto",
        ..AgentConfig::with_fixture_models().nvml(fake.library())
    };
    let agent = Agent::start(config);
    let reply = kore_deploy(&agent, "gpt2-tiny", "g4dn.xlarge");
    let job = wait_job(&agent, reply.json["dockStatusId"].as_str().unwrap());
    if binary_has_cuda() {
        assert_ne!(
            job.json["error"]["code"], "CUDA_NOT_COMPILED",
            "{}",
            job.text
        );
    } else {
        assert_eq!(
            job.json["error"]["code"], "CUDA_NOT_COMPILED",
            "{}",
            job.text
        );
    }
}

#[test]
fn gpus_route_lists_the_fake_inventory() {
    let fake = FakeHardware::a10g(2).install().expect("fake NVML");
    let agent = Agent::start(AgentConfig::default().nvml(fake.library()));
    let reply = agent.get_with_key("/v1/gpus");
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["nvml"], "available");
    let gpus = reply.json["gpus"].as_array().unwrap();
    assert_eq!(gpus.len(), 2);
    assert_eq!(gpus[0]["name"], "NVIDIA A10G");
    assert_eq!(gpus[1]["index"], 1);

    let metrics = agent.get("/metrics");
    assert_eq!(metrics.status, 200);
    for gpu in ["0", "1"] {
        for gauge in [
            "gpu_agent_gpu_memory_total_bytes",
            "gpu_agent_gpu_memory_used_bytes",
        ] {
            let series = format!("{gauge}{{gpu=\"{gpu}\",name=\"NVIDIA A10G\"}}");
            assert!(
                metrics.text.contains(&series),
                "{series} in:\n{}",
                metrics.text
            );
        }
    }
}
