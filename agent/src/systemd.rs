//! systemd integration (`docs/operations.md` § The systemd unit): `Type=notify` readiness,
//! stop and status messages, and a watchdog fed only while the serving loops make progress.
//!
//! Outside systemd (`NOTIFY_SOCKET` unset) every call does nothing. A failed send is logged
//! and otherwise ignored: the service manager being unreachable must not stop serving.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use sd_notify::NotifyState;

/// `READY=1`: the HTTP server is up and persisted deployments are restored.
pub fn notify_ready() {
    send(&[NotifyState::Ready], "READY=1");
}

/// `STOPPING=1`: shutdown began (SIGTERM received, draining).
pub fn notify_stopping() {
    send(&[NotifyState::Stopping], "STOPPING=1");
}

/// `STATUS=<line>`, shown by `systemctl status`. Newlines would end the field early, so
/// they become spaces.
pub fn notify_status(line: &str) {
    let single_line = line.replace(['\n', '\r'], " ");
    send(&[NotifyState::Status(&single_line)], "STATUS");
}

/// `WATCHDOG=1`: the service is alive. Prefer [`Watchdog`], which sends it only while the
/// serving loops show progress.
pub(crate) fn notify_watchdog() {
    send(&[NotifyState::Watchdog], "WATCHDOG=1");
}

/// The watchdog timeout systemd set (`WatchdogSec=`), from `WATCHDOG_USEC`; `None` when the
/// watchdog is off or `WATCHDOG_PID` names another process.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled()
}

fn send(state: &[NotifyState], what: &str) {
    if let Err(err) = sd_notify::notify(state) {
        tracing::warn!(message = what, error = %err, "could not notify systemd");
    }
}

/// A progress counter the serving loops bump on every iteration (idle iterations
/// included), so the watchdog can tell a live loop from a stuck one.
#[derive(Clone, Debug, Default)]
pub struct Heartbeat(Arc<AtomicU64>);

impl Heartbeat {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one iteration of a serving loop.
    pub fn beat(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Iterations recorded so far.
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

type Liveness = Box<dyn FnMut() -> bool + Send>;

/// Decides, tick by tick, whether to send `WATCHDOG=1`: only when the liveness check says
/// the serving loops progressed since the previous tick. A stuck loop therefore stops the
/// pings and systemd restarts the service after `WatchdogSec`.
pub struct Watchdog {
    liveness: Liveness,
}

impl Watchdog {
    /// `liveness` answers "did the serving loops make progress since you last asked?".
    pub fn new(liveness: impl FnMut() -> bool + Send + 'static) -> Self {
        Watchdog {
            liveness: Box::new(liveness),
        }
    }

    /// Progress means the heartbeat advanced since the previous tick (or since now, for
    /// the first tick).
    pub fn for_heartbeat(heartbeat: Heartbeat) -> Self {
        let mut last = heartbeat.count();
        Watchdog::new(move || {
            let now = heartbeat.count();
            let progressed = now != last;
            last = now;
            progressed
        })
    }

    /// Asks the liveness check once and sends `WATCHDOG=1` if it showed progress; returns
    /// whether it did.
    pub fn tick(&mut self) -> bool {
        let alive = (self.liveness)();
        if alive {
            notify_watchdog();
        } else {
            tracing::warn!("watchdog: serving loops made no progress since the last check; not pinging systemd");
        }
        alive
    }

    /// Ticks on a background thread every half `interval` (as sd_watchdog_enabled(3)
    /// advises) until the returned task is stopped or dropped.
    pub fn spawn(mut self, interval: Duration) -> WatchdogTask {
        let period = interval / 2;
        let shared = Arc::new(TaskShared::default());
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("systemd-watchdog".to_owned())
            .spawn(move || loop {
                let stopped = thread_shared.stop.lock().map(|guard| {
                    thread_shared
                        .wake
                        .wait_timeout_while(guard, period, |stop| !*stop)
                        .map(|(guard, _)| *guard)
                        .unwrap_or(true)
                });
                if stopped.unwrap_or(true) {
                    return;
                }
                if self.tick() {
                    thread_shared.pings.fetch_add(1, Ordering::Relaxed);
                }
            });
        match thread {
            Ok(handle) => WatchdogTask {
                shared,
                thread: Some(handle),
            },
            Err(err) => {
                // Without the thread systemd will restart us after WatchdogSec; say why.
                tracing::error!(error = %err, "could not start the watchdog thread");
                WatchdogTask {
                    shared,
                    thread: None,
                }
            }
        }
    }
}

#[derive(Default)]
struct TaskShared {
    stop: Mutex<bool>,
    wake: Condvar,
    pings: AtomicU64,
}

/// The running watchdog thread; stops it when dropped.
pub struct WatchdogTask {
    shared: Arc<TaskShared>,
    thread: Option<JoinHandle<()>>,
}

impl WatchdogTask {
    /// `WATCHDOG=1` messages sent so far.
    pub fn pings(&self) -> u64 {
        self.shared.pings.load(Ordering::Relaxed)
    }

    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        if let Ok(mut stop) = self.shared.stop.lock() {
            *stop = true;
        }
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for WatchdogTask {
    fn drop(&mut self) {
        self.halt();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_watchdog_reports_progress_only_after_a_beat() {
        let heartbeat = Heartbeat::new();
        heartbeat.beat(); // before the watchdog exists: not progress it saw
        let mut watchdog = Watchdog::for_heartbeat(heartbeat.clone());
        assert!(!watchdog.tick());
        heartbeat.beat();
        heartbeat.beat();
        assert!(watchdog.tick());
        assert!(!watchdog.tick(), "no beat since the previous tick");
        heartbeat.beat();
        assert!(watchdog.tick());
    }

    #[test]
    fn custom_liveness_decides_each_tick() {
        let mut answers = vec![true, false, true].into_iter();
        let mut watchdog = Watchdog::new(move || answers.next().unwrap_or(false));
        assert_eq!(
            [
                watchdog.tick(),
                watchdog.tick(),
                watchdog.tick(),
                watchdog.tick()
            ],
            [true, false, true, false]
        );
    }
}
