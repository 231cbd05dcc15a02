//! A deployment's serving engine: the shared queue, its replicas and their autoscaling.
//!
//! Replicas are threads pulling from one bounded queue, so a request goes to whichever
//! replica frees a slot first. A supervisor thread watches queue pressure: when the oldest
//! request has waited longer than `scale_up_queue_wait` for `scale_up_delay`, another
//! replica is loaded (up to `max_replicas`); a replica above `min_replicas` that has been
//! idle for `scale_down_delay` is released.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use kernels::{CpuSampler, SamplingParams};
use tokio::sync::mpsc;

use super::queue::{PushError, RequestQueue};
use super::replica::{LogprobSupport, ReplicaControl, ReplicaModel, StepObserver};
use super::request::{Completion, Event, EventReceiver, GenerateRequest, Job};
use super::scheduler::{Scheduler, SchedulerConfig};
use super::warm_up::warm_up;
use crate::model::ContextLimits;
use crate::text::FinishReason;
use crate::tokenizer::{BoundedEncoding, Tokenizer};

/// How often the supervisor looks at queue pressure and idle replicas.
const SUPERVISOR_TICK: Duration = Duration::from_millis(10);
/// Scaling events kept for status pages.
const MAX_EVENTS: usize = 32;

/// A deployment's batching and scaling settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Names the engine's threads (the deployment's id).
    pub name: String,
    pub max_batch_size: usize,
    pub max_queue: usize,
    pub prefill_token_budget: usize,
    pub min_replicas: usize,
    pub max_replicas: usize,
    pub scale_up_delay: Duration,
    pub scale_down_delay: Duration,
    /// Queue wait of the oldest request above which the queue counts as under pressure.
    pub scale_up_queue_wait: Duration,
    /// CTranslate2 replicas: the pause in arrivals that starts a call.
    pub batch_wait: Duration,
    /// CTranslate2 replicas: the longest a call is held for arrivals that keep coming.
    pub max_batch_wait: Duration,
}

/// One replica's model and where it runs.
pub struct LoadedReplica {
    pub model: ReplicaModel,
    /// `"cpu"` or `"cuda:<ordinal>"`.
    pub device: String,
    /// NVML index of the GPU it was placed on, if any.
    pub gpu: Option<u32>,
}

/// Loads one model instance per replica; where it runs (which GPU) is the loader's call.
/// `running` lists the GPUs of the replicas already serving, for placement.
pub trait ReplicaLoader: Send + Sync + 'static {
    fn load(&self, running: &[Option<u32>]) -> Result<LoadedReplica, String>;
}

/// A generation request as the engine accepts it: text in, defaults already applied.
#[derive(Debug, Clone)]
pub struct SubmitRequest {
    pub prompt: String,
    pub sampling: SamplingParams,
    pub max_new_tokens: usize,
    pub stop: Vec<String>,
    /// Absent: a random seed below 2^63 is drawn and reported back.
    pub seed: Option<u64>,
    pub timeout: Option<Duration>,
    /// `Some(k)`: the chosen token's log-probability and the `k` most likely alternatives
    /// (k ≤ 20), as the queued request carries it.
    pub logprobs: Option<usize>,
    /// Score the prompt (echo); `max_new_tokens` may then be 0.
    pub prompt_logprobs: bool,
}

/// A request option a backend may be unable to honour; the HTTP surfaces name the field
/// as they spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOption {
    /// How many alternatives per token (`logprobs`).
    Logprobs,
    /// Scoring the prompt (`echo` with `logprobs`).
    PromptLogprobs,
}

/// Why the engine refused a request before queueing it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("the queue is full ({capacity} requests waiting); retry later")]
    QueueFull { capacity: usize },
    #[error("the deployment is draining and accepts no new requests")]
    Draining,
    #[error("the prompt has {prompt_tokens} tokens and asks for {max_new_tokens} new ones, but the model allows {limit}")]
    PromptTooLong {
        /// Counted until the prompt was known not to fit: a lower bound for long prompts.
        prompt_tokens: usize,
        max_new_tokens: usize,
        limit: usize,
    },
    #[error("the prompt could not be tokenized: {0}")]
    Tokenizer(String),
    /// The prompt has no tokens and the model needs at least one to condition on (GPT-2
    /// adds no start token of its own; T5's tokenizer always appends `</s>`).
    #[error("the prompt is empty: give at least one token of text to continue")]
    EmptyPrompt,
    /// The deployment's backend cannot honour `option` as asked (never silently dropped).
    #[error("{reason}")]
    Unsupported {
        option: RequestOption,
        reason: String,
    },
}

/// Why an engine could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("replica {index} failed to load: {reason}")]
    Load { index: usize, reason: String },
    #[error("replica {index} failed its warm-up generation: {reason}")]
    WarmUp { index: usize, reason: String },
}

/// The steps of [`Engine::start`], reported as they begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartStep {
    /// Loading the initial replicas' models.
    Loading,
    /// Running a warm-up generation on each of them.
    Warming,
}

/// A replica count change, kept for status pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalingEvent {
    pub at: SystemTime,
    pub replicas: usize,
    pub reason: String,
}

/// One replica as status pages show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaStats {
    pub device: String,
    pub gpu: Option<u32>,
    pub running: usize,
}

/// A snapshot for status and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineStats {
    pub replicas: Vec<ReplicaStats>,
    pub queue_depth: usize,
    pub running: usize,
    pub draining: bool,
    pub events: Vec<ScalingEvent>,
}

pub struct Engine {
    inner: Arc<Inner>,
    supervisor: Mutex<Option<JoinHandle<()>>>,
}

struct Inner {
    config: EngineConfig,
    tokenizer: Arc<Tokenizer>,
    limits: ContextLimits,
    /// What the replicas' backend can report, known once the first replica loaded.
    logprob_support: OnceLock<LogprobSupport>,
    queue: Arc<RequestQueue<Job>>,
    loader: Arc<dyn ReplicaLoader>,
    observer: StepObserver,
    replicas: Mutex<Vec<Replica>>,
    /// Replicas being loaded by the supervisor right now.
    starting: AtomicUsize,
    next_index: AtomicUsize,
    events: Mutex<VecDeque<ScalingEvent>>,
    shutdown: AtomicBool,
}

struct Replica {
    device: String,
    gpu: Option<u32>,
    control: Arc<ReplicaControl>,
    thread: Option<JoinHandle<()>>,
}

impl Engine {
    /// Loads `min_replicas` replicas, warms each up, then starts serving; `progress` is
    /// told as each step begins. Blocking: call it from a thread that may wait for loading.
    pub fn start(
        config: EngineConfig,
        tokenizer: Arc<Tokenizer>,
        limits: ContextLimits,
        loader: Arc<dyn ReplicaLoader>,
        observer: StepObserver,
        progress: &dyn Fn(StartStep),
    ) -> Result<Self, EngineError> {
        let inner = Arc::new(Inner {
            queue: Arc::new(RequestQueue::new(config.max_queue)),
            replicas: Mutex::new(Vec::new()),
            starting: AtomicUsize::new(0),
            next_index: AtomicUsize::new(0),
            events: Mutex::new(VecDeque::new()),
            shutdown: AtomicBool::new(false),
            logprob_support: OnceLock::new(),
            config,
            tokenizer,
            limits,
            loader,
            observer,
        });
        progress(StartStep::Loading);
        let mut loaded = Vec::new();
        for index in 0..inner.config.min_replicas.max(1) {
            let placed: Vec<Option<u32>> = loaded.iter().map(|r: &LoadedReplica| r.gpu).collect();
            let replica = inner
                .loader
                .load(&placed)
                .map_err(|reason| EngineError::Load { index, reason })?;
            // Every replica runs the same backend and architecture.
            let _ = inner.logprob_support.set(replica.model.logprob_support());
            loaded.push(replica);
        }
        progress(StartStep::Warming);
        for replica in loaded {
            if let Err(error) = inner.launch(replica) {
                inner.stop_replicas();
                return Err(error);
            }
        }
        inner.record_event("started");
        let supervisor = {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name(format!("supervise-{}", inner.config.name))
                .spawn(move || inner.supervise())
                .ok()
        };
        Ok(Self {
            inner,
            supervisor: Mutex::new(supervisor),
        })
    }

    pub fn limits(&self) -> ContextLimits {
        self.inner.limits
    }

    pub fn tokenizer(&self) -> &Arc<Tokenizer> {
        &self.inner.tokenizer
    }

    /// Tokenizes, validates and queues a request. The receiver yields its events;
    /// dropping it cancels the request.
    pub fn submit(&self, request: SubmitRequest) -> Result<EventReceiver, SubmitError> {
        let inner = &self.inner;
        if inner.queue.is_closed() {
            return Err(SubmitError::Draining);
        }
        inner.check_logprobs(&request)?;
        // Tokenizing costs time and memory in proportion to the prompt, so it stops once
        // the prompt is known not to fit: a 1 MB prompt costs what a context's worth does.
        let budget = inner.prompt_budget(request.max_new_tokens);
        let prompt_ids = match inner
            .tokenizer
            .encode_at_most(&request.prompt, budget)
            .map_err(|e| SubmitError::Tokenizer(e.to_string()))?
        {
            BoundedEncoding::Ids(ids) => ids,
            BoundedEncoding::TooLong { at_least } => {
                let too_long = SubmitError::PromptTooLong {
                    prompt_tokens: at_least,
                    max_new_tokens: request.max_new_tokens,
                    limit: budget,
                };
                // check_length names the limit the prompt broke; it always refuses here.
                return Err(inner
                    .check_length(at_least, request.max_new_tokens)
                    .err()
                    .unwrap_or(too_long));
            }
        };
        inner.check_length(prompt_ids.len(), request.max_new_tokens)?;
        // Drawn below 2^63: the seed is reported back so the client can replay the
        // request, and the HTTP APIs take seeds as non-negative signed 64-bit integers.
        let seed = request.seed.unwrap_or_else(|| rand::random::<u64>() >> 1);
        let (events, receiver) = mpsc::unbounded_channel();
        if request.max_new_tokens == 0 && !request.prompt_logprobs {
            // Nothing to generate or score: answer without occupying a slot.
            let _ = events.send(Event::Finished(Completion {
                text: String::new(),
                tokens: Vec::new(),
                finish_reason: FinishReason::Length,
                prompt_tokens: prompt_ids.len(),
                seed: Some(seed),
                token_logprobs: request.logprobs.map(|_| Vec::new()),
                prompt_logprobs: None,
            }));
            return Ok(receiver);
        }
        let job = Job {
            request: GenerateRequest {
                prompt_ids,
                sampling: request.sampling,
                max_new_tokens: request.max_new_tokens,
                stop: request.stop,
                seed,
                deadline: request.timeout.map(|t| Instant::now() + t),
                logprobs: request.logprobs,
                prompt_logprobs: request.prompt_logprobs,
            },
            events,
        };
        inner.queue.push(job).map_err(|error| match error {
            PushError::Full { capacity } => SubmitError::QueueFull { capacity },
            PushError::Closed => SubmitError::Draining,
        })?;
        Ok(receiver)
    }

    pub fn stats(&self) -> EngineStats {
        let replicas: Vec<ReplicaStats> = self
            .inner
            .lock_replicas()
            .iter()
            .map(|r| ReplicaStats {
                device: r.device.clone(),
                gpu: r.gpu,
                running: r.control.running(),
            })
            .collect();
        EngineStats {
            queue_depth: self.inner.queue.len(),
            running: replicas.iter().map(|r| r.running).sum(),
            replicas,
            draining: self.inner.queue.is_closed(),
            events: self.inner.lock_events().iter().cloned().collect(),
        }
    }

    /// Total loop iterations across replicas: grows while the serving loops are alive.
    pub fn heartbeat(&self) -> u64 {
        self.inner
            .lock_replicas()
            .iter()
            .map(|r| r.control.heartbeat())
            .sum()
    }

    /// Stops taking requests, lets queued and running ones finish within `timeout`, then
    /// stops every replica. Returns whether everything finished in time.
    pub fn drain(&self, timeout: Duration) -> bool {
        self.inner.queue.close();
        let deadline = Instant::now() + timeout;
        let drained = loop {
            let idle = self.inner.queue.is_empty()
                && self
                    .inner
                    .lock_replicas()
                    .iter()
                    .all(|r| r.control.has_exited());
            if idle {
                break true;
            }
            if Instant::now() >= deadline {
                break false;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        self.shutdown();
        drained
    }

    /// Stops at once: replicas finish their current step and exit; queued requests fail.
    pub fn shutdown(&self) {
        self.inner.shutdown.store(true, Ordering::Release);
        self.inner.queue.close();
        let supervisor = self
            .supervisor
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(handle) = supervisor {
            let _ = handle.join();
        }
        self.inner.stop_replicas();
        while let Some(job) = self.inner.queue.try_pop() {
            job.fail(super::GenerateError::ReplicaStopped(
                "the deployment shut down before the request started".into(),
            ));
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Inner {
    /// The most prompt tokens a request for `max_new_tokens` may bring.
    fn prompt_budget(&self, max_new_tokens: usize) -> usize {
        let limits = self.limits;
        match limits.max_total_tokens {
            Some(total) => limits
                .max_prompt_tokens
                .min(total.saturating_sub(max_new_tokens)),
            None => limits.max_prompt_tokens,
        }
    }

    /// The backend can report what the request asks for (`docs/sampling.md`
    /// § Log-probabilities).
    fn check_logprobs(&self, request: &SubmitRequest) -> Result<(), SubmitError> {
        let support = self
            .logprob_support
            .get()
            .copied()
            .unwrap_or(LogprobSupport {
                max_top: 0,
                prompt: false,
            });
        if let Some(top) = request.logprobs {
            let max = support.max_top.min(kernels::MAX_TOP_LOGPROBS);
            if top > max {
                let reason = if max == 0 {
                    format!(
                        "this deployment's backend reports only the chosen token's logprob, \
                         not alternatives: logprobs must be 0 (got {top})"
                    )
                } else {
                    format!("logprobs must be at most {max} (got {top})")
                };
                return Err(SubmitError::Unsupported {
                    option: RequestOption::Logprobs,
                    reason,
                });
            }
        }
        if request.prompt_logprobs && !support.prompt {
            return Err(SubmitError::Unsupported {
                option: RequestOption::PromptLogprobs,
                reason: "this deployment cannot score its prompt (echo with logprobs): it is an \
                         encoder-decoder model, whose prompt is the encoder's input and is not \
                         predicted by the decoder"
                    .into(),
            });
        }
        Ok(())
    }

    /// The prompt holds at least one token and, with `max_new_tokens`, fits the model's
    /// context.
    fn check_length(&self, prompt_tokens: usize, max_new_tokens: usize) -> Result<(), SubmitError> {
        if prompt_tokens == 0 {
            return Err(SubmitError::EmptyPrompt);
        }
        let limits = self.limits;
        let exceeded = match limits.max_total_tokens {
            Some(total) if prompt_tokens + max_new_tokens > total => Some(total),
            _ if prompt_tokens > limits.max_prompt_tokens => Some(limits.max_prompt_tokens),
            _ if max_new_tokens > limits.max_new_tokens => Some(limits.max_new_tokens),
            _ => None,
        };
        match exceeded {
            Some(limit) => Err(SubmitError::PromptTooLong {
                prompt_tokens,
                max_new_tokens,
                limit,
            }),
            None => Ok(()),
        }
    }

    /// Loads one more replica, warms it up and starts its thread (scale-up).
    fn load_and_launch(self: &Arc<Self>) -> Result<(), EngineError> {
        let placed: Vec<Option<u32>> = self.lock_replicas().iter().map(|r| r.gpu).collect();
        let loaded = self
            .loader
            .load(&placed)
            .map_err(|reason| EngineError::Load {
                index: self.next_index.load(Ordering::Relaxed),
                reason,
            })?;
        self.launch(loaded)
    }

    /// Warms a loaded replica up and starts its thread.
    fn launch(self: &Arc<Self>, loaded: LoadedReplica) -> Result<(), EngineError> {
        let index = self.next_index.fetch_add(1, Ordering::Relaxed);
        warm_up(&loaded.model, &self.tokenizer)
            .map_err(|reason| EngineError::WarmUp { index, reason })?;
        let control = Arc::new(ReplicaControl::default());
        control.mark_busy();
        let thread = self
            .spawn_loop(index, loaded.model, control.clone())
            .map_err(|e| EngineError::Load {
                index,
                reason: format!("could not start the replica thread: {e}"),
            })?;
        self.lock_replicas().push(Replica {
            device: loaded.device,
            gpu: loaded.gpu,
            control,
            thread: Some(thread),
        });
        Ok(())
    }

    fn spawn_loop(
        &self,
        index: usize,
        model: ReplicaModel,
        control: Arc<ReplicaControl>,
    ) -> std::io::Result<JoinHandle<()>> {
        let builder =
            std::thread::Builder::new().name(format!("replica-{}-{index}", self.config.name));
        match model {
            ReplicaModel::Candle(model) => {
                let scheduler = Scheduler::new(
                    model,
                    self.tokenizer.clone(),
                    Arc::new(CpuSampler),
                    self.queue.clone(),
                    SchedulerConfig {
                        max_batch_size: self.config.max_batch_size,
                        prefill_token_budget: self.config.prefill_token_budget,
                    },
                    control,
                    self.observer.clone(),
                );
                builder.spawn(move || scheduler.run())
            }
            #[cfg(feature = "ctranslate2")]
            ReplicaModel::Ctranslate2(model) => {
                let batcher = super::ct2_batcher::Ct2Batcher::new(
                    model,
                    self.tokenizer.clone(),
                    self.queue.clone(),
                    super::ct2_batcher::Ct2BatcherConfig {
                        max_batch_size: self.config.max_batch_size,
                        batch_wait: self.config.batch_wait,
                        max_batch_wait: self.config.max_batch_wait,
                    },
                    control,
                    self.observer.clone(),
                );
                builder.spawn(move || batcher.run())
            }
        }
    }

    fn supervise(self: Arc<Self>) {
        let mut pressure_since: Option<Instant> = None;
        while !self.shutdown.load(Ordering::Acquire) {
            std::thread::sleep(SUPERVISOR_TICK);
            self.reap_exited();
            if self.queue.is_closed() {
                continue;
            }
            let now = Instant::now();
            if self.queue.oldest_wait() >= self.config.scale_up_queue_wait {
                let since = *pressure_since.get_or_insert(now);
                if now - since >= self.config.scale_up_delay && self.try_scale_up() {
                    pressure_since = None;
                }
            } else {
                pressure_since = None;
                self.scale_down_idle();
            }
        }
    }

    /// Starts loading one more replica in the background; false when at the maximum.
    fn try_scale_up(self: &Arc<Self>) -> bool {
        let live = self.active_replicas() + self.starting.load(Ordering::Acquire);
        if live >= self.config.max_replicas {
            return false;
        }
        self.starting.fetch_add(1, Ordering::AcqRel);
        let inner = self.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("scale-{}", self.config.name))
            .spawn(move || {
                let result = inner.load_and_launch();
                inner.starting.fetch_sub(1, Ordering::AcqRel);
                match result {
                    Ok(()) => inner.record_event("scaled up: requests waited in the queue"),
                    Err(e) => inner.record_event(&format!("scale-up failed: {e}")),
                }
            });
        if spawned.is_err() {
            self.starting.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    fn active_replicas(&self) -> usize {
        self.lock_replicas()
            .iter()
            .filter(|r| !r.control.is_stopping())
            .count()
    }

    /// Asks one idle replica above the minimum to stop.
    fn scale_down_idle(&self) {
        let replicas = self.lock_replicas();
        let active: Vec<&Replica> = replicas
            .iter()
            .filter(|r| !r.control.is_stopping())
            .collect();
        if active.len() <= self.config.min_replicas.max(1) {
            return;
        }
        let idle = active.iter().rev().find(|r| {
            r.control.running() == 0 && r.control.idle_for() >= self.config.scale_down_delay
        });
        if let Some(replica) = idle {
            replica.control.request_stop();
        }
    }

    /// Joins replicas whose threads exited after a scale-down.
    fn reap_exited(&self) {
        let exited: Vec<Replica> = {
            let mut replicas = self.lock_replicas();
            let (gone, kept): (Vec<Replica>, Vec<Replica>) = replicas
                .drain(..)
                .partition(|r| r.control.is_stopping() && r.control.has_exited());
            *replicas = kept;
            gone
        };
        for mut replica in exited {
            if let Some(thread) = replica.thread.take() {
                let _ = thread.join();
            }
            self.record_event("scaled down: replica idle");
        }
    }

    fn stop_replicas(&self) {
        let threads: Vec<JoinHandle<()>> = self
            .lock_replicas()
            .iter_mut()
            .filter_map(|r| {
                r.control.request_stop();
                r.thread.take()
            })
            .collect();
        for thread in threads {
            let _ = thread.join();
        }
    }

    fn record_event(&self, reason: &str) {
        let replicas = self.active_replicas();
        let mut events = self.lock_events();
        if events.len() == MAX_EVENTS {
            events.pop_front();
        }
        events.push_back(ScalingEvent {
            at: SystemTime::now(),
            replicas,
            reason: reason.to_string(),
        });
    }

    fn lock_replicas(&self) -> MutexGuard<'_, Vec<Replica>> {
        self.replicas.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_events(&self) -> MutexGuard<'_, VecDeque<ScalingEvent>> {
        self.events.lock().unwrap_or_else(|p| p.into_inner())
    }
}
