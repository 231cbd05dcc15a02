//! The OpenAI-compatible surface (`docs/api.md`, OpenAI-compatible API): completions,
//! chat completions and the model list, answered as OpenAI's clients expect them — the API
//! key as `Authorization: Bearer`, errors in OpenAI's shape, `n`, `logprobs`, `echo`.
//! `model` is a deployment id or modelId. Parameters a request leaves out take the
//! deployment's hyperParameters (not OpenAI's defaults): the deployment owner chose them.

mod chat;
mod choices;
mod completions;
pub mod error;
mod logprobs;
mod models;
mod request;
mod stream;

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use runtime::text::FinishReason;
use serde_json::{json, Value};

use crate::api::generate::{self, Target};
use crate::api::request_log::RequestLog;
use crate::app_state::{AppState, SharedState};
use crate::error::ApiError;
pub use chat::parse_chat_request;
pub use completions::parse_completion_request;
use stream::Usage;

/// The OpenAI routes, each answering errors in OpenAI's shape.
pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/v1/completions", post(completions::completions))
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/v1/models", get(models::list))
        // Model ids hold `/` (`google/flan-t5-small`), and OpenAI's clients put them in the
        // path as they are.
        .route("/v1/models/{*id}", get(models::get))
        .route_layer(axum::middleware::map_response(error::openai_shape))
}

/// The READY deployment `model` names; an unknown one is 404 blaming `model`
/// (`model_not_found`).
fn model_target(state: &AppState, model: &str, log: &RequestLog) -> Result<Target, ApiError> {
    generate::target(state, model, log).map_err(|error| {
        if error.status == StatusCode::NOT_FOUND {
            ApiError::not_found(format!(
                "the model {model:?} does not exist: name a READY deployment by its id or \
                 modelId (GET /v1/models lists them)"
            ))
            .with_field("model")
        } else {
            error
        }
    })
}

/// `cmpl-…`, `chatcmpl-…`.
fn completion_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

fn finish_reason(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Length => "length",
        FinishReason::StopSequence | FinishReason::Eos => "stop",
    }
}

fn usage_json(usage: Usage) -> Value {
    json!({
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    })
}
