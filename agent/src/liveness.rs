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
    pub(crate) fn progressed(&mut self) -> bool {
        let serving = self
            .registry
            .handles()
            .into_iter()
            .map(|(id, handle)| (id, handle.heartbeat()));
        self.progressed_with(serving)
    }

    /// [`Self::progressed`], given the heartbeat of each serving deployment by id.
    fn progressed_with(&mut self, serving: impl IntoIterator<Item = (String, u64)>) -> bool {
        let runtime = self.runtime.count();
        let mut alive = runtime != self.last_runtime;
        if !alive {
            tracing::error!("the async runtime made no progress since the last watchdog check");
        }
        self.last_runtime = runtime;
        let mut seen = HashMap::new();
        for (id, beat) in serving {
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
pub(crate) fn spawn_runtime_heartbeat(heartbeat: Heartbeat, period: Duration) {
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
    use super::*;
    use crate::callback::StatusCallback;
    use crate::state::StateStore;

    /// The heartbeats of one serving deployment whose loop count the test moves by hand.
    fn serving(beat: u64) -> [(String, u64); 1] {
        [("deployment-1".to_owned(), beat)]
    }

    #[test]
    fn progress_needs_both_the_runtime_and_every_serving_loop_to_move() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, _) = StateStore::open(dir.path()).expect("state store");
        let registry = Arc::new(Registry::new(store, StatusCallback::new(None)));
        let runtime = Heartbeat::new();
        let mut serving_loop = 0;
        let mut liveness = Liveness::new(registry, runtime.clone());

        runtime.beat();
        assert!(
            liveness.progressed_with(serving(serving_loop)),
            "a deployment seen for the first time counts as progressing"
        );
        runtime.beat();
        assert!(
            !liveness.progressed_with(serving(serving_loop)),
            "the serving loop is stuck"
        );
        serving_loop += 1;
        assert!(
            !liveness.progressed_with(serving(serving_loop)),
            "the runtime is stuck"
        );
        runtime.beat();
        serving_loop += 1;
        assert!(liveness.progressed_with(serving(serving_loop)));
    }
}
