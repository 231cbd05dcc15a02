//! `deploy/Dockerfile` cannot be built here (no image registry): its text is held to the
//! manifests, the package and the unit: binary path, config location, user, port, dirs.

use std::collections::BTreeMap;

use super::kubernetes::{agent_container, environment, rendered_daemonset};
use super::read;

/// The instructions of the Dockerfile's final stage, continuation lines joined.
fn final_stage() -> Vec<(String, String)> {
    let text = read("deploy/Dockerfile").replace("\\\n", " ");
    let instructions: Vec<(String, String)> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(' '))
        .map(|(op, rest)| (op.to_ascii_uppercase(), rest.trim().to_owned()))
        .collect();
    let last_from = instructions
        .iter()
        .rposition(|(op, _)| op == "FROM")
        .unwrap();
    instructions[last_from..].to_vec()
}

fn all(stage: &[(String, String)], op: &str) -> Vec<String> {
    stage
        .iter()
        .filter(|(o, _)| o == op)
        .map(|(_, r)| r.clone())
        .collect()
}

fn json_words(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not exec form: {text}: {e}"))
}

#[test]
fn the_image_has_the_paths_user_and_port_of_the_manifests_and_the_package() {
    let stage = final_stage();
    let entrypoint = json_words(&all(&stage, "ENTRYPOINT")[0]);
    let cmd = json_words(&all(&stage, "CMD")[0]);
    let user = all(&stage, "USER")[0].clone();
    let expose = all(&stage, "EXPOSE")[0].clone();
    let env: BTreeMap<String, String> = all(&stage, "ENV")
        .iter()
        .flat_map(|line| {
            line.split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter_map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect();
    let run = all(&stage, "RUN").join(" ");
    let copies = all(&stage, "COPY");

    // The package and the unit: the binary, the config, the user, HF_HOME.
    let unit = read("deploy/debian/gpu-agent.service");
    let exec_start = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    assert_eq!(
        [&entrypoint[..], &cmd[..]].concat().join(" "),
        exec_start,
        "the image runs what the unit runs"
    );
    let manifest: toml::Table = read("agent/Cargo.toml").parse().unwrap();
    let assets = manifest["package"]["metadata"]["deb"]["assets"]
        .as_array()
        .unwrap();
    let packaged = |dest: &str| {
        assets
            .iter()
            .any(|a| a[1].as_str() == Some(dest.trim_start_matches('/')))
    };
    assert!(
        packaged(&entrypoint[0]),
        "the package installs {}",
        entrypoint[0]
    );
    let config = &cmd[cmd.iter().position(|a| a == "--config").unwrap() + 1];
    assert!(packaged(config));
    assert!(copies
        .iter()
        .any(|c| c == &format!("configs/agent.toml {config}")));
    assert!(unit.contains(&format!("Environment=HF_HOME={}", env["HF_HOME"])));
    assert!(unit.contains(&format!(
        "Environment=CUDA_DEVICE_ORDER={}",
        env["CUDA_DEVICE_ORDER"]
    )));
    let unit_user = unit.lines().find_map(|l| l.strip_prefix("User=")).unwrap();
    assert!(
        run.contains(&format!("--uid 10001 --gid {unit_user}")),
        "{run}"
    );
    assert!(
        run.contains(&format!("--shell /usr/sbin/nologin {unit_user}")),
        "{run}"
    );
    for dir in ["/var/lib/gpu-agent", "/var/cache/gpu-agent"] {
        assert!(run.contains(dir), "the image creates {dir}");
    }
    assert_eq!(user, "10001:10001");
    let listen_port = env["GPU_AGENT_LISTEN"]
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(expose, listen_port);

    // The manifests: the same args, user, port, mounts and variables, per variant.
    for (overlay, variant) in [("g5", "cuda"), ("cpu", "cpu")] {
        let Some((_, daemonset)) = rendered_daemonset(overlay) else {
            return;
        };
        let pod = &daemonset["spec"]["template"]["spec"];
        let container = agent_container(&daemonset);
        assert!(
            container["image"]
                .as_str()
                .unwrap()
                .ends_with(&format!("-{variant}")),
            "{overlay} runs the {variant} image: {:?}",
            container["image"]
        );
        assert!(read("deploy/Dockerfile").contains(&format!("AS runtime-{variant}")));
        let args: Vec<&str> = container["args"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(args, cmd, "{overlay}: the DaemonSet passes the image's CMD");
        assert_eq!(pod["securityContext"]["runAsUser"], 10001);
        assert_eq!(pod["securityContext"]["runAsGroup"], 10001);
        assert_eq!(
            container["ports"][0]["containerPort"]
                .as_u64()
                .unwrap()
                .to_string(),
            expose
        );
        let mounts: Vec<&str> = container["volumeMounts"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|m| m["mountPath"].as_str().unwrap())
            .collect();
        let config_dir = std::path::Path::new(config)
            .parent()
            .unwrap()
            .to_str()
            .unwrap();
        for path in [config_dir, "/var/lib/gpu-agent", "/var/cache/gpu-agent"] {
            assert!(mounts.contains(&path), "{overlay}: {path} is mounted");
        }
        let variables = environment(container);
        for name in ["HF_HOME", "CUDA_DEVICE_ORDER"] {
            assert_eq!(variables[name], env[name], "{overlay}: {name}");
        }
        let init = &pod["initContainers"][0];
        assert_eq!(
            init["image"], container["image"],
            "{overlay}: one image for both"
        );
        let chown = init["command"].as_sequence().unwrap();
        assert_eq!(
            chown[1], "10001:10001",
            "{overlay}: host dirs go to the image's user"
        );
    }
}
