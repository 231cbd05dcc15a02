//! OpenAI-compatible `POST /v1/completions` (`docs/api.md`), streaming included. `model` is a
//! deployment id or modelId. Parameters the request leaves out take the deployment's
//! hyperParameters (not OpenAI's defaults): the deployment owner chose them.

use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures::StreamExt;
use runtime::batcher::Completion;
use runtime::text::FinishReason;
use serde_json::{json, Value};

use crate::api::access::ApiKey;
use crate::api::body::{as_str, log_unknown_keys, parse_object, type_name, JsonObject};
use crate::api::extract::Body;
use crate::api::generate::{self, Step};
use crate::api::native::SSE_KEEP_ALIVE;
use crate::api::request_log::RequestLog;
use crate::api::spec_fields::GenerationOverrides;
use crate::app_state::SharedState;
use crate::error::ApiError;
use crate::validation::{self as rules, check_stop_sequences, RuleViolation};

/// A parsed completions request.
pub struct CompletionRequest {
    pub model: String,
    pub prompts: Vec<String>,
    pub overrides: GenerationOverrides,
    pub stream: bool,
}

/// OpenAI's fields: model, prompt (string or array), max_tokens, temperature, top_p,
/// top_k (extension), stop (string or array), seed, stream, n (1 only).
pub fn parse_completion_request(body: &[u8]) -> Result<CompletionRequest, ApiError> {
    let value = parse_object(body)?;
    let root = JsonObject::root(&value)?;
    let model = root
        .string("model")?
        .ok_or_else(|| {
            ApiError::from(RuleViolation::missing(
                "model",
                "a deployment id or modelId",
            ))
        })?
        .to_owned();
    let prompts = match root.value("prompt") {
        None => {
            return Err(RuleViolation::missing("prompt", "a string or an array of strings").into())
        }
        Some(Value::String(text)) => vec![text.clone()],
        Some(Value::Array(items)) => {
            let count = i64::try_from(items.len()).unwrap_or(i64::MAX);
            rules::PROMPT_COUNT.check("prompt", count)?;
            items
                .iter()
                .enumerate()
                .map(|(i, item)| as_str(&format!("prompt[{i}]"), item).map(str::to_owned))
                .collect::<Result<Vec<_>, _>>()?
        }
        Some(other) => {
            return Err(ApiError::wrong_type(
                "prompt",
                "a string or an array of strings",
                type_name(other),
            ))
        }
    };
    let temperature = root
        .number("temperature")?
        .map(|t| rules::TEMPERATURE.check("temperature", t))
        .transpose()?;
    let top_p = root
        .number("top_p")?
        .map(|p| rules::TOP_P.check("top_p", p))
        .transpose()?;
    let top_k = root
        .integer("top_k")?
        .map(|k| rules::TOP_K.check_u32("top_k", k))
        .transpose()?;
    let max_tokens = root
        .integer("max_tokens")?
        .map(|n| rules::MAX_TOKENS.check_u32("max_tokens", n))
        .transpose()?;
    let stop_sequences = match root.value("stop") {
        None => None,
        Some(Value::String(s)) => Some(vec![s.clone()]),
        Some(_) => root.string_array("stop")?,
    };
    if let Some(stops) = &stop_sequences {
        check_stop_sequences("stop", stops)?;
    }
    let seed = root
        .wide_integer("seed")?
        .map(|s| rules::SEED.check_wide("seed", s).map(|s| s as u64))
        .transpose()?;
    if let Some(n) = root.integer("n")? {
        if n != 1 {
            return Err(ApiError::out_of_range(
                "n",
                format!("n must be 1, but {n} was given"),
            ));
        }
    }
    let stream = root.bool("stream")?.unwrap_or(false);
    if stream && prompts.len() > 1 {
        return Err(ApiError::out_of_range(
            "prompt",
            "a streamed completion takes one prompt string",
        ));
    }
    let _ = root.value("user");
    log_unknown_keys("openai", &[&root]);
    Ok(CompletionRequest {
        model,
        prompts,
        overrides: GenerationOverrides {
            temperature,
            top_p,
            top_k,
            max_tokens,
            stop_sequences,
            seed,
        },
        stream,
    })
}

/// The OpenAI spelling of the fields a backend may refuse.
fn fields() -> generate::FieldNames {
    generate::FieldNames {
        seed: "seed",
        prompt: "prompt".to_owned(),
        logprobs: "logprobs",
        prompt_logprobs: "echo",
    }
}

fn finish_reason(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Length => "length",
        FinishReason::StopSequence | FinishReason::Eos => "stop",
    }
}

fn completion_id() -> String {
    format!("cmpl-{}", uuid::Uuid::new_v4().simple())
}

/// `POST /v1/completions`.
pub async fn completions(
    _: ApiKey,
    State(state): State<SharedState>,
    Extension(log): Extension<RequestLog>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let request = parse_completion_request(&body)?;
    let target = generate::target(&state, &request.model, &log)?;
    let params = request
        .overrides
        .apply(&target.deployment.spec.generation, "top_p")?;
    let seed = request.overrides.seed;
    let id = completion_id();
    let created = chrono::Utc::now().timestamp();
    let model = request.model.clone();
    if request.stream {
        let prompt = request.prompts.into_iter().next().unwrap_or_default();
        let generation = generate::submit(
            &target,
            generate::request(&state, prompt, &params, seed),
            &fields(),
        )
        .await?;
        let stream_log = log.clone();
        let chunks = generation.into_stream().map(move |step| {
            let data = match step {
                Step::Token { text, .. } => chunk(&id, created, &model, &text, None),
                Step::Finished(result) => {
                    stream_log.tokens(result.prompt_tokens, result.tokens.len());
                    tracing::info!(
                        prompt_tokens = result.prompt_tokens,
                        completion_tokens = result.tokens.len(),
                        finish_reason = result.finish_reason.as_str(),
                        "stream finished"
                    );
                    chunk(
                        &id,
                        created,
                        &model,
                        "",
                        Some(finish_reason(result.finish_reason)),
                    )
                }
                Step::Failed(error) => serde_json::to_value(error.body()).unwrap_or(Value::Null),
            };
            Ok::<Event, Infallible>(Event::default().data(data.to_string()))
        });
        let done = futures::stream::once(async {
            Ok::<Event, Infallible>(Event::default().data("[DONE]"))
        });
        return Ok(Sse::new(chunks.chain(done))
            .keep_alive(KeepAlive::new().interval(SSE_KEEP_ALIVE).text("keep-alive"))
            .into_response());
    }
    let mut generations = Vec::with_capacity(request.prompts.len());
    for prompt in request.prompts {
        generations.push(
            generate::submit(
                &target,
                generate::request(&state, prompt, &params, seed),
                &fields(),
            )
            .await?,
        );
    }
    let results: Vec<Result<Completion, ApiError>> =
        futures::future::join_all(generations.into_iter().map(|g| g.complete())).await;
    let mut choices = Vec::with_capacity(results.len());
    let (mut prompt_tokens, mut completion_tokens) = (0, 0);
    for (index, result) in results.into_iter().enumerate() {
        let result = result?;
        prompt_tokens += result.prompt_tokens;
        completion_tokens += result.tokens.len();
        choices.push(json!({
            "text": result.text,
            "index": index,
            "logprobs": null,
            "finish_reason": finish_reason(result.finish_reason),
        }));
    }
    log.tokens(prompt_tokens, completion_tokens);
    Ok(Json(json!({
        "id": id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }))
    .into_response())
}

fn chunk(id: &str, created: i64, model: &str, text: &str, finish: Option<&str>) -> Value {
    json!({
        "id": id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [{"text": text, "index": 0, "logprobs": null, "finish_reason": finish}],
    })
}
