//! How far a model's download has got, shared by everyone waiting on it (a deploy's
//! status, a pull, a second deploy of the same repo), keyed by modelId.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use serde::Serialize;

/// Live counters of one download.
#[derive(Debug)]
pub(crate) struct Progress {
    bytes_done: AtomicU64,
    bytes_total: AtomicU64,
    files_done: AtomicU64,
    files_total: AtomicU64,
    /// Bytes on disk before this run started (a resumed partial): not counted in the rate.
    resumed_bytes: AtomicU64,
    started: Instant,
}

/// What status shows (`download` in docs/api.md).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProgressView {
    pub(crate) bytes_done: u64,
    pub(crate) bytes_total: u64,
    pub(crate) files_done: u64,
    pub(crate) files_total: u64,
    pub(crate) bytes_per_second: u64,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            bytes_done: AtomicU64::new(0),
            bytes_total: AtomicU64::new(0),
            files_done: AtomicU64::new(0),
            files_total: AtomicU64::new(0),
            resumed_bytes: AtomicU64::new(0),
            started: Instant::now(),
        }
    }
}

impl Progress {
    pub(crate) fn set_totals(&self, bytes: u64, files: u64) {
        self.bytes_total.store(bytes, Ordering::Relaxed);
        self.files_total.store(files, Ordering::Relaxed);
    }

    /// Bytes already on disk when the download (re)started.
    pub(crate) fn add_resumed(&self, bytes: u64) {
        self.resumed_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.bytes_done.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn add_bytes(&self, bytes: u64) {
        self.bytes_done.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A discarded partial (a checksum mismatch): its bytes no longer count.
    pub(crate) fn take_back(&self, bytes: u64) {
        let _ = self
            .bytes_done
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |done| {
                Some(done.saturating_sub(bytes))
            });
    }

    pub(crate) fn file_done(&self) {
        self.files_done.fetch_add(1, Ordering::Relaxed);
    }

    pub fn view(&self) -> ProgressView {
        let done = self.bytes_done.load(Ordering::Relaxed);
        let fetched = done.saturating_sub(self.resumed_bytes.load(Ordering::Relaxed));
        let seconds = self.started.elapsed().as_secs_f64();
        ProgressView {
            bytes_done: done,
            bytes_total: self.bytes_total.load(Ordering::Relaxed),
            files_done: self.files_done.load(Ordering::Relaxed),
            files_total: self.files_total.load(Ordering::Relaxed),
            bytes_per_second: if seconds > 0.0 {
                (fetched as f64 / seconds) as u64
            } else {
                0
            },
        }
    }
}

/// The downloads in flight in this process, by modelId. Status views read it; it holds
/// nothing once a download ends.
fn board() -> &'static Mutex<HashMap<String, Arc<Progress>>> {
    static BOARD: OnceLock<Mutex<HashMap<String, Arc<Progress>>>> = OnceLock::new();
    BOARD.get_or_init(Default::default)
}

/// Shows `progress` as `model_id`'s download until the guard is dropped.
pub(crate) fn publish(model_id: &str, progress: Arc<Progress>) -> Published {
    board()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(model_id.to_owned(), progress);
    Published {
        model_id: model_id.to_owned(),
    }
}

pub(crate) struct Published {
    model_id: String,
}

impl Drop for Published {
    fn drop(&mut self) {
        board()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.model_id);
    }
}

/// `model_id`'s download progress while one is in flight.
pub fn current(model_id: &str) -> Option<ProgressView> {
    board()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(model_id)
        .map(|p| p.view())
}
