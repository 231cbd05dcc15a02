//! The one error shape every HTTP surface answers with (`docs/api.md`, Common rules):
//! `{"error": {"code", "message", "field"}}` with a fitting status.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::validation::RuleViolation;

/// An error answered to a client. `code` is SNAKE_CASE and stable; `message` is a sentence
/// naming the field, the allowed range and the value given where there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// JSON path of the offending field (`hyperParameters.topK`), when one is to blame.
    pub field: Option<String>,
    /// Sent as `Retry-After` (whole seconds) on 429 and 503.
    pub(crate) retry_after: Option<Duration>,
}

/// Seconds a client is told to wait before retrying a 503 (not ready, draining).
pub(crate) const RETRY_AFTER_NOT_READY: Duration = Duration::from_secs(5);
/// Seconds a client is told to wait before retrying a 429 (queue full).
pub(crate) const RETRY_AFTER_QUEUE_FULL: Duration = Duration::from_secs(1);

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    pub(crate) fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub(crate) fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// 400: the body is not JSON, or not the JSON shape expected.
    pub(crate) fn malformed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "MALFORMED_JSON", message)
    }

    /// 400: a field has the wrong JSON type.
    pub(crate) fn wrong_type(field: &str, expected: &str, given: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "INVALID_TYPE",
            format!("{field} must be {expected}, but {given} was given"),
        )
        .with_field(field)
    }

    /// 422: valid JSON that breaks a documented range or enum.
    pub(crate) fn out_of_range(field: &str, message: impl Into<String>) -> Self {
        RuleViolation::out_of_range(field, message.into()).into()
    }

    /// 422: a parameter the deployment cannot honour (a seed with CTranslate2 sampling, a
    /// prompt its tokenizer refuses).
    pub(crate) fn unsupported_parameter(
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNSUPPORTED_PARAMETER",
            message,
        )
        .with_field(field)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub(crate) fn payload_too_large(limit_bytes: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("the request body is larger than the limit of {limit_bytes} bytes"),
        )
    }

    /// 503 while the agent drains for shutdown.
    pub fn draining() -> Self {
        Self::draining_because("the agent is shutting down and accepts no new work")
    }

    /// 503 DRAINING: `message` says what drains (the agent, one deployment).
    pub(crate) fn draining_because(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "DRAINING", message)
            .with_retry_after(RETRY_AFTER_NOT_READY)
    }

    /// 503 NOT_READY: the agent is restoring, or the deployment is not READY yet.
    pub fn not_ready(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "NOT_READY", message)
            .with_retry_after(RETRY_AFTER_NOT_READY)
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", message)
    }

    pub fn body(&self) -> ErrorBody<'_> {
        ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
            },
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

#[derive(Serialize)]
pub struct ErrorBody<'a> {
    pub error: ErrorDetail<'a>,
}

#[derive(Serialize)]
pub struct ErrorDetail<'a> {
    pub code: &'a str,
    pub message: &'a str,
    /// Always present, `null` when no field is to blame.
    pub field: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(after) = self.retry_after {
            let seconds = after.as_secs().max(1).to_string();
            if let Ok(value) = HeaderValue::from_str(&seconds) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response.extensions_mut().insert(ErrorCode(self.code));
        // The OpenAI routes answer the same error in OpenAI's shape (api/openai/error.rs).
        response.extensions_mut().insert(self);
        response
    }
}

/// Left on error responses so the request log can name the code.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ErrorCode(pub &'static str);

impl From<RuleViolation> for ApiError {
    fn from(violation: RuleViolation) -> Self {
        ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            violation.code,
            violation.message,
        )
        .with_field(violation.field)
    }
}
