//! The seam between the control plane and the data plane. The lifecycle loads a model
//! with [`crate::runtime_backend::RuntimeBackend`] (phases CONVERTING, LOADING, WARMING
//! happen inside its `load` and are reported through [`LoadProgress`]); the generate
//! surfaces submit the runtime's [`SubmitRequest`] to the [`ServingHandle`] it returns and
//! read the runtime's events and typed errors as they are. Nothing here knows HTTP; nothing
//! in the API knows tensors.

use std::path::PathBuf;
use std::time::Duration;

use runtime::batcher::{Engine, EngineStats, EventReceiver, SubmitError, SubmitRequest};
use serde::Serialize;

use crate::chat_template::{ChatTemplate, ChatTemplateError};

/// A model whose files are on local disk, ready to load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ResolvedModel {
    pub(crate) model_id: String,
    /// A Hugging Face style directory (config.json, weights, tokenizer files).
    pub dir: PathBuf,
    /// Where it came from, for status and logs: `local:/srv/models/x`, `hf:gpt2@<commit>`.
    pub origin: String,
    /// The commit or other revision the files are at, when known (cache keys).
    pub(crate) revision: Option<String>,
}

/// Why a load failed: `code` is SNAKE_CASE (e.g. `MODEL_LOAD_FAILED`, `WARMUP_FAILED`,
/// `CONVERSION_FAILED`), `message` a sentence naming the file, tensor or limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadFailure {
    pub code: String,
    pub message: String,
}

impl LoadFailure {
    /// The checkpoint could not be opened or loaded (the load task included).
    pub const MODEL_LOAD_FAILED: &'static str = "MODEL_LOAD_FAILED";

    pub(crate) fn model_load(message: impl Into<String>) -> Self {
        Self::new(Self::MODEL_LOAD_FAILED, message)
    }

    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        LoadFailure {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// The steps of `load`, each a lifecycle phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadStep {
    /// Converting to CTranslate2's format (ctranslate2 only; skipped when cached).
    Converting,
    Loading,
    /// The warm-up generation on every replica.
    Warming,
}

/// Told of each step as `load` enters it; persists the phase (blocking, cheap).
pub trait LoadProgress: Send + Sync {
    fn step(&self, step: LoadStep);
}

/// A loaded, serving deployment: its engine (all replicas and their batchers) and what
/// it reports about itself. The generate surfaces submit to it and read the runtime's
/// events directly; one implementation, so a struct rather than a trait.
pub struct ServingHandle {
    engine: Engine,
    /// The parts of the status fixed at load (backend, compute type, cache).
    status: ServingStatus,
    /// CTranslate2 keeps one random generator per worker thread, seeded once per process,
    /// so a per-request seed cannot be honoured there.
    honours_seeds: bool,
    /// How a chat conversation becomes this model's prompt; the error when the template
    /// the model brings cannot be used (chat is refused with it, completions still serve).
    chat_template: Result<ChatTemplate, ChatTemplateError>,
}

impl ServingHandle {
    pub fn new(
        engine: Engine,
        status: ServingStatus,
        honours_seeds: bool,
        chat_template: Result<ChatTemplate, ChatTemplateError>,
    ) -> Self {
        ServingHandle {
            engine,
            status,
            honours_seeds,
            chat_template,
        }
    }

    pub fn chat_template(&self) -> Result<&ChatTemplate, &ChatTemplateError> {
        self.chat_template.as_ref()
    }

    /// Queues one generation. Events arrive on the receiver; dropping the receiver cancels
    /// the request (the batcher removes it at its next step).
    pub(crate) fn submit(&self, request: SubmitRequest) -> Result<EventReceiver, SubmitRejection> {
        if !self.honours_seeds && request.seed.is_some() && request.sampling.temperature > 0.0 {
            return Err(SubmitRejection::SeedNotHonoured);
        }
        self.engine.submit(request).map_err(SubmitRejection::Engine)
    }

    /// The deployment's tokenizer (token texts for logprobs).
    pub fn tokenizer(&self) -> &runtime::tokenizer::Tokenizer {
        self.engine.tokenizer()
    }

    pub fn status(&self) -> ServingStatus {
        let stats = self.engine.stats();
        ServingStatus {
            replicas: replica_statuses(&stats),
            queue_depth: stats.queue_depth,
            running: stats.running,
            events: stats
                .events
                .iter()
                .map(|e| format!("{} (replicas: {})", e.reason, e.replicas))
                .collect(),
            ..self.status.clone()
        }
    }

    /// Blocking: refuses new work, waits up to `timeout` for in-flight requests, then
    /// releases the replicas. True when everything finished in time.
    pub fn drain(&self, timeout: Duration) -> bool {
        self.engine.drain(timeout)
    }

    /// Grows while the serving loops make progress (idle loops tick too); the systemd
    /// watchdog is fed only while it grows.
    pub fn heartbeat(&self) -> u64 {
        self.engine.heartbeat()
    }
}

fn replica_statuses(stats: &EngineStats) -> Vec<ReplicaStatus> {
    stats
        .replicas
        .iter()
        .map(|r| ReplicaStatus {
            device: r.device.clone(),
            gpu: r.gpu,
            running: r.running,
            queued: 0,
        })
        .collect()
}

/// Why [`ServingHandle::submit`] refused a request before queueing it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SubmitRejection {
    /// The engine's refusal: queue full, draining, prompt empty, too long or untokenizable.
    #[error(transparent)]
    Engine(SubmitError),
    /// A seed with sampling on a backend that cannot seed per request (CTranslate2).
    #[error(
        "this deployment runs on CTranslate2, whose sampling cannot be seeded per request; \
         omit seed, use temperature 0, or deploy with optimizationType \"\" (candle)"
    )]
    SeedNotHonoured,
}

/// What a serving deployment reports about itself.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServingStatus {
    /// "candle" or "ctranslate2".
    pub backend: String,
    /// The effective compute type: "float32", "float16", "int8_float32", ... (candle: its
    /// dtype). Never the requested one when the device cannot run that.
    pub(crate) compute_type: String,
    /// What the deploy asked for, where it differs in kind from `compute_type`
    /// (CTranslate2's `int8_float16`).
    pub(crate) requested_compute_type: Option<String>,
    /// CTranslate2: whether the converted model came from the conversion cache.
    pub cache_hit: Option<bool>,
    /// CTranslate2: why a cached conversion was found invalid and converted again (e.g.
    /// "model.bin does not match its SHA-256"); absent when nothing was discarded.
    pub(crate) cache_rebuilt_because: Option<String>,
    pub replicas: Vec<ReplicaStatus>,
    pub(crate) queue_depth: usize,
    pub running: usize,
    /// Notable events (scale up/down, replica errors), newest last, bounded.
    pub events: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaStatus {
    /// `cpu` or `cuda:<index>`.
    pub device: String,
    /// NVML index of the GPU the replica was admitted on.
    pub gpu: Option<u32>,
    pub running: usize,
    pub queued: usize,
}
