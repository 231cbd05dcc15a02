//! Drives a deployment through its phases (`docs/api.md` § Lifecycle):
//! PENDING → CHECKING_DEVICE → FETCHING → \[CONVERTING\] → LOADING → WARMING → READY, any step
//! → FAILED; and READY → DRAINING → UNDEPLOYED. Each step is recorded in the registry
//! (durably) before the next begins; an undeploy accepted meanwhile stops the deploy at
//! its next step.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use runtime::checkpoint::{Checkpoint, LoadError};

use super::footprint::{self, ReplicaHost};
use super::phase::{Failure, Phase};
use super::registry::{Cancelled, Registry};
use super::spec::{BackendKind, DeploymentSpec};
use crate::gpu::{
    AdmissionPolicy, AdmissionRequest, DeviceCatalog, GpuExecution, GpuInventory, Placement,
    NVML_UNAVAILABLE,
};
use crate::host_paths::HostPaths;
use crate::instance::HostInstance;
use crate::model_source::{ModelSources, SourceError};
use crate::runtime_backend::RuntimeBackend;
use crate::serving::{LoadFailure, LoadProgress, LoadStep, ResolvedModel, ServingHandle};

/// Everything a deploy needs from the host.
pub struct Lifecycle {
    pub registry: Arc<Registry>,
    pub backend: Arc<RuntimeBackend>,
    pub inventory: Arc<GpuInventory>,
    pub catalog: Arc<DeviceCatalog>,
    pub policy: AdmissionPolicy,
    pub(crate) sources: ModelSources,
    /// Replaced in failure messages callers see (the log keeps them).
    pub(crate) host_paths: HostPaths,
    /// How long an undeploy waits for in-flight requests.
    pub(crate) drain_timeout: Duration,
    /// This host's instance type, when known: a GPU class must name it.
    pub instance: Arc<HostInstance>,
}

/// Why a deploy stopped before READY.
enum Stop {
    Failed(Failure),
    Cancelled,
}

impl From<Cancelled> for Stop {
    fn from(_: Cancelled) -> Self {
        Stop::Cancelled
    }
}

/// A model source that could not be used: its detail (paths included) is logged, the
/// failure keeps the caller's message.
fn source_failed(error: &SourceError) -> Stop {
    tracing::warn!(%error, "model source unusable");
    failed(error.code(), error.caller_message(), Phase::Fetching)
}

fn failed(code: &str, message: impl Into<String>, phase: Phase) -> Stop {
    Stop::Failed(Failure {
        code: code.to_owned(),
        message: message.into(),
        phase,
    })
}

impl Lifecycle {
    /// Runs the deploy of deployment `id` in the background.
    pub(crate) fn spawn_deploy(self: &Arc<Self>, id: String) {
        let this = Arc::clone(self);
        tokio::spawn(async move { this.deploy(&id, false).await });
    }

    /// Deploys again, in the background, a deployment restored after a restart. Its own
    /// cached artifacts (a converted CTranslate2 model, checked against its manifest) are
    /// reused even if the deploy did not ask to (`isDeployedPreviously: false` says the
    /// caller had no artifacts to offer, not that the agent's own are suspect): a restart
    /// should not redo a conversion that is still valid.
    pub(crate) fn spawn_resume(self: &Arc<Self>, id: String) {
        let this = Arc::clone(self);
        tokio::spawn(async move { this.deploy(&id, true).await });
    }

    async fn deploy(&self, id: &str, resumed: bool) {
        let Some(mut spec) = self.registry.spec(id) else {
            return;
        };
        // Only for this load; the recorded spec stays as it was given.
        spec.reuse_cached_artifacts |= resumed;
        match self.run_phases(id, &spec).await {
            Ok(handle) => {
                if let Err(handle) = self.registry.ready(id, handle) {
                    // Undeployed while loading: release what was loaded.
                    self.drain(handle).await;
                    self.registry.finish_undeploy(id);
                }
            }
            Err(Stop::Failed(mut failure)) => {
                tracing::warn!(
                    deployment = %id,
                    code = %failure.code,
                    phase = %failure.phase,
                    detail = %failure.message,
                    "deploy failed"
                );
                failure.message = self.host_paths.redact(&failure.message);
                if self.registry.fail(id, failure).is_err() {
                    self.registry.finish_undeploy(id);
                }
            }
            Err(Stop::Cancelled) => self.registry.finish_undeploy(id),
        }
    }

    async fn run_phases(
        &self,
        id: &str,
        spec: &DeploymentSpec,
    ) -> Result<Arc<ServingHandle>, Stop> {
        self.registry.advance(id, Phase::CheckingDevice)?;
        // Memory fit needs the checkpoint; when it is already on disk (a local source or a
        // cached download) the estimate is exact now, otherwise it is checked after FETCHING.
        let on_disk = self
            .sources
            .resolve(&spec.model_id)
            .ok()
            .and_then(|source| self.sources.local_dir(&source));
        // The checkpoint is opened once per deploy: the estimate, the tokenizer and every
        // replica read this one.
        let opened = on_disk.as_deref().map(open_checkpoint);
        let mut placement = self
            .admit(spec, opened.as_ref(), Phase::CheckingDevice)
            .await?;

        self.registry.advance(id, Phase::Fetching)?;
        let model = self.fetch(id, spec).await?;
        let checkpoint = match opened {
            Some(opened) if on_disk.as_deref() == Some(model.dir.as_path()) => opened,
            _ => open_checkpoint(&model.dir),
        };
        if on_disk.is_none() {
            placement = self.admit(spec, Some(&checkpoint), Phase::Fetching).await?;
        }

        let first_load_phase = match spec.backend {
            BackendKind::Ctranslate2 => Phase::Converting,
            BackendKind::Candle => Phase::Loading,
        };
        self.registry.advance(id, first_load_phase)?;
        let checkpoint = checkpoint.map_err(|e| {
            failed(
                LoadFailure::MODEL_LOAD_FAILED,
                e.to_string(),
                first_load_phase,
            )
        })?;
        let backend = Arc::clone(&self.backend);
        let progress = PhaseReporter {
            registry: Arc::clone(&self.registry),
            id: id.to_owned(),
        };
        let spec_for_load = spec.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            backend.load(checkpoint, &spec_for_load, &placement, &progress)
        })
        .await
        .map_err(|e| {
            failed(
                LoadFailure::MODEL_LOAD_FAILED,
                format!("the load task panicked: {e}"),
                first_load_phase,
            )
        })?;
        let current = self
            .registry
            .lookup(id)
            .map(|s| s.record.phase)
            .unwrap_or(first_load_phase);
        loaded.map_err(|f| failed(&f.code, f.message, current))
    }

    /// Looks the class up, estimates the memory a replica of the opened checkpoint needs
    /// there (nothing known without one), refreshes the inventory and admits the deploy.
    async fn admit(
        &self,
        spec: &DeploymentSpec,
        checkpoint: Option<&Result<Arc<Checkpoint>, LoadError>>,
        phase: Phase,
    ) -> Result<Placement, Stop> {
        let class = self
            .catalog
            .lookup(&spec.device_type)
            .map_err(|e| failed("UNKNOWN_DEVICE_TYPE", e.to_string(), phase))?
            .clone();
        self.instance
            .check(&class)
            .map_err(|e| failed(e.code(), e.to_string(), phase))?;
        // Replicas of a GPU class run on its GPUs unless `[gpu] execution = "cpu"`.
        let host = match class.gpus() {
            Some(gpus) if self.policy.execution == GpuExecution::Cuda => {
                ReplicaHost::Gpu(gpus.compute_capability)
            }
            _ => ReplicaHost::Cpu,
        };
        let checkpoint = checkpoint.and_then(|opened| opened.as_deref().ok());
        let memory = footprint::estimate(checkpoint, spec, host);
        let inventory = Arc::clone(&self.inventory);
        let state = tokio::task::spawn_blocking(move || inventory.refresh())
            .await
            .map_err(|e| {
                failed(
                    NVML_UNAVAILABLE,
                    format!("the NVML scan panicked: {e}"),
                    phase,
                )
            })?;
        let request = AdmissionRequest {
            class: &class,
            memory,
            max_batch_size: spec.scaling.max_batch_size,
            min_replicas: spec.scaling.min_replicas,
            max_replicas: spec.scaling.max_replicas,
        };
        self.policy
            .admit(&request, &state)
            .map_err(|e| failed(e.code(), e.to_string(), phase))
    }

    /// Resolves and fetches the model. A download can hang on the network (hf-hub sets no
    /// timeouts), so an undeploy accepted meanwhile abandons it rather than waiting.
    async fn fetch(&self, id: &str, spec: &DeploymentSpec) -> Result<ResolvedModel, Stop> {
        let source = self
            .sources
            .resolve(&spec.model_id)
            .map_err(|e| source_failed(&e))?;
        let sources = self.sources.clone();
        let model_id = spec.model_id.clone();
        let download = tokio::task::spawn_blocking(move || sources.fetch(&model_id, &source));
        tokio::pin!(download);
        let mut cancel = self.registry.cancellation(id).ok_or(Stop::Cancelled)?;
        // The status callback hears of the download's progress at most once a second.
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut last_reported = None;
        loop {
            tokio::select! {
                fetched = &mut download => return fetched
                    .map_err(|e| failed("MODEL_FETCH_FAILED", format!("the fetch task panicked: {e}"), Phase::Fetching))?
                    .map_err(|e| source_failed(&e)),
                _ = cancel.wait_for(|cancelled| *cancelled) => return Err(Stop::Cancelled),
                _ = ticker.tick() => {
                    let now = crate::store::progress::current(&spec.model_id);
                    if let Some(view) = now.filter(|v| last_reported.as_ref() != Some(v)) {
                        self.registry.announce_download(id, &view);
                        last_reported = Some(view);
                    }
                }
            }
        }
    }

    /// Finishes an accepted undeploy: drains the handle if there was one, unless the deploy
    /// task is still running (it finishes the undeploy itself when it next checks in).
    pub(crate) fn spawn_undeploy(
        self: &Arc<Self>,
        id: String,
        handle: Option<Arc<ServingHandle>>,
        deploy_running: bool,
    ) {
        if deploy_running && handle.is_none() {
            return;
        }
        let this = Arc::clone(self);
        tokio::spawn(async move {
            if let Some(handle) = handle {
                this.drain(handle).await;
            }
            this.registry.finish_undeploy(&id);
        });
    }

    async fn drain(&self, handle: Arc<ServingHandle>) {
        let timeout = self.drain_timeout;
        let drained = tokio::task::spawn_blocking(move || handle.drain(timeout)).await;
        if !matches!(drained, Ok(true)) {
            tracing::warn!(
                ?timeout,
                "in-flight requests did not finish within the drain timeout"
            );
        }
    }
}

/// The checkpoint in `dir`, opened for the whole deploy; a failure is reported when the load
/// starts (MODEL_LOAD_FAILED), as if the load had opened it.
fn open_checkpoint(dir: &Path) -> Result<Arc<Checkpoint>, LoadError> {
    Checkpoint::open(dir).map(Arc::new)
}

/// Records the backend's load steps as phases.
struct PhaseReporter {
    registry: Arc<Registry>,
    id: String,
}

impl LoadProgress for PhaseReporter {
    fn step(&self, step: LoadStep) {
        let phase = match step {
            LoadStep::Converting => Phase::Converting,
            LoadStep::Loading => Phase::Loading,
            LoadStep::Warming => Phase::Warming,
        };
        // Cancelled: the deploy notices when load returns.
        let _ = self.registry.advance(&self.id, phase);
    }
}
