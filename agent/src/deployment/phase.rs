//! The deployment lifecycle's phases (`docs/api.md` § Lifecycle) and how the Kore and
//! Lucidworks views project them.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Phase {
    Pending,
    CheckingDevice,
    Fetching,
    /// ctranslate2 only.
    Converting,
    Loading,
    Warming,
    Ready,
    Failed,
    Draining,
    Undeployed,
}

impl Phase {
    pub const ALL: [Phase; 10] = [
        Phase::Pending,
        Phase::CheckingDevice,
        Phase::Fetching,
        Phase::Converting,
        Phase::Loading,
        Phase::Warming,
        Phase::Ready,
        Phase::Failed,
        Phase::Draining,
        Phase::Undeployed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "PENDING",
            Phase::CheckingDevice => "CHECKING_DEVICE",
            Phase::Fetching => "FETCHING",
            Phase::Converting => "CONVERTING",
            Phase::Loading => "LOADING",
            Phase::Warming => "WARMING",
            Phase::Ready => "READY",
            Phase::Failed => "FAILED",
            Phase::Draining => "DRAINING",
            Phase::Undeployed => "UNDEPLOYED",
        }
    }

    /// On the way to READY.
    pub(crate) fn is_deploying(self) -> bool {
        matches!(
            self,
            Phase::Pending
                | Phase::CheckingDevice
                | Phase::Fetching
                | Phase::Converting
                | Phase::Loading
                | Phase::Warming
        )
    }

    /// Nothing more will happen without a new request.
    pub(crate) fn is_final(self) -> bool {
        matches!(self, Phase::Failed | Phase::Undeployed)
    }

    /// Rough percent of the way through a deploy (or, for DRAINING/UNDEPLOYED, an undeploy).
    pub fn progress(self) -> u8 {
        match self {
            Phase::Pending => 0,
            Phase::CheckingDevice => 10,
            Phase::Fetching => 25,
            Phase::Converting => 45,
            Phase::Loading => 60,
            Phase::Warming => 85,
            Phase::Ready => 100,
            Phase::Failed => 100,
            Phase::Draining => 50,
            Phase::Undeployed => 100,
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a deployment is FAILED.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    /// SNAKE_CASE: DEVICE_MISMATCH, NVML_UNAVAILABLE, SOURCE_OUTSIDE_MODEL_ROOTS, ...
    pub code: String,
    pub message: String,
    /// The phase the deploy was in when it failed.
    pub phase: Phase,
}

/// What the deployment's owner wants: serving it, or rid of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Desired {
    Serving,
    Removed,
}

/// Lucidworks `state`.
pub(crate) fn lucidworks_state(desired: Desired, phase: Phase) -> &'static str {
    match (desired, phase) {
        (Desired::Serving, Phase::Ready) => "DEPLOYED",
        (Desired::Serving, Phase::Failed) => "DEPLOY_FAILED",
        (Desired::Serving, _) => "DEPLOYING",
        (Desired::Removed, Phase::Undeployed) => "DELETED",
        (Desired::Removed, Phase::Failed) => "DELETE_FAILED",
        (Desired::Removed, _) => "DELETING",
    }
}
