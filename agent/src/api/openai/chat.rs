//! `POST /v1/chat/completions` (`docs/api.md`, OpenAI-compatible API): the conversation
//! becomes one prompt through the deployment's chat template (crate::chat_template), then
//! runs as a completion with `n` choices, streamed as `delta` chunks or whole.

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
use crate::api::openai::logprobs::{self, TokenTexts};
use crate::api::openai::request::{self, unsupported, ChoiceCount, Unhonoured};
use crate::api::openai::stream::{self, ChoiceStep, Usage, UsageChunk};
use crate::api::openai::{completion_id, finish_reason, model_target, usage_json};
use crate::api::request_log::RequestLog;
use crate::api::spec_fields::GenerationOverrides;
use crate::app_state::SharedState;
use crate::chat_template::ChatMessage;
use crate::error::ApiError;
use crate::validation::{self as rules, RuleViolation};

/// A parsed chat request.
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    pub(crate) overrides: GenerationOverrides,
    pub count: ChoiceCount,
    pub stream: bool,
    pub include_usage: bool,
    /// Alternatives per token (`top_logprobs`), when `logprobs` is true.
    pub logprobs: Option<usize>,
}

/// Chat fields refused unless neutral: tools, structured output, audio and the rest a
/// text-only engine cannot honour.
const UNHONOURED: [Unhonoured; 12] = [
    Unhonoured {
        key: "tools",
        neutral: request::is_empty,
        why: "tool calling is not available; leave tools out",
    },
    Unhonoured {
        key: "tool_choice",
        neutral: is_none_choice,
        why: "tool calling is not available; send \"none\" or leave it out",
    },
    Unhonoured {
        key: "functions",
        neutral: request::is_empty,
        why: "function calling is not available; leave functions out",
    },
    Unhonoured {
        key: "function_call",
        neutral: is_none_choice,
        why: "function calling is not available; send \"none\" or leave it out",
    },
    Unhonoured {
        key: "response_format",
        neutral: is_text_format,
        why: "only {\"type\": \"text\"} output is available",
    },
    Unhonoured {
        key: "modalities",
        neutral: is_text_only,
        why: "only [\"text\"] output is available",
    },
    Unhonoured {
        key: "audio",
        neutral: request::never,
        why: "audio output is not available",
    },
    Unhonoured {
        key: "prediction",
        neutral: request::never,
        why: "predicted outputs are not available",
    },
    Unhonoured {
        key: "reasoning_effort",
        neutral: request::never,
        why: "the models served do not reason in a separate phase",
    },
    Unhonoured {
        key: "web_search_options",
        neutral: request::never,
        why: "web search is not available",
    },
    Unhonoured {
        key: "verbosity",
        neutral: request::never,
        why: "the models served have no verbosity control; leave it out",
    },
    Unhonoured {
        key: "store",
        neutral: request::is_false,
        why: "completions are not stored; send false or leave it out",
    },
];

fn is_none_choice(value: &Value) -> bool {
    value == "none"
}

fn is_text_format(value: &Value) -> bool {
    value.get("type").and_then(Value::as_str) == Some("text")
}

fn is_text_only(value: &Value) -> bool {
    value
        .as_array()
        .is_some_and(|m| m.iter().all(|x| x == "text"))
}

/// Fields OpenAI defines that change nothing here and are accepted: `user`,
/// `safety_identifier`, `prompt_cache_key` (abuse monitoring and caching hints),
/// `metadata` (tags for stored completions, and none are stored), `service_tier`,
/// `parallel_tool_calls` (no tools run).
const ACCEPTED_AND_IGNORED: [&str; 6] = [
    "user",
    "safety_identifier",
    "prompt_cache_key",
    "metadata",
    "service_tier",
    "parallel_tool_calls",
];

/// OpenAI's chat fields (`docs/api.md` lists each as supported or refused).
pub fn parse_chat_request(body: &[u8]) -> Result<ChatRequest, ApiError> {
    let value = parse_object(body)?;
    let root = JsonObject::root(&value)?;
    let model = request::model(&root)?;
    let messages = messages(&root)?;
    let overrides = request::sampling(&root, &["max_completion_tokens", "max_tokens"])?;
    let count = request::choice_count(&root, false)?;
    let (stream, include_usage) = request::streaming(&root)?;
    let wants_logprobs = root.bool("logprobs")?.unwrap_or(false);
    let top_logprobs = request::bounded(&root, "top_logprobs", rules::LOGPROBS)?;
    if top_logprobs.is_some() && !wants_logprobs {
        return Err(unsupported(
            "top_logprobs",
            "top_logprobs needs \"logprobs\": true",
        ));
    }
    request::refuse_unhonoured(&root, &request::PENALTIES)?;
    request::refuse_unhonoured(&root, &UNHONOURED)?;
    for key in ACCEPTED_AND_IGNORED {
        let _ = root.value(key);
    }
    log_unknown_keys("openai", &[&root]);
    Ok(ChatRequest {
        model,
        messages,
        overrides,
        count,
        stream,
        include_usage,
        logprobs: wants_logprobs.then(|| top_logprobs.unwrap_or(0)),
    })
}

/// `messages`: 1–256 of `{role, content, name?}`; roles system (and `developer`, its newer
/// name), user, assistant; content a string or text parts. Tool turns and non-text parts
/// are refused, naming the message.
fn messages(root: &JsonObject<'_>) -> Result<Vec<ChatMessage>, ApiError> {
    let value = root.value("messages").ok_or_else(|| {
        ApiError::from(RuleViolation::missing(
            "messages",
            "an array of {role, content} messages",
        ))
    })?;
    let items = value
        .as_array()
        .ok_or_else(|| ApiError::wrong_type("messages", "an array", type_name(value)))?;
    let count = i64::try_from(items.len()).unwrap_or(i64::MAX);
    rules::CHAT_MESSAGES.check("messages", count)?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| message(&JsonObject::nested(format!("messages[{i}]"), item)?))
        .collect()
}

fn message(obj: &JsonObject<'_>) -> Result<ChatMessage, ApiError> {
    let role_field = obj.path_of("role");
    let role = match obj.string("role")? {
        None => {
            return Err(RuleViolation::missing(&role_field, "system, user or assistant").into())
        }
        Some("system" | "developer") => "system",
        Some("user") => "user",
        Some("assistant") => "assistant",
        Some(other @ ("tool" | "function")) => {
            return Err(unsupported(
                &role_field,
                format!("{role_field} {other:?} is not supported: tool calling is not available"),
            ))
        }
        Some(other) => {
            return Err(ApiError::from(RuleViolation::new(
                "INVALID_ENUM",
                &role_field,
                format!(
                    "{role_field} must be one of system, developer, user, assistant, but \
                     {other:?} was given"
                ),
            )))
        }
    };
    if let Some(calls) = obj.value("tool_calls") {
        if !request::is_empty(calls) {
            return Err(unsupported(
                &obj.path_of("tool_calls"),
                "tool calls are not supported: tool calling is not available",
            ));
        }
    }
    let content = content(obj)?;
    let name = obj.string("name")?.map(str::to_owned);
    let _ = obj.value("refusal");
    log_unknown_keys("openai", &[obj]);
    Ok(ChatMessage {
        role: role.to_owned(),
        content,
        name,
    })
}

/// A string, or an array of `{"type": "text", "text": …}` parts joined; `null` (an
/// assistant turn without text) is empty.
fn content(obj: &JsonObject<'_>) -> Result<String, ApiError> {
    let field = obj.path_of("content");
    match obj.value("content") {
        None => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for (j, part) in parts.iter().enumerate() {
                let part = JsonObject::nested(format!("{field}[{j}]"), part)?;
                match part.string("type")? {
                    Some("text") => {}
                    other => {
                        return Err(unsupported(
                            &part.path_of("type"),
                            format!(
                                "content parts of type {:?} are not supported: the models \
                                 served read text only",
                                other.unwrap_or("")
                            ),
                        ))
                    }
                }
                let value = part.value("text").ok_or_else(|| {
                    ApiError::from(RuleViolation::missing(&part.path_of("text"), "a string"))
                })?;
                text.push_str(as_str(&part.path_of("text"), value)?);
            }
            Ok(text)
        }
        Some(other) => Err(ApiError::wrong_type(
            &field,
            "a string or an array of text parts",
            type_name(other),
        )),
    }
}

fn fields() -> generate::FieldNames {
    generate::FieldNames {
        seed: "seed",
        prompt: "messages".to_owned(),
        logprobs: "top_logprobs",
        prompt_logprobs: "messages",
    }
}

/// `POST /v1/chat/completions`.
pub(crate) async fn chat_completions(
    _: OpenAiKey,
    State(state): State<SharedState>,
    Extension(log): Extension<RequestLog>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let request = parse_chat_request(&body)?;
    let target = model_target(&state, &request.model, &log)?;
    let prompt = target
        .handle
        .chat_template()
        .map_err(|error| unsupported("messages", error.to_string()))?
        .render(&request.messages)
        .map_err(|error| unsupported("messages", error.to_string()))?;
    let params = request
        .overrides
        .apply(&target.deployment.spec.generation, "top_p")?;
    let generations = choices::submit_all(
        &target,
        std::slice::from_ref(&prompt),
        request.count,
        request.overrides.seed,
        |prompt, seed| SubmitRequest {
            logprobs: request.logprobs,
            ..generate::request(&state, prompt.to_owned(), &params, seed)
        },
        &fields(),
    )
    .await?;
    let envelope = Envelope {
        id: completion_id("chatcmpl"),
        created: chrono::Utc::now().timestamp(),
        model: request.model,
    };
    if request.stream {
        let opening = (0..request.count.n)
            .map(|index| {
                envelope.chunk(
                    index,
                    json!({"role": "assistant", "content": ""}),
                    None,
                    None,
                )
            })
            .collect();
        let mut texts = vec![TokenTexts::default(); request.count.n];
        let handle = Arc::clone(&target.handle);
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
                        (Some(logprob), Some(texts)) => Some(json!({"content": [
                            logprobs::chat_entry(handle.tokenizer(), texts, id, logprob)
                        ]})),
                        _ => None,
                    };
                    envelope.chunk(index, json!({"content": text}), logprobs, None)
                }
                ChoiceStep::Finished { index, completion } => envelope.chunk(
                    index,
                    json!({}),
                    None,
                    Some(finish_reason(completion.finish_reason)),
                ),
            }
        };
        let usage = request
            .include_usage
            .then(|| Box::new(move |usage: Usage| envelope.usage_chunk(usage)) as UsageChunk);
        return Ok(stream::sse(
            generations,
            request.count.n,
            opening,
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
            let logprobs = request
                .logprobs
                .map(|_| chat_logprobs(target.handle.tokenizer(), &completion));
            json!({
                "index": index,
                "message": {"role": "assistant", "content": completion.text, "refusal": null},
                "logprobs": logprobs,
                "finish_reason": finish_reason(completion.finish_reason),
            })
        })
        .collect();
    log.tokens(usage.prompt_tokens, usage.completion_tokens);
    Ok(Json(json!({
        "id": envelope.id,
        "object": "chat.completion",
        "created": envelope.created,
        "model": envelope.model,
        "choices": choices,
        "usage": usage_json(usage),
        "system_fingerprint": null,
    }))
    .into_response())
}

/// A finished choice's `logprobs`: one `content` entry per generated token.
fn chat_logprobs(tokenizer: &Tokenizer, completion: &Completion) -> Value {
    let mut texts = TokenTexts::default();
    let generated = completion.token_logprobs.as_deref().unwrap_or_default();
    let content: Vec<Value> = completion
        .tokens
        .iter()
        .zip(generated)
        .map(|(&id, logprob)| logprobs::chat_entry(tokenizer, &mut texts, id, logprob))
        .collect();
    json!({"content": content})
}

/// What every chunk of one streamed chat completion repeats.
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
        delta: Value,
        logprobs: Option<Value>,
        finish: Option<&str>,
    ) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": null,
            "choices": [{"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}],
        })
    }

    fn usage_chunk(&self, usage: Usage) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": null,
            "choices": [],
            "usage": usage_json(usage),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: Value) -> Result<ChatRequest, ApiError> {
        parse_chat_request(body.to_string().as_bytes())
    }

    #[test]
    fn messages_take_strings_and_text_parts_and_developer_is_system() {
        let request = parse(json!({"model": "m", "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}]},
        ]}))
        .expect("valid");
        assert_eq!(request.messages[0].role, "system");
        assert_eq!(request.messages[1].content, "Hi there");
    }

    #[test]
    fn tools_images_and_tool_turns_are_refused_naming_the_field() {
        let refused = |body: Value, field: &str| {
            let error = parse(body).err().expect("refused");
            assert_eq!(error.code, "UNSUPPORTED_PARAMETER");
            assert_eq!(error.field.as_deref(), Some(field));
        };
        let user = json!([{"role": "user", "content": "x"}]);
        refused(
            json!({"model": "m", "messages": user, "tools": [{"type": "function"}]}),
            "tools",
        );
        refused(
            json!({"model": "m", "messages": user, "response_format": {"type": "json_object"}}),
            "response_format",
        );
        refused(
            json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}),
            "messages[0].content[0].type",
        );
        refused(
            json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]}),
            "messages[0].role",
        );
        assert!(parse(
            json!({"model": "m", "messages": user, "tools": [], "tool_choice": "none",
            "response_format": {"type": "text"}, "user": "u", "unknown_field": 1})
        )
        .is_ok());
    }

    #[test]
    fn an_empty_conversation_is_out_of_range() {
        let error = parse(json!({"model": "m", "messages": []}))
            .err()
            .expect("refused");
        assert_eq!(error.field.as_deref(), Some("messages"));
    }
}
