//! The HTTP surfaces. Each module translates one wire format into the internal deployment
//! and generation types; none of them holds state of its own.

pub(crate) mod access;
pub(crate) mod body;
pub(crate) mod body_deadline;
pub(crate) mod extract;
pub mod generate;
pub(crate) mod health;
pub mod kore;
pub mod lucidworks;
pub mod native;
pub mod openai;
pub(crate) mod request_log;
mod router;
pub(crate) mod spec_fields;
pub(crate) mod store;
pub(crate) mod views;

use axum::http::{StatusCode, Uri};

use crate::deployment::registry::{NotServing, RegistryError};
use crate::error::ApiError;

use crate::app_state::AppState;
pub(crate) use router::router;

/// 503 once the agent is draining for shutdown, and before persisted deployments are
/// restored (a deploy accepted then could race its own restored record). `server::run`
/// restores before it reads the first request, so over HTTP only the draining case occurs.
pub(crate) fn accepting_work(state: &AppState) -> Result<(), ApiError> {
    if state.status.is_draining() {
        Err(ApiError::draining())
    } else if !state.status.is_restored() {
        Err(ApiError::not_ready(
            "the agent is restoring its persisted deployments",
        ))
    } else {
        Ok(())
    }
}

pub(crate) async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route for {}", uri.path()))
}

pub(crate) async fn method_not_allowed(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!("{} does not accept this method", uri.path()),
    )
}

impl From<RegistryError> for ApiError {
    fn from(error: RegistryError) -> Self {
        let message = error.to_string();
        match error {
            RegistryError::DeployInProgress { .. } => {
                ApiError::conflict("DEPLOY_IN_PROGRESS", message)
            }
            RegistryError::AlreadyDeployed { .. } => {
                ApiError::conflict("ALREADY_DEPLOYED", message)
            }
            RegistryError::UndeployInProgress { .. } => {
                ApiError::conflict("UNDEPLOY_IN_PROGRESS", message)
            }
            RegistryError::AlreadyUndeployed { .. } => ApiError::conflict("NOT_DEPLOYED", message),
            RegistryError::NotFound(_) => ApiError::not_found(message),
            RegistryError::Store(_) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "STATE_WRITE_FAILED",
                message,
            ),
        }
    }
}

impl From<NotServing> for ApiError {
    fn from(error: NotServing) -> Self {
        use crate::deployment::phase::Phase;
        match error {
            NotServing::NotFound(key) => {
                ApiError::not_found(format!("no deployment has id or modelId {key:?}"))
            }
            NotServing::Phase {
                deployment_id,
                phase,
            } if phase.is_deploying() || phase == Phase::Ready => ApiError::not_ready(format!(
                "deployment {deployment_id} is {phase}, not READY yet"
            )),
            NotServing::Phase {
                deployment_id,
                phase: Phase::Draining,
            } => ApiError::draining_because(format!(
                "deployment {deployment_id} is DRAINING and takes no new requests"
            )),
            NotServing::Phase {
                deployment_id,
                phase,
            } => ApiError::conflict(
                "NOT_SERVING",
                format!("deployment {deployment_id} is {phase}; deploy it again to serve it"),
            ),
        }
    }
}
