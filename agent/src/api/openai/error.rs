//! Errors on the OpenAI routes in OpenAI's shape (`docs/api.md`, OpenAI-compatible API):
//! `{"error": {"message", "type", "param", "code"}}`, with 400 where the other surfaces
//! answer 422 (OpenAI's clients raise `BadRequestError` for every invalid parameter).
//!
//! Handlers and extractors keep returning [`ApiError`]; its response carries the error as
//! an extension, and `openai_shape`, a layer on the OpenAI routes only, answers it again
//! in OpenAI's shape. Extractor refusals (credentials, body size, malformed JSON) are then
//! shaped like the handler's own errors without a second set of extractors.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::error::{ApiError, ErrorCode};

/// Layer body: an [`ApiError`] response becomes its OpenAI-shaped twin; other responses
/// pass through.
pub(crate) async fn openai_shape(response: Response) -> Response {
    match response.extensions().get::<ApiError>() {
        Some(error) => render(error),
        None => response,
    }
}

/// The OpenAI status of `error`: invalid parameters (our 422) are 400.
pub fn status(error: &ApiError) -> StatusCode {
    if error.status == StatusCode::UNPROCESSABLE_ENTITY {
        StatusCode::BAD_REQUEST
    } else {
        error.status
    }
}

/// `{"error": {...}}` in OpenAI's shape: `type` from the status as OpenAI names its kinds,
/// `code` our stable code in OpenAI's lower case (`model_not_found` for an unknown model),
/// `param` the field to blame.
pub fn body(error: &ApiError) -> Value {
    let status = status(error);
    let kind = match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        500..=599 => "server_error",
        _ => "invalid_request_error",
    };
    let code = if error.status == StatusCode::NOT_FOUND && error.field.as_deref() == Some("model") {
        "model_not_found".to_owned()
    } else {
        error.code.to_ascii_lowercase()
    };
    json!({
        "error": {
            "message": error.message,
            "type": kind,
            "param": error.field,
            "code": code,
        }
    })
}

fn render(error: &ApiError) -> Response {
    let mut response = (status(error), Json(body(error))).into_response();
    if let Some(after) = error.retry_after {
        if let Ok(value) = HeaderValue::from_str(&after.as_secs().max(1).to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
    }
    response.extensions_mut().insert(ErrorCode(error.code));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_out_of_range_parameter_is_a_400_invalid_request_naming_the_param() {
        let error = ApiError::out_of_range("top_p", "top_p must be between 0 and 1");
        assert_eq!(status(&error), StatusCode::BAD_REQUEST);
        assert_eq!(
            body(&error),
            json!({"error": {"message": "top_p must be between 0 and 1",
                "type": "invalid_request_error", "param": "top_p", "code": "out_of_range"}})
        );
    }

    #[test]
    fn an_unknown_model_is_model_not_found() {
        let error =
            ApiError::not_found("no deployment has id or modelId \"x\"").with_field("model");
        assert_eq!(status(&error), StatusCode::NOT_FOUND);
        assert_eq!(body(&error)["error"]["code"], "model_not_found");
        assert_eq!(body(&error)["error"]["type"], "not_found_error");
    }
}
