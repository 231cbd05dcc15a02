//! `POST /v1/completions` (`docs/api.md`, OpenAI-compatible API): one or more prompts, `n`
//! choices each (`best_of` candidates), streamed or whole.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};

use crate::api::access::OpenAiKey;
use crate::api::body::{as_str, log_unknown_keys, parse_object, type_name, JsonObject};
use crate::api::extract::Body;
use crate::api::generate;
use crate::api::openai::choices;
use crate::api::openai::request::{self, unsupported, ChoiceCount, Unhonoured};
use crate::api::openai::stream::{self, ChoiceStep, Usage};
use crate::api::openai::{completion_id, finish_reason, model_target, usage_json};
use crate::api::request_log::RequestLog;
use crate::api::spec_fields::GenerationOverrides;
use crate::app_state::SharedState;
use crate::error::ApiError;
use crate::validation::{self as rules, RuleViolation};

/// A parsed completions request.
pub struct CompletionRequest {
    pub model: String,
    pub prompts: Vec<String>,
    pub overrides: GenerationOverrides,
    pub count: ChoiceCount,
    pub stream: bool,
    pub include_usage: bool,
}

/// What completions refuse unless neutral, beyond the shared penalties.
const UNHONOURED: [Unhonoured; 3] = [
    Unhonoured {
        key: "suffix",
        neutral: request::is_empty,
        why: "text after the insertion point needs a fill-in-the-middle model; leave it out",
    },
    Unhonoured {
        key: "logprobs",
        neutral: request::never,
        why: "not available yet",
    },
    Unhonoured {
        key: "echo",
        neutral: request::is_false,
        why: "not available yet",
    },
];

/// OpenAI's completions fields (`docs/api.md` lists each as supported or refused).
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
    let prompts = prompts(&root)?;
    let overrides = request::sampling(&root, &["max_tokens"])?;
    let count = request::choice_count(&root, true)?;
    let (stream, include_usage) = request::streaming(&root)?;
    if stream && count.best_of > count.n {
        return Err(unsupported(
            "best_of",
            "best_of above n cannot be streamed: the best candidates are known only at the end",
        ));
    }
    request::refuse_unhonoured(&root, &request::PENALTIES)?;
    request::refuse_unhonoured(&root, &UNHONOURED)?;
    if count.best_of > count.n {
        return Err(unsupported(
            "best_of",
            "best_of above n is not available yet",
        ));
    }
    let _ = root.value("user");
    log_unknown_keys("openai", &[&root]);
    Ok(CompletionRequest {
        model,
        prompts,
        overrides,
        count,
        stream,
        include_usage,
    })
}

/// `prompt`: a string or an array of 1–32 strings. Token-id prompts are refused: the
/// engine takes text.
fn prompts(root: &JsonObject<'_>) -> Result<Vec<String>, ApiError> {
    match root.value("prompt") {
        None => Err(RuleViolation::missing("prompt", "a string or an array of strings").into()),
        Some(Value::String(text)) => Ok(vec![text.clone()]),
        Some(Value::Array(items)) => {
            if items.iter().any(|item| item.is_number() || item.is_array()) {
                return Err(unsupported(
                    "prompt",
                    "token-id prompts are not supported: send the prompt as text",
                ));
            }
            let count = i64::try_from(items.len()).unwrap_or(i64::MAX);
            rules::PROMPT_COUNT.check("prompt", count)?;
            items
                .iter()
                .enumerate()
                .map(|(i, item)| as_str(&format!("prompt[{i}]"), item).map(str::to_owned))
                .collect()
        }
        Some(other) => Err(ApiError::wrong_type(
            "prompt",
            "a string or an array of strings",
            type_name(other),
        )),
    }
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

/// `POST /v1/completions`.
pub async fn completions(
    _: OpenAiKey,
    State(state): State<SharedState>,
    Extension(log): Extension<RequestLog>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let request = parse_completion_request(&body)?;
    let target = model_target(&state, &request.model, &log)?;
    let params = request
        .overrides
        .apply(&target.deployment.spec.generation, "top_p")?;
    let generations = choices::submit_all(
        &target,
        &request.prompts,
        request.count,
        request.overrides.seed,
        |prompt, seed| generate::request(&state, prompt.to_owned(), &params, seed),
        &fields(),
    )
    .await?;
    let id = completion_id("cmpl");
    let created = chrono::Utc::now().timestamp();
    let model = request.model;
    if request.stream {
        let envelope = Envelope { id, created, model };
        let render = {
            let envelope = envelope.clone();
            move |step: ChoiceStep| match step {
                ChoiceStep::Token { index, text } => envelope.chunk(index, &text, None),
                ChoiceStep::Finished { index, completion } => {
                    envelope.chunk(index, "", Some(finish_reason(completion.finish_reason)))
                }
            }
        };
        let usage = request.include_usage.then(|| {
            Box::new(move |usage: Usage| envelope.usage_chunk(usage))
                as Box<dyn FnOnce(Usage) -> Value + Send>
        });
        return Ok(stream::sse(
            generations,
            request.count.n,
            Vec::new(),
            render,
            usage,
            log,
        ));
    }
    let completions = choices::complete_all(generations).await?;
    let usage = choices::usage(&completions, request.count);
    let choices: Vec<Value> = choices::pick(completions, request.count)
        .into_iter()
        .map(|(index, completion)| {
            json!({
                "text": completion.text,
                "index": index,
                "logprobs": null,
                "finish_reason": finish_reason(completion.finish_reason),
            })
        })
        .collect();
    log.tokens(usage.prompt_tokens, usage.completion_tokens);
    Ok(Json(json!({
        "id": id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": choices,
        "usage": usage_json(usage),
    }))
    .into_response())
}

/// What every chunk of one streamed completion repeats.
#[derive(Clone)]
struct Envelope {
    id: String,
    created: i64,
    model: String,
}

impl Envelope {
    fn chunk(&self, index: usize, text: &str, finish: Option<&str>) -> Value {
        json!({
            "id": self.id,
            "object": "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": [{"text": text, "index": index, "logprobs": null, "finish_reason": finish}],
        })
    }

    fn usage_chunk(&self, usage: Usage) -> Value {
        json!({
            "id": self.id,
            "object": "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": usage_json(usage),
        })
    }
}
