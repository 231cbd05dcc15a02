//! A scripted [`ServingBackend`] for in-process tests of the generate surfaces, until the
//! runtime's batcher is wired into the binary. It keeps the seam's promises and nothing
//! model-like: a request yields `maxTokens` tokens `t0 t1 …` (ids 0, 1, …), can be held
//! after its first token by a [`Gate`], and is recorded so tests can see what reached the
//! seam. Test code only: the binary never links it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use gpu_agent::deployment::spec::DeploymentSpec;
use gpu_agent::gpu::Placement;
use gpu_agent::serving::{
    FinishReason, GenerateEvent, GenerateFailure, GenerateRequest, GenerateResult, LoadFailure,
    LoadProgress, LoadStep, ReplicaStatus, ResolvedModel, ServingBackend, ServingHandle,
    ServingStatus, SubmitRejection,
};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

/// The seed reported when a request gives none.
pub const DRAWN_SEED: u64 = 4242;

/// How the scripted backend behaves.
#[derive(Clone)]
pub struct Script {
    /// Requests in flight beyond this many are refused with `QueueFull`.
    pub capacity: usize,
    /// Prompt words + maxTokens beyond this are refused with `PromptTooLong`.
    pub context: usize,
    /// Every generation ends with this failure (after its tokens) instead of a result.
    pub failure: Option<GenerateFailure>,
    /// Every load fails with this.
    pub load_failure: Option<LoadFailure>,
    /// Generations wait here after their first token until it opens.
    pub gate: Gate,
    /// Pause between tokens, as decode steps take time on a real model.
    pub token_interval: Duration,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            capacity: 64,
            context: 1024,
            failure: None,
            load_failure: None,
            gate: Gate::open(),
            token_interval: Duration::ZERO,
        }
    }
}

/// A latch generations wait at; opening it lets them all finish.
#[derive(Clone)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    pub fn open() -> Gate {
        Gate(Arc::new((Mutex::new(true), Condvar::new())))
    }

    pub fn closed() -> Gate {
        Gate(Arc::new((Mutex::new(false), Condvar::new())))
    }

    pub fn release(&self) {
        let (open, wake) = &*self.0;
        *open.lock().unwrap_or_else(|p| p.into_inner()) = true;
        wake.notify_all();
    }

    fn wait(&self) {
        let (open, wake) = &*self.0;
        let guard = open.lock().unwrap_or_else(|p| p.into_inner());
        let _open = wake
            .wait_while(guard, |open| !*open)
            .unwrap_or_else(|p| p.into_inner());
    }
}

/// What the backend saw; shared by the backend, its handles and the test.
#[derive(Default)]
pub struct Observed {
    pub requests: Mutex<Vec<GenerateRequest>>,
    pub loads: AtomicUsize,
    /// Generations whose receiver was gone before they finished (client disconnected).
    pub cancelled: AtomicUsize,
    /// Generations that ran to their final event.
    pub completed: AtomicUsize,
    /// Handles drained (undeploy or shutdown).
    pub drains: AtomicUsize,
}

#[derive(Clone)]
pub struct ScriptedBackend {
    script: Script,
    pub observed: Arc<Observed>,
}

impl ScriptedBackend {
    pub fn new(script: Script) -> Self {
        ScriptedBackend {
            script,
            observed: Arc::default(),
        }
    }

    pub fn gate(&self) -> &Gate {
        &self.script.gate
    }

    /// The requests that reached the seam so far.
    pub fn requests(&self) -> Vec<GenerateRequest> {
        self.observed
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl ServingBackend for ScriptedBackend {
    fn load(
        &self,
        _model: &ResolvedModel,
        spec: &DeploymentSpec,
        placement: &Placement,
        progress: &dyn LoadProgress,
    ) -> Result<Arc<dyn ServingHandle>, LoadFailure> {
        progress.step(LoadStep::Loading);
        if let Some(failure) = &self.script.load_failure {
            return Err(failure.clone());
        }
        progress.step(LoadStep::Warming);
        self.observed.loads.fetch_add(1, Ordering::SeqCst);
        let replicas = placement
            .initial(spec.scaling.min_replicas)
            .iter()
            .map(|device| ReplicaStatus {
                device: "cpu".to_owned(),
                gpu: device.gpu(),
                running: 0,
                queued: 0,
            })
            .collect();
        Ok(Arc::new(ScriptedHandle {
            script: self.script.clone(),
            observed: Arc::clone(&self.observed),
            in_flight: Arc::new((Mutex::new(0), Condvar::new())),
            draining: AtomicBool::new(false),
            replicas,
            started: Instant::now(),
        }))
    }
}

type InFlight = Arc<(Mutex<usize>, Condvar)>;

struct ScriptedHandle {
    script: Script,
    observed: Arc<Observed>,
    in_flight: InFlight,
    draining: AtomicBool,
    replicas: Vec<ReplicaStatus>,
    started: Instant,
}

impl ScriptedHandle {
    fn running(&self) -> usize {
        *self.in_flight.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ServingHandle for ScriptedHandle {
    fn submit(
        &self,
        request: GenerateRequest,
    ) -> Result<UnboundedReceiver<GenerateEvent>, SubmitRejection> {
        if self.draining.load(Ordering::SeqCst) {
            return Err(SubmitRejection::Draining);
        }
        let prompt_tokens = request.prompt.split_whitespace().count();
        let needed = prompt_tokens + request.max_tokens as usize;
        if needed > self.script.context {
            return Err(SubmitRejection::PromptTooLong {
                prompt_tokens,
                max_tokens: request.max_tokens,
                limit: self.script.context,
            });
        }
        {
            let mut in_flight = self.in_flight.0.lock().unwrap_or_else(|p| p.into_inner());
            if *in_flight >= self.script.capacity {
                return Err(SubmitRejection::QueueFull {
                    capacity: self.script.capacity,
                });
            }
            *in_flight += 1;
        }
        self.observed
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(request.clone());
        let (events, receiver) = unbounded_channel();
        let script = self.script.clone();
        let observed = Arc::clone(&self.observed);
        let in_flight = Arc::clone(&self.in_flight);
        std::thread::spawn(move || {
            let mut text = String::new();
            let mut tokens = Vec::new();
            let mut gone = false;
            for id in 0..request.max_tokens {
                let piece = format!("t{id} ");
                if events
                    .send(GenerateEvent::Token {
                        id,
                        text: piece.clone(),
                    })
                    .is_err()
                {
                    gone = true;
                    break;
                }
                text.push_str(&piece);
                tokens.push(id);
                if id == 0 {
                    script.gate.wait();
                }
                std::thread::sleep(script.token_interval);
            }
            if request.max_tokens == 0 {
                script.gate.wait();
            }
            let last = match script.failure {
                Some(failure) => GenerateEvent::Failed(failure),
                None => GenerateEvent::Finished(GenerateResult {
                    text,
                    tokens,
                    finish_reason: FinishReason::Length,
                    prompt_tokens,
                    seed: request.seed.unwrap_or(DRAWN_SEED),
                }),
            };
            if gone || events.send(last).is_err() {
                observed.cancelled.fetch_add(1, Ordering::SeqCst);
            } else {
                observed.completed.fetch_add(1, Ordering::SeqCst);
            }
            let (count, wake) = &*in_flight;
            *count.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
            wake.notify_all();
        });
        Ok(receiver)
    }

    fn status(&self) -> ServingStatus {
        ServingStatus {
            backend: "scripted".to_owned(),
            compute_type: "none".to_owned(),
            replicas: self.replicas.clone(),
            queue_depth: 0,
            running: self.running(),
            events: Vec::new(),
            ..ServingStatus::default()
        }
    }

    fn drain(&self, timeout: Duration) -> bool {
        self.draining.store(true, Ordering::SeqCst);
        self.observed.drains.fetch_add(1, Ordering::SeqCst);
        let (count, wake) = &*self.in_flight;
        let guard = count.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) = wake
            .wait_timeout_while(guard, timeout, |n| *n > 0)
            .unwrap_or_else(|p| p.into_inner());
        *guard == 0
    }

    fn heartbeat(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}
