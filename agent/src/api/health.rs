//! Liveness, readiness, GPU inventory and metrics.

use axum::http::StatusCode;

/// `GET /healthz`: 200 while the process serves HTTP.
pub async fn healthz() -> (StatusCode, &'static str) {
    (StatusCode::OK, "ok")
}
