//! What the systemd watchdog asks at each tick: did the agent's loops make progress since
//! the previous tick? The async runtime (HTTP, lifecycle) shows it by a task that bumps a
//! [`Heartbeat`]; each serving deployment by its [`ServingHandle::heartbeat`]. A wedged
//! runtime or a stuck batcher loop withholds `WATCHDOG=1`, and systemd restarts the agent.
//!
//! [`ServingHandle::heartbeat`]: crate::serving::ServingHandle::heartbeat

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::deployment::registry::Registry;
use crate::systemd::Heartbeat;

/// The progress check handed to [`crate::systemd::Watchdog::new`].
pub struct Liveness {
    registry: Arc<Registry>,
    runtime: Heartbeat,
    last_runtime: u64,
    /// Serving heartbeats seen at the previous check, by deployment id.
    last_serving: HashMap<String, u64>,
}

impl Liveness {
    pub fn new(registry: Arc<Registry>, runtime: Heartbeat) -> Self {
        let last_runtime = runtime.count();
        Liveness {
            registry,
            runtime,
            last_runtime,
            last_serving: HashMap::new(),
        }
    }

    /// True when the runtime ticked and every serving deployment's loops beat since the
    /// previous call. A deployment seen for the first time counts as progressing.
    pub fn progressed(&mut self) -> bool {
        let runtime = self.runtime.count();
        let mut alive = runtime != self.last_runtime;
        if !alive {
            tracing::error!("the async runtime made no progress since the last watchdog check");
        }
        self.last_runtime = runtime;
        let mut seen = HashMap::new();
        for (id, handle) in self.registry.handles() {
            let beat = handle.heartbeat();
            if self.last_serving.get(&id).is_some_and(|last| *last == beat) {
                tracing::error!(deployment = %id, "serving loop made no progress since the last watchdog check");
                alive = false;
            }
            seen.insert(id, beat);
        }
        self.last_serving = seen;
        alive
    }
}

/// Bumps `heartbeat` every `period` from the async runtime, for as long as it runs.
pub fn spawn_runtime_heartbeat(heartbeat: Heartbeat, period: Duration) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(period);
        loop {
            ticker.tick().await;
            heartbeat.beat();
        }
    });
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use crate::callback::StatusCallback;
    use crate::deployment::spec::{BackendKind, DeploymentSpec, Quantization};
    use crate::serving::{
        GenerateEvent, GenerateRequest, ServingHandle, ServingStatus, SubmitRejection,
    };
    use crate::state::StateStore;

    /// A serving handle whose loop count the test moves by hand.
    #[derive(Default)]
    struct Loop(AtomicU64);

    impl ServingHandle for Loop {
        fn submit(
            &self,
            _request: GenerateRequest,
        ) -> Result<tokio::sync::mpsc::UnboundedReceiver<GenerateEvent>, SubmitRejection> {
            Err(SubmitRejection::Draining)
        }

        fn status(&self) -> ServingStatus {
            ServingStatus {
                backend: "test".to_owned(),
                compute_type: "none".to_owned(),
                replicas: Vec::new(),
                queue_depth: 0,
                running: 0,
                events: Vec::new(),
                ..ServingStatus::default()
            }
        }

        fn drain(&self, _timeout: Duration) -> bool {
            true
        }

        fn heartbeat(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    fn spec() -> DeploymentSpec {
        DeploymentSpec::example("cpu", BackendKind::Candle, Quantization::Default)
    }

    /// A registry holding one READY deployment served by `serving`.
    fn serving(dir: &std::path::Path, serving: Arc<Loop>) -> Arc<Registry> {
        let (store, _) = StateStore::open(dir).expect("state store");
        let registry = Arc::new(Registry::new(store, StatusCallback::new(None)));
        let (record, _) = registry.create(spec(), None).expect("deploy accepted");
        if registry.ready(&record.id, serving).is_err() {
            panic!("the deployment became READY");
        }
        registry
    }

    #[test]
    fn progress_needs_both_the_runtime_and_every_serving_loop_to_move() {
        let dir = tempfile::tempdir().expect("temp dir");
        let serving_loop = Arc::new(Loop::default());
        let runtime = Heartbeat::new();
        let registry = serving(dir.path(), Arc::clone(&serving_loop));
        let mut liveness = Liveness::new(registry, runtime.clone());

        runtime.beat();
        assert!(
            liveness.progressed(),
            "a deployment seen for the first time counts as progressing"
        );
        runtime.beat();
        assert!(!liveness.progressed(), "the serving loop is stuck");
        serving_loop.0.fetch_add(1, Ordering::SeqCst);
        assert!(!liveness.progressed(), "the runtime is stuck");
        runtime.beat();
        serving_loop.0.fetch_add(1, Ordering::SeqCst);
        assert!(liveness.progressed());
    }
}
