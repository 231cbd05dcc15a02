//! The request body must arrive within `[server] body_read_timeout_s` of its head: a
//! client trickling bytes (or announcing a `Content-Length` it never sends) is answered
//! 408 and its connection closed, instead of holding a connection and a task forever.
//! Every route reads its whole body anyway, so it is read here, once, under the deadline
//! and the body limit, and handed on in memory.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::LengthLimitError;

use crate::error::ApiError;

/// What the middleware enforces.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BodyDeadline {
    pub timeout: Duration,
    /// `body_limit_bytes`: past it, 413 as the extractors answer it.
    pub limit: usize,
}

/// The middleware.
pub(crate) async fn read_body_within(
    State(deadline): State<BodyDeadline>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(deadline.timeout, axum::body::to_bytes(body, deadline.limit)).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(error)) if is_length_limit(&error) => {
            ApiError::payload_too_large(deadline.limit).into_response()
        }
        Ok(Err(error)) => {
            ApiError::malformed(format!("the request body could not be read: {error}"))
                .into_response()
        }
        Err(_) => {
            let mut response = ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "REQUEST_TIMEOUT",
                format!(
                    "the request body did not arrive within {} s",
                    deadline.timeout.as_secs()
                ),
            )
            .into_response();
            // The rest of the body may still be on its way: the connection cannot be
            // reused for another request.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
    }
}

fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if current.is::<LengthLimitError>() {
            return true;
        }
        source = current.source();
    }
    false
}
