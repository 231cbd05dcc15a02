//! `deploy/cloud-init/user-data.yaml`: cloud-config YAML whose agent.toml the agent
//! accepts (with the variable the bootstrap adds), whose script is valid shell, and which
//! installs the package this version builds.

use std::path::Path;
use std::process::Command;

use gpu_agent::config::AgentConfig;

use super::{read, run_ok};

fn written_file<'a>(user_data: &'a serde_yaml::Value, path: &str) -> &'a str {
    user_data["write_files"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|f| f["path"] == path)
        .and_then(|f| f["content"].as_str())
        .unwrap_or_else(|| panic!("user-data writes no {path}"))
}

#[test]
fn the_user_data_writes_a_config_the_agent_accepts_and_installs_this_package() {
    let text = read("deploy/cloud-init/user-data.yaml");
    assert!(
        text.starts_with("#cloud-config\n"),
        "cloud-init reads only #cloud-config"
    );
    let user_data: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();

    let scratch = tempfile::tempdir().unwrap();
    let config_path = scratch.path().join("agent.toml");
    std::fs::write(
        &config_path,
        written_file(&user_data, "/etc/gpu-agent/agent.toml"),
    )
    .unwrap();
    let bootstrap = written_file(&user_data, "/usr/local/sbin/gpu-agent-bootstrap");
    // The variable the bootstrap writes into credentials.env, with a value of its shape.
    assert!(bootstrap.contains("GPU_AGENT_AUTH__API_KEY_SHA256="));
    let digest = format!("[\"{}\"]", "ab".repeat(32));
    let config = AgentConfig::load_with_env(
        Some(&config_path),
        [("GPU_AGENT_AUTH__API_KEY_SHA256".to_owned(), digest)],
    )
    .unwrap_or_else(|e| panic!("the agent refuses the cloud-init config: {e}"));
    assert_eq!(config.state_dir, Path::new("/var/lib/gpu-agent"));
    assert!(config.control_plane.imds);
    assert!(config.control_plane.heartbeat().is_some());
    let key_file = config.control_plane.hmac_key_file.as_deref().unwrap();
    assert!(bootstrap.contains(&format!(">{}", key_file.display())));
    assert!(config.listen.ip().is_unspecified());

    let script = scratch.path().join("bootstrap");
    std::fs::write(&script, bootstrap).unwrap();
    run_ok(Command::new("sh").arg("-n").arg(&script));

    let manifest: toml::Table = read("Cargo.toml").parse().unwrap();
    let version = manifest["workspace"]["package"]["version"]
        .as_str()
        .unwrap();
    assert!(
        bootstrap.contains(&format!("/gpu-agent_{version}-1_amd64.deb")),
        "the user-data installs version {version}"
    );
    assert!(bootstrap.contains("systemctl start gpu-agent.service"));
}
