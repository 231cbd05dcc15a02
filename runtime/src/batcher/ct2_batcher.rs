//! The scheduler of one CTranslate2 replica.
//!
//! CTranslate2 has no iteration-level batching: a call runs its batch to completion. So
//! this loop collects queued requests up to `max_batch_size` — holding the call while
//! requests keep arriving, until they pause for `batch_wait` or `max_batch_wait` has
//! passed since the first (a burst is not split into a short call and a long wait:
//! docs/batcher.md § CTranslate2 replicas) — runs them as one `generate` call
//! (CTranslate2 groups them by sampling options), and does per token, in the step
//! callback, what the candle scheduler does between steps: detokenize, match stop
//! strings, stream the text, and stop sequences that finished, were cancelled or expired.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::queue::RequestQueue;
use super::replica::{ReplicaControl, StepObserver};
use super::request::{GenerateError, Job, PromptLogprobs};
use super::scheduler::IDLE_POLL;
use super::sequence::Sequence;
use kernels::TokenLogprob;

use crate::ct2::{Ct2Finish, Ct2Model, Ct2Request, Ct2Sampling, StepControl, StepEvent};
use crate::text::FinishReason;
use crate::tokenizer::Tokenizer;

#[derive(Debug, Clone)]
pub struct Ct2BatcherConfig {
    pub max_batch_size: usize,
    /// The pause in arrivals that closes a batch: a call starts once no request has
    /// arrived for this long.
    pub batch_wait: Duration,
    /// The longest the first request of a batch is held for company, however steadily
    /// others keep arriving.
    pub max_batch_wait: Duration,
}

pub(crate) struct Ct2Batcher {
    model: Arc<Ct2Model>,
    tokenizer: Arc<Tokenizer>,
    queue: Arc<RequestQueue<Job>>,
    config: Ct2BatcherConfig,
    control: Arc<ReplicaControl>,
    observer: StepObserver,
}

/// How a sequence of the running call ended, decided inside the step callback.
enum Ending {
    Finished(FinishReason),
    Failed(GenerateError),
    Cancelled,
}

impl Ct2Batcher {
    pub fn new(
        model: Arc<Ct2Model>,
        tokenizer: Arc<Tokenizer>,
        queue: Arc<RequestQueue<Job>>,
        config: Ct2BatcherConfig,
        control: Arc<ReplicaControl>,
        observer: StepObserver,
    ) -> Self {
        Self {
            model,
            tokenizer,
            queue,
            config,
            control,
            observer,
        }
    }

    pub fn run(self) {
        loop {
            self.control.beat();
            if self.control.is_stopping() {
                break;
            }
            let batch = self.collect_batch();
            if batch.is_empty() {
                if self.queue.is_closed() && self.queue.is_empty() {
                    break;
                }
                continue;
            }
            self.control.mark_busy();
            self.control.set_running(batch.len());
            self.generate(batch);
            self.control.mark_busy();
        }
        self.control.mark_exited();
    }

    /// The next batch: live jobs only (cancelled ones are dropped, expired ones answered).
    fn collect_batch(&self) -> Vec<Job> {
        let Some(first) = self.queue.pop_timeout(IDLE_POLL) else {
            return Vec::new();
        };
        let mut batch = vec![first];
        let hold_until = Instant::now() + self.config.max_batch_wait;
        let mut pause_ends = Instant::now() + self.config.batch_wait;
        while batch.len() < self.config.max_batch_size {
            let close_at = pause_ends.min(hold_until);
            let now = Instant::now();
            let next = match self.queue.try_pop() {
                Some(job) => Some(job),
                None if now < close_at => self.queue.pop_timeout(close_at - now),
                None => None,
            };
            match next {
                Some(job) => {
                    batch.push(job);
                    pause_ends = Instant::now() + self.config.batch_wait;
                }
                None => break,
            }
        }
        let now = Instant::now();
        batch
            .into_iter()
            .filter_map(|job| {
                if job.is_cancelled() {
                    None
                } else if job.is_expired(now) {
                    job.fail(GenerateError::DeadlineExceeded);
                    None
                } else {
                    Some(job)
                }
            })
            .collect()
    }

    /// Scores the prompts of the jobs that asked (echo), in one `score_batch` call; should
    /// it fail, those jobs fail and the others go on. Pairs each job with its scores.
    fn score_prompts(&self, batch: Vec<Job>) -> Vec<(Job, Option<PromptLogprobs>)> {
        let wanted: Vec<&[u32]> = batch
            .iter()
            .filter(|job| job.request.prompt_logprobs)
            .map(|job| &job.request.prompt_ids[..])
            .collect();
        if wanted.is_empty() {
            return batch.into_iter().map(|job| (job, None)).collect();
        }
        let mut scored = match self.model.score_prompts(&wanted) {
            Ok(scores) => scores.into_iter(),
            Err(error) => {
                let error = GenerateError::Model(error.to_string());
                let (failed, rest): (Vec<Job>, Vec<Job>) = batch
                    .into_iter()
                    .partition(|job| job.request.prompt_logprobs);
                for job in failed {
                    job.fail(error.clone());
                }
                return rest.into_iter().map(|job| (job, None)).collect();
            }
        };
        batch
            .into_iter()
            .map(|job| {
                let scores = if job.request.prompt_logprobs {
                    scored.next().map(|scores| PromptLogprobs {
                        tokens: job.request.prompt_ids.clone(),
                        logprobs: std::iter::once(None)
                            .chain(scores.into_iter().map(|logprob| {
                                Some(TokenLogprob {
                                    logprob,
                                    top: Vec::new(),
                                })
                            }))
                            .collect(),
                    })
                } else {
                    None
                };
                (job, scores)
            })
            .collect()
    }

    fn generate(&self, batch: Vec<Job>) {
        let batch = self.score_prompts(batch);
        if batch.is_empty() {
            return;
        }
        let requests: Vec<Ct2Request> = batch
            .iter()
            .map(|(job, _)| Ct2Request {
                prompt: job.request.prompt_ids.clone(),
                max_new_tokens: job.request.max_new_tokens,
                sampling: Ct2Sampling {
                    temperature: job.request.sampling.temperature,
                    top_k: job.request.sampling.top_k,
                    top_p: job.request.sampling.top_p,
                },
                logprobs: job.request.logprobs.is_some(),
            })
            .collect();
        let mut sequences: Vec<Sequence> = batch
            .into_iter()
            .map(|(job, scores)| {
                let mut sequence = Sequence::new(job, self.tokenizer.clone());
                if let Some(scores) = scores {
                    sequence.set_prompt_logprobs(scores);
                }
                sequence
            })
            .collect();
        let mut endings: Vec<Option<Ending>> = sequences.iter().map(|_| None).collect();
        let eos = self.model.eos_token_id();
        let observer = self.observer.clone();
        let control = self.control.clone();
        let mut last_step = None;
        let mut on_step = |event: StepEvent| -> StepControl {
            control.beat();
            if last_step.is_none_or(|step| event.step > step) {
                last_step = Some(event.step);
                observer(endings.iter().filter(|e| e.is_none()).count());
            }
            let index = event.request;
            let (Some(sequence), Some(ending)) = (sequences.get_mut(index), endings.get_mut(index))
            else {
                return StepControl::Stop;
            };
            if ending.is_some() {
                return StepControl::Stop;
            }
            if sequence.job.is_cancelled() {
                *ending = Some(Ending::Cancelled);
                return StepControl::Stop;
            }
            if sequence.job.is_expired(Instant::now()) {
                *ending = Some(Ending::Failed(GenerateError::DeadlineExceeded));
                return StepControl::Stop;
            }
            let token = if event.is_eos { eos } else { event.token_id };
            // Alternatives were refused at submission (`LogprobSupport`): the chosen
            // token's logprob only.
            let logprob = event.logprob.map(|logprob| TokenLogprob {
                logprob,
                top: Vec::new(),
            });
            match sequence.accept(token, logprob, eos) {
                Ok(None) => StepControl::Continue,
                Ok(Some(reason)) => {
                    *ending = Some(Ending::Finished(reason));
                    StepControl::Stop
                }
                Err(error) => {
                    *ending = Some(Ending::Failed(error));
                    StepControl::Stop
                }
            }
        };
        let outputs = self.model.generate(&requests, &mut on_step);
        // Before the clients hear they are done (see the candle scheduler).
        self.control.set_running(0);
        for (index, (sequence, ending)) in sequences.into_iter().zip(endings).enumerate() {
            let ending = ending.unwrap_or_else(|| match &outputs {
                Ok(outputs) => Ending::Finished(match outputs.get(index).map(|o| o.finish) {
                    Some(Ct2Finish::Eos) => FinishReason::Eos,
                    _ => FinishReason::Length,
                }),
                Err(error) => Ending::Failed(GenerateError::Model(error.to_string())),
            });
            match ending {
                Ending::Finished(reason) => sequence.finish(reason, false),
                Ending::Failed(error) => sequence.fail(error),
                Ending::Cancelled => {}
            }
        }
    }
}
