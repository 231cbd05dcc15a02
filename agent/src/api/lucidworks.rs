//! Lucidworks-compatible deployment and prediction API (`docs/api.md`, Lucidworks-style
//! API).

use axum::extract::State;
use axum::{Extension, Json};
use serde_json::{json, Value};

use crate::api::access::{Bearer, Manage, Predict};
use crate::api::body::{as_str, log_unknown_keys, parse_object, type_name, JsonObject};
use crate::api::extract::{AcceptingWork, Body, UrlPath};
use crate::api::generate::{self, Target};
use crate::api::request_log::RequestLog;
use crate::api::spec_fields::{self, Presence};
use crate::api::views;
use crate::app_state::SharedState;
use crate::auth::{AuthError, Principal};
use crate::deployment::record::{is_deployment_id_form, Deployment, LucidworksOrigin};
use crate::deployment::registry::{RegistryError, Snapshot};
use crate::deployment::spec::{DeploymentSpec, ModelType};
use crate::error::ApiError;
use crate::gpu::DeviceCatalog;
use crate::validation::{self as rules, check_model_id, RuleViolation};

/// A validated create request.
pub struct CreateRequest {
    pub spec: DeploymentSpec,
    pub region: String,
    /// The `config` blob, verbatim.
    pub config: Value,
}

/// Parses `{modelId, region, minReplicas, maxReplicas, config}`; the config blob carries the
/// Kore keys flat (`deviceType`, `optimizationType`, `quantizationType`, `maxBatchSize`,
/// `scaleUpDelay`, `scaleDownDelay`, `hyperParameters`, `name`, `isDeployedPreviously`).
pub fn parse_create_request(
    body: &[u8],
    catalog: &DeviceCatalog,
) -> Result<CreateRequest, ApiError> {
    let value = parse_object(body)?;
    let root = JsonObject::root(&value)?;
    let model_id = root
        .string("modelId")?
        .ok_or_else(|| ApiError::from(RuleViolation::missing("modelId", "the model to deploy")))?
        .to_owned();
    check_model_id("modelId", &model_id)?;
    let region = root.string("region")?.unwrap_or_default().to_owned();
    rules::check_stored_len("region", &region, rules::REGION_MAX_BYTES)?;
    let (min_replicas, max_replicas) = spec_fields::replicas(Some(&root))?;
    let empty = json!({});
    let config_value = match root.value("config") {
        Some(v) if v.is_object() => v,
        Some(other) => {
            return Err(ApiError::wrong_type(
                "config",
                "an object",
                type_name(other),
            ))
        }
        None => &empty,
    };
    let config_bytes = serde_json::to_string(config_value).map_or(0, |text| text.len());
    if config_bytes > rules::CONFIG_MAX_BYTES {
        return Err(ApiError::from(RuleViolation::out_of_range(
            "config",
            format!(
                "config may be at most {} bytes of JSON, but it has {config_bytes}",
                rules::CONFIG_MAX_BYTES
            ),
        )));
    }
    let config_object = JsonObject::nested("config", config_value)?;
    let config = &config_object;
    let name = spec_fields::name(config, Some(&model_id))?;
    let reuse_cached_artifacts = spec_fields::reuse_cached_artifacts(config)?;
    let hyper = config.object("hyperParameters")?;
    let generation = match &hyper {
        Some(hyper) => spec_fields::generation_params(hyper, Presence::Defaulted)?,
        None => Default::default(),
    };
    let mut scaling = spec_fields::scaling(Some(config))?;
    scaling.min_replicas = min_replicas;
    scaling.max_replicas = max_replicas;
    let device_type = spec_fields::device_type(config, catalog)?;
    let (backend, quantization) = spec_fields::optimization(Some(config))?;
    let chat_template = spec_fields::chat_template(config)?;
    let mut objects = vec![&root, config];
    objects.extend(hyper.as_ref());
    log_unknown_keys("lucidworks", &objects);
    Ok(CreateRequest {
        spec: DeploymentSpec {
            model_id,
            name,
            model_type: ModelType::OpenSource,
            reuse_cached_artifacts,
            generation,
            scaling,
            device_type,
            backend,
            quantization,
            chat_template,
        },
        region,
        config: config_value.clone(),
    })
}

/// `POST /customers/{customerId}/ai/deployments` → 200 with state DEPLOYING.
pub async fn create(
    bearer: Bearer<Manage>,
    _: AcceptingWork,
    State(state): State<SharedState>,
    Extension(log): Extension<RequestLog>,
    UrlPath(customer_id): UrlPath<String>,
    Body(body): Body,
) -> Result<Json<Value>, ApiError> {
    let principal = bearer.principal;
    customer_access(&principal, &customer_id)?;
    rules::check_stored_len("customerId", &customer_id, rules::CUSTOMER_ID_MAX_BYTES)?;
    let request = parse_create_request(&body, &state.catalog)?;
    let origin = LucidworksOrigin {
        customer_id: customer_id.clone(),
        region: request.region,
        config: request.config,
        created_by: principal.subject,
    };
    let (record, _job) = state
        .registry
        .create(request.spec, Some(origin))
        .map_err(|error| conflict_for(&state, &customer_id, error))?;
    log.deployment(&record.id);
    state.lifecycle.spawn_deploy(record.id.clone());
    Ok(Json(views::lucidworks_deployment(&record)))
}

/// Whether `customer` may see a deployment: its own, and those made through other surfaces.
fn visible_to(customer: &str, record: &Deployment) -> bool {
    record
        .lucidworks
        .as_ref()
        .is_none_or(|origin| origin.customer_id == customer)
}

/// The deployment `id` (id or modelId) names, if `customer` may see it; 404 otherwise,
/// whether or not it exists.
fn visible_deployment(state: &SharedState, customer: &str, id: &str) -> Result<Snapshot, ApiError> {
    state
        .registry
        .lookup_where(id, |record| visible_to(customer, record))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no deployment has id or modelId {}",
                rules::quoted_excerpt(id)
            ))
        })
}

/// A credential bound to customers may act only for them (docs/api.md § Customers).
fn customer_access(principal: &Principal, customer: &str) -> Result<(), ApiError> {
    if principal.acts_for(customer) {
        Ok(())
    } else {
        Err(AuthError::OtherCustomer.into())
    }
}

/// Whether `principal` may predict on a deployment: one of its customers', or one made
/// through another surface.
fn predictable_by(principal: &Principal, record: &Deployment) -> bool {
    record
        .lucidworks
        .as_ref()
        .is_none_or(|origin| principal.acts_for(&origin.customer_id))
}

/// A deploy conflict as `customer` may see it: with the conflicting deployment's id only
/// when that deployment is visible to the customer.
fn conflict_for(state: &SharedState, customer: &str, error: RegistryError) -> ApiError {
    let conflicting = match &error {
        RegistryError::DeployInProgress { deployment_id, .. }
        | RegistryError::AlreadyDeployed { deployment_id, .. }
        | RegistryError::UndeployInProgress { deployment_id, .. } => deployment_id,
        _ => return error.into(),
    };
    let visible = state
        .registry
        .lookup(conflicting)
        .is_some_and(|s| visible_to(customer, &s.record));
    if visible {
        return error.into();
    }
    let code = ApiError::from(error).code;
    ApiError::conflict(
        code,
        "this model is already deployed or being deployed on this agent for another \
         customer; one agent serves one deployment of a model at a time",
    )
}

/// `GET /customers/{customerId}/ai/deployments`.
pub async fn list(
    bearer: Bearer<Manage>,
    State(state): State<SharedState>,
    UrlPath(customer_id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    customer_access(&bearer.principal, &customer_id)?;
    let all: Vec<Value> = state
        .registry
        .list()
        .iter()
        .filter(|s| visible_to(&customer_id, &s.record))
        .map(|s| views::lucidworks_deployment(&s.record))
        .collect();
    Ok(Json(Value::Array(all)))
}

/// `GET /customers/{customerId}/ai/deployments/{id}` (id or modelId).
pub async fn get(
    bearer: Bearer<Manage>,
    State(state): State<SharedState>,
    UrlPath((customer_id, id)): UrlPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    customer_access(&bearer.principal, &customer_id)?;
    let snapshot = visible_deployment(&state, &customer_id, &id)?;
    Ok(Json(views::lucidworks_deployment(&snapshot.record)))
}

/// `DELETE /customers/{customerId}/ai/deployments/{id}` → state DELETING, then DELETED.
pub async fn delete(
    bearer: Bearer<Manage>,
    _: AcceptingWork,
    State(state): State<SharedState>,
    Extension(log): Extension<RequestLog>,
    UrlPath((customer_id, id)): UrlPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    customer_access(&bearer.principal, &customer_id)?;
    let visible = visible_deployment(&state, &customer_id, &id)?;
    let started = state.registry.request_undeploy(&visible.record.id)?;
    log.deployment(&started.record.id);
    state.lifecycle.spawn_undeploy(
        started.record.id.clone(),
        started.handle,
        started.deploy_running,
    );
    Ok(Json(views::lucidworks_deployment(&started.record)))
}

/// `POST /ai/prediction/{useCase}/{deploymentId}`: `passthrough` generation for each item
/// of `batch` (1–32), all submitted at once so the batcher runs them together.
pub async fn predict(
    bearer: Bearer<Predict>,
    State(state): State<SharedState>,
    Extension(log): Extension<RequestLog>,
    UrlPath((use_case, deployment_id)): UrlPath<(String, String)>,
    body: Result<Body, ApiError>,
) -> Result<Json<Value>, ApiError> {
    let principal = bearer.principal;
    // The use case is checked before the body is: an unknown one is 404 whatever was sent.
    if use_case != "passthrough" {
        return Err(ApiError::not_found(format!(
            "prediction use case {use_case:?} is not served by this agent; use \"passthrough\""
        )));
    }
    let Body(body) = body?;
    let value = parse_object(&body)?;
    let root = JsonObject::root(&value)?;
    let texts = batch_texts(&root)?;
    let overrides = match root.object("modelConfig")? {
        Some(model_config) => spec_fields::generation_overrides(&model_config)?,
        None => Default::default(),
    };
    let _ = root.value("useCaseConfig");
    log_unknown_keys("lucidworks-prediction", &[&root]);
    // The path names a deployment id (docs/api.md), of a deployment the credential may
    // use; any other is "not found", whether or not it exists.
    let usable = is_deployment_id_form(&deployment_id)
        && state
            .registry
            .lookup_where(&deployment_id, |record| predictable_by(&principal, record))
            .is_some();
    if !usable {
        return Err(ApiError::not_found(format!(
            "no deployment has id {}",
            rules::quoted_excerpt(&deployment_id)
        )));
    }
    let target: Target = generate::target(&state, &deployment_id, &log)?;
    let params = overrides.apply(&target.deployment.spec.generation, "modelConfig.topP")?;
    let mut generations = Vec::with_capacity(texts.len());
    for (i, text) in texts.into_iter().enumerate() {
        let request = generate::request(&state, text, &params, overrides.seed);
        let fields = generate::FieldNames {
            seed: "modelConfig.seed",
            prompt: format!("batch[{i}].text"),
            // Predictions never ask for logprobs; named for completeness.
            logprobs: "modelConfig.logprobs",
            prompt_logprobs: "modelConfig.promptLogprobs",
        };
        generations.push(generate::submit(&target, request, &fields).await?);
    }
    let results = futures::future::join_all(generations.into_iter().map(|g| g.complete())).await;
    let mut predictions = Vec::with_capacity(results.len());
    for result in results {
        let result = result?;
        log.tokens(result.prompt_tokens, result.tokens.len());
        predictions.push(json!({
            "response": result.text,
            "tokensUsed": {
                "promptTokens": result.prompt_tokens,
                "completionTokens": result.tokens.len(),
                "totalTokens": result.prompt_tokens + result.tokens.len(),
            },
        }));
    }
    Ok(Json(json!({ "predictions": predictions })))
}

/// `batch`: 1–32 objects with a string `text`.
fn batch_texts(root: &JsonObject<'_>) -> Result<Vec<String>, ApiError> {
    let batch = root.value("batch").ok_or_else(|| {
        ApiError::from(RuleViolation::missing(
            "batch",
            "1 to 32 items of {\"text\": ...}",
        ))
    })?;
    let items = batch
        .as_array()
        .ok_or_else(|| ApiError::wrong_type("batch", "an array", type_name(batch)))?;
    let count = i64::try_from(items.len()).unwrap_or(i64::MAX);
    rules::PREDICTION_BATCH.check("batch", count).map_err(|_| {
        ApiError::out_of_range(
            "batch",
            format!(
                "batch must hold {} to {} items, but {count} were given",
                rules::PREDICTION_BATCH.min,
                rules::PREDICTION_BATCH.max
            ),
        )
    })?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let path = format!("batch[{i}]");
            let object = item
                .as_object()
                .ok_or_else(|| ApiError::wrong_type(&path, "an object", type_name(item)))?;
            let text = object.get("text").ok_or_else(|| {
                ApiError::from(RuleViolation::missing(&format!("{path}.text"), "a string"))
            })?;
            as_str(&format!("{path}.text"), text).map(str::to_owned)
        })
        .collect()
}
