//! The Debian package: `scripts/build-deb.sh` packages the binary these tests already run
//! (no second build) with `dpkg-deb`; unpacked into a temp root it has the unit, the
//! conffile and the binary where the unit expects them; lintian finds nothing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::{have_tool, read, repo, run_ok};
use crate::support::agent_binary;

/// The .deb, built once per test process; `None` when the tools are missing.
fn package() -> Option<&'static Path> {
    static BUILT: OnceLock<Option<(tempfile::TempDir, PathBuf)>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            if !have_tool("dpkg-deb", &["--version"], "building the Debian package")
                || !have_tool("python3", &["--version"], "building the Debian package")
            {
                return None;
            }
            let out = tempfile::tempdir().unwrap();
            let output = run_ok(
                Command::new("sh")
                    .arg(repo().join("scripts/build-deb.sh"))
                    .arg("--binary")
                    .arg(agent_binary())
                    .arg("--out")
                    .arg(out.path())
                    .arg("--fast"),
            );
            let deb = PathBuf::from(String::from_utf8(output.stdout).unwrap().trim());
            assert!(deb.is_file(), "build-deb.sh named {deb:?}");
            Some((out, deb))
        })
        .as_ref()
        .map(|(_, deb)| deb.as_path())
}

/// `Key=value` lines of a unit file (the last one wins, as for the keys checked here).
fn unit_value<'a>(unit: &'a str, key: &str) -> &'a str {
    let prefix = format!("{key}=");
    unit.lines()
        .rev()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("the unit has no {key}="))
}

#[test]
fn the_package_puts_the_unit_conffile_and_binary_where_the_unit_expects_them() {
    let Some(deb) = package() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    run_ok(Command::new("dpkg-deb").arg("-x").arg(deb).arg(root.path()));
    let control = tempfile::tempdir().unwrap();
    run_ok(
        Command::new("dpkg-deb")
            .arg("-e")
            .arg(deb)
            .arg(control.path()),
    );
    let at = |path: &str| root.path().join(path.trim_start_matches('/'));

    let unit = std::fs::read_to_string(at("/lib/systemd/system/gpu-agent.service"))
        .expect("the unit is in the package");
    let exec_start: Vec<&str> = unit_value(&unit, "ExecStart").split_whitespace().collect();
    let binary = at(exec_start[0]);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&binary).unwrap().permissions());
    assert_eq!(exec_start[0], "/usr/bin/gpu-agent");
    assert_eq!(mode & 0o111, 0o111, "{binary:?} is executable");
    // The packaged binary is the one under test, and runs.
    let version = run_ok(Command::new(&binary).arg("--version"));
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("gpu-agent "));

    let config_flag = exec_start.iter().position(|a| *a == "--config").unwrap();
    let config = exec_start[config_flag + 1];
    let conffiles = std::fs::read_to_string(control.path().join("conffiles")).unwrap();
    assert_eq!(
        conffiles.lines().collect::<Vec<_>>(),
        [config],
        "the config is the conffile"
    );
    assert_eq!(
        std::fs::read_to_string(at(config)).unwrap(),
        read("configs/agent.toml"),
        "the conffile is the annotated reference config"
    );

    let user = unit_value(&unit, "User");
    let sysusers = std::fs::read_to_string(at("/usr/lib/sysusers.d/gpu-agent.conf")).unwrap();
    assert!(
        sysusers
            .lines()
            .any(|l| l.starts_with(&format!("u {user} "))),
        "sysusers creates the unit's user {user}: {sysusers}"
    );
    let documentation = unit_value(&unit, "Documentation").trim_start_matches("file://");
    assert!(
        at(documentation).is_file(),
        "{documentation} is in the package"
    );
    assert!(at("/usr/share/gpu-agent/device-classes.toml").is_file());

    // The same unit install.sh installs with --prefix /usr: one source, two installers.
    let staged = tempfile::tempdir().unwrap();
    run_ok(
        Command::new("sh")
            .arg(repo().join("scripts/install.sh"))
            .arg("--destdir")
            .arg(staged.path())
            .args(["--prefix", "/usr", "--binary"])
            .arg(agent_binary())
            .env_remove("DESTDIR"),
    );
    let by_install_sh =
        std::fs::read_to_string(staged.path().join("etc/systemd/system/gpu-agent.service"))
            .unwrap();
    assert_eq!(
        unit, by_install_sh,
        "deploy/debian/gpu-agent.service drifted from configs/"
    );

    // postinst creates the user and state dir and enables the unit without starting it.
    let postinst = std::fs::read_to_string(control.path().join("postinst")).unwrap();
    assert!(postinst.contains("systemd-sysusers gpu-agent.conf"));
    assert!(postinst.contains("install -d -m 0700 -o gpu-agent -g gpu-agent /var/lib/gpu-agent"));
    assert!(postinst.contains("deb-systemd-helper enable gpu-agent.service"));
    let commands = postinst
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'));
    assert!(
        !commands.clone().any(|l| l.contains("start")),
        "the unit is enabled, not started"
    );
}

#[test]
fn lintian_finds_nothing_to_fix_in_the_package() {
    let Some(deb) = package() else {
        return;
    };
    if !have_tool("lintian", &["--version"], "lintian") {
        return;
    }
    // Overrides shipped in the package explain the findings kept on purpose.
    let output = Command::new("lintian")
        .args(["--fail-on", "error,warning", "--tag-display-limit", "0"])
        .arg(deb)
        .output()
        .expect("run lintian");
    let findings = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success()
            && !findings
                .lines()
                .any(|l| l.starts_with("E:") || l.starts_with("W:")),
        "lintian:\n{findings}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
