//! The seam between the control plane and the data plane. The lifecycle loads a model
//! through a [`ServingBackend`] (phases CONVERTING, LOADING, WARMING happen inside `load`
//! and are reported through [`LoadProgress`]); the generate surfaces submit to the
//! [`ServingHandle`] it returns. Nothing here knows HTTP; nothing in the API knows tensors.
//!
//! [`runtime_backend`] is the one place the binary builds its backend.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::config::AgentConfig;
use crate::deployment::spec::DeploymentSpec;
use crate::gpu::Placement;

/// A model whose files are on local disk, ready to load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedModel {
    pub model_id: String,
    /// A Hugging Face style directory (config.json, weights, tokenizer files).
    pub dir: PathBuf,
    /// Where it came from, for status and logs: `local:/srv/models/x`, `hf:gpt2@<commit>`.
    pub origin: String,
    /// The commit or other revision the files are at, when known (cache keys).
    pub revision: Option<String>,
}

/// Why a load failed: `code` is SNAKE_CASE (e.g. `MODEL_LOAD_FAILED`, `WARMUP_FAILED`,
/// `CONVERSION_FAILED`), `message` a sentence naming the file, tensor or limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadFailure {
    pub code: String,
    pub message: String,
}

impl LoadFailure {
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

/// Builds serving replicas for a deployment.
pub trait ServingBackend: Send + Sync {
    /// Blocking: converts if needed, loads `placement.initial(minReplicas)` replicas,
    /// runs a warm-up generation on each, and returns once all of them serve. The lifecycle
    /// calls it from `spawn_blocking`.
    fn load(
        &self,
        model: &ResolvedModel,
        spec: &DeploymentSpec,
        placement: &Placement,
        progress: &dyn LoadProgress,
    ) -> Result<Arc<dyn ServingHandle>, LoadFailure>;
}

/// A loaded, serving deployment (all its replicas and their batchers).
pub trait ServingHandle: Send + Sync {
    /// Queues one generation. Events arrive on the receiver; dropping the receiver cancels
    /// the request (the batcher removes it at its next step).
    fn submit(
        &self,
        request: GenerateRequest,
    ) -> Result<UnboundedReceiver<GenerateEvent>, SubmitRejection>;

    fn status(&self) -> ServingStatus;

    /// Blocking: refuses new work, waits up to `timeout` for in-flight requests, then
    /// releases the replicas. True when everything finished in time.
    fn drain(&self, timeout: Duration) -> bool;

    /// Grows while the serving loops make progress (idle loops tick too); the systemd
    /// watchdog is fed only while it grows.
    fn heartbeat(&self) -> u64;
}

/// One generation, parameters already validated and merged with the deployment's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateRequest {
    pub prompt: String,
    /// 0 = greedy.
    pub temperature: f32,
    pub top_p: f32,
    pub top_k: u32,
    pub max_tokens: u32,
    pub stop: Vec<String>,
    /// Absent: the backend draws one and reports it in the result.
    pub seed: Option<u64>,
    /// From submission; past it the request ends with a `DEADLINE_EXCEEDED` failure.
    pub timeout: Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub enum GenerateEvent {
    /// A token and the text it settled (may be empty while a stop sequence is undecided).
    Token { id: u32, text: String },
    /// The last event of a successful request.
    Finished(GenerateResult),
    /// The last event of a failed request.
    Failed(GenerateFailure),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Length,
    StopSequence,
    Eos,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Length => "length",
            FinishReason::StopSequence => "stop_sequence",
            FinishReason::Eos => "eos",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct GenerateResult {
    /// Generated text without the prompt and without a matched stop sequence.
    pub text: String,
    /// Generated token ids.
    pub tokens: Vec<u32>,
    pub finish_reason: FinishReason,
    pub prompt_tokens: usize,
    /// The seed used (the one given, or the one drawn).
    pub seed: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenerateFailure {
    /// `DEADLINE_EXCEEDED`, `GENERATION_FAILED`, ...
    pub code: String,
    pub message: String,
}

/// Why `submit` refused a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubmitRejection {
    /// 429 with Retry-After.
    QueueFull { capacity: usize },
    /// 503: the deployment is draining.
    Draining,
    /// 422 `PROMPT_TOO_LONG`: prompt + maxTokens exceed the model's context.
    PromptTooLong {
        prompt_tokens: usize,
        max_tokens: u32,
        limit: usize,
    },
}

/// What a serving deployment reports about itself.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServingStatus {
    /// "candle" or "ctranslate2".
    pub backend: String,
    /// The effective compute type: "float32", "float16", "int8_float32", ...
    pub compute_type: String,
    pub replicas: Vec<ReplicaStatus>,
    pub queue_depth: usize,
    pub running: usize,
    /// Notable events (scale up/down, replica errors), newest last, bounded.
    pub events: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaStatus {
    /// "cpu" or "cuda:<index>".
    pub device: String,
    /// NVML index of the GPU the replica was admitted on.
    pub gpu: Option<u32>,
    pub running: usize,
    pub queued: usize,
}

/// The backend the binary serves with.
///
/// INTEGRATION POINT: the runtime-backed implementation (candle + continuous batcher,
/// CTranslate2) goes here. Until then every load fails with `BACKEND_UNAVAILABLE`, so
/// deploys reach LOADING and fail with a clear reason. What the implementation owes the
/// control plane:
///
/// - `load` (blocking, on a `spawn_blocking` thread): call `progress.step` on entering
///   CONVERTING (ctranslate2 only, skipped on a cache hit; the conversion cache belongs
///   under `config.state_dir`, reused when `spec.reuse_cached_artifacts` and still valid),
///   LOADING and WARMING; start `placement.initial(spec.scaling.min_replicas)` replicas
///   (`ReplicaDevice::Cuda { gpu }` → that CUDA device); run one warm-up generation on each;
///   return only when all serve. Errors name the file/tensor (`MODEL_LOAD_FAILED`,
///   `CONVERSION_FAILED`, `WARMUP_FAILED`, ...). Later replicas come from
///   `placement.next_replica` when the queue presses (`scale_up_delay_ms`).
/// - `submit`: never blocks; refuse with `QueueFull` past `config.batcher.max_queue`,
///   `Draining` after `drain`, `PromptTooLong` when prompt + maxTokens exceed the context.
///   Events: zero or more `Token`s then exactly one `Finished` or `Failed`
///   (`DEADLINE_EXCEEDED` past `request.timeout`). A closed receiver means the client left:
///   drop the sequence at the next step.
/// - `heartbeat`: bumped by every serving loop iteration, idle ones included (it feeds the
///   systemd watchdog); `drain`: refuse new work, wait for in-flight, release replicas.
/// - per decode step, a `crate::metrics::BATCH_SIZE` sample (label `deployment` = modelId):
///   the runtime knows nothing of the agent, so the adapter hands its batcher the name or a
///   callback. The agent records the request-level metrics (TTFT, ITL, duration, outcome,
///   tokens) itself from the events.
pub fn runtime_backend(config: &AgentConfig) -> Arc<dyn ServingBackend> {
    let _ = config;
    Arc::new(UnavailableBackend)
}

/// A backend that loads nothing.
struct UnavailableBackend;

impl ServingBackend for UnavailableBackend {
    fn load(
        &self,
        _model: &ResolvedModel,
        spec: &DeploymentSpec,
        _placement: &Placement,
        _progress: &dyn LoadProgress,
    ) -> Result<Arc<dyn ServingHandle>, LoadFailure> {
        Err(LoadFailure::new(
            "BACKEND_UNAVAILABLE",
            format!(
                "this gpu-agent build has no {} serving backend wired in yet",
                spec.backend.as_str()
            ),
        ))
    }
}
