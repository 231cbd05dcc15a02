//! How each surface shows a deployment: projections of the one deployment model.

use serde_json::{json, Value};

use crate::deployment::phase::{lucidworks_state, Failure, Phase};
use crate::deployment::record::{Deployment, DockJob, JobAction, JobStatus};
use crate::deployment::registry::Snapshot;
use crate::deployment::spec::{BackendKind, DeploymentSpec, Quantization};

fn failure_json(failure: Option<&Failure>) -> Value {
    match failure {
        Some(f) => json!({"code": f.code, "message": f.message, "phase": f.phase}),
        None => Value::Null,
    }
}

/// `download: {bytesDone, bytesTotal, filesDone, filesTotal, bytesPerSecond}` while the
/// deployment is FETCHING from the Hub, else null (docs/api.md § Deployment status).
fn download_json(phase: Option<Phase>, model_id: &str) -> Value {
    match phase {
        Some(Phase::Fetching) => crate::store::progress::current(model_id)
            .map_or(Value::Null, |progress| json!(progress)),
        _ => Value::Null,
    }
}

fn action_str(action: JobAction) -> &'static str {
    match action {
        JobAction::Deploy => "DEPLOY",
        JobAction::Undeploy => "UNDEPLOY",
    }
}

fn status_str(status: JobStatus) -> &'static str {
    match status {
        JobStatus::InProgress => "IN_PROGRESS",
        JobStatus::Success => "SUCCESS",
        JobStatus::Failed => "FAILED",
    }
}

/// The `jobType` of every dock-status job: the agent runs model jobs only.
const JOB_TYPE: &str = "MODELS";

/// The 202 answer to a Kore deploy or undeploy.
pub(crate) fn kore_accepted(job: &DockJob) -> Value {
    json!({
        "dockStatusId": job.id,
        "dock-statusId": job.id,
        "modelId": job.model_id,
        "jobType": JOB_TYPE,
        "action": action_str(job.action),
        "status": status_str(job.status),
        "deploymentId": job.deployment_id,
    })
}

/// `GET /api/public/dock-status/{id}`: the job, with the deployment's live phase while the
/// job runs and the phase it ended in afterwards.
pub fn dock_status(job: &DockJob, deployment: Option<&Deployment>) -> Value {
    let phase = job.final_phase.or_else(|| deployment.map(|d| d.phase));
    let error = match job.status {
        JobStatus::Failed => failure_json(job.failure.as_ref()),
        _ => Value::Null,
    };
    json!({
        "_id": job.id,
        "dockStatusId": job.id,
        "dock-statusId": job.id,
        "modelId": job.model_id,
        "deploymentId": job.deployment_id,
        "jobType": JOB_TYPE,
        "action": action_str(job.action),
        "status": status_str(job.status),
        "phase": phase,
        "progress": phase.map_or(0, |p| if job.status == JobStatus::InProgress { p.progress().min(99) } else { 100 }),
        "download": download_json(phase, &job.model_id),
        "error": error,
        "createdAt": job.created_at,
        "updatedAt": job.updated_at,
    })
}

fn optimization_type(spec: &DeploymentSpec) -> &'static str {
    match spec.backend {
        BackendKind::Candle => "",
        BackendKind::Ctranslate2 => "ctranslate2",
    }
}

fn quantization_type(spec: &DeploymentSpec) -> &'static str {
    match spec.quantization {
        Quantization::Default => "",
        Quantization::NoQuantization => "no_quantization",
        Quantization::Int8Float16 => "int8_float16",
    }
}

fn hyper_parameters(spec: &DeploymentSpec) -> Value {
    let g = &spec.generation;
    json!({
        "temperature": g.temperature,
        "topP": g.top_p,
        "topK": g.top_k,
        "maxTokens": g.max_tokens,
        "stopSequence": g.stop_sequences,
    })
}

/// A Lucidworks deployment object. Deployments made through another surface get a config
/// synthesised from their spec.
pub(crate) fn lucidworks_deployment(record: &Deployment) -> Value {
    let spec = &record.spec;
    let (region, config, created_by) = match &record.lucidworks {
        Some(origin) => (
            origin.region.clone(),
            origin.config.clone(),
            origin.created_by.clone(),
        ),
        None => (
            String::new(),
            json!({
                "deviceType": spec.device_type,
                "optimizationType": optimization_type(spec),
                "quantizationType": quantization_type(spec),
                "maxBatchSize": spec.scaling.max_batch_size,
                "hyperParameters": hyper_parameters(spec),
            }),
            String::new(),
        ),
    };
    json!({
        "id": record.id,
        "modelId": spec.model_id,
        "region": region,
        "config": config,
        "minReplicas": spec.scaling.min_replicas,
        "maxReplicas": spec.scaling.max_replicas,
        "state": lucidworks_state(record.desired, record.phase),
        "deployedAt": record.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "createdBy": created_by,
        "phase": record.phase,
        "download": download_json(Some(record.phase), &spec.model_id),
        "error": failure_json(record.failure.as_ref()),
    })
}

/// The native full status.
pub(crate) fn native_deployment(snapshot: &Snapshot) -> Value {
    let record = &snapshot.record;
    let spec = &record.spec;
    let serving = snapshot.serving.as_ref();
    let gpu_indices: Vec<u32> = serving
        .map(|s| {
            let mut gpus: Vec<u32> = s.replicas.iter().filter_map(|r| r.gpu).collect();
            gpus.sort_unstable();
            gpus.dedup();
            gpus
        })
        .unwrap_or_default();
    json!({
        "id": record.id,
        "modelId": spec.model_id,
        "name": spec.name,
        "modelType": spec.model_type,
        "phase": record.phase,
        "desired": record.desired,
        "progress": record.phase.progress(),
        "download": download_json(Some(record.phase), &spec.model_id),
        "lastError": failure_json(record.failure.as_ref()),
        "deviceType": spec.device_type,
        "backend": serving.map_or_else(
            || json!({ "kind": spec.backend.as_str() }),
            |s| json!({
                "kind": s.backend,
                "requestedComputeType": s.requested_compute_type,
                "computeType": s.compute_type,
                "cacheHit": s.cache_hit,
                "cacheRebuiltBecause": s.cache_rebuilt_because,
            }),
        ),
        "optimizationType": optimization_type(spec),
        "quantizationType": quantization_type(spec),
        "computeType": serving.map(|s| s.compute_type.clone()),
        "gpuIndices": gpu_indices,
        "replicas": {
            "min": spec.scaling.min_replicas,
            "max": spec.scaling.max_replicas,
            "running": serving.map_or(0, |s| s.replicas.len()),
            "devices": serving.map(|s| s.replicas.clone()).unwrap_or_default(),
        },
        "maxBatchSize": spec.scaling.max_batch_size,
        "scaleUpDelay": spec.scaling.scale_up_delay_ms,
        "scaleDownDelay": spec.scaling.scale_down_delay_ms,
        "queueDepth": serving.map_or(0, |s| s.queue_depth),
        "runningSequences": serving.map_or(0, |s| s.running),
        "events": serving.map(|s| s.events.clone()).unwrap_or_default(),
        "hyperParameters": hyper_parameters(spec),
        "isDeployedPreviously": spec.reuse_cached_artifacts,
        "lucidworks": record.lucidworks.as_ref().map(|l| json!({"customerId": l.customer_id, "region": l.region})),
        "createdAt": record.created_at,
        "updatedAt": record.updated_at,
    })
}
