//! `POST /v1/completions` (`docs/api.md`, OpenAI-compatible API): one or more prompts, `n`
//! choices each (`best_of` candidates), streamed or whole.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use runtime::batcher::{Completion, SubmitRequest};
use runtime::tokenizer::Tokenizer;
use serde_json::{json, Value};

use crate::api::access::OpenAiKey;
use crate::api::body::{as_str, log_unknown_keys, parse_object, type_name, JsonObject};
use crate::api::extract::Body;
use crate::api::generate;
use crate::api::openai::choices;
use crate::api::openai::logprobs::{CompletionLogprobs, TokenTexts};
use crate::api::openai::request::{self, unsupported, ChoiceCount, Unhonoured};
use crate::api::openai::stream::{self, ChoiceStep, Usage, UsageChunk};
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
    pub(crate) overrides: GenerationOverrides,
    pub count: ChoiceCount,
    pub stream: bool,
    pub include_usage: bool,
    /// Alternatives per token, when logprobs are asked for.
    pub logprobs: Option<usize>,
    /// The prompt precedes the completion (and, with logprobs, is scored).
    pub echo: bool,
}

/// What completions refuse unless neutral, beyond the shared penalties.
const UNHONOURED: [Unhonoured; 1] = [Unhonoured {
    key: "suffix",
    neutral: request::is_empty,
    why: "text after the insertion point needs a fill-in-the-middle model; leave it out",
}];

/// OpenAI's completions fields (`docs/api.md` lists each as supported or refused).
pub fn parse_completion_request(body: &[u8]) -> Result<CompletionRequest, ApiError> {
    let value = parse_object(body)?;
    let root = JsonObject::root(&value)?;
    let model = request::model(&root)?;
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
    let logprobs = request::bounded(&root, "logprobs", rules::LOGPROBS)?;
    let echo = root.bool("echo")?.unwrap_or(false);
    if stream && echo && logprobs.is_some() {
        return Err(unsupported(
            "echo",
            "echo with logprobs cannot be streamed: the prompt is scored with the whole \
             generation; send \"stream\": false",
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
        logprobs,
        echo,
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
    // Ranking best_of candidates needs their logprobs, asked for or not.
    let runtime_logprobs = request
        .logprobs
        .or((request.count.best_of > request.count.n).then_some(0));
    let generations = choices::submit_all(
        &target,
        &request.prompts,
        request.count,
        request.overrides.seed,
        |prompt, seed| SubmitRequest {
            logprobs: runtime_logprobs,
            prompt_logprobs: request.echo && request.logprobs.is_some(),
            ..generate::request(&state, prompt.to_owned(), &params, seed)
        },
        &fields(),
    )
    .await?;
    let n = request.count.n;
    let envelope = Envelope {
        id: completion_id("cmpl"),
        created: chrono::Utc::now().timestamp(),
        model: request.model.clone(),
    };
    let handle = Arc::clone(&target.handle);
    if request.stream {
        // Choice `i` answers prompt `i / n`.
        let prompt_of = |index: usize| &request.prompts[index / n];
        let opening = if request.echo {
            (0..generations.len())
                .map(|index| envelope.chunk(index, prompt_of(index), None, None))
                .collect()
        } else {
            Vec::new()
        };
        let mut texts: Vec<TokenTexts> = (0..generations.len())
            .map(|index| TokenTexts::starting_at(offset_base(prompt_of(index), request.echo)))
            .collect();
        let wants_logprobs = request.logprobs.is_some();
        let render = {
            let envelope = envelope.clone();
            move |step: ChoiceStep| match step {
                ChoiceStep::Token {
                    index,
                    id,
                    text,
                    logprob,
                } => {
                    let logprobs = match (&logprob, texts.get_mut(index)) {
                        (Some(logprob), Some(texts)) if wants_logprobs => {
                            let mut one = CompletionLogprobs::default();
                            one.push(handle.tokenizer(), texts, id, Some(logprob));
                            Some(one.into_json())
                        }
                        _ => None,
                    };
                    envelope.chunk(index, &text, logprobs, None)
                }
                ChoiceStep::Finished { index, completion } => envelope.chunk(
                    index,
                    "",
                    None,
                    Some(finish_reason(completion.finish_reason)),
                ),
            }
        };
        let usage = request
            .include_usage
            .then(|| Box::new(move |usage: Usage| envelope.usage_chunk(usage)) as UsageChunk);
        return Ok(stream::sse(generations, n, opening, render, usage, log));
    }
    let completions = choices::complete_all(generations).await?;
    let usage = choices::usage(&completions, request.count);
    let choices: Vec<Value> = choices::pick(completions, request.count)
        .into_iter()
        .map(|(index, completion)| {
            let prompt = &request.prompts[index / n];
            let text = if request.echo {
                format!("{prompt}{}", completion.text)
            } else {
                completion.text.clone()
            };
            let logprobs = request.logprobs.map(|_| {
                completion_logprobs(handle.tokenizer(), prompt, &completion, request.echo)
            });
            json!({
                "text": text,
                "index": index,
                "logprobs": logprobs,
                "finish_reason": finish_reason(completion.finish_reason),
            })
        })
        .collect();
    log.tokens(usage.prompt_tokens, usage.completion_tokens);
    Ok(Json(json!({
        "id": envelope.id,
        "object": "text_completion",
        "created": envelope.created,
        "model": envelope.model,
        "choices": choices,
        "usage": usage_json(usage),
    }))
    .into_response())
}

/// Where token offsets start: 0 when the prompt is echoed (its tokens come first), else
/// after the prompt, as OpenAI counts them.
fn offset_base(prompt: &str, echo: bool) -> usize {
    if echo {
        0
    } else {
        prompt.chars().count()
    }
}

/// A finished choice's `logprobs`: with `echo`, the prompt's tokens first (the first one
/// unscored), then the generated tokens.
fn completion_logprobs(
    tokenizer: &Tokenizer,
    prompt: &str,
    completion: &Completion,
    echo: bool,
) -> Value {
    let mut texts = TokenTexts::starting_at(offset_base(prompt, echo));
    let mut logprobs = CompletionLogprobs::default();
    if echo {
        if let Some(scored) = &completion.prompt_logprobs {
            for (&id, logprob) in scored.tokens.iter().zip(&scored.logprobs) {
                logprobs.push(tokenizer, &mut texts, id, logprob.as_ref());
            }
        }
        // Generated tokens decode on their own: their texts start afresh, after the prompt.
        texts = TokenTexts::starting_at(prompt.chars().count());
    }
    let generated = completion.token_logprobs.as_deref().unwrap_or_default();
    for (&id, logprob) in completion.tokens.iter().zip(generated) {
        logprobs.push(tokenizer, &mut texts, id, Some(logprob));
    }
    logprobs.into_json()
}

/// What every chunk of one streamed completion repeats.
#[derive(Clone)]
struct Envelope {
    id: String,
    created: i64,
    model: String,
}

impl Envelope {
    fn chunk(
        &self,
        index: usize,
        text: &str,
        logprobs: Option<Value>,
        finish: Option<&str>,
    ) -> Value {
        json!({
            "id": self.id,
            "object": "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": [{"text": text, "index": index, "logprobs": logprobs, "finish_reason": finish}],
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
