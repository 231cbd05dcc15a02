//! Running generations for every surface: find the serving deployment, submit, follow the
//! events (collecting a result or yielding a stream), and record the request metrics.
//! Dropping a `Generation` drops the event receiver, which cancels the request.

use std::sync::Arc;
use std::time::Instant;

use axum::http::StatusCode;
use futures::Stream;
use runtime::batcher::{
    Completion, Event, EventReceiver, FailureCode, GenerateError, RequestOption, SamplingParams,
    SubmitError, SubmitRequest, TokenLogprob,
};
use runtime::text::FinishReason;

use crate::api::accepting_work;
use crate::api::request_log::RequestLog;
use crate::app_state::AppState;
use crate::deployment::record::Deployment;
use crate::deployment::spec::GenerationParams;
use crate::error::{ApiError, RETRY_AFTER_QUEUE_FULL};
use crate::metrics::{self, Outcome};
use crate::serving::{ServingHandle, SubmitRejection};

/// A READY deployment and its serving handle.
pub struct Target {
    pub deployment: Deployment,
    pub handle: Arc<ServingHandle>,
}

/// The READY deployment `key` (id or modelId) names; 503 while the agent drains or the
/// deployment is not ready, 404 when there is none.
pub fn target(state: &AppState, key: &str, log: &RequestLog) -> Result<Target, ApiError> {
    accepting_work(state)?;
    let (deployment, handle) = state.registry.serving(key)?;
    log.deployment(&deployment.id);
    Ok(Target { deployment, handle })
}

/// A request for `prompt` with merged, validated parameters. Absent a seed, the engine
/// draws one and reports it in the result; past the timeout the request ends with
/// `DEADLINE_EXCEEDED`. No logprobs: set [`SubmitRequest::logprobs`] and
/// [`SubmitRequest::prompt_logprobs`] on the result to ask for them.
pub fn request(
    state: &AppState,
    prompt: String,
    params: &GenerationParams,
    seed: Option<u64>,
) -> SubmitRequest {
    SubmitRequest {
        prompt,
        sampling: SamplingParams {
            temperature: params.temperature,
            top_k: params.top_k as usize,
            top_p: params.top_p,
        },
        max_new_tokens: params.max_tokens as usize,
        stop: params.stop_sequences.clone(),
        seed,
        timeout: Some(state.config.batcher.request_timeout()),
        logprobs: None,
        prompt_logprobs: false,
    }
}

/// One step of a generation as the surfaces see it.
#[derive(Debug)]
pub(crate) enum Step {
    Token {
        id: u32,
        text: String,
        /// Present when the request asked for logprobs.
        logprob: Option<TokenLogprob>,
    },
    Finished(Completion),
    Failed(ApiError),
}

/// A submitted generation.
pub(crate) struct Generation {
    events: EventReceiver,
    tracker: Tracker,
    finished: bool,
}

/// How a surface spells the request fields a backend may refuse (the 422's `field`).
#[derive(Clone, Debug)]
pub(crate) struct FieldNames {
    pub seed: &'static str,
    pub prompt: String,
    /// The alternatives-per-token field (`logprobs`).
    pub logprobs: &'static str,
    /// The field that asks to score the prompt (`echo`).
    pub prompt_logprobs: &'static str,
}

/// Submits `request` to `target`; a refusal is answered at once (429, 503, 422), naming
/// a refused field as `fields` spells it. Submitting tokenizes the prompt, CPU work that
/// grows with it, so it runs on the blocking pool: the async workers keep answering
/// `/healthz` and feeding the watchdog meanwhile.
pub(crate) async fn submit(
    target: &Target,
    request: SubmitRequest,
    fields: &FieldNames,
) -> Result<Generation, ApiError> {
    let label = target.deployment.spec.model_id.clone();
    let handle = Arc::clone(&target.handle);
    let submitted = tokio::task::spawn_blocking(move || handle.submit(request))
        .await
        .map_err(|error| ApiError::internal(format!("submitting the request failed: {error}")))?;
    match submitted {
        Ok(events) => Ok(Generation {
            events,
            tracker: Tracker::new(label),
            finished: false,
        }),
        Err(rejection) => {
            metrics::record_outcome(&label, Outcome::Rejected);
            metrics::record_rejection(&label, &rejection);
            Err(rejected(&target.deployment.id, rejection, fields))
        }
    }
}

fn rejected(deployment: &str, rejection: SubmitRejection, fields: &FieldNames) -> ApiError {
    let error = match rejection {
        SubmitRejection::SeedNotHonoured => {
            return ApiError::unsupported_parameter(fields.seed, rejection.to_string())
        }
        SubmitRejection::Engine(error) => error,
    };
    match error {
        SubmitError::QueueFull { capacity } => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "QUEUE_FULL",
            format!(
                "the queue of deployment {deployment} is full ({capacity} requests); retry later"
            ),
        )
        .with_retry_after(RETRY_AFTER_QUEUE_FULL),
        SubmitError::Draining => ApiError::draining_because(format!(
            "deployment {deployment} is draining and takes no new requests"
        )),
        SubmitError::Tokenizer(message) => {
            ApiError::unsupported_parameter(fields.prompt.clone(), message)
        }
        SubmitError::EmptyPrompt => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "EMPTY_PROMPT",
            "the prompt is empty; it must hold at least one token of text",
        )
        .with_field(fields.prompt.clone()),
        SubmitError::PromptTooLong {
            prompt_tokens,
            max_new_tokens,
            limit,
        } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "PROMPT_TOO_LONG",
            format!(
                "the prompt has at least {prompt_tokens} tokens; with maxTokens {max_new_tokens} that \
                 exceeds the model's context of {limit} positions"
            ),
        )
        .with_field(fields.prompt.clone()),
        SubmitError::Unsupported { option, reason } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNSUPPORTED_PARAMETER",
            reason,
        )
        .with_field(match option {
            RequestOption::Logprobs => fields.logprobs,
            RequestOption::PromptLogprobs => fields.prompt_logprobs,
        }),
    }
}

/// A generation that failed after it was accepted: 504 past its deadline, else 500.
pub(crate) fn failure_error(error: GenerateError) -> ApiError {
    let code = error.code();
    let status = match code {
        FailureCode::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        FailureCode::GenerationFailed => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, code.as_str(), error.to_string())
}

impl Generation {
    /// The next step, `None` after the final one.
    pub async fn next(&mut self) -> Option<Step> {
        if self.finished {
            return None;
        }
        let step = match self.events.recv().await {
            Some(Event::Token { id, text, logprob }) => {
                self.tracker.token();
                return Some(Step::Token { id, text, logprob });
            }
            Some(Event::Finished(result)) => {
                self.tracker.finish(&result);
                Step::Finished(result)
            }
            Some(Event::Failed(error)) => {
                self.tracker.fail();
                Step::Failed(failure_error(error))
            }
            None => {
                self.tracker.fail();
                Step::Failed(ApiError::internal(
                    "the serving loop ended the request without a result",
                ))
            }
        };
        self.finished = true;
        Some(step)
    }

    /// Waits for the result.
    pub async fn complete(mut self) -> Result<Completion, ApiError> {
        loop {
            match self.next().await {
                Some(Step::Token { .. }) => continue,
                Some(Step::Finished(result)) => return Ok(result),
                Some(Step::Failed(error)) => return Err(error),
                None => return Err(ApiError::internal("the generation already ended")),
            }
        }
    }

    /// The steps as a stream ending after the final one. Dropping the stream (the client
    /// disconnected) cancels the request.
    pub(crate) fn into_stream(self) -> impl Stream<Item = Step> + Send {
        futures::stream::unfold(self, |mut generation| async move {
            generation.next().await.map(|step| (step, generation))
        })
    }
}

/// Per-request metrics. Dropped before an outcome was recorded means the client left.
struct Tracker {
    label: String,
    started: Instant,
    last_token: Option<Instant>,
    done: bool,
}

impl Tracker {
    fn new(label: String) -> Self {
        Tracker {
            label,
            started: Instant::now(),
            last_token: None,
            done: false,
        }
    }

    fn token(&mut self) {
        let now = Instant::now();
        match self.last_token {
            None => metrics::record_first_token(&self.label, (now - self.started).as_secs_f64()),
            Some(previous) => {
                metrics::record_inter_token(&self.label, (now - previous).as_secs_f64())
            }
        }
        self.last_token = Some(now);
    }

    fn finish(&mut self, result: &Completion) {
        let outcome = match result.finish_reason {
            FinishReason::StopSequence => Outcome::Stop,
            FinishReason::Length | FinishReason::Eos => Outcome::Ok,
        };
        metrics::record_outcome(&self.label, outcome);
        metrics::record_finished(
            &self.label,
            self.started.elapsed().as_secs_f64(),
            result.tokens.len(),
        );
        self.done = true;
    }

    fn fail(&mut self) {
        metrics::record_outcome(&self.label, Outcome::Error);
        self.done = true;
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        if !self.done {
            metrics::record_outcome(&self.label, Outcome::Cancelled);
        }
    }
}
