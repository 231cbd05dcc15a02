//! Every route of every surface, with the layers they share (body limit, request log).

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use axum::Router;

use crate::api::body_deadline::BodyDeadline;
use crate::api::{self, health, kore, lucidworks, native, openai, store};
use crate::app_state::SharedState;

/// Every route of every surface.
pub(crate) fn router(state: SharedState) -> Router {
    let body_limit = state.config.body_limit_bytes;
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/v1/gpus", get(health::gpus))
        .route("/api/public/models/{model_id}/deploy", post(kore::deploy))
        .route(
            "/api/public/models/{model_id}/undeploy",
            post(kore::undeploy),
        )
        .route("/api/public/dock-status/{job_id}", get(kore::dock_status))
        .route(
            "/customers/{customer_id}/ai/deployments",
            get(lucidworks::list).post(lucidworks::create),
        )
        .route(
            "/customers/{customer_id}/ai/deployments/{id}",
            get(lucidworks::get).delete(lucidworks::delete),
        )
        .route(
            "/ai/prediction/{use_case}/{deployment_id}",
            post(lucidworks::predict),
        )
        .route("/v1/deployments", get(native::list).post(native::create))
        .route(
            "/v1/deployments/{id}",
            get(native::get).delete(native::delete),
        )
        .route("/v1/deployments/{id}/generate", post(native::generate))
        .merge(openai::routes())
        .route("/v1/store/models", get(store::list))
        .route(
            "/v1/store/models/{model_id}",
            get(store::get).delete(store::evict),
        )
        .route("/v1/store/models/{model_id}/pull", post(store::pull))
        .route(
            "/v1/store/models/{model_id}/pin",
            put(store::pin).delete(store::unpin),
        )
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            BodyDeadline {
                timeout: state.config.server.body_read_timeout(),
                limit: body_limit,
            },
            api::body_deadline::read_body_within,
        ))
        .layer(axum::middleware::from_fn(api::request_log::log_request))
        .with_state(state)
}
