//! All deployments and dock-status jobs: in memory for the API, and in the state store,
//! written before any change is acknowledged or acted on.
//!
//! One lock guards the maps; store writes happen under it so that the order of records
//! on disk is the order of decisions (a few small fsynced files per change).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::Utc;
use thiserror::Error;
use tokio::sync::watch;

use super::phase::{Desired, Failure, Phase};
use super::record::{
    is_deployment_id_form, new_deployment_id, new_id, Deployment, DockJob, JobAction, JobStatus,
    LucidworksOrigin, DEPLOYMENTS, JOBS,
};
use super::spec::DeploymentSpec;
use crate::callback::{CallbackStats, StatusCallback};
use crate::metrics;
use crate::serving::{ServingHandle, ServingStatus};
use crate::state::{QuarantinedFile, StateError, StateStore};

#[derive(Debug, Error)]
pub enum RegistryError {
    #[error(
        "model {model_id} is already being deployed (deployment {deployment_id}, phase {phase})"
    )]
    DeployInProgress {
        model_id: String,
        deployment_id: String,
        phase: Phase,
    },
    #[error(
        "model {model_id} is already deployed (deployment {deployment_id}); undeploy it first"
    )]
    AlreadyDeployed {
        model_id: String,
        deployment_id: String,
    },
    #[error("model {model_id} is being undeployed (deployment {deployment_id}); deploy it again once it is UNDEPLOYED")]
    UndeployInProgress {
        model_id: String,
        deployment_id: String,
    },
    #[error("no deployment has id or modelId {}", crate::validation::quoted_excerpt(.0))]
    NotFound(String),
    #[error("deployment {deployment_id} is already {phase}")]
    AlreadyUndeployed { deployment_id: String, phase: Phase },
    #[error("the agent could not persist the change: {0}")]
    Store(#[from] StateError),
}

/// A deployment as the API shows it.
#[derive(Clone)]
pub struct Snapshot {
    pub record: Deployment,
    pub serving: Option<ServingStatus>,
}

/// What an accepted undeploy leaves to the lifecycle.
pub(crate) struct UndeployStart {
    pub record: Deployment,
    pub job: DockJob,
    /// The serving handle to drain, when the deployment was READY.
    pub handle: Option<Arc<ServingHandle>>,
    /// A deploy task is still running; it finishes the undeploy when it next checks in.
    pub(crate) deploy_running: bool,
}

/// Why a deployment cannot take generate requests.
#[derive(Debug, Clone)]
pub enum NotServing {
    NotFound(String),
    Phase { deployment_id: String, phase: Phase },
}

/// The lifecycle's step was overtaken by an undeploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

struct Entry {
    record: Deployment,
    handle: Option<Arc<ServingHandle>>,
    deploy_running: bool,
    /// Turns true when an undeploy is accepted, so a deploy waiting on the network stops.
    cancel: watch::Sender<bool>,
}

impl Entry {
    fn new(record: Deployment, deploy_running: bool) -> Self {
        Entry {
            record,
            handle: None,
            deploy_running,
            cancel: watch::channel(false).0,
        }
    }
}

#[derive(Default)]
struct Entries {
    deployments: BTreeMap<String, Entry>,
    jobs: BTreeMap<String, DockJob>,
}

impl Entries {
    /// The deployment `key` names where a route takes "id or modelId": a key in the
    /// deployment-id form (`dep-…`, which no modelId may take) is an id, anything else a
    /// modelId. Never both, so a modelId cannot reach another model's deployment.
    fn find(&self, key: &str) -> Option<&Entry> {
        self.find_where(key, |_| true)
    }

    /// [`find`](Self::find) among the deployments `keep` accepts.
    fn find_where(&self, key: &str, keep: impl Fn(&Deployment) -> bool) -> Option<&Entry> {
        if is_deployment_id_form(key) {
            self.deployments.get(key).filter(|e| keep(&e.record))
        } else {
            self.find_model_where(key, keep)
        }
    }

    /// The newest deployment of `model_id`, preferring one not UNDEPLOYED.
    fn find_model(&self, model_id: &str) -> Option<&Entry> {
        self.find_model_where(model_id, |_| true)
    }

    fn find_model_where(
        &self,
        model_id: &str,
        keep: impl Fn(&Deployment) -> bool,
    ) -> Option<&Entry> {
        let of_model = self
            .deployments
            .values()
            .filter(|e| e.record.spec.model_id == model_id && keep(&e.record));
        let newest_live = of_model
            .clone()
            .filter(|e| e.record.phase != Phase::Undeployed)
            .max_by_key(|e| e.record.created_at);
        newest_live.or_else(|| of_model.max_by_key(|e| e.record.created_at))
    }

    fn find_id(&self, key: &str) -> Option<String> {
        self.find(key).map(|e| e.record.id.clone())
    }
}

pub struct Registry {
    entries: Mutex<Entries>,
    store: StateStore,
    /// Taken at shutdown so queued events get a grace period to go out.
    callback: Mutex<Option<StatusCallback>>,
}

/// What [`Registry::restore`] found.
#[derive(Debug, Default)]
pub struct Restored {
    /// Deployments that were READY or in progress: redeploy these.
    pub redeploy: Vec<String>,
    /// Undeploys interrupted by the restart, now completed (nothing was loaded any more).
    pub(crate) completed_undeploys: Vec<String>,
    /// Records that were JSON but not a deployment or job (e.g. from an incompatible
    /// version), set aside rather than failing the whole restore.
    pub quarantined: Vec<QuarantinedFile>,
}

impl Registry {
    pub fn new(store: StateStore, callback: StatusCallback) -> Self {
        Registry {
            entries: Mutex::new(Entries::default()),
            store,
            callback: Mutex::new(Some(callback)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        // A panic while holding the lock leaves consistent maps (every mutation is a
        // single insert), so a poisoned lock is still usable.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Loads the persisted records. Deployments that were READY or on their way restart
    /// from PENDING; interrupted undeploys complete.
    pub fn restore(&self) -> Result<Restored, StateError> {
        let (deployments, mut quarantined) = self.store.restore::<Deployment>(DEPLOYMENTS)?;
        let (jobs, odd_jobs) = self.store.restore::<DockJob>(JOBS)?;
        quarantined.extend(odd_jobs);
        let mut entries = self.lock();
        let mut restored = Restored {
            quarantined,
            ..Restored::default()
        };
        for job in jobs {
            entries.jobs.insert(job.id.clone(), job);
        }
        for mut record in deployments {
            let id = record.id.clone();
            match (record.desired, record.phase) {
                (Desired::Serving, phase) if phase.is_deploying() || phase == Phase::Ready => {
                    record.phase = Phase::Pending;
                    record.updated_at = Utc::now();
                    self.store.put(DEPLOYMENTS, &id, &record)?;
                    restored.redeploy.push(id.clone());
                }
                (Desired::Removed, phase) if !phase.is_final() => {
                    record.phase = Phase::Undeployed;
                    record.updated_at = Utc::now();
                    self.store.put(DEPLOYMENTS, &id, &record)?;
                    restored.completed_undeploys.push(id.clone());
                }
                _ => {}
            }
            metrics::record_phase(&record.spec.model_id, record.phase);
            let deploy_running = restored.redeploy.contains(&id);
            entries
                .deployments
                .insert(id, Entry::new(record, deploy_running));
        }
        for id in &restored.completed_undeploys {
            self.settle_jobs(&mut entries, id);
        }
        Ok(restored)
    }

    /// Accepts a deploy: records the deployment (PENDING) and its job, durably.
    pub fn create(
        &self,
        spec: DeploymentSpec,
        lucidworks: Option<LucidworksOrigin>,
    ) -> Result<(Deployment, DockJob), RegistryError> {
        let mut entries = self.lock();
        let mut superseded = Vec::new();
        for entry in entries.deployments.values() {
            let r = &entry.record;
            if r.spec.model_id != spec.model_id {
                continue;
            }
            match (r.desired, r.phase) {
                (Desired::Serving, Phase::Ready) => {
                    return Err(RegistryError::AlreadyDeployed {
                        model_id: spec.model_id,
                        deployment_id: r.id.clone(),
                    })
                }
                (Desired::Serving, phase) if phase.is_deploying() => {
                    return Err(RegistryError::DeployInProgress {
                        model_id: spec.model_id,
                        deployment_id: r.id.clone(),
                        phase,
                    })
                }
                (Desired::Removed, Phase::Draining) => {
                    return Err(RegistryError::UndeployInProgress {
                        model_id: spec.model_id,
                        deployment_id: r.id.clone(),
                    })
                }
                (Desired::Serving, Phase::Failed) => superseded.push(r.id.clone()),
                _ => {}
            }
        }
        let now = Utc::now();
        let record = Deployment {
            id: new_deployment_id(),
            spec,
            desired: Desired::Serving,
            phase: Phase::Pending,
            failure: None,
            created_at: now,
            updated_at: now,
            lucidworks,
        };
        let job = DockJob {
            id: new_id("ds"),
            model_id: record.spec.model_id.clone(),
            deployment_id: record.id.clone(),
            action: JobAction::Deploy,
            status: JobStatus::InProgress,
            final_phase: None,
            failure: None,
            created_at: now,
            updated_at: now,
        };
        // A failed deployment of the same model is replaced: it becomes UNDEPLOYED.
        for id in superseded {
            if let Some(entry) = entries.deployments.get_mut(&id) {
                let mut updated = entry.record.clone();
                updated.desired = Desired::Removed;
                updated.phase = Phase::Undeployed;
                updated.updated_at = now;
                self.store.put(DEPLOYMENTS, &id, &updated)?;
                entry.record = updated;
            }
        }
        self.store.put(DEPLOYMENTS, &record.id, &record)?;
        self.store.put(JOBS, &job.id, &job)?;
        metrics::record_phase(&record.spec.model_id, record.phase);
        self.announce(&record, None);
        entries.jobs.insert(job.id.clone(), job.clone());
        entries
            .deployments
            .insert(record.id.clone(), Entry::new(record.clone(), true));
        Ok((record, job))
    }

    /// Accepts an undeploy of the deployment `key` (id or modelId, by its form) names:
    /// DRAINING, durably.
    pub(crate) fn request_undeploy(&self, key: &str) -> Result<UndeployStart, RegistryError> {
        self.undeploy_found(key, |entries| entries.find_id(key))
    }

    /// Accepts an undeploy of the newest deployment of `model_id` (routes whose path
    /// names a modelId, never a deployment id).
    pub(crate) fn request_undeploy_of_model(
        &self,
        model_id: &str,
    ) -> Result<UndeployStart, RegistryError> {
        self.undeploy_found(model_id, |entries| {
            entries.find_model(model_id).map(|e| e.record.id.clone())
        })
    }

    fn undeploy_found(
        &self,
        key: &str,
        find: impl FnOnce(&Entries) -> Option<String>,
    ) -> Result<UndeployStart, RegistryError> {
        let mut entries = self.lock();
        let id = find(&entries).ok_or_else(|| RegistryError::NotFound(key.to_owned()))?;
        let entry = entries
            .deployments
            .get(&id)
            .ok_or_else(|| RegistryError::NotFound(key.to_owned()))?;
        if entry.record.desired == Desired::Removed {
            return Err(RegistryError::AlreadyUndeployed {
                deployment_id: id,
                phase: entry.record.phase,
            });
        }
        let now = Utc::now();
        let mut record = entry.record.clone();
        let previous = record.phase;
        record.desired = Desired::Removed;
        record.phase = Phase::Draining;
        record.updated_at = now;
        let job = DockJob {
            id: new_id("ds"),
            model_id: record.spec.model_id.clone(),
            deployment_id: id.clone(),
            action: JobAction::Undeploy,
            status: JobStatus::InProgress,
            final_phase: None,
            failure: None,
            created_at: now,
            updated_at: now,
        };
        self.store.put(DEPLOYMENTS, &id, &record)?;
        self.store.put(JOBS, &job.id, &job)?;
        metrics::record_phase(&record.spec.model_id, record.phase);
        self.announce(&record, Some(previous));
        entries.jobs.insert(job.id.clone(), job.clone());
        let entry = entries
            .deployments
            .get_mut(&id)
            .ok_or_else(|| RegistryError::NotFound(key.to_owned()))?;
        entry.record = record.clone();
        entry.cancel.send_replace(true);
        Ok(UndeployStart {
            record,
            job,
            handle: entry.handle.take(),
            deploy_running: entry.deploy_running,
        })
    }

    /// Moves a deploy forward to `phase`; a step to the current or an earlier phase is
    /// ignored. `Cancelled` once an undeploy has been accepted.
    pub(crate) fn advance(&self, id: &str, phase: Phase) -> Result<(), Cancelled> {
        let mut entries = self.lock();
        let entry = entries.deployments.get_mut(id).ok_or(Cancelled)?;
        if entry.record.desired == Desired::Removed {
            return Err(Cancelled);
        }
        let order = |p: Phase| Phase::ALL.iter().position(|q| *q == p);
        if order(phase) <= order(entry.record.phase) {
            return Ok(());
        }
        let previous = entry.record.phase;
        entry.record.phase = phase;
        entry.record.updated_at = Utc::now();
        self.persist(&entry.record);
        metrics::record_phase(&entry.record.spec.model_id, phase);
        self.announce(&entry.record, Some(previous));
        Ok(())
    }

    /// The deploy failed. Ignored (Cancelled) when an undeploy overtook it.
    pub fn fail(&self, id: &str, failure: Failure) -> Result<(), Cancelled> {
        let mut entries = self.lock();
        let entry = entries.deployments.get_mut(id).ok_or(Cancelled)?;
        entry.deploy_running = false;
        if entry.record.desired == Desired::Removed {
            return Err(Cancelled);
        }
        tracing::warn!(deployment = id, code = %failure.code, phase = %failure.phase, "{}", failure.message);
        let previous = entry.record.phase;
        entry.record.phase = Phase::Failed;
        entry.record.failure = Some(failure);
        entry.record.updated_at = Utc::now();
        self.persist(&entry.record);
        metrics::record_phase(&entry.record.spec.model_id, Phase::Failed);
        self.announce(&entry.record, Some(previous));
        self.settle_jobs(&mut entries, id);
        Ok(())
    }

    /// The deploy finished: READY with `handle`. When an undeploy overtook it, the handle
    /// comes back to be drained.
    pub fn ready(&self, id: &str, handle: Arc<ServingHandle>) -> Result<(), Arc<ServingHandle>> {
        let mut entries = self.lock();
        let Some(entry) = entries.deployments.get_mut(id) else {
            return Err(handle);
        };
        entry.deploy_running = false;
        if entry.record.desired == Desired::Removed {
            return Err(handle);
        }
        let previous = entry.record.phase;
        entry.record.phase = Phase::Ready;
        entry.record.failure = None;
        entry.record.updated_at = Utc::now();
        entry.handle = Some(handle);
        self.persist(&entry.record);
        metrics::record_phase(&entry.record.spec.model_id, Phase::Ready);
        self.announce(&entry.record, Some(previous));
        self.settle_jobs(&mut entries, id);
        Ok(())
    }

    /// The undeploy finished: UNDEPLOYED.
    pub(crate) fn finish_undeploy(&self, id: &str) {
        let mut entries = self.lock();
        let Some(entry) = entries.deployments.get_mut(id) else {
            return;
        };
        entry.deploy_running = false;
        entry.handle = None;
        let previous = entry.record.phase;
        entry.record.phase = Phase::Undeployed;
        entry.record.updated_at = Utc::now();
        self.persist(&entry.record);
        metrics::record_phase(&entry.record.spec.model_id, Phase::Undeployed);
        self.announce(&entry.record, Some(previous));
        self.settle_jobs(&mut entries, id);
    }

    /// Ends the in-progress jobs of deployment `id` according to its phase.
    fn settle_jobs(&self, entries: &mut Entries, id: &str) {
        let Some(entry) = entries.deployments.get(id) else {
            return;
        };
        let record = entry.record.clone();
        let now = Utc::now();
        for job in entries.jobs.values_mut() {
            if job.deployment_id != id || job.status != JobStatus::InProgress {
                continue;
            }
            let outcome = match (job.action, record.phase) {
                (JobAction::Deploy, Phase::Ready) => Some((JobStatus::Success, None)),
                (JobAction::Deploy, Phase::Failed) => {
                    Some((JobStatus::Failed, record.failure.clone()))
                }
                (JobAction::Deploy, Phase::Undeployed) => Some((
                    JobStatus::Failed,
                    Some(Failure {
                        code: "UNDEPLOYED".to_owned(),
                        message: "the deployment was undeployed before it became ready".to_owned(),
                        phase: Phase::Undeployed,
                    }),
                )),
                (JobAction::Undeploy, Phase::Undeployed) => Some((JobStatus::Success, None)),
                _ => None,
            };
            if let Some((status, failure)) = outcome {
                job.status = status;
                job.failure = failure;
                job.final_phase = Some(record.phase);
                job.updated_at = now;
                if let Err(error) = self.store.put(JOBS, &job.id, &*job) {
                    tracing::error!(job = %job.id, %error, "could not persist a dock-status job");
                }
            }
        }
    }

    fn persist(&self, record: &Deployment) {
        if let Err(error) = self.store.put(DEPLOYMENTS, &record.id, record) {
            tracing::error!(deployment = %record.id, %error, "could not persist a phase change");
        }
    }

    /// Tells the status callback (non-blocking) and the log.
    fn announce(&self, record: &Deployment, previous: Option<Phase>) {
        tracing::info!(
            deployment = %record.id,
            model = %record.spec.model_id,
            phase = %record.phase,
            previous = previous.map(Phase::as_str),
            "deployment phase"
        );
        let callback = self.callback.lock().unwrap_or_else(|p| p.into_inner());
        let Some(callback) = callback.as_ref() else {
            return;
        };
        callback.send(serde_json::json!({
            "deploymentId": record.id,
            "modelId": record.spec.model_id,
            "phase": record.phase,
            "previousPhase": previous,
            "failure": record.failure,
            "at": record.updated_at,
        }));
    }

    /// Tells the status callback how far deployment `id`'s download has got (the lifecycle
    /// calls this at most once a second while FETCHING; docs/models.md § The model store).
    pub(crate) fn announce_download(
        &self,
        id: &str,
        download: &crate::store::progress::ProgressView,
    ) {
        let Some(record) = self.lock().deployments.get(id).map(|e| e.record.clone()) else {
            return;
        };
        let callback = self.callback.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(callback) = callback.as_ref() {
            callback.send(serde_json::json!({
                "deploymentId": record.id,
                "modelId": record.spec.model_id,
                "phase": record.phase,
                "download": download,
                "at": chrono::Utc::now(),
            }));
        }
    }

    /// Stops the status callback, giving queued events up to `grace` to be delivered.
    /// Blocking. Phase changes after this are logged only.
    pub(crate) fn close_callback(&self, grace: std::time::Duration) -> CallbackStats {
        let callback = self
            .callback
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        callback.map_or_else(CallbackStats::default, |c| c.shutdown(grace))
    }

    /// Becomes true once an undeploy of deployment `id` is accepted.
    pub fn cancellation(&self, id: &str) -> Option<watch::Receiver<bool>> {
        self.lock()
            .deployments
            .get(id)
            .map(|e| e.cancel.subscribe())
    }

    pub fn spec(&self, id: &str) -> Option<DeploymentSpec> {
        self.lock()
            .deployments
            .get(id)
            .map(|e| e.record.spec.clone())
    }

    /// The deployment `key` (id or modelId) names.
    pub fn lookup(&self, key: &str) -> Option<Snapshot> {
        let found = self.lock().find(key).map(parts);
        found.map(snapshot)
    }

    /// [`lookup`](Self::lookup) among the deployments `keep` accepts (a customer's own).
    pub(crate) fn lookup_where(
        &self,
        key: &str,
        keep: impl Fn(&Deployment) -> bool,
    ) -> Option<Snapshot> {
        let found = self.lock().find_where(key, keep).map(parts);
        found.map(snapshot)
    }

    /// Every deployment, oldest first.
    pub fn list(&self) -> Vec<Snapshot> {
        let found: Vec<_> = self.lock().deployments.values().map(parts).collect();
        // Serving status is read outside the registry lock: it takes the batcher's locks.
        let mut all: Vec<Snapshot> = found.into_iter().map(snapshot).collect();
        all.sort_by_key(|s| s.record.created_at);
        all
    }

    /// The serving handle of the deployment `key` names, when it is READY.
    pub fn serving(&self, key: &str) -> Result<(Deployment, Arc<ServingHandle>), NotServing> {
        let entries = self.lock();
        let entry = entries
            .find(key)
            .ok_or_else(|| NotServing::NotFound(key.to_owned()))?;
        match (&entry.handle, entry.record.phase) {
            (Some(handle), Phase::Ready) => Ok((entry.record.clone(), handle.clone())),
            (_, phase) => Err(NotServing::Phase {
                deployment_id: entry.record.id.clone(),
                phase,
            }),
        }
    }

    pub fn job(&self, id: &str) -> Option<(DockJob, Option<Deployment>)> {
        let entries = self.lock();
        let job = entries.jobs.get(id)?.clone();
        let record = entries
            .deployments
            .get(&job.deployment_id)
            .map(|e| e.record.clone());
        Some((job, record))
    }

    /// Handles of every serving deployment (drain at shutdown, watchdog).
    pub fn handles(&self) -> Vec<(String, Arc<ServingHandle>)> {
        self.lock()
            .deployments
            .values()
            .filter_map(|e| e.handle.clone().map(|h| (e.record.id.clone(), h)))
            .collect()
    }

    /// Deployments that should be serving but are not READY yet: (id, modelId, phase).
    pub fn not_ready(&self) -> Vec<(String, String, Phase)> {
        self.lock()
            .deployments
            .values()
            .filter(|e| e.record.desired == Desired::Serving && e.record.phase.is_deploying())
            .map(|e| {
                (
                    e.record.id.clone(),
                    e.record.spec.model_id.clone(),
                    e.record.phase,
                )
            })
            .collect()
    }
}

type Parts = (Deployment, Option<Arc<ServingHandle>>);

fn parts(entry: &Entry) -> Parts {
    (entry.record.clone(), entry.handle.clone())
}

fn snapshot((record, handle): Parts) -> Snapshot {
    Snapshot {
        record,
        serving: handle.map(|h| h.status()),
    }
}
