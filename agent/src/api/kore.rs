//! Kore.ai-compatible deployment API: deploy, undeploy, dock-status (`docs/api.md`,
//! Kore-style deployment API).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde_json::Value;

use crate::api::access::ApiKey;
use crate::api::body::{log_unknown_keys, parse_object, JsonObject};
use crate::api::extract::{AcceptingWork, Body, UrlPath, UrlQuery};
use crate::api::request_log::RequestLog;
use crate::api::spec_fields::{self, Presence};
use crate::api::views;
use crate::app_state::SharedState;
use crate::deployment::spec::{DeploymentSpec, ModelType};
use crate::error::ApiError;
use crate::gpu::DeviceCatalog;
use crate::validation::{check_enum, check_model_id, RuleViolation, MODEL_TYPES};

/// Parses and validates a Kore deploy: the path's modelId, `?modelType=` and the body.
/// Malformed JSON and wrong types are 400, broken ranges and enums 422; every error names
/// the field. Never panics, whatever the bytes.
pub fn parse_deploy_request(
    model_id: &str,
    model_type: Option<&str>,
    body: &[u8],
    catalog: &DeviceCatalog,
) -> Result<DeploymentSpec, ApiError> {
    check_model_id("modelId", model_id)?;
    let model_type = match model_type {
        None => ModelType::OpenSource,
        Some(given) => match check_enum("modelType", MODEL_TYPES, given)? {
            "fineTune" => ModelType::FineTune,
            _ => ModelType::OpenSource,
        },
    };
    let value = parse_object(body)?;
    let root = JsonObject::root(&value)?;
    let spec = deploy_fields(&root, model_id, model_type, catalog)?;
    Ok(spec)
}

/// The Kore body's fields (also the native deploy body's).
pub(crate) fn deploy_fields(
    root: &JsonObject<'_>,
    model_id: &str,
    model_type: ModelType,
    catalog: &DeviceCatalog,
) -> Result<DeploymentSpec, ApiError> {
    let name = spec_fields::name(root, None)?;
    let reuse_cached_artifacts = spec_fields::reuse_cached_artifacts(root)?;
    let hyper = root.object("hyperParameters")?.ok_or_else(|| {
        ApiError::from(RuleViolation::missing(
            "hyperParameters",
            "an object with temperature, maxTokens, topP and topK",
        ))
    })?;
    let generation = spec_fields::generation_params(&hyper, Presence::Required)?;
    let scaling_obj = root.object("scalingParameters")?;
    let scaling = spec_fields::scaling(scaling_obj.as_ref())?;
    let device_type = spec_fields::device_type(root, catalog)?;
    let optimization_obj = root.object("optimizationInfo")?;
    let (backend, quantization) = spec_fields::optimization(optimization_obj.as_ref())?;
    let chat_template = spec_fields::chat_template(root)?;
    let mut objects = vec![root, &hyper];
    objects.extend(scaling_obj.as_ref());
    objects.extend(optimization_obj.as_ref());
    log_unknown_keys("kore", &objects);
    Ok(DeploymentSpec {
        model_id: model_id.to_owned(),
        name,
        model_type,
        reuse_cached_artifacts,
        generation,
        scaling,
        device_type,
        backend,
        quantization,
        chat_template,
    })
}

/// `POST /api/public/models/{modelId}/deploy?modelType=openSource|fineTune` → 202.
pub async fn deploy(
    _: ApiKey,
    _: AcceptingWork,
    State(state): State<SharedState>,
    Extension(log): Extension<RequestLog>,
    UrlPath(model_id): UrlPath<String>,
    UrlQuery(query): UrlQuery<BTreeMap<String, String>>,
    Body(body): Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let spec = parse_deploy_request(
        &model_id,
        query.get("modelType").map(String::as_str),
        &body,
        &state.catalog,
    )?;
    let (record, job) = state.registry.create(spec, None)?;
    log.deployment(&record.id);
    state.lifecycle.spawn_deploy(record.id.clone());
    Ok((StatusCode::ACCEPTED, Json(views::kore_accepted(&job))))
}

/// `POST /api/public/models/{modelId}/undeploy` → 202; drains, then frees.
pub async fn undeploy(
    _: ApiKey,
    _: AcceptingWork,
    State(state): State<SharedState>,
    Extension(log): Extension<RequestLog>,
    UrlPath(model_id): UrlPath<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    // The path names a modelId (docs/api.md): never resolved as a deployment id.
    let started = state.registry.request_undeploy_of_model(&model_id)?;
    log.deployment(&started.record.id);
    state.lifecycle.spawn_undeploy(
        started.record.id.clone(),
        started.handle,
        started.deploy_running,
    );
    Ok((
        StatusCode::ACCEPTED,
        Json(views::kore_accepted(&started.job)),
    ))
}

/// `GET /api/public/dock-status/{dockStatusId}`.
pub async fn dock_status(
    _: ApiKey,
    State(state): State<SharedState>,
    UrlPath(job_id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    let (job, deployment) = state
        .registry
        .job(&job_id)
        .ok_or_else(|| ApiError::not_found(format!("no dock-status job has id {job_id:?}")))?;
    Ok(Json(views::dock_status(&job, deployment.as_ref())))
}
