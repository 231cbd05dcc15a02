//! One log line per request: request id, method, path, status, deployment, tokens,
//! latency, error code. Handlers add what they know through [`RequestLog`].

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

use crate::error::ErrorCode;

/// Header carrying the request id, taken from the client when given, else generated.
pub(crate) const REQUEST_ID_HEADER: &str = "x-request-id";

#[derive(Default, Debug)]
struct Fields {
    deployment: Option<String>,
    prompt_tokens: usize,
    completion_tokens: usize,
}

/// Filled in by handlers; read when the response is sent.
#[derive(Clone, Default, Debug)]
pub struct RequestLog(Arc<Mutex<Fields>>);

impl RequestLog {
    fn with<R>(&self, f: impl FnOnce(&mut Fields) -> R) -> R {
        let mut fields = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut fields)
    }

    pub fn deployment(&self, id: &str) {
        self.with(|f| f.deployment = Some(id.to_owned()));
    }

    /// Adds tokens of one generation (a batch adds several).
    pub fn tokens(&self, prompt: usize, completion: usize) {
        self.with(|f| {
            f.prompt_tokens += prompt;
            f.completion_tokens += completion;
        });
    }
}

/// Longest client request id kept (bytes).
const REQUEST_ID_MAX_BYTES: usize = 128;

/// A client's request id is kept when it is 1–128 characters of ASCII letters, digits and
/// `-_.:/+=@`; anything else (quotes, spaces, control characters) could forge log fields,
/// so the agent generates one instead (docs/api.md § Common rules).
fn is_acceptable_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= REQUEST_ID_MAX_BYTES
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(&b))
}

/// The middleware.
pub(crate) async fn log_request(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_acceptable_request_id(v))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let log = RequestLog::default();
    request.extensions_mut().insert(log.clone());
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let code = response.extensions().get::<ErrorCode>().map(|c| c.0);
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    log.with(|f| {
        tracing::info!(
            // As a string, so text logs quote it (like `path`): client-controlled values
            // cannot pose as other fields.
            request_id = id.as_str(),
            %method,
            path,
            status = response.status().as_u16(),
            deployment = f.deployment.as_deref(),
            prompt_tokens = f.prompt_tokens,
            completion_tokens = f.completion_tokens,
            latency_ms = format_args!("{latency_ms:.1}"),
            error = code,
            "request"
        );
    });
    response
}
