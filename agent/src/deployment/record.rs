//! The durable records: one per deployment, one per Kore dock-status job.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::phase::{Desired, Failure, Phase};
use super::spec::DeploymentSpec;

/// State-store kinds.
pub(crate) const DEPLOYMENTS: &str = "deployments";
pub(crate) const JOBS: &str = "jobs";
/// Every deployment id starts with this; no modelId may (docs/api.md § Common rules).
pub(crate) const DEPLOYMENT_ID_PREFIX: &str = "dep-";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// `dep-<uuid>`.
    pub id: String,
    pub spec: DeploymentSpec,
    pub desired: Desired,
    pub phase: Phase,
    /// The last failure; kept after a redeploy attempt for diagnosis until READY.
    pub failure: Option<Failure>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
    /// Set when created through the Lucidworks surface.
    pub lucidworks: Option<LucidworksOrigin>,
}

/// What the Lucidworks surface must echo back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LucidworksOrigin {
    pub(crate) customer_id: String,
    pub region: String,
    /// The `config` blob, verbatim.
    pub config: serde_json::Value,
    pub(crate) created_by: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobAction {
    Deploy,
    Undeploy,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    InProgress,
    Success,
    Failed,
}

/// A Kore dock-status job: one deploy or undeploy request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockJob {
    /// `ds-<uuid>`.
    pub id: String,
    pub(crate) model_id: String,
    pub(crate) deployment_id: String,
    pub action: JobAction,
    pub status: JobStatus,
    /// The deployment's phase when the job ended (while in progress, the live phase is shown).
    pub(crate) final_phase: Option<Phase>,
    pub failure: Option<Failure>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
}

/// A fresh deployment id, `dep-<uuid>`.
pub(crate) fn new_deployment_id() -> String {
    format!("{DEPLOYMENT_ID_PREFIX}{}", uuid::Uuid::new_v4())
}

/// Whether `key` has the deployment-id form, `dep-…` (docs/api.md § Common rules).
pub(crate) fn is_deployment_id_form(key: &str) -> bool {
    key.starts_with(DEPLOYMENT_ID_PREFIX)
}

/// A fresh id with a prefix: `ds-…`.
pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}
