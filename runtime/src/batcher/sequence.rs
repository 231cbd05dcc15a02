//! One running request: its random stream, decoded text and stop matching.

use std::sync::Arc;

use kernels::{RequestRng, TokenLogprob};

use super::request::{Completion, Event, GenerateError, Job, PromptLogprobs};
use crate::text::TextError;
use crate::text::{Detokenizer, FinishReason, StopMatcher};
use crate::tokenizer::Tokenizer;

fn decode_error(error: TextError) -> GenerateError {
    GenerateError::Model(error.to_string())
}

/// The generation state of one request while it holds a slot.
pub(crate) struct Sequence {
    pub job: Job,
    pub rng: RequestRng,
    detokenizer: Detokenizer<Arc<Tokenizer>>,
    stop: StopMatcher,
    tokens: Vec<u32>,
    /// One per token, when the request asked for logprobs.
    token_logprobs: Option<Vec<TokenLogprob>>,
    prompt_logprobs: Option<PromptLogprobs>,
    text: String,
    /// `accept` reported the end; the text is final.
    ended: bool,
}

impl Sequence {
    pub fn new(job: Job, tokenizer: Arc<Tokenizer>) -> Self {
        let rng = RequestRng::new(job.request.seed);
        let stop = StopMatcher::new(job.request.stop.clone());
        let token_logprobs = job.request.logprobs.map(|_| Vec::new());
        Self {
            job,
            rng,
            detokenizer: Detokenizer::new(tokenizer),
            stop,
            tokens: Vec::new(),
            token_logprobs,
            prompt_logprobs: None,
            text: String::new(),
            ended: false,
        }
    }

    /// The token the next decode step feeds back to the model.
    pub fn last_token(&self) -> u32 {
        self.tokens.last().copied().unwrap_or_default()
    }

    /// How many alternatives each token's logprob carries; `None`: no logprobs asked.
    pub fn top_logprobs(&self) -> Option<usize> {
        self.job.request.logprobs
    }

    /// Keeps the scored prompt for the result.
    pub fn set_prompt_logprobs(&mut self, scored: PromptLogprobs) {
        self.prompt_logprobs = Some(scored);
    }

    /// Takes a sampled token and, when the request asked for them, its logprobs: decodes
    /// it, matches stop strings, sends the released text, and reports whether the sequence
    /// is finished.
    pub fn accept(
        &mut self,
        token: u32,
        logprob: Option<TokenLogprob>,
        eos: u32,
    ) -> Result<Option<FinishReason>, GenerateError> {
        self.tokens.push(token);
        if let (Some(kept), Some(logprob)) = (&mut self.token_logprobs, &logprob) {
            kept.push(logprob.clone());
        }

        let (released, finished) = if token == eos {
            let (released, stopped) = self.flush()?;
            let reason = if stopped {
                FinishReason::StopSequence
            } else {
                FinishReason::Eos
            };
            (released, Some(reason))
        } else {
            let delta = self.detokenizer.push(token).map_err(decode_error)?;
            let step = self.stop.push(&delta);
            if step.matched {
                (step.released, Some(FinishReason::StopSequence))
            } else if self.tokens.len() >= self.job.request.max_new_tokens {
                let (tail, stopped) = self.flush()?;
                let reason = if stopped {
                    FinishReason::StopSequence
                } else {
                    FinishReason::Length
                };
                (step.released + &tail, Some(reason))
            } else {
                (step.released, None)
            }
        };
        self.text.push_str(&released);
        self.ended = finished.is_some();
        // A closed channel means the client left; the scheduler notices via is_cancelled.
        let _ = self.job.events.send(Event::Token {
            id: token,
            text: released,
            logprob,
        });
        Ok(finished)
    }

    /// Ends the text: what the detokenizer still held can complete a stop string;
    /// otherwise everything held back is released. Returns the text and whether a stop
    /// string matched.
    fn flush_unless_ended(&mut self) -> Result<(String, bool), GenerateError> {
        if self.ended {
            return Ok((String::new(), false));
        }
        self.ended = true;
        self.flush()
    }

    fn flush(&mut self) -> Result<(String, bool), GenerateError> {
        let tail = self.detokenizer.finish().map_err(decode_error)?;
        let step = self.stop.push(&tail);
        if step.matched {
            return Ok((step.released, true));
        }
        Ok((step.released + &self.stop.finish(), false))
    }

    /// Sends the final result. Text still held back (an undecided stop prefix, an
    /// unfinished character) is released into it first, unless a stop string matched.
    /// `seed_replays`: whether the request's seed drove its sampling, so that sending it
    /// back replays the request (the candle scheduler's draws; not CTranslate2's).
    pub fn finish(mut self, reason: FinishReason, seed_replays: bool) {
        let reason = match self.flush_unless_ended() {
            Ok((tail, stopped)) => {
                self.text.push_str(&tail);
                if stopped {
                    FinishReason::StopSequence
                } else {
                    reason
                }
            }
            Err(error) => return self.fail(error),
        };
        let completion = Completion {
            text: self.text,
            tokens: self.tokens,
            finish_reason: reason,
            prompt_tokens: self.job.request.prompt_ids.len(),
            seed: seed_replays.then_some(self.job.request.seed),
            token_logprobs: self.token_logprobs,
            prompt_logprobs: self.prompt_logprobs,
        };
        let _ = self.job.events.send(Event::Finished(completion));
    }

    /// Sends a failure.
    pub fn fail(self, error: GenerateError) {
        self.job.fail(error);
    }
}
