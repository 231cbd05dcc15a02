//! The seam between the control plane and the data plane. The lifecycle loads a model
//! through a [`ServingBackend`] (phases CONVERTING, LOADING, WARMING happen inside `load`
//! and are reported through [`LoadProgress`]); the generate surfaces submit to the
//! [`ServingHandle`] it returns. Nothing here knows HTTP; nothing in the API knows tensors.
//!
//! [`runtime_backend`] is the one place the binary builds its backend.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use runtime::checkpoint::Checkpoint;
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
    /// calls it from `spawn_blocking` with the checkpoint it opened once for the deploy
    /// (the memory estimate read the same one); every replica loads from it.
    fn load(
        &self,
        checkpoint: Arc<Checkpoint>,
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

/// A request field a backend may refuse. Each surface names it in its own wire terms
/// (native `parameters.seed`, OpenAI `seed`, Lucidworks `modelConfig.seed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestField {
    Seed,
    Prompt,
}

/// Why `submit` refused a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubmitRejection {
    /// 429 with Retry-After.
    QueueFull { capacity: usize },
    /// 503: the deployment is draining.
    Draining,
    /// 422 naming `field` (as the surface spells it): a parameter this deployment's
    /// backend cannot honour.
    Unsupported {
        field: RequestField,
        message: String,
    },
    /// 422 `EMPTY_PROMPT`: the prompt tokenizes to nothing.
    EmptyPrompt,
    /// 422 `PROMPT_TOO_LONG`: prompt + maxTokens exceed the model's context.
    PromptTooLong {
        prompt_tokens: usize,
        max_tokens: u32,
        limit: usize,
    },
}

/// What a serving deployment reports about itself.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServingStatus {
    /// "candle" or "ctranslate2".
    pub backend: String,
    /// The effective compute type: "float32", "float16", "int8_float32", ... (candle: its
    /// dtype). Never the requested one when the device cannot run that.
    pub compute_type: String,
    /// What the deploy asked for, where it differs in kind from `compute_type`
    /// (CTranslate2's `int8_float16`).
    pub requested_compute_type: Option<String>,
    /// CTranslate2: whether the converted model came from the conversion cache.
    pub cache_hit: Option<bool>,
    /// CTranslate2: why a cached conversion was found invalid and converted again (e.g.
    /// "model.bin does not match its SHA-256"); absent when nothing was discarded.
    pub cache_rebuilt_because: Option<String>,
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

/// The backend the binary serves with: the runtime's engine (see
/// [`crate::runtime_backend`]).
pub fn runtime_backend(
    config: &AgentConfig,
    inventory: Arc<crate::gpu::GpuInventory>,
) -> Arc<dyn ServingBackend> {
    Arc::new(crate::runtime_backend::RuntimeBackend::new(
        config, inventory,
    ))
}
