//! The model store's routes (docs/api.md § Model store; x-api-key, like the native API):
//! prefetch, inventory, pin, evict. Prefetching needs no GPU and no admission.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::api::access::ApiKey;
use crate::api::extract::UrlPath;
use crate::app_state::SharedState;
use crate::error::ApiError;
use crate::model_source::{ModelSource, SourceError};
use crate::store::pulls::PullState;
use crate::store::{progress, Store};
use crate::validation::{self as rules, check_model_id};

/// The Hub repo and revision `model_id` is fetched from.
fn hub_source(state: &SharedState, model_id: &str) -> Result<(String, String), ApiError> {
    check_model_id("modelId", model_id)?;
    match state.lifecycle.sources.resolve(model_id) {
        Ok(ModelSource::Hub { repo, revision }) => Ok((repo, revision)),
        Ok(ModelSource::Local(_)) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_MODEL_SOURCE",
            format!(
                "{} is configured with a local directory; only Hub models are kept in the store",
                rules::quoted_excerpt(model_id)
            ),
        )),
        Err(error) => Err(source_error(&error)),
    }
}

fn source_error(error: &SourceError) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        error.code(),
        error.caller_message(),
    )
}

fn store(state: &SharedState) -> &Store {
    state.lifecycle.sources.store()
}

/// One model's view: the cache's record, the last pull's outcome, the live progress.
fn model_view(state: &SharedState, model_id: &str, repo: &str) -> Option<Value> {
    let store = store(state);
    let cached = store.inventory.get(repo, |r| store.is_in_use(r));
    let pull = store.pulls.get(model_id);
    if cached.is_none() && pull.is_none() {
        return None;
    }
    let mut view = match cached {
        Some(model) => json!(model),
        None => json!({"modelId": repo, "source": format!("hf:{repo}"), "sizeBytes": 0}),
    };
    view["modelId"] = json!(model_id);
    view["pull"] = json!(pull);
    view["download"] = json!(progress::current(model_id));
    Some(view)
}

fn not_cached(model_id: &str) -> ApiError {
    ApiError::not_found(format!(
        "{} is not in the model store",
        rules::quoted_excerpt(model_id)
    ))
}

/// `POST /v1/store/models/{modelId}/pull` → 202; progress at `GET .../{modelId}`.
pub async fn pull(
    _: ApiKey,
    State(state): State<SharedState>,
    UrlPath(model_id): UrlPath<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (repo, revision) = hub_source(&state, &model_id)?;
    let sources = state.lifecycle.sources.clone();
    if store(&state).cached(&repo, &revision).is_none() && sources.offline() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "MODEL_NOT_CACHED",
            "offline mode is on (HF_HUB_OFFLINE); the store cannot fetch",
        ));
    }
    if store(&state).pulls.begin(&model_id) {
        let id = model_id.clone();
        tokio::task::spawn_blocking(move || {
            let store = sources.store();
            let outcome = match store.ensure(&id, &repo, &revision) {
                Ok(_) => PullState::Ready,
                Err(error) => {
                    tracing::warn!(model = %id, %error, "pull failed");
                    PullState::Failed {
                        code: error.code().to_owned(),
                        message: error.caller_message(),
                    }
                }
            };
            store.pulls.finish(&id, outcome);
        });
    }
    let view = model_view(&state, &model_id, &hub_source(&state, &model_id)?.0)
        .unwrap_or_else(|| json!({"modelId": model_id}));
    Ok((StatusCode::ACCEPTED, Json(view)))
}

/// `GET /v1/store/models/{modelId}`.
pub async fn get(
    _: ApiKey,
    State(state): State<SharedState>,
    UrlPath(model_id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    let (repo, _) = hub_source(&state, &model_id)?;
    model_view(&state, &model_id, &repo)
        .map(Json)
        .ok_or_else(|| not_cached(&model_id))
}

/// `GET /v1/store/models`.
pub async fn list(_: ApiKey, State(state): State<SharedState>) -> Json<Value> {
    let store = store(&state);
    let models = store.inventory.list(|r| store.is_in_use(r));
    Json(json!({ "models": models }))
}

/// `DELETE /v1/store/models/{modelId}`: 409 `MODEL_IN_USE` while a deployment uses it or
/// it is being downloaded.
pub async fn evict(
    _: ApiKey,
    State(state): State<SharedState>,
    UrlPath(model_id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    let (repo, _) = hub_source(&state, &model_id)?;
    let store = store(&state);
    let Some(model) = store.inventory.get(&repo, |r| store.is_in_use(r)) else {
        return Err(not_cached(&model_id));
    };
    if model.in_use || store.is_downloading(&repo) {
        return Err(ApiError::conflict(
            "MODEL_IN_USE",
            format!(
                "{} is used by a deployment or being downloaded; undeploy it first",
                rules::quoted_excerpt(&model_id)
            ),
        ));
    }
    store.inventory.remove(&repo).map_err(|error| {
        tracing::warn!(%repo, %error, "eviction failed");
        ApiError::internal(
            "the model's files could not all be removed; the agent's log has the details",
        )
    })?;
    store.pulls.forget(&model_id);
    Ok(Json(
        json!({"modelId": model_id, "evicted": true, "sizeBytes": model.size_bytes}),
    ))
}

async fn set_pin(
    state: SharedState,
    model_id: String,
    pinned: bool,
) -> Result<Json<Value>, ApiError> {
    let (repo, _) = hub_source(&state, &model_id)?;
    let store = store(&state);
    if store.inventory.get(&repo, |_| false).is_none() {
        return Err(not_cached(&model_id));
    }
    store.inventory.set_pinned(&repo, pinned);
    model_view(&state, &model_id, &repo)
        .map(Json)
        .ok_or_else(|| not_cached(&model_id))
}

/// `PUT /v1/store/models/{modelId}/pin`: never evicted by the disk budget.
pub async fn pin(
    _: ApiKey,
    State(state): State<SharedState>,
    UrlPath(model_id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    set_pin(state, model_id, true).await
}

/// `DELETE /v1/store/models/{modelId}/pin`.
pub(crate) async fn unpin(
    _: ApiKey,
    State(state): State<SharedState>,
    UrlPath(model_id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    set_pin(state, model_id, false).await
}
