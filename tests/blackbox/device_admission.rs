//! CHECKING_DEVICE through the real binary and the real nvml-wrapper code path, on fake
//! NVML hardware (`tests/fake-nvml`).

use fake_nvml::FakeHardware;

use crate::kore_lifecycle::{kore_deploy, wait_job};
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
    assert!(job["error"]["message"]
        .as_str()
        .unwrap()
        .contains("/nonexistent/libnvidia-ml.so.1"));
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

#[test]
fn deploy_of_the_matching_class_passes_the_device_check() {
    let fake = FakeHardware::t4(1).install().expect("fake NVML");
    let agent = Agent::start(AgentConfig::with_fixture_models().nvml(fake.library()));
    let reply = kore_deploy(&agent, "gpt2-tiny", "g4dn.xlarge");
    let job = wait_job(&agent, reply.json["dockStatusId"].as_str().unwrap());
    if job.json["status"] == "FAILED" {
        let phase = job.json["error"]["phase"].as_str().unwrap();
        assert!(
            !["CHECKING_DEVICE", "FETCHING"].contains(&phase),
            "{}",
            job.text
        );
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
    if cfg!(feature = "cuda") {
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
}
