//! The axum server: routes, shared state, graceful shutdown.

use axum::routing::get;
use axum::Router;

use crate::api;

pub fn router() -> Router {
    Router::new().route("/healthz", get(api::health::healthz))
}
