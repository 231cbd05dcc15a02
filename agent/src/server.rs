//! The agent process: shared state, routes, start-up (restore, READY=1), the watchdog
//! feed, and shutdown (readiness off, new work refused, in-flight work drained, exit).

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use thiserror::Error;
use tokio::net::TcpListener;

use crate::api::body_deadline::BodyDeadline;
use crate::api::{self, health, kore, lucidworks, native, openai};
use crate::auth::Authenticator;
use crate::callback::StatusCallback;
use crate::config::AgentConfig;
use crate::deployment::lifecycle::Lifecycle;
use crate::deployment::registry::Registry;
use crate::gpu::{record_gpu_gauges, AdmissionPolicy, DeviceCatalog, GpuInventory};
use crate::host_paths::HostPaths;
use crate::liveness::{self, Liveness};
use crate::model_source::ModelSources;
use crate::serving::ServingBackend;
use crate::state::StateStore;
use crate::systemd::{self, Heartbeat, Watchdog, WatchdogTask};

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

pub type SharedState = Arc<AppState>;

/// Process-wide readiness flags.
#[derive(Default)]
pub struct AgentStatus {
    /// Persisted deployments have been reloaded (and their redeploys started).
    restored: AtomicBool,
    /// SIGTERM received: readiness is off and new work is refused.
    draining: AtomicBool,
}

impl AgentStatus {
    pub fn is_restored(&self) -> bool {
        self.restored.load(Ordering::SeqCst)
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

#[derive(Debug, Error)]
pub enum StartError {
    #[error("cannot open the state directory: {0}")]
    State(#[from] crate::state::StateError),
    #[error("invalid [auth] configuration: {0}")]
    Auth(#[from] crate::auth::AuthConfigError),
    #[error("invalid device-class catalog: {0}")]
    Catalog(#[from] crate::gpu::CatalogError),
    #[error(transparent)]
    Heartbeat(#[from] crate::heartbeat::HeartbeatConfigError),
    #[error("serving HTTP failed: {0}")]
    Serve(#[from] std::io::Error),
}

impl AppState {
    /// Opens the state store (quarantining corrupt records) and loads auth and the catalog,
    /// beside the NVML inventory the caller opened (the serving backend reads the same one).
    /// Deployments are not restored yet: [`run`] does that before it serves the first request.
    pub fn open(
        config: AgentConfig,
        backend: Arc<dyn ServingBackend>,
        inventory: Arc<GpuInventory>,
    ) -> Result<SharedState, StartError> {
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

/// Every route of every surface.
pub fn router(state: SharedState) -> Router {
    let body_limit = state.config.body_limit_bytes;
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/v1/gpus", get(health::gpus))
        .route("/api/public/models/{model_id}/deploy", post(kore::deploy))
        .route(
            "/api/public/models/{model_id}/undeploy",
            post(kore::undeploy),
        )
        .route("/api/public/dock-status/{job_id}", get(kore::dock_status))
        .route(
            "/customers/{customer_id}/ai/deployments",
            get(lucidworks::list).post(lucidworks::create),
        )
        .route(
            "/customers/{customer_id}/ai/deployments/{id}",
            get(lucidworks::get).delete(lucidworks::delete),
        )
        .route(
            "/ai/prediction/{use_case}/{deployment_id}",
            post(lucidworks::predict),
        )
        .route("/v1/deployments", get(native::list).post(native::create))
        .route(
            "/v1/deployments/{id}",
            get(native::get).delete(native::delete),
        )
        .route("/v1/deployments/{id}/generate", post(native::generate))
        .route("/v1/completions", post(openai::completions))
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            BodyDeadline {
                timeout: state.config.server.body_read_timeout(),
                limit: body_limit,
            },
            api::body_deadline::read_body_within,
        ))
        .layer(axum::middleware::from_fn(api::request_log::log_request))
        .with_state(state)
}

/// Serves on `listener` until `shutdown` resolves, then drains and returns.
pub async fn run(
    state: SharedState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    // The node heartbeat and the instance-type lookup run on their own tasks (docs/operations.md).
    crate::heartbeat::spawn(&state)?;
    crate::instance::spawn_imds_lookup(Arc::clone(&state.lifecycle.instance), &state.config);
    // Restore before the first request is read: the listener is already bound, so early
    // clients wait in its backlog (milliseconds: restoring reads the state files and starts
    // the redeploys in the background) instead of racing the restore and being told 503.
    restore(&state);
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let app = router(Arc::clone(&state));
    let limits = state.config.server.clone();
    let server = tokio::spawn(async move {
        crate::listener::serve(listener, app, &limits, async {
            let _ = http_stopped.await;
        })
        .await
    });

    systemd::notify_ready();
    let watchdog = start_watchdog(&state);
    tokio::spawn(refresh_gpu_gauges(Arc::clone(&state)));
    if let Some(handle) = state.metrics.clone() {
        tokio::spawn(crate::metrics::run_upkeep(handle));
    }

    shutdown.await;
    drain(&state).await;
    let _ = stop_http.send(());
    // Streams still open after the drain are cut after a short grace period.
    let served = match tokio::time::timeout(HTTP_CLOSE_GRACE, server).await {
        Ok(Ok(result)) => result.map_err(StartError::Serve),
        Ok(Err(join)) => Err(StartError::Serve(std::io::Error::other(join.to_string()))),
        Err(_) => {
            tracing::warn!("connections still open after the drain; closing them");
            Ok(())
        }
    };
    if let Some(watchdog) = watchdog {
        watchdog.stop();
    }
    served
}

/// How long open connections may outlive the drain before the server stops anyway.
const HTTP_CLOSE_GRACE: Duration = Duration::from_secs(5);
/// How long queued status-callback events may take to go out at shutdown.
const CALLBACK_FLUSH_GRACE: Duration = Duration::from_secs(3);

/// Reloads persisted deployments and restarts the deploys that were READY or underway.
fn restore(state: &SharedState) {
    match state.registry.restore() {
        Ok(restored) => {
            for file in &restored.quarantined {
                tracing::error!(
                    original = %file.original.display(),
                    moved_to = %file.moved_to.display(),
                    reason = %file.reason,
                    "state record of an unknown shape quarantined"
                );
            }
            tracing::info!(
                redeploying = restored.redeploy.len(),
                completed_undeploys = restored.completed_undeploys.len(),
                quarantined = restored.quarantined.len(),
                "state restored"
            );
            systemd::notify_status(&format!(
                "serving on {}; {} deployments restored",
                state.config.listen,
                restored.redeploy.len()
            ));
            for id in restored.redeploy {
                state.lifecycle.spawn_resume(id);
            }
        }
        Err(error) => tracing::error!(%error, "persisted deployments could not be restored"),
    }
    state.status.restored.store(true, Ordering::SeqCst);
}

/// SIGTERM: readiness off and new work refused at once, then every serving deployment
/// drains its in-flight requests (bounded by `drain_timeout_s`), and queued status
/// callbacks get a moment to go out. Deployments stay recorded as they were, so the next
/// start serves them again.
async fn drain(state: &SharedState) {
    state.status.draining.store(true, Ordering::SeqCst);
    systemd::notify_stopping();
    systemd::notify_status("draining for shutdown");
    let timeout = state.config.drain_timeout();
    tracing::info!(?timeout, "draining for shutdown");
    let drains: Vec<_> = state
        .registry
        .handles()
        .into_iter()
        .map(|(id, handle)| {
            tokio::task::spawn_blocking(move || {
                if !handle.drain(timeout) {
                    tracing::warn!(deployment = %id, "requests still running at the drain timeout");
                }
            })
        })
        .collect();
    for drain in drains {
        let _ = drain.await;
    }
    let registry = Arc::clone(&state.registry);
    if let Ok(stats) =
        tokio::task::spawn_blocking(move || registry.close_callback(CALLBACK_FLUSH_GRACE)).await
    {
        if stats.pending + stats.in_flight > 0 {
            tracing::warn!(
                ?stats,
                "status callback events left undelivered at shutdown"
            );
        }
    }
}

/// Starts the systemd watchdog when systemd asked for one (`WatchdogSec`): `WATCHDOG=1`
/// at half the interval, only while the runtime and every serving loop make progress.
fn start_watchdog(state: &SharedState) -> Option<WatchdogTask> {
    let interval = systemd::watchdog_interval()?;
    let heartbeat = Heartbeat::new();
    // Beats several times per watchdog tick, so one late wake-up is not "no progress".
    liveness::spawn_runtime_heartbeat(
        heartbeat.clone(),
        (interval / 8).max(Duration::from_millis(5)),
    );
    let mut check = Liveness::new(Arc::clone(&state.registry), heartbeat);
    Some(Watchdog::new(move || check.progressed()).spawn(interval))
}

/// Keeps the GPU memory gauges current.
async fn refresh_gpu_gauges(state: SharedState) {
    let mut ticker = tokio::time::interval(Duration::from_secs(15));
    loop {
        ticker.tick().await;
        let inventory = Arc::clone(&state.inventory);
        if let Ok(current) = tokio::task::spawn_blocking(move || inventory.refresh()).await {
            record_gpu_gauges(&current);
        }
    }
}
