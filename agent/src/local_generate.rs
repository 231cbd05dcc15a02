//! `gpu-agent generate`: one generation on a local model directory, no server. It runs
//! through the same engine as a deployment (one replica, batch of one), so the CLI shows
//! exactly what the HTTP API would answer.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use runtime::batcher::{
    Engine, EngineConfig, Event, LoadedReplica, ReplicaLoader, ReplicaModel, SamplingParams,
    SubmitRequest,
};
use runtime::checkpoint::Checkpoint;
use runtime::model::{Model, Precision, Target};
use runtime::tokenizer::Tokenizer;
use serde::Serialize;

/// What to generate, as the command line gives it.
#[derive(Debug, Clone)]
pub struct LocalRequest {
    pub model: PathBuf,
    pub prompt: String,
    pub max_tokens: usize,
    pub temperature: f32,
    /// 0 = no top-k cut.
    pub top_k: usize,
    pub top_p: f32,
    pub seed: Option<u64>,
    pub stop: Vec<String>,
    pub target: Target,
    /// Overrides the target's default precision.
    pub precision: Option<Precision>,
}

/// The `--json` line.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LocalResult {
    pub text: String,
    pub tokens: Vec<u32>,
    pub prompt_tokens: Vec<u32>,
    pub finish_reason: &'static str,
    /// Always present here: the CLI runs candle, whose seeded draws replay.
    pub seed: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(transparent)]
    Load(#[from] runtime::checkpoint::LoadError),
    #[error("{0}")]
    Engine(String),
    #[error("the prompt could not be tokenized: {0}")]
    Tokenizer(String),
    #[error("generation failed: {0}")]
    Generate(String),
}

/// The model loaded once, handed to the engine's single replica.
struct LoadedOnce(Arc<dyn Model>);

impl ReplicaLoader for LoadedOnce {
    fn load(&self, _running: &[Option<u32>]) -> Result<LoadedReplica, String> {
        Ok(LoadedReplica {
            model: ReplicaModel::Candle(self.0.clone()),
            device: "local".into(),
            gpu: None,
        })
    }
}

/// Parses `--device`: `cpu` or `cuda:<ordinal>`.
pub fn parse_target(device: &str) -> Result<Target, String> {
    match device.split_once(':') {
        None if device == "cpu" => Ok(Target::Cpu),
        Some(("cuda", ordinal)) => ordinal
            .parse()
            .map(|ordinal| Target::Cuda {
                ordinal,
                capability: None,
            })
            .map_err(|_| format!("bad CUDA ordinal in {device:?}; expected cuda:0, cuda:1, ...")),
        _ => Err(format!(
            "unknown device {device:?}; expected cpu or cuda:<ordinal>"
        )),
    }
}

pub fn generate(request: LocalRequest) -> Result<LocalResult, LocalError> {
    let dir = Checkpoint::open(&request.model)?;
    let tokenizer = Arc::new(Tokenizer::load(&dir)?);
    let prompt_tokens = tokenizer
        .encode(&request.prompt)
        .map_err(|e| LocalError::Tokenizer(e.to_string()))?;
    let precision = request
        .precision
        .unwrap_or_else(|| request.target.precision(dir.architecture()));
    let model = dir.load_in(request.target, precision)?;
    let engine = Engine::start(
        EngineConfig {
            name: "cli".into(),
            max_batch_size: 1,
            max_queue: 1,
            prefill_token_budget: usize::MAX,
            min_replicas: 1,
            max_replicas: 1,
            scale_up_delay: Duration::MAX,
            scale_down_delay: Duration::MAX,
            scale_up_queue_wait: Duration::MAX,
            batch_wait: Duration::ZERO,
            max_batch_wait: Duration::ZERO,
        },
        tokenizer,
        dir.limits(),
        Arc::new(LoadedOnce(model)),
        Arc::new(|_| {}),
        &|_| {},
    )
    .map_err(|e| LocalError::Engine(e.to_string()))?;
    let mut events = engine
        .submit(SubmitRequest {
            prompt: request.prompt,
            sampling: SamplingParams {
                temperature: request.temperature,
                top_k: request.top_k,
                top_p: request.top_p,
            },
            max_new_tokens: request.max_tokens,
            stop: request.stop,
            seed: request.seed,
            timeout: None,
            logprobs: None,
            prompt_logprobs: false,
        })
        .map_err(|e| LocalError::Generate(e.to_string()))?;
    while let Some(event) = events.blocking_recv() {
        match event {
            Event::Token { .. } => {}
            Event::Finished(done) => {
                return Ok(LocalResult {
                    text: done.text,
                    tokens: done.tokens,
                    prompt_tokens,
                    finish_reason: done.finish_reason.as_str(),
                    seed: done.seed,
                })
            }
            Event::Failed(error) => return Err(LocalError::Generate(error.to_string())),
        }
    }
    Err(LocalError::Generate(
        "the engine stopped without an answer".into(),
    ))
}
