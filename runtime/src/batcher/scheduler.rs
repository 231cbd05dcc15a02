//! The iteration-level scheduler of one candle replica.
//!
//! One thread owns a model instance and a pool of slots. Each iteration it admits queued
//! requests into free slots (prefilling them together, in one batched pass, within a
//! prompt-token budget, so a burst of long prompts cannot stall the running streams for
//! long), then runs one batched decode
//! step over every running sequence. Finished, cancelled and expired sequences leave at
//! step boundaries and their slots go back to the pool; slots are created on first need
//! and reused, so memory plateaus at `max_batch_size` slots.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kernels::{token_logprob, Sampler, SamplingParams, TokenLogprob};

use super::queue::RequestQueue;
use super::replica::{ReplicaControl, StepObserver};
use super::request::{Event, GenerateError, Job, PromptLogprobs};
use super::sequence::Sequence;
use crate::model::{on_cpu_pool, Model, ModelError, Slot};
use crate::text::FinishReason;
use crate::tokenizer::Tokenizer;

/// How long an idle replica waits on the queue before checking its stop flag again.
pub(crate) const IDLE_POLL: Duration = Duration::from_millis(20);

/// Scheduling knobs of one replica.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Never more than this many sequences decode together.
    pub max_batch_size: usize,
    /// Prompt tokens prefilled per iteration before the running streams get their next
    /// decode step (at least one joiner is always admitted).
    pub prefill_token_budget: usize,
}

pub(crate) struct Scheduler {
    model: Arc<dyn Model>,
    tokenizer: Arc<Tokenizer>,
    sampler: Arc<dyn Sampler>,
    queue: Arc<RequestQueue<Job>>,
    config: SchedulerConfig,
    control: Arc<ReplicaControl>,
    observer: StepObserver,
    free_slots: Vec<Slot>,
    running: Vec<Running>,
}

/// A sequence and the slot holding its caches.
struct Running {
    sequence: Sequence,
    slot: Slot,
}

impl Scheduler {
    pub fn new(
        model: Arc<dyn Model>,
        tokenizer: Arc<Tokenizer>,
        sampler: Arc<dyn Sampler>,
        queue: Arc<RequestQueue<Job>>,
        config: SchedulerConfig,
        control: Arc<ReplicaControl>,
        observer: StepObserver,
    ) -> Self {
        Self {
            model,
            tokenizer,
            sampler,
            queue,
            config,
            control,
            observer,
            free_slots: Vec::new(),
            running: Vec::new(),
        }
    }

    /// Runs until asked to stop (or the queue is closed and empty) and nothing runs.
    pub fn run(mut self) {
        loop {
            self.control.beat();
            let stopping = self.control.is_stopping();
            if !stopping {
                self.admit();
            }
            self.remove_cancelled_and_expired();
            if self.running.is_empty() {
                if stopping || (self.queue.is_closed() && self.queue.is_empty()) {
                    break;
                }
                continue;
            }
            self.control.mark_busy();
            on_cpu_pool(|| self.decode_step());
        }
        self.control.set_running(0);
        self.control.mark_exited();
    }

    /// Moves queued requests into free slots, prefills them together and emits each one's
    /// first token.
    fn admit(&mut self) {
        let mut budget = self.config.prefill_token_budget;
        let mut joiners: Vec<(Job, Slot)> = Vec::new();
        while self.running.len() + joiners.len() < self.config.max_batch_size
            && (joiners.is_empty() || budget > 0)
        {
            let job = if self.running.is_empty() && joiners.is_empty() {
                self.queue.pop_timeout(IDLE_POLL)
            } else {
                self.queue.try_pop()
            };
            let Some(job) = job else { break };
            self.control.mark_busy();
            if job.is_cancelled() {
                continue;
            }
            if job.is_expired(Instant::now()) {
                job.fail(GenerateError::DeadlineExceeded);
                continue;
            }
            let slot = match self.free_slots.pop() {
                Some(slot) => slot,
                None => match self.model.new_slot() {
                    Ok(slot) => slot,
                    Err(e) => {
                        job.fail(GenerateError::Model(e.to_string()));
                        continue;
                    }
                },
            };
            budget = budget.saturating_sub(job.request.prompt_ids.len());
            joiners.push((job, slot));
        }
        if !joiners.is_empty() {
            on_cpu_pool(|| self.start_sequences(joiners));
        }
        self.control.set_running(self.running.len());
    }

    /// Prefills the joiners in one batch and samples each one's first token from its own
    /// logits row with its own random stream. Should the batch fail, each joiner is
    /// prefilled alone, so one bad prompt fails only its own request. Joiners that score
    /// their prompt (echo) are prefilled alone, keeping every row's logits.
    fn start_sequences(&mut self, joiners: Vec<(Job, Slot)>) {
        let (scored, joiners): (Vec<_>, Vec<_>) = joiners
            .into_iter()
            .partition(|(job, _)| job.request.prompt_logprobs);
        for (job, slot) in scored {
            self.start_scored_sequence(job, slot);
        }
        if joiners.is_empty() {
            return;
        }
        let (jobs, mut slots): (Vec<Job>, Vec<Slot>) = joiners.into_iter().unzip();
        let batched = {
            let prompts: Vec<&[u32]> = jobs.iter().map(|j| &j.request.prompt_ids[..]).collect();
            let mut batch: Vec<&mut Slot> = slots.iter_mut().collect();
            self.model.prefill_batch(&mut batch, &prompts)
        };
        let vocab = self.model.vocab_size();
        match batched {
            Ok(logits) => {
                for ((job, slot), row) in jobs.into_iter().zip(slots).zip(logits.chunks(vocab)) {
                    self.start_sequence(job, slot, Ok(row), None);
                }
            }
            Err(_) if jobs.len() > 1 => {
                for (job, mut slot) in jobs.into_iter().zip(slots) {
                    let logits = self.model.prefill(&mut slot, &job.request.prompt_ids);
                    self.start_sequence(job, slot, logits.as_deref(), None);
                }
            }
            Err(e) => {
                for (job, slot) in jobs.into_iter().zip(slots) {
                    self.start_sequence(job, slot, Err(&e), None);
                }
            }
        }
    }

    /// Prefills one prompt keeping the logits of every position, scores each prompt token
    /// from the row before it, then starts the sequence from the last row.
    fn start_scored_sequence(&mut self, job: Job, mut slot: Slot) {
        let prompt = &job.request.prompt_ids;
        let logits = self.model.prefill_scored(&mut slot, prompt);
        let vocab = self.model.vocab_size();
        let (scores, last) = match &logits {
            Ok(rows) if rows.len() == prompt.len() * vocab && !rows.is_empty() => {
                let top = job.request.logprobs.unwrap_or(0);
                let scores = PromptLogprobs {
                    tokens: prompt.clone(),
                    logprobs: std::iter::once(None)
                        .chain(
                            rows.chunks(vocab)
                                .zip(&prompt[1..])
                                .map(|(row, &next)| Some(token_logprob(row, next, top))),
                        )
                        .collect(),
                };
                (Some(scores), Ok(&rows[rows.len() - vocab..]))
            }
            Ok(_) => {
                let error = GenerateError::Model("prompt scoring returned no logits".into());
                self.free_slots.push(slot);
                return job.fail(error);
            }
            Err(e) => (None, Err(e)),
        };
        self.start_sequence(job, slot, last, scores);
    }

    fn start_sequence(
        &mut self,
        job: Job,
        slot: Slot,
        logits: Result<&[f32], &ModelError>,
        prompt_logprobs: Option<PromptLogprobs>,
    ) {
        let logits = match logits {
            Ok(logits) => logits,
            Err(e) => {
                self.free_slots.push(slot);
                job.fail(GenerateError::Model(e.to_string()));
                return;
            }
        };
        let mut sequence = Sequence::new(job, self.tokenizer.clone());
        if let Some(scores) = prompt_logprobs {
            sequence.set_prompt_logprobs(scores);
        }
        if sequence.job.request.max_new_tokens == 0 {
            // Scoring only (echo with no new tokens): the result is the scored prompt.
            let running = Running { sequence, slot };
            return self.complete(running, Ok(FinishReason::Length));
        }
        let params = [sequence.job.request.sampling];
        let uniforms = [sequence.rng.next_uniform()];
        let eos = self.model.eos_token_id();
        let sampled = self
            .sampler
            .sample(logits, self.model.vocab_size(), &params, &uniforms)
            .map_err(|e| GenerateError::Model(e.to_string()))
            .and_then(|tokens| {
                let logprob = chosen_logprob(&sequence, logits, tokens[0]);
                sequence.accept(tokens[0], logprob, eos)
            });
        let running = Running { sequence, slot };
        match sampled {
            Ok(None) => self.running.push(running),
            Ok(Some(reason)) => self.complete(running, Ok(reason)),
            Err(error) => self.complete(running, Err(error)),
        }
    }

    /// One decode step over every running sequence.
    fn decode_step(&mut self) {
        let last: Vec<u32> = self
            .running
            .iter()
            .map(|r| r.sequence.last_token())
            .collect();
        let params: Vec<SamplingParams> = self
            .running
            .iter()
            .map(|r| r.sequence.job.request.sampling)
            .collect();
        let result = {
            let mut slots: Vec<&mut Slot> = self.running.iter_mut().map(|r| &mut r.slot).collect();
            self.model.decode(&mut slots, &last)
        };
        (self.observer)(self.running.len());
        let logits = match result {
            Ok(logits) => logits,
            Err(e) => return self.fail_all(GenerateError::Model(e.to_string())),
        };
        // Every request draws its uniform from its own stream, once per token, so the
        // draw does not depend on which other requests share the batch.
        let uniforms: Vec<f32> = self
            .running
            .iter_mut()
            .map(|r| r.sequence.rng.next_uniform())
            .collect();
        let tokens = match self
            .sampler
            .sample(&logits, self.model.vocab_size(), &params, &uniforms)
        {
            Ok(tokens) => tokens,
            Err(e) => return self.fail_all(GenerateError::Model(e.to_string())),
        };
        let eos = self.model.eos_token_id();
        let vocab = self.model.vocab_size();
        let mut finished = Vec::new();
        for (index, ((running, token), row)) in self
            .running
            .iter_mut()
            .zip(tokens)
            .zip(logits.chunks(vocab))
            .enumerate()
        {
            let logprob = chosen_logprob(&running.sequence, row, token);
            match running.sequence.accept(token, logprob, eos) {
                Ok(Some(reason)) => finished.push((index, Ok(reason))),
                Ok(None) => {}
                Err(error) => finished.push((index, Err(error))),
            }
        }
        // Remove from the back so earlier indices stay valid.
        let done: Vec<_> = finished
            .into_iter()
            .rev()
            .map(|(index, outcome)| (self.running.swap_remove(index), outcome))
            .collect();
        // Lower the count before the clients hear they are done, so a metrics scrape
        // made right after a reply never still counts that reply as running.
        self.control.set_running(self.running.len());
        for (running, outcome) in done {
            self.complete(running, outcome);
        }
    }

    fn complete(&mut self, running: Running, outcome: Result<FinishReason, GenerateError>) {
        match outcome {
            Ok(reason) => running.sequence.finish(reason, true),
            Err(error) => running.sequence.fail(error),
        }
        self.free_slots.push(running.slot);
    }

    fn fail_all(&mut self, error: GenerateError) {
        let failed = std::mem::take(&mut self.running);
        self.control.set_running(0);
        for running in failed {
            running.sequence.fail(error.clone());
            self.free_slots.push(running.slot);
        }
    }

    /// Frees the slots of clients that went away and of requests past their deadline.
    fn remove_cancelled_and_expired(&mut self) {
        let now = Instant::now();
        let mut index = 0;
        while index < self.running.len() {
            let job = &self.running[index].sequence.job;
            if job.is_cancelled() {
                let running = self.running.swap_remove(index);
                self.free_slots.push(running.slot);
            } else if job.is_expired(now) {
                let running = self.running.swap_remove(index);
                self.complete(running, Err(GenerateError::DeadlineExceeded));
            } else {
                index += 1;
            }
        }
        self.control.set_running(self.running.len());
    }
}

/// The sampled token's logprob from its own logits row, when its request asked for them.
fn chosen_logprob(sequence: &Sequence, row: &[f32], token: u32) -> Option<TokenLogprob> {
    sequence
        .top_logprobs()
        .map(|top| token_logprob(row, token, top))
}

impl Job {
    /// Answers a job that never got a slot.
    pub(crate) fn fail(self, error: GenerateError) {
        let _ = self.events.send(Event::Failed(error));
    }
}
