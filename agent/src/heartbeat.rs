//! The node heartbeat: every `[control_plane] heartbeat_interval_s` the agent POSTs who it
//! is (node name, host name, instance type), its GPUs, its health and every deployment's
//! phase to `heartbeat_url`, so a control plane learns which nodes exist and what they run.
//! The contract (body, signature) is in docs/operations.md, "Running a fleet".
//!
//! It runs on its own task and sends from the blocking pool with a timeout, so a receiver
//! that is down or never answers delays the next heartbeat, never a request. A failed
//! heartbeat is retried with a fresh body after a backoff (1 s, doubling, at most the
//! interval): the newest state is what a control plane needs, not the one that failed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use thiserror::Error;

use crate::app_state::SharedState;
use crate::deployment::phase::{Failure, Phase};
use crate::gpu::InventoryView;

/// The signature header: `sha256=<hex HMAC-SHA256 of the body>`.
pub(crate) const SIGNATURE_HEADER: &str = "X-Gpu-Agent-Signature";
/// Limit on one POST (connect, send, answer).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The wait after the first failed heartbeat; doubled after each further one.
const FIRST_RETRY: Duration = Duration::from_secs(1);

#[derive(Debug, Error)]
pub enum HeartbeatConfigError {
    #[error("[control_plane] hmac_key_file {path}: cannot read it: {source}")]
    KeyUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("[control_plane] hmac_key_file {path} is empty")]
    KeyEmpty { path: PathBuf },
}

/// One heartbeat's body.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Report {
    /// Counts up from 1 per process; with `sentAt` it lets a receiver drop replays.
    pub sequence: u64,
    pub(crate) sent_at: chrono::DateTime<chrono::Utc>,
    pub node: NodeIdentity,
    pub health: Health,
    pub gpus: InventoryView,
    pub deployments: Vec<DeploymentReport>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NodeIdentity {
    /// `[control_plane] node_name`, else the host name.
    pub name: String,
    pub hostname: String,
    /// Absent while unknown.
    pub instance_type: Option<String>,
    /// "config" or "imds".
    pub(crate) instance_type_source: Option<&'static str>,
    pub(crate) agent_version: &'static str,
    /// The address the agent serves on, as configured.
    pub listen: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Health {
    /// What `/readyz` says: restored, not draining, every deployment that should serve READY.
    pub ready: bool,
    pub draining: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeploymentReport {
    pub(crate) deployment_id: String,
    pub(crate) model_id: String,
    pub device_type: String,
    pub phase: Phase,
    pub failure: Option<Failure>,
    pub replicas: usize,
    pub(crate) queue_depth: usize,
    pub running: usize,
}

/// Where and how heartbeats are sent. The key is held here only: never logged.
#[derive(Clone)]
struct Sender {
    url: String,
    key: Option<Arc<[u8]>>,
    http: ureq::Agent,
}

/// Starts the heartbeat task when `heartbeat_url` is set. Fails (at start-up) only when the
/// HMAC key file is set and cannot be read: an unsigned heartbeat is never sent instead.
pub fn spawn(state: &SharedState) -> Result<(), HeartbeatConfigError> {
    let control_plane = &state.config.control_plane;
    let Some(url) = control_plane.heartbeat() else {
        return Ok(());
    };
    let key = control_plane
        .hmac_key_file
        .as_deref()
        .map(read_key)
        .transpose()?;
    let sender = Sender {
        url: url.to_owned(),
        key,
        http: ureq::AgentBuilder::new().timeout(REQUEST_TIMEOUT).build(),
    };
    let interval = control_plane.heartbeat_interval();
    tracing::info!(url = %sender.url, ?interval, signed = sender.key.is_some(), "node heartbeat on");
    tokio::spawn(beat(Arc::clone(state), sender, interval));
    Ok(())
}

/// The key's bytes: the file's content without trailing whitespace (a newline from `echo`).
fn read_key(path: &Path) -> Result<Arc<[u8]>, HeartbeatConfigError> {
    let bytes = std::fs::read(path).map_err(|source| HeartbeatConfigError::KeyUnreadable {
        path: path.to_owned(),
        source,
    })?;
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |last| last + 1);
    if end == 0 {
        return Err(HeartbeatConfigError::KeyEmpty {
            path: path.to_owned(),
        });
    }
    Ok(Arc::from(&bytes[..end]))
}

async fn beat(state: SharedState, sender: Sender, interval: Duration) {
    let mut sequence = 0u64;
    let mut failures = 0u32;
    loop {
        sequence += 1;
        let (state_now, sender_now) = (Arc::clone(&state), sender.clone());
        // Reading deployments takes the batchers' locks and the POST blocks: neither runs
        // on the async workers that serve requests.
        let sent = tokio::task::spawn_blocking(move || {
            let body = serde_json::to_vec(&report(&state_now, sequence))
                .map_err(|e| format!("cannot encode the heartbeat: {e}"))?;
            sender_now.post(&body)
        })
        .await
        .unwrap_or_else(|join| Err(format!("the heartbeat task failed: {join}")));
        let wait = match sent {
            Ok(()) => {
                failures = 0;
                interval
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                let wait = retry_after(failures, interval);
                tracing::warn!(sequence, failures, %error, retry_in = ?wait, "heartbeat not delivered");
                wait
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// 1 s after the first failure, doubling, never longer than the interval.
fn retry_after(failures: u32, interval: Duration) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST_RETRY.saturating_mul(1 << doublings).min(interval)
}

impl Sender {
    fn post(&self, body: &[u8]) -> Result<(), String> {
        let mut request = self
            .http
            .post(&self.url)
            .set("Content-Type", "application/json");
        if let Some(key) = &self.key {
            request = request.set(SIGNATURE_HEADER, &signature(key, body));
        }
        match request.send_bytes(body) {
            Ok(_) => Ok(()),
            Err(ureq::Error::Status(code, _)) => Err(format!("HTTP {code}")),
            Err(ureq::Error::Transport(transport)) => Err(transport.to_string()),
        }
    }
}

/// `sha256=` and the hex HMAC-SHA256 of `body` under `key`.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length; new_from_slice cannot fail for it.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The heartbeat body as of now.
pub fn report(state: &SharedState, sequence: u64) -> Report {
    let instance = &state.lifecycle.instance;
    let hostname = host_name();
    let configured_name = state.config.control_plane.node_name.trim();
    let name = if configured_name.is_empty() {
        hostname.clone()
    } else {
        configured_name.to_owned()
    };
    let draining = state.status.is_draining();
    let ready = state.status.is_restored() && !draining && state.registry.not_ready().is_empty();
    let deployments = state
        .registry
        .list()
        .into_iter()
        .map(|snapshot| {
            let record = snapshot.record;
            let serving = snapshot.serving.unwrap_or_default();
            DeploymentReport {
                deployment_id: record.id,
                model_id: record.spec.model_id,
                device_type: record.spec.device_type,
                phase: record.phase,
                failure: record.failure.filter(|_| record.phase == Phase::Failed),
                replicas: serving.replicas.len(),
                queue_depth: serving.queue_depth,
                running: serving.running,
            }
        })
        .collect();
    Report {
        sequence,
        sent_at: chrono::Utc::now(),
        node: NodeIdentity {
            name,
            hostname,
            instance_type: instance.instance_type().map(str::to_owned),
            instance_type_source: instance.source().map(|s| s.as_str()),
            agent_version: env!("CARGO_PKG_VERSION"),
            listen: state.config.listen.to_string(),
        },
        health: Health { ready, draining },
        gpus: InventoryView::from(&*state.inventory.state()),
        deployments,
    }
}

/// The kernel's host name (in a pod: the pod's name; the DaemonSet sets `node_name`).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_the_rfc_4231_hmac_sha256_in_hex() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn retries_back_off_from_a_second_to_the_interval() {
        let interval = Duration::from_secs(30);
        let waits: Vec<u64> = (1..=7)
            .map(|n| retry_after(n, interval).as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(retry_after(u32::MAX, interval), interval);
    }

    #[test]
    fn the_key_file_loses_its_trailing_newline_and_an_empty_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "s3cret\n").unwrap();
        assert_eq!(&*read_key(&path).unwrap(), b"s3cret");
        std::fs::write(&path, "\n").unwrap();
        let error = read_key(&path).unwrap_err().to_string();
        assert!(error.contains("is empty"), "{error}");
        let missing = read_key(&dir.path().join("absent"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("cannot read"), "{missing}");
    }
}
