//! What the engine and a replica thread share: the stop flag, liveness and load figures.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::model::Model;

/// Told the number of sequences in every decode step (the agent records a histogram).
pub type StepObserver = Arc<dyn Fn(usize) + Send + Sync>;

/// A loaded model instance a replica thread drives.
#[derive(Clone)]
pub enum ReplicaModel {
    /// candle: iteration-level batching over caller-owned slots.
    Candle(Arc<dyn Model>),
    /// CTranslate2: batches per call (it has no iteration-level batching).
    #[cfg(feature = "ctranslate2")]
    Ctranslate2(Arc<crate::ct2::Ct2Model>),
}

/// What a replica's backend can report about token probabilities
/// (`docs/sampling.md` § Log-probabilities); requests asking for more are refused with
/// [`super::SubmitError::Unsupported`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogprobSupport {
    /// Most alternatives per generated token; 0: the chosen token's logprob only.
    pub max_top: usize,
    /// Whether prompts can be scored (echo with logprobs).
    pub prompt: bool,
}

impl ReplicaModel {
    pub fn logprob_support(&self) -> LogprobSupport {
        match self {
            ReplicaModel::Candle(model) => LogprobSupport {
                max_top: kernels::MAX_TOP_LOGPROBS,
                prompt: model.scores_prompts(),
            },
            // CTranslate2 reports the chosen token's raw log-softmax per step
            // (`return_scores`) but not the alternatives; GPT-2 prompts are scored with
            // `score_batch` (`docs/ctranslate2.md` § Logprobs).
            #[cfg(feature = "ctranslate2")]
            ReplicaModel::Ctranslate2(model) => LogprobSupport {
                max_top: 0,
                prompt: model.scores_prompts(),
            },
        }
    }
}

/// Shared between a replica thread and the engine that supervises it.
#[derive(Debug)]
pub struct ReplicaControl {
    epoch: Instant,
    /// Asked to stop: admit nothing new, finish what runs, exit.
    stop: AtomicBool,
    /// Sequences currently running on this replica.
    running: AtomicUsize,
    /// Milliseconds after `epoch` when this replica last had work.
    last_busy_ms: AtomicU64,
    /// Incremented every loop iteration: proof of life for the watchdog.
    heartbeat: AtomicU64,
    exited: AtomicBool,
}

impl Default for ReplicaControl {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            stop: AtomicBool::new(false),
            running: AtomicUsize::new(0),
            last_busy_ms: AtomicU64::new(0),
            heartbeat: AtomicU64::new(0),
            exited: AtomicBool::new(false),
        }
    }
}

impl ReplicaControl {
    pub fn beat(&self) {
        self.heartbeat.fetch_add(1, Ordering::Relaxed);
    }

    pub fn heartbeat(&self) -> u64 {
        self.heartbeat.load(Ordering::Relaxed)
    }

    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    pub fn is_stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    pub fn mark_busy(&self) {
        let now = self.epoch.elapsed().as_millis() as u64;
        self.last_busy_ms.store(now, Ordering::Relaxed);
    }

    /// How long since this replica last had work.
    pub fn idle_for(&self) -> Duration {
        let now = self.epoch.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_busy_ms.load(Ordering::Relaxed)))
    }

    pub fn set_running(&self, running: usize) {
        self.running.store(running, Ordering::Release);
    }

    pub fn running(&self) -> usize {
        self.running.load(Ordering::Acquire)
    }

    pub fn mark_exited(&self) {
        self.exited.store(true, Ordering::Release);
    }

    pub fn has_exited(&self) -> bool {
        self.exited.load(Ordering::Acquire)
    }
}
