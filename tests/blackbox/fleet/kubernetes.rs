//! `deploy/kubernetes`: every overlay renders with `kubectl kustomize`, validates against
//! the Kubernetes schemas offline (`kubernetes-validate`), and its DaemonSet holds to the
//! code: probe paths the real agent serves, the config's port, real `GPU_AGENT_*` keys, a
//! grace period above the drain timeout, GPU product and count from the device catalog.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_yaml::Value;

use super::{have_tool, read, repo, run_ok};
use crate::support::{agent_binary, free_port, Endpoint, PATIENCE};

pub const OVERLAYS: [&str; 4] = ["g4dn", "g5", "g6e", "cpu"];
/// The Kubernetes version the manifests are validated against (EKS and GKE still run it).
const KUBERNETES_VERSION: &str = "1.29.0";

/// `kubectl kustomize DIR` (a path under the repository), as YAML documents.
pub fn render(dir: &str) -> Option<Vec<Value>> {
    if !have_tool("kubectl", &["version", "--client"], "kubectl kustomize") {
        return None;
    }
    let output = run_ok(
        Command::new("kubectl")
            .arg("kustomize")
            .arg(repo().join(dir)),
    );
    let text = String::from_utf8(output.stdout).expect("kustomize prints UTF-8");
    let documents = serde_yaml::Deserializer::from_str(&text)
        .map(|document| Value::deserialize(document).expect("kustomize prints YAML"))
        .filter(|value| !value.is_null())
        .collect();
    Some(documents)
}

pub fn object<'a>(documents: &'a [Value], kind: &str) -> &'a Value {
    documents
        .iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} rendered"))
}

/// The agent's container in a rendered DaemonSet.
pub fn agent_container(daemonset: &Value) -> &Value {
    daemonset["spec"]["template"]["spec"]["containers"]
        .as_sequence()
        .and_then(|containers| containers.iter().find(|c| c["name"] == "gpu-agent"))
        .expect("a container named gpu-agent")
}

/// The container's environment: name → the value, or "secret:KEY" / "field:PATH".
pub fn environment(container: &Value) -> BTreeMap<String, String> {
    container["env"]
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|variable| {
            let name = variable["name"].as_str().unwrap().to_owned();
            let value = if let Some(value) = variable["value"].as_str() {
                value.to_owned()
            } else if let Some(key) = variable["valueFrom"]["secretKeyRef"]["key"].as_str() {
                format!("secret:{key}")
            } else if let Some(path) = variable["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                format!("field:{path}")
            } else {
                panic!("{name}: unexpected value source {variable:?}")
            };
            (name, value)
        })
        .collect()
}

/// The agent.toml of the ConfigMap the DaemonSet mounts (by its hash-suffixed name).
pub fn mounted_config(documents: &[Value]) -> String {
    let daemonset = object(documents, "DaemonSet");
    let name = daemonset["spec"]["template"]["spec"]["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "config")
        .and_then(|v| v["configMap"]["name"].as_str())
        .expect("a config volume from a ConfigMap");
    documents
        .iter()
        .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == name)
        .and_then(|c| c["data"]["agent.toml"].as_str())
        .unwrap_or_else(|| panic!("the DaemonSet mounts ConfigMap {name}, which is not rendered"))
        .to_owned()
}

#[test]
fn every_overlay_renders_and_validates_against_the_kubernetes_schemas() {
    let dirs: Vec<String> = OVERLAYS
        .iter()
        .map(|o| format!("deploy/kubernetes/overlays/{o}"))
        .chain(["deploy/grafana".to_owned()])
        .collect();
    let mut rendered = Vec::new();
    for dir in &dirs {
        let Some(documents) = render(dir) else {
            return;
        };
        assert!(!documents.is_empty(), "{dir} renders nothing");
        rendered.push((dir, documents));
    }
    if !have_tool(
        "kubernetes-validate",
        &["--version"],
        "Kubernetes schema validation",
    ) {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    for (dir, documents) in &rendered {
        let mut core = Vec::new();
        for document in documents {
            // The Prometheus Operator's CRD has no schema in the offline set: checked below.
            if document["kind"] == "PodMonitor" {
                check_pod_monitor(document, documents);
            } else {
                core.push(serde_yaml::to_string(document).unwrap());
            }
        }
        let file = scratch.path().join(dir.replace('/', "-") + ".yaml");
        std::fs::write(&file, core.join("---\n")).unwrap();
        let output = Command::new("kubernetes-validate")
            .args([
                "--strict",
                "--quiet",
                "--kubernetes-version",
                KUBERNETES_VERSION,
            ])
            .arg(&file)
            .output()
            .expect("run kubernetes-validate");
        assert!(
            output.status.success(),
            "{dir} does not validate against Kubernetes {KUBERNETES_VERSION}:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let grafana = &rendered.last().unwrap().1;
    let dashboard = grafana[0]["data"]["gpu-agent.json"].as_str().unwrap();
    assert_eq!(dashboard, read("deploy/grafana/gpu-agent.json"));
    assert_eq!(grafana[0]["metadata"]["labels"]["grafana_dashboard"], "1");
}

/// The PodMonitor scrapes the agent pods' named port at /metrics.
fn check_pod_monitor(monitor: &Value, documents: &[Value]) {
    let daemonset = object(documents, "DaemonSet");
    let labels = &daemonset["spec"]["template"]["metadata"]["labels"];
    let selector = monitor["spec"]["selector"]["matchLabels"]
        .as_mapping()
        .expect("PodMonitor selects by labels");
    for (key, value) in selector {
        assert_eq!(&labels[key], value, "PodMonitor selects label {key:?}");
    }
    let endpoint = &monitor["spec"]["podMetricsEndpoints"][0];
    assert_eq!(endpoint["path"], "/metrics");
    let port = endpoint["port"].as_str().unwrap();
    let ports = agent_container(daemonset)["ports"].as_sequence().unwrap();
    assert!(
        ports.iter().any(|p| p["name"] == port),
        "PodMonitor scrapes port {port:?}, which the container does not name"
    );
}

#[test]
fn the_rendered_daemonset_holds_to_the_code_and_the_device_catalog() {
    let catalog: toml::Table = read("configs/device-classes.toml").parse().unwrap();
    let classes = catalog["device_class"].as_array().unwrap();
    for overlay in OVERLAYS {
        let Some(documents) = render(&format!("deploy/kubernetes/overlays/{overlay}")) else {
            return;
        };
        let daemonset = object(&documents, "DaemonSet");
        let pod = &daemonset["spec"]["template"]["spec"];
        let container = agent_container(daemonset);
        let config_text = mounted_config(&documents);
        let config: toml::Table = config_text.parse().expect("agent.toml is TOML");

        // The port: the config's listen port is the container's, the Service's and the probes'.
        let listen: std::net::SocketAddr = config["listen"].as_str().unwrap().parse().unwrap();
        assert!(
            listen.ip().is_unspecified(),
            "{overlay}: listen on every address in a pod"
        );
        let port = &container["ports"][0];
        assert_eq!(
            port["containerPort"].as_u64(),
            Some(u64::from(listen.port()))
        );
        let port_name = port["name"].as_str().unwrap();
        let service = object(&documents, "Service");
        assert_eq!(service["spec"]["clusterIP"], "None", "a headless Service");
        assert_eq!(service["spec"]["ports"][0]["targetPort"], port_name);

        // Grace period longer than the drain (the agent's default when the key is absent).
        let drain = config
            .get("drain_timeout_s")
            .and_then(toml::Value::as_integer)
            .unwrap_or(30);
        let grace = pod["terminationGracePeriodSeconds"].as_i64().unwrap();
        assert!(
            grace > drain,
            "{overlay}: grace {grace}s must exceed drain_timeout_s {drain}s"
        );

        // Hardening and the rollout.
        let security = &container["securityContext"];
        assert_eq!(security["readOnlyRootFilesystem"], true);
        assert_eq!(security["allowPrivilegeEscalation"], false);
        assert_eq!(security["capabilities"]["drop"][0], "ALL");
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        let rollout = &daemonset["spec"]["updateStrategy"];
        assert_eq!(rollout["type"], "RollingUpdate");
        assert_eq!(rollout["rollingUpdate"]["maxUnavailable"], 1);
        let env = environment(container);
        assert_eq!(env["CUDA_DEVICE_ORDER"], "PCI_BUS_ID");

        // State and model cache on the node, where the config and HF_HOME put them.
        let state_dir = config["state_dir"].as_str().unwrap();
        let host_path = |mount: &str| -> String {
            let volume = container["volumeMounts"]
                .as_sequence()
                .unwrap()
                .iter()
                .find(|m| m["mountPath"] == mount)
                .unwrap_or_else(|| panic!("{overlay}: nothing mounted at {mount}"))["name"]
                .clone();
            pod["volumes"]
                .as_sequence()
                .unwrap()
                .iter()
                .find(|v| v["name"] == volume)
                .and_then(|v| v["hostPath"]["path"].as_str())
                .unwrap_or_else(|| panic!("{overlay}: {mount} is not a hostPath"))
                .to_owned()
        };
        assert_eq!(host_path(state_dir), state_dir);
        assert!(env["HF_HOME"].starts_with("/var/cache/gpu-agent/"));
        assert_eq!(host_path("/var/cache/gpu-agent"), "/var/cache/gpu-agent");

        check_gpus(overlay, pod, container, &env, classes);
        check_against_the_agent(overlay, &config_text, container, &env);
    }
}

/// A GPU overlay selects its nodes by GFD's product label and requests every GPU of one
/// catalog class of its family; the CPU overlay requests none and allows CPU deploys.
fn check_gpus(
    overlay: &str,
    pod: &Value,
    container: &Value,
    env: &BTreeMap<String, String>,
    classes: &[toml::Value],
) {
    let requested = container["resources"]["limits"]["nvidia.com/gpu"].as_u64();
    let product = pod["nodeSelector"]["nvidia.com/gpu.product"].as_str();
    if overlay == "cpu" {
        assert_eq!(requested, None, "the cpu overlay requests no GPU");
        assert_eq!(product, None);
        assert_eq!(
            env.get("GPU_AGENT_ALLOW_CPU").map(String::as_str),
            Some("true")
        );
        return;
    }
    let product =
        product.unwrap_or_else(|| panic!("{overlay}: no nvidia.com/gpu.product selector"));
    let count = requested.unwrap_or_else(|| panic!("{overlay}: no nvidia.com/gpu limit"));
    let count_label = pod["nodeSelector"]["nvidia.com/gpu.count"]
        .as_str()
        .unwrap();
    assert_eq!(
        count_label,
        count.to_string(),
        "{overlay}: nodes with as many GPUs as requested"
    );
    let family: Vec<&toml::Value> = classes
        .iter()
        .filter(|c| {
            c["device_type"]
                .as_str()
                .is_some_and(|t| t.starts_with(&format!("{overlay}.")))
        })
        .collect();
    assert!(
        !family.is_empty(),
        "{overlay}: no such family in configs/device-classes.toml"
    );
    for class in &family {
        // GFD writes the NVML name with spaces replaced by '-'.
        let gfd_product = class["gpu_name"].as_str().unwrap().replace(' ', "-");
        assert_eq!(product, gfd_product, "{overlay}: {class:?}");
    }
    assert!(
        family
            .iter()
            .any(|c| c["gpu_count"].as_integer() == i64::try_from(count).ok()),
        "{overlay}: no {overlay} class has {count} GPUs"
    );
    let tolerates = pod["tolerations"]
        .as_sequence()
        .is_some_and(|t| t.iter().any(|t| t["key"] == "nvidia.com/gpu"));
    assert!(tolerates, "{overlay}: tolerate the GPU nodes' taint");
}

/// Starts the real agent with the rendered agent.toml and every `GPU_AGENT_*` variable of
/// the container (an unknown key or a bad value stops it at start, naming the variable),
/// then requests each probe's path from it.
fn check_against_the_agent(
    overlay: &str,
    config_text: &str,
    container: &Value,
    env: &BTreeMap<String, String>,
) {
    let scratch = tempfile::tempdir().unwrap();
    let config_path = scratch.path().join("agent.toml");
    std::fs::write(&config_path, config_text).unwrap();
    let port = free_port();
    let mut command = Command::new(agent_binary());
    command
        .args(["serve", "--config"])
        .arg(&config_path)
        .env_remove("HF_HUB_OFFLINE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(scratch.path().join("log")).unwrap(),
        ));
    for (name, value) in env
        .iter()
        .filter(|(name, _)| name.starts_with("GPU_AGENT_"))
    {
        command.env(name, sample_value(name, value));
    }
    // The pod's paths and port are not this machine's; nor is its metadata service.
    let imds = format!("http://127.0.0.1:{}", free_port());
    command
        .env("GPU_AGENT_LISTEN", format!("127.0.0.1:{port}"))
        .env("GPU_AGENT_STATE_DIR", scratch.path().join("state"))
        .env("GPU_AGENT_MODEL_ROOTS", "[]")
        .env("GPU_AGENT_CONTROL_PLANE__IMDS_URL", &imds)
        .env("HF_HOME", scratch.path().join("hf"));
    let mut agent = KillOnDrop(command.spawn().expect("spawn gpu-agent"));
    let endpoint = Endpoint::new(port, Some(scratch.path().join("log")));
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = agent.0.try_wait().unwrap() {
            panic!(
                "{overlay}: the agent refused the DaemonSet's config and variables ({status}):\n{}",
                endpoint.log()
            );
        }
        if endpoint.get("/healthz").status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "{overlay}: agent never answered");
        std::thread::sleep(Duration::from_millis(50));
    }
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        let get = &container[probe]["httpGet"];
        let path = get["path"]
            .as_str()
            .unwrap_or_else(|| panic!("{overlay}: {probe} is not an HTTP GET"));
        assert_eq!(
            get["port"], container["ports"][0]["name"],
            "{overlay}: {probe} port"
        );
        let reply = endpoint.get(path);
        assert_eq!(
            reply.status, 200,
            "{overlay}: {probe} {path} on a fresh agent: {}",
            reply.text
        );
    }
    // Liveness and readiness are different routes: a draining agent stays alive.
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
}

/// A value of the right shape for a variable filled at run time from a Secret or the pod.
fn sample_value(name: &str, value: &str) -> String {
    match value {
        "secret:api-key-sha256" => format!("[\"{}\"]", "ab".repeat(32)),
        "secret:bearer-tokens" => {
            r#"[{token="t-1", scopes=["machinelearning.model", "machinelearning.predict"]}]"#
                .to_owned()
        }
        "field:spec.nodeName" => "node-1".to_owned(),
        other if other.starts_with("secret:") || other.starts_with("field:") => {
            panic!("{name} comes from {other}: give this test a sample value for it")
        }
        literal => literal.to_owned(),
    }
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// For other modules: the rendered DaemonSet of `overlay`, if kubectl is here.
pub fn rendered_daemonset(overlay: &str) -> Option<(Vec<Value>, Value)> {
    let documents = render(&format!("deploy/kubernetes/overlays/{overlay}"))?;
    let daemonset = object(&documents, "DaemonSet").clone();
    Some((documents, daemonset))
}
