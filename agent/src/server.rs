//! The agent process: start-up (restore, READY=1), the watchdog feed, and shutdown
//! (readiness off, new work refused, in-flight work drained, exit).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::net::TcpListener;

use crate::api::router;
use crate::app_state::SharedState;
use crate::gpu::record_gpu_gauges;
use crate::heartbeat::HeartbeatConfigError;
use crate::liveness::{self, Liveness};
use crate::systemd::{self, Heartbeat, Watchdog, WatchdogTask};

/// Why [`run`] failed: the heartbeat could not start, or serving HTTP failed.
#[derive(Debug, Error)]
pub enum StartError {
    #[error(transparent)]
    Heartbeat(#[from] HeartbeatConfigError),
    #[error("serving HTTP failed: {0}")]
    Serve(#[from] std::io::Error),
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
    state.status.mark_restored();
}

/// SIGTERM: readiness off and new work refused at once, then every serving deployment
/// drains its in-flight requests (bounded by `drain_timeout_s`), and queued status
/// callbacks get a moment to go out. Deployments stay recorded as they were, so the next
/// start serves them again.
async fn drain(state: &SharedState) {
    state.status.start_draining();
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
