//! Running the real `gpu-agent` binary for black-box tests: a private state directory and
//! config per agent, a free loopback port, readiness by polling `/healthz`, and helpers to
//! kill, SIGTERM and restart it.
#![allow(dead_code)] // not every helper is used by every module

pub mod config;
pub mod fake_hub;
pub mod golden;
pub mod http;
pub mod hub;
pub mod kore;
pub mod python;
pub mod serving;
#[path = "../../../agent/tests/support/skip.rs"]
pub mod skip;
pub mod slow_model;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub use config::AgentConfig;
pub use http::{Endpoint, Reply};
pub use hub::HangingHub;

/// The API key every test config accepts.
pub const API_KEY: &str = "kg-blackbox-key";
/// A Bearer token with both Lucidworks scopes.
pub const LW_TOKEN: &str = "lw-token-manage-and-predict";
/// A Bearer token with only the predict scope.
pub const LW_PREDICT_ONLY: &str = "lw-token-predict-only";

/// How long a poll waits for an agent to reach a state before the test fails. Generous:
/// this bounds a wait, it measures nothing.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The agent binary under test: the one Cargo built for this test target, or the one
/// named by `BLACKBOX_AGENT_BIN` (e.g. a release or feature build, to run the same
/// black-box suite against it).
pub fn agent_binary() -> PathBuf {
    std::env::var_os("BLACKBOX_AGENT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_gpu-agent")))
}

/// The repository's `tests/fixtures`.
pub fn fixtures() -> PathBuf {
    references::fixtures_dir()
        .canonicalize()
        .expect("tests/fixtures exists")
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// A running agent. Killed (SIGKILL) when dropped; its state directory outlives restarts.
pub struct Agent {
    child: Option<Child>,
    endpoint: Endpoint,
    pub dir: tempfile::TempDir,
    config: AgentConfig,
    env: Vec<(String, String)>,
}

impl Agent {
    /// Starts an agent with `config` and waits until `/healthz` answers.
    pub fn start(config: AgentConfig) -> Agent {
        Self::start_with_env(config, &[])
    }

    pub fn start_with_env(config: AgentConfig, env: &[(&str, &str)]) -> Agent {
        let dir = tempfile::tempdir().expect("temp dir for the agent");
        let port = free_port();
        let endpoint = Endpoint::new(port, Some(dir.path().join("agent.log")));
        let mut agent = Agent {
            child: None,
            endpoint,
            dir,
            config,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        agent.launch();
        agent
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("agent.log")
    }

    fn launch(&mut self) {
        let config_path = self.dir.path().join("agent.toml");
        let text = self.config.render(self.endpoint.port, &self.state_dir());
        std::fs::write(&config_path, text).expect("write agent.toml");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open the agent log");
        let mut command = Command::new(agent_binary());
        command
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .env_remove("HF_HUB_OFFLINE")
            .env_remove("HF_ENDPOINT")
            .env("HF_HOME", self.dir.path().join("hf-home"))
            .env("GPU_AGENT_LOG", "info,gpu_agent=debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log);
        for (key, value) in &self.env {
            command.env(key, value);
        }
        self.child = Some(command.spawn().expect("spawn gpu-agent"));
        self.wait_healthy();
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "gpu-agent exited at start with {status}; log:\n{}",
                    self.log()
                );
            }
            if self.get("/healthz").status == 200 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "gpu-agent never answered /healthz; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `kill -9`, then start again on the same state directory and port.
    pub fn kill9_and_restart(&mut self) {
        self.kill9();
        self.launch();
    }

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn sigterm_and_wait(&mut self) -> ExitStatus {
        let log = self.log_path();
        let child = self.sigterm();
        wait_exit(child, &log)
    }

    /// Sends SIGTERM and waits for the exit on another thread, so the test can keep
    /// talking to the draining agent.
    pub fn sigterm_in_background(&mut self) -> std::thread::JoinHandle<ExitStatus> {
        let log = self.log_path();
        let child = self.sigterm();
        std::thread::spawn(move || wait_exit(child, &log))
    }

    fn sigterm(&mut self) -> Child {
        let child = self.child.take().expect("agent is running");
        let pid = i32::try_from(child.id()).expect("pid fits in i32");
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(sent, 0, "SIGTERM delivered");
        child
    }

    /// Sets (or replaces) an environment variable for the next start.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// Starts again after a stop, same state directory and port.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the agent before restarting it");
        self.launch();
    }
}

/// Waits (bounded) for a stopping agent to exit.
fn wait_exit(mut child: Child, log: &Path) -> ExitStatus {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.try_wait().expect("wait for the agent") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "gpu-agent did not exit after SIGTERM; log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl std::ops::Deref for Agent {
    type Target = Endpoint;

    /// The HTTP helpers (`get`, `post_json`, `poll`, ...) of [`Endpoint`].
    fn deref(&self) -> &Endpoint {
        &self.endpoint
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
    }
}
