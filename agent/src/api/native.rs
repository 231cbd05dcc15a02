//! Native API (`docs/api.md`, Native API): deployments with full status, and generation
//! (JSON or SSE). `{id}` is a deployment id or a modelId.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures::StreamExt;
use runtime::batcher::{Completion, SubmitRequest, TokenLogprob};
use runtime::tokenizer::Tokenizer;
use serde_json::{json, Value};

use crate::api::access::ApiKey;
use crate::api::body::{as_str, log_unknown_keys, parse_object, type_name, JsonObject};
use crate::api::extract::{AcceptingWork, Body, UrlPath};
use crate::api::generate::{self, Step};
use crate::api::request_log::RequestLog;
use crate::api::{kore, spec_fields, views};
use crate::app_state::SharedState;
use crate::deployment::spec::ModelType;
use crate::error::ApiError;
use crate::validation::{self as rules, check_enum, check_model_id, RuleViolation, MODEL_TYPES};

/// Interval of SSE keep-alive comments, so proxies keep idle streams open.
pub(crate) const SSE_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// `GET /v1/deployments`.
pub async fn list(_: ApiKey, State(state): State<SharedState>) -> Result<Json<Value>, ApiError> {
    let deployments: Vec<Value> = state
        .registry
        .list()
        .iter()
        .map(views::native_deployment)
        .collect();
    Ok(Json(json!({ "deployments": deployments })))
}

/// `GET /v1/deployments/{id}`.
pub async fn get(
    _: ApiKey,
    State(state): State<SharedState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    let snapshot = state.registry.lookup(&id).ok_or_else(|| {
        ApiError::not_found(format!(
            "no deployment has id or modelId {}",
            rules::quoted_excerpt(&id)
        ))
    })?;
    Ok(Json(views::native_deployment(&snapshot)))
}

/// `POST /v1/deployments`: the Kore body plus `modelId` (and optional `modelType`) → 202.
pub async fn create(
    _: ApiKey,
    _: AcceptingWork,
    State(state): State<SharedState>,
    Extension(log): Extension<RequestLog>,
    Body(body): Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let value = parse_object(&body)?;
    let root = JsonObject::root(&value)?;
    let model_id = root
        .string("modelId")?
        .ok_or_else(|| ApiError::from(RuleViolation::missing("modelId", "the model to deploy")))?;
    check_model_id("modelId", model_id)?;
    let model_type = match root.string("modelType")? {
        Some(given) if check_enum("modelType", MODEL_TYPES, given)? == "fineTune" => {
            ModelType::FineTune
        }
        _ => ModelType::OpenSource,
    };
    let spec = kore::deploy_fields(&root, model_id, model_type, &state.catalog)?;
    let (record, job) = state.registry.create(spec, None)?;
    log.deployment(&record.id);
    state.lifecycle.spawn_deploy(record.id.clone());
    let snapshot = state.registry.lookup(&record.id);
    let mut view = snapshot
        .as_ref()
        .map_or(Value::Null, views::native_deployment);
    if let Some(object) = view.as_object_mut() {
        object.insert("dockStatusId".to_owned(), Value::String(job.id));
    }
    Ok((StatusCode::ACCEPTED, Json(view)))
}

/// `DELETE /v1/deployments/{id}` → 202; drains, then UNDEPLOYED.
pub async fn delete(
    _: ApiKey,
    _: AcceptingWork,
    State(state): State<SharedState>,
    Extension(log): Extension<RequestLog>,
    UrlPath(id): UrlPath<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let started = state.registry.request_undeploy(&id)?;
    log.deployment(&started.record.id);
    state.lifecycle.spawn_undeploy(
        started.record.id.clone(),
        started.handle,
        started.deploy_running,
    );
    let view = state
        .registry
        .lookup(&started.record.id)
        .as_ref()
        .map_or(Value::Null, views::native_deployment);
    Ok((StatusCode::ACCEPTED, Json(view)))
}

/// A parsed generate body.
pub struct GenerateBody {
    pub prompts: Vec<String>,
    /// `prompt` was an array: answer with an array.
    pub(crate) prompt_was_array: bool,
    pub(crate) overrides: spec_fields::GenerationOverrides,
    /// `stream` as given; absent, `Accept: text/event-stream` decides.
    pub stream: Option<bool>,
    /// `parameters.logprobs`: report each token's logprob with this many alternatives.
    pub logprobs: Option<usize>,
    /// `parameters.promptLogprobs`: score the prompt's tokens too.
    pub prompt_logprobs: bool,
}

/// `{"prompt": str | [str], "parameters": {...}, "stream": bool}`.
pub fn parse_generate_body(body: &[u8]) -> Result<GenerateBody, ApiError> {
    let value = parse_object(body)?;
    let root = JsonObject::root(&value)?;
    let prompt = root.value("prompt").ok_or_else(|| {
        ApiError::from(RuleViolation::missing(
            "prompt",
            "a string or an array of strings",
        ))
    })?;
    let (prompts, prompt_was_array) = match prompt {
        Value::String(text) => (vec![text.clone()], false),
        Value::Array(items) => {
            let count = i64::try_from(items.len()).unwrap_or(i64::MAX);
            rules::PROMPT_COUNT.check("prompt", count).map_err(|_| {
                ApiError::out_of_range(
                    "prompt",
                    format!(
                        "prompt must hold {} to {} strings, but {count} were given",
                        rules::PROMPT_COUNT.min,
                        rules::PROMPT_COUNT.max
                    ),
                )
            })?;
            let prompts = items
                .iter()
                .enumerate()
                .map(|(i, item)| as_str(&format!("prompt[{i}]"), item).map(str::to_owned))
                .collect::<Result<Vec<_>, _>>()?;
            (prompts, true)
        }
        other => {
            return Err(ApiError::wrong_type(
                "prompt",
                "a string or an array of strings",
                type_name(other),
            ))
        }
    };
    let parameters = root.object("parameters")?;
    let overrides = match &parameters {
        Some(p) => spec_fields::generation_overrides(p)?,
        None => Default::default(),
    };
    let (logprobs, prompt_logprobs) = match &parameters {
        Some(p) => logprob_options(p)?,
        None => (None, false),
    };
    let stream = root.bool("stream")?;
    let mut objects = vec![&root];
    objects.extend(parameters.as_ref());
    log_unknown_keys("native-generate", &objects);
    Ok(GenerateBody {
        prompts,
        prompt_was_array,
        overrides,
        stream,
        logprobs,
        prompt_logprobs,
    })
}

/// `parameters.logprobs` (alternatives per token, `docs/api.md` § Validation table) and
/// `parameters.promptLogprobs`.
fn logprob_options(parameters: &JsonObject<'_>) -> Result<(Option<usize>, bool), ApiError> {
    let logprobs = parameters
        .integer("logprobs")?
        .map(|n| rules::LOGPROBS.check_u32(&parameters.path_of("logprobs"), n))
        .transpose()?
        .map(|n| n as usize);
    let prompt_logprobs = parameters.bool("promptLogprobs")?.unwrap_or(false);
    Ok((logprobs, prompt_logprobs))
}

impl GenerateBody {
    /// The engine request for one of the prompts, logprob options included.
    fn request(
        &self,
        state: &crate::app_state::AppState,
        prompt: String,
        params: &crate::deployment::spec::GenerationParams,
    ) -> SubmitRequest {
        SubmitRequest {
            logprobs: self.logprobs,
            prompt_logprobs: self.prompt_logprobs,
            ..generate::request(state, prompt, params, self.overrides.seed)
        }
    }
}

/// The native result object; `logprobs` and `promptLogprobs` only when asked for.
pub(crate) fn result_json(result: &Completion, tokenizer: &Tokenizer) -> Value {
    let mut body = json!({
        "text": result.text,
        "tokens": result.tokens,
        "finishReason": result.finish_reason.as_str(),
        "usage": {
            "promptTokens": result.prompt_tokens,
            "completionTokens": result.tokens.len(),
        },
        "seed": result.seed,
    });
    if let Some(logprobs) = &result.token_logprobs {
        body["logprobs"] = result
            .tokens
            .iter()
            .zip(logprobs)
            .map(|(&id, logprob)| token_json(id, Some(logprob), tokenizer))
            .collect();
    }
    if let Some(prompt) = &result.prompt_logprobs {
        body["promptLogprobs"] = prompt
            .tokens
            .iter()
            .zip(&prompt.logprobs)
            .map(|(&id, logprob)| token_json(id, logprob.as_ref(), tokenizer))
            .collect();
    }
    body
}

/// `{"id", "text", "logprob", "top": [{"id", "text", "logprob"}]}`; `logprob` is null and
/// `top` empty where nothing scored the token (a prompt's first).
fn token_json(id: u32, logprob: Option<&TokenLogprob>, tokenizer: &Tokenizer) -> Value {
    let text = |id: u32| tokenizer.decode(&[id]).unwrap_or_default();
    let top: Vec<Value> = logprob
        .map(|l| l.top.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|&(id, logprob)| json!({"id": id, "text": text(id), "logprob": logprob}))
        .collect();
    json!({
        "id": id,
        "text": text(id),
        "logprob": logprob.map(|l| l.logprob),
        "top": top,
    })
}

fn wants_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/event-stream"))
}

/// `POST /v1/deployments/{id}/generate`.
pub async fn generate(
    _: ApiKey,
    State(state): State<SharedState>,
    Extension(log): Extension<RequestLog>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let parsed = parse_generate_body(&body)?;
    // The body's explicit "stream" wins over the Accept header (docs/api.md).
    let stream = parsed
        .stream
        .unwrap_or_else(|| wants_event_stream(&headers));
    if stream && parsed.prompt_was_array {
        return Err(ApiError::out_of_range(
            "prompt",
            "a streamed generation takes one prompt string, but an array was given",
        ));
    }
    let target = generate::target(&state, &id, &log)?;
    let params = parsed
        .overrides
        .apply(&target.deployment.spec.generation, "parameters.topP")?;
    if stream {
        let prompt = parsed.prompts.first().cloned().unwrap_or_default();
        let generation = generate::submit(
            &target,
            parsed.request(&state, prompt, &params),
            &fields("prompt".to_owned()),
        )
        .await?;
        let stream_log = log.clone();
        let handle = target.handle.clone();
        let events = generation.into_stream().map(move |step| {
            Ok::<Event, Infallible>(sse_event(step, &stream_log, handle.tokenizer()))
        });
        return Ok(Sse::new(events)
            .keep_alive(KeepAlive::new().interval(SSE_KEEP_ALIVE).text("keep-alive"))
            .into_response());
    }
    let mut generations = Vec::with_capacity(parsed.prompts.len());
    for (i, prompt) in parsed.prompts.iter().cloned().enumerate() {
        let prompt_field = if parsed.prompt_was_array {
            format!("prompt[{i}]")
        } else {
            "prompt".to_owned()
        };
        generations.push(
            generate::submit(
                &target,
                parsed.request(&state, prompt, &params),
                &fields(prompt_field),
            )
            .await?,
        );
    }
    let results = futures::future::join_all(generations.into_iter().map(|g| g.complete())).await;
    let mut answers = Vec::with_capacity(results.len());
    for result in results {
        let result = result?;
        log.tokens(result.prompt_tokens, result.tokens.len());
        answers.push(result_json(&result, target.handle.tokenizer()));
    }
    let body = if parsed.prompt_was_array {
        Value::Array(answers)
    } else {
        answers.pop().unwrap_or(Value::Null)
    };
    Ok(Json(body).into_response())
}

/// The native spelling of the fields a backend may refuse.
fn fields(prompt: String) -> generate::FieldNames {
    generate::FieldNames {
        seed: "parameters.seed",
        prompt,
        logprobs: "parameters.logprobs",
        prompt_logprobs: "parameters.promptLogprobs",
    }
}

/// One SSE event: `{"token": {...}}` per token (with `logprob` and `top` when asked for),
/// the full result last, or an `error` event.
fn sse_event(step: Step, log: &RequestLog, tokenizer: &Tokenizer) -> Event {
    match step {
        Step::Token { id, text, logprob } => {
            let mut token = json!({"id": id, "text": text});
            if let Some(logprob) = &logprob {
                let scored = token_json(id, Some(logprob), tokenizer);
                token["logprob"] = scored["logprob"].clone();
                token["top"] = scored["top"].clone();
            }
            Event::default().data(json!({ "token": token }).to_string())
        }
        Step::Finished(result) => {
            log.tokens(result.prompt_tokens, result.tokens.len());
            tracing::info!(
                prompt_tokens = result.prompt_tokens,
                completion_tokens = result.tokens.len(),
                finish_reason = result.finish_reason.as_str(),
                "stream finished"
            );
            Event::default().data(result_json(&result, tokenizer).to_string())
        }
        Step::Failed(error) => Event::default()
            .event("error")
            .data(serde_json::to_string(&error.body()).unwrap_or_default()),
    }
}
