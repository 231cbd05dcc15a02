//! Status callback (`docs/operations.md` § Status callback): each phase change is POSTed as
//! JSON to the configured `status_callback_url` from a background thread, so serving never
//! waits on the receiver.
//!
//! Delivery is at least once within [`CallbackPolicy::max_attempts`] (a retry after a
//! timeout may repeat an event the receiver did get), in order, one event at a time. The
//! queue is bounded: when the receiver cannot keep up the oldest event is dropped with a
//! warning, because the newest phase is what a control plane needs most.

mod delivery;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use delivery::AttemptOutcome;
pub use delivery::CallbackPolicy;

/// Counters of what happened to the events handed to [`StatusCallback::send`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallbackStats {
    /// Accepted by the receiver (2xx).
    pub delivered: u64,
    /// Given up after the attempt limit, on a non-retryable answer, or at shutdown.
    pub abandoned: u64,
    /// Dropped from a full queue to make room for a newer event.
    pub dropped_queue_full: u64,
    /// Waiting in the queue.
    pub pending: u64,
    /// Being sent (or waiting between attempts) right now: 0 or 1.
    pub in_flight: u64,
}

/// The sender of status events; cheap to call from any thread.
pub struct StatusCallback {
    shared: Option<Arc<Shared>>,
    worker: Option<JoinHandle<()>>,
}

struct Shared {
    url: String,
    policy: CallbackPolicy,
    agent: ureq::Agent,
    queue: Mutex<Queue>,
    wake: Condvar,
    delivered: AtomicU64,
    abandoned: AtomicU64,
    dropped_queue_full: AtomicU64,
}

#[derive(Default)]
struct Queue {
    events: VecDeque<Vec<u8>>,
    in_flight: bool,
    /// Set when shutting down: the worker stops retrying past this instant.
    deadline: Option<Instant>,
}

impl StatusCallback {
    /// A callback to `url` with the default policy; `None` or an empty URL disables it
    /// (the config's default `status_callback_url = ""`).
    pub fn new(url: Option<String>) -> Self {
        Self::with_policy(url, CallbackPolicy::default())
    }

    pub fn with_policy(url: Option<String>, policy: CallbackPolicy) -> Self {
        let Some(url) = url.filter(|url| !url.trim().is_empty()) else {
            return StatusCallback {
                shared: None,
                worker: None,
            };
        };
        let shared = Arc::new(Shared {
            agent: ureq::AgentBuilder::new()
                .timeout(policy.request_timeout)
                .build(),
            url,
            policy,
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            delivered: AtomicU64::new(0),
            abandoned: AtomicU64::new(0),
            dropped_queue_full: AtomicU64::new(0),
        });
        let worker_shared = Arc::clone(&shared);
        let worker = std::thread::Builder::new()
            .name("status-callback".to_owned())
            .spawn(move || run_worker(&worker_shared));
        let worker = match worker {
            Ok(handle) => Some(handle),
            Err(err) => {
                tracing::error!(error = %err, "could not start the status callback thread; events will queue and be dropped");
                None
            }
        };
        StatusCallback {
            shared: Some(shared),
            worker,
        }
    }

    /// Whether a URL is configured.
    pub fn is_enabled(&self) -> bool {
        self.shared.is_some()
    }

    /// Queues `event` for delivery and returns at once. Never blocks on the network.
    pub fn send(&self, event: serde_json::Value) {
        let Some(shared) = &self.shared else { return };
        let body = event.to_string().into_bytes();
        let mut queue = shared.lock();
        if queue.deadline.is_some() {
            tracing::warn!("status callback is shutting down; event not sent");
            shared.abandoned.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if queue.events.len() >= shared.policy.queue_capacity.max(1) {
            queue.events.pop_front();
            shared.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                url = %shared.url,
                capacity = shared.policy.queue_capacity,
                "status callback queue full (receiver slow or down): dropped the oldest event"
            );
        }
        queue.events.push_back(body);
        drop(queue);
        shared.wake.notify_all();
    }

    pub fn stats(&self) -> CallbackStats {
        match &self.shared {
            Some(shared) => shared.stats(),
            None => CallbackStats::default(),
        }
    }

    /// Stops accepting events, keeps delivering what is queued until `grace` has passed
    /// (an attempt already under way may run up to the request timeout beyond it), then
    /// stops; returns the final counters. Events still queued count as pending.
    pub fn shutdown(mut self, grace: Duration) -> CallbackStats {
        let Some(shared) = self.shared.take() else {
            return CallbackStats::default();
        };
        shared.lock().deadline = Some(Instant::now() + grace);
        shared.wake.notify_all();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
        shared.stats()
    }
}

impl Drop for StatusCallback {
    /// Tells the worker to stop after its current attempt; does not wait for it.
    fn drop(&mut self) {
        if let Some(shared) = &self.shared {
            shared.lock().deadline.get_or_insert_with(Instant::now);
            shared.wake.notify_all();
        }
    }
}

impl Shared {
    /// The queue stays consistent even if a holder panicked, so a poisoned lock is used.
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn stats(&self) -> CallbackStats {
        let queue = self.lock();
        CallbackStats {
            delivered: self.delivered.load(Ordering::Relaxed),
            abandoned: self.abandoned.load(Ordering::Relaxed),
            dropped_queue_full: self.dropped_queue_full.load(Ordering::Relaxed),
            pending: queue.events.len() as u64,
            in_flight: u64::from(queue.in_flight),
        }
    }

    /// The next event, waiting for one; `None` once shutting down with nothing left or
    /// past the deadline.
    fn next_event(&self) -> Option<Vec<u8>> {
        let mut queue = self.lock();
        loop {
            if queue
                .deadline
                .is_some_and(|deadline| Instant::now() >= deadline)
            {
                return None;
            }
            if let Some(event) = queue.events.pop_front() {
                queue.in_flight = true;
                return Some(event);
            }
            if queue.deadline.is_some() {
                return None;
            }
            queue = self
                .wake
                .wait(queue)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// Waits `wait` between attempts; `false` if shutdown's deadline falls before it ends.
    fn pause(&self, wait: Duration) -> bool {
        let end = Instant::now() + wait;
        let mut queue = self.lock();
        loop {
            if queue.deadline.is_some_and(|deadline| deadline < end) {
                return false;
            }
            let now = Instant::now();
            if now >= end {
                return true;
            }
            queue = self
                .wake
                .wait_timeout(queue, end - now)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        }
    }

    fn finish_event(&self, delivered: bool) {
        let counter = if delivered {
            &self.delivered
        } else {
            &self.abandoned
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.lock().in_flight = false;
    }
}

fn run_worker(shared: &Shared) {
    let mut sequence: u64 = 0;
    while let Some(body) = shared.next_event() {
        sequence += 1;
        let delivered = deliver(shared, &body, sequence);
        shared.finish_event(delivered);
    }
}

/// Tries one event up to the attempt limit; whether the receiver accepted it.
fn deliver(shared: &Shared, body: &[u8], sequence: u64) -> bool {
    let policy = &shared.policy;
    let attempts = policy.max_attempts.max(1);
    for attempt in 1..=attempts {
        if attempt > 1 {
            let seed = sequence.wrapping_mul(31).wrapping_add(u64::from(attempt));
            if !shared.pause(delivery::backoff(policy, attempt, seed)) {
                tracing::warn!(url = %shared.url, "status callback: shutting down; event abandoned");
                return false;
            }
        }
        match delivery::attempt(&shared.agent, &shared.url, body, attempt) {
            AttemptOutcome::Delivered => return true,
            AttemptOutcome::Rejected(reason) => {
                tracing::warn!(url = %shared.url, %reason, "status callback: receiver refused the event; not retrying");
                return false;
            }
            AttemptOutcome::Transient(reason) => {
                tracing::warn!(url = %shared.url, %reason, attempt, attempts, "status callback: delivery failed");
            }
        }
    }
    tracing::warn!(url = %shared.url, attempts, "status callback: event abandoned after the attempt limit");
    false
}
