//! The agent's own server (`gpu_agent::server::run`, the same routes and shutdown path as
//! the binary) in this process, on a real loopback port, serving through a
//! [`ScriptedBackend`]. For the generate surfaces until the binary has a runtime backend.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::scripted::{Script, ScriptedBackend};
use super::{free_port, AgentConfig, Endpoint, PATIENCE};

pub struct InProcessAgent {
    endpoint: Endpoint,
    pub dir: tempfile::TempDir,
    pub backend: ScriptedBackend,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), String>>>,
}

impl InProcessAgent {
    /// Starts the server with `config` and `script`, and waits until `/healthz` answers.
    pub fn start(config: AgentConfig, script: Script) -> InProcessAgent {
        let dir = tempfile::tempdir().expect("temp dir for the agent");
        let port = free_port();
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, config.render(port, &dir.path().join("state")))
            .expect("write agent.toml");
        let config = gpu_agent::config::AgentConfig::load_with_env(Some(&path), Vec::new())
            .expect("the rendered config loads");
        let backend = ScriptedBackend::new(script);
        let inventory = Arc::new(gpu_agent::gpu::GpuInventory::open(
            config.gpu.nvml_library.clone(),
        ));
        let state = gpu_agent::server::AppState::open(config, Arc::new(backend.clone()), inventory)
            .expect("the agent state opens");
        let (shutdown, stop) = oneshot::channel::<()>();
        let server = std::thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                    .await
                    .map_err(|e| e.to_string())?;
                gpu_agent::server::run(state, listener, async {
                    let _ = stop.await;
                })
                .await
                .map_err(|e| e.to_string())
            })
        });
        let agent = InProcessAgent {
            endpoint: Endpoint::new(port, None),
            dir,
            backend,
            shutdown: Some(shutdown),
            server: Some(server),
        };
        let deadline = Instant::now() + PATIENCE;
        while agent.get("/healthz").status != 200 {
            assert!(
                Instant::now() < deadline,
                "the in-process agent never served /healthz"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        agent
    }

    /// What SIGTERM does to the binary: the shutdown future resolves and the drain begins.
    pub fn begin_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Waits for `server::run` to return (after [`begin_shutdown`](Self::begin_shutdown)).
    pub fn wait_stopped(&mut self) -> Result<(), String> {
        let server = self.server.take().expect("the server runs");
        let deadline = Instant::now() + PATIENCE;
        while !server.is_finished() {
            assert!(
                Instant::now() < deadline,
                "server::run did not return after shutdown"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
            .join()
            .unwrap_or_else(|_| Err("the server thread panicked".to_owned()))
    }

    /// Deploys `model` through the Kore surface and waits until the job succeeds; returns
    /// the deployment id.
    pub fn deploy_ready(&self, model: &str) -> String {
        let reply = crate::kore_lifecycle::kore_deploy(self, model, "cpu");
        assert_eq!(reply.status, 202, "{}", reply.text);
        let job = crate::kore_lifecycle::wait_job(
            self,
            reply.json["dockStatusId"].as_str().unwrap_or(""),
        );
        assert_eq!(job.json["status"], "SUCCESS", "{}", job.text);
        reply.json["deploymentId"].as_str().unwrap_or("").to_owned()
    }
}

impl std::ops::Deref for InProcessAgent {
    type Target = Endpoint;

    fn deref(&self) -> &Endpoint {
        &self.endpoint
    }
}

impl Drop for InProcessAgent {
    /// Lets held generations finish, shuts the server down and waits for it.
    fn drop(&mut self) {
        self.backend.gate().release();
        self.begin_shutdown();
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
    }
}
