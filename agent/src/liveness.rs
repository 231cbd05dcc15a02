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
