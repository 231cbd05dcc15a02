//! `GET /v1/models` and `GET /v1/models/{id}` (`docs/api.md`, OpenAI-compatible API): the
//! READY deployments in OpenAI's list shape. Each appears twice, under its deployment id
//! and under its modelId (the alias completions also accept), so whichever a client
//! picks from the list works as `model`.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::api::access::OpenAiKey;
use crate::api::extract::UrlPath;
use crate::app_state::SharedState;
use crate::deployment::phase::Phase;
use crate::deployment::record::Deployment;
use crate::error::ApiError;

/// Who the models are said to belong to (`owned_by`).
const OWNER: &str = "gpu-agent";

/// `GET /v1/models`.
pub async fn list(_: OpenAiKey, State(state): State<SharedState>) -> Json<Value> {
    let data: Vec<Value> = state
        .registry
        .list()
        .iter()
        .map(|snapshot| &snapshot.record)
        .filter(|record| record.phase == Phase::Ready)
        .flat_map(|record| {
            [
                entry(record, &record.id),
                entry(record, &record.spec.model_id),
            ]
        })
        .collect();
    Json(json!({"object": "list", "data": data}))
}

/// `GET /v1/models/{id}`: `id` is a deployment id or modelId of a READY deployment.
pub async fn get(
    _: OpenAiKey,
    State(state): State<SharedState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    let record = state
        .registry
        .lookup(&id)
        .map(|snapshot| snapshot.record)
        .filter(|record| record.phase == Phase::Ready)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "the model {id:?} does not exist: no READY deployment has that id or modelId"
            ))
            .with_field("model")
        })?;
    Ok(Json(entry(&record, &id)))
}

/// One model object, named `id` (the deployment id or the modelId); `root` is the modelId
/// and `deployment` the deployment id either way.
fn entry(record: &Deployment, id: &str) -> Value {
    json!({
        "id": id,
        "object": "model",
        "created": record.created_at.timestamp(),
        "owned_by": OWNER,
        "root": record.spec.model_id,
        "deployment": record.id,
    })
}
