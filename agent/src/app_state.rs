//! What every HTTP handler shares: the configuration, the registry and lifecycle, the
//! credentials, the GPU catalog and inventory, and the process-wide readiness flags. The
//! handlers (`api`) and the process (`server`) both use it; it uses neither.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use thiserror::Error;

use crate::auth::Authenticator;
use crate::callback::StatusCallback;
use crate::config::AgentConfig;
use crate::deployment::lifecycle::Lifecycle;
use crate::deployment::registry::Registry;
use crate::gpu::{AdmissionPolicy, DeviceCatalog, GpuInventory};
use crate::host_paths::HostPaths;
use crate::model_source::ModelSources;
use crate::runtime_backend::RuntimeBackend;
use crate::state::StateStore;

/// Everything the handlers share.
pub struct AppState {
    pub config: Arc<AgentConfig>,
    pub registry: Arc<Registry>,
    pub lifecycle: Arc<Lifecycle>,
    pub auth: Authenticator,
    pub catalog: Arc<DeviceCatalog>,
    pub inventory: Arc<GpuInventory>,
    /// Absent when another recorder was installed first (in-process tests).
    pub metrics: Option<PrometheusHandle>,
    pub status: AgentStatus,
}

pub(crate) type SharedState = Arc<AppState>;

/// Process-wide readiness flags.
#[derive(Default)]
pub struct AgentStatus {
    /// Persisted deployments have been reloaded (and their redeploys started).
    restored: AtomicBool,
    /// SIGTERM received: readiness is off and new work is refused.
    draining: AtomicBool,
}

impl AgentStatus {
    pub(crate) fn is_restored(&self) -> bool {
        self.restored.load(Ordering::SeqCst)
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Called once the persisted deployments are reloaded.
    pub(crate) fn mark_restored(&self) {
        self.restored.store(true, Ordering::SeqCst);
    }

    /// Called on SIGTERM: from now on new work is refused.
    pub(crate) fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }
}

/// Why [`AppState::open`] failed: the state, auth or catalog configuration.
#[derive(Debug, Error)]
pub enum OpenError {
    #[error("cannot open the state directory: {0}")]
    State(#[from] crate::state::StateError),
    #[error("invalid [auth] configuration: {0}")]
    Auth(#[from] crate::auth::AuthConfigError),
    #[error("invalid device-class catalog: {0}")]
    Catalog(#[from] crate::gpu::CatalogError),
}

impl AppState {
    /// Opens the state store (quarantining corrupt records) and loads auth and the catalog,
    /// beside the NVML inventory the caller opened (the serving backend reads the same one).
    /// Deployments are not restored yet: [`crate::server::run`] does that before it serves
    /// the first request.
    pub fn open(
        config: AgentConfig,
        backend: Arc<RuntimeBackend>,
        inventory: Arc<GpuInventory>,
    ) -> Result<SharedState, OpenError> {
        let (store, quarantined) = StateStore::open(&config.state_dir)?;
        for file in &quarantined {
            tracing::error!(
                original = %file.original.display(),
                moved_to = %file.moved_to.display(),
                reason = %file.reason,
                "corrupt state file quarantined"
            );
        }
        let auth = Authenticator::new(&config.auth)?;
        let catalog = Arc::new(DeviceCatalog::load(&config.gpu, config.allow_cpu)?);
        let metrics = match crate::metrics::install() {
            Ok(handle) => Some(handle),
            Err(error) => {
                tracing::warn!(%error, "metrics are not exported");
                None
            }
        };
        let registry = Arc::new(Registry::new(
            store,
            StatusCallback::new(config.status_callback()),
        ));
        let sources = ModelSources::from_config(&config);
        // A model a live deployment uses is never evicted (docs/models.md).
        let deployments = Arc::downgrade(&registry);
        let table = config.models.clone();
        sources.store().set_in_use(Arc::new(move |repo: &str| {
            deployments.upgrade().is_some_and(|registry| {
                registry.list().iter().any(|s| {
                    !s.record.phase.is_final()
                        && crate::model_source::hub_repo_of(&table, &s.record.spec.model_id)
                            .is_some_and(|r| r == repo)
                })
            })
        }));
        let lifecycle = Arc::new(Lifecycle {
            registry: Arc::clone(&registry),
            backend,
            inventory: Arc::clone(&inventory),
            catalog: Arc::clone(&catalog),
            policy: AdmissionPolicy::from_config(&config.gpu),
            host_paths: HostPaths::new(
                config.model_roots.iter().map(PathBuf::as_path),
                sources.cache_dir(),
                &config.state_dir,
                &config.gpu.nvml_library,
            ),
            sources,
            drain_timeout: config.drain_timeout(),
            instance: crate::instance::HostInstance::from_config(&config),
        });
        Ok(Arc::new(AppState {
            config: Arc::new(config),
            registry,
            lifecycle,
            auth,
            catalog,
            inventory,
            metrics,
            status: AgentStatus::default(),
        }))
    }
}
