//! Liveness, readiness, GPU inventory and metrics.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::api::access::{self, ApiKey};
use crate::app_state::SharedState;
use crate::error::ApiError;
use crate::gpu::{record_gpu_gauges, InventoryView};

/// `GET /healthz`: 200 while the process serves HTTP.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: 200 only when persisted deployments are restored, every deployment that
/// should be serving is READY and the agent is not draining; else 503 with the reason.
/// FAILED deployments do not hold readiness back: they wait for an operator, and the
/// deployments that are READY still serve.
pub async fn readyz(State(state): State<SharedState>) -> Result<Json<serde_json::Value>, ApiError> {
    if state.status.is_draining() {
        return Err(ApiError::draining());
    }
    let not_ready = ApiError::not_ready;
    if !state.status.is_restored() {
        return Err(not_ready(
            "the agent is restoring its persisted deployments".to_owned(),
        ));
    }
    let pending = state.registry.not_ready();
    if !pending.is_empty() {
        let list = pending
            .iter()
            .map(|(id, model, phase)| format!("{model} ({id}) is {phase}"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(not_ready(format!("deployments not READY yet: {list}")));
    }
    let serving = state.registry.handles().len();
    Ok(Json(
        json!({"status": "ready", "servingDeployments": serving}),
    ))
}

/// `GET /v1/gpus`: the NVML inventory, rescanned.
pub async fn gpus(
    _: ApiKey,
    State(state): State<SharedState>,
) -> Result<Json<InventoryView>, ApiError> {
    let inventory = state.inventory.clone();
    let current = tokio::task::spawn_blocking(move || inventory.refresh())
        .await
        .map_err(|e| ApiError::internal(format!("the NVML scan failed: {e}")))?;
    record_gpu_gauges(&current);
    let mut view = InventoryView::from(&*current);
    // The reason names the library path; the log has it (inventory.rs warns).
    view.reason = view
        .reason
        .map(|reason| state.lifecycle.host_paths.redact(&reason));
    Ok(Json(view))
}

/// `GET /metrics`: Prometheus text. Open to loopback peers; others need an `x-api-key`
/// unless `[metrics] public = true`.
pub async fn metrics(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !state.config.metrics.public && !peer.ip().is_loopback() {
        access::require_api_key(&state.auth, &headers)?;
    }
    let Some(handle) = &state.metrics else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "METRICS_UNAVAILABLE",
            "the metrics exporter could not be installed in this process",
        ));
    };
    let snapshots = state.registry.list();
    crate::metrics::refresh_phases(snapshots.iter().map(|s| &s.record));
    for snapshot in snapshots {
        if let Some(serving) = &snapshot.serving {
            crate::metrics::record_serving(
                &snapshot.record.spec.model_id,
                &crate::metrics::ServingGauges {
                    queue_depth: serving.queue_depth,
                    queue_capacity: state.config.batcher.max_queue,
                    running: serving.running,
                    replicas: serving.replicas.len(),
                    max_batch_size: snapshot.record.spec.scaling.max_batch_size as usize,
                },
            );
        }
    }
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response())
}
