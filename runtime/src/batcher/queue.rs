//! The bounded queue shared by a deployment's replicas.
//!
//! Requests wait here until a replica has a free slot. The queue is bounded so that a
//! burst beyond capacity is refused at once (HTTP 429) instead of growing memory and
//! latency without limit; the age of its oldest entry is the pressure signal the
//! autoscaler reads.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Why a request could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The queue holds `capacity` requests already.
    Full { capacity: usize },
    /// The deployment is draining or stopped and takes no new work.
    Closed,
}

/// A FIFO with a capacity, blocking pops and a close flag.
pub struct RequestQueue<T> {
    capacity: usize,
    state: Mutex<QueueState<T>>,
    /// Signalled on push and on close so idle replicas wake up.
    available: Condvar,
}

struct QueueState<T> {
    items: VecDeque<(Instant, T)>,
    closed: bool,
}

impl<T> RequestQueue<T> {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            state: Mutex::new(QueueState {
                items: VecDeque::new(),
                closed: false,
            }),
            available: Condvar::new(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn push(&self, item: T) -> Result<(), PushError> {
        let mut state = self.lock();
        if state.closed {
            return Err(PushError::Closed);
        }
        if state.items.len() >= self.capacity {
            return Err(PushError::Full {
                capacity: self.capacity,
            });
        }
        state.items.push_back((Instant::now(), item));
        drop(state);
        self.available.notify_one();
        Ok(())
    }

    /// Takes the oldest request without waiting.
    pub fn try_pop(&self) -> Option<T> {
        self.lock().items.pop_front().map(|(_, item)| item)
    }

    /// Takes the oldest request, waiting up to `timeout` for one to arrive.
    pub fn pop_timeout(&self, timeout: Duration) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            if let Some((_, item)) = state.items.pop_front() {
                return Some(item);
            }
            let now = Instant::now();
            if state.closed || now >= deadline {
                return None;
            }
            state = self
                .available
                .wait_timeout(state, deadline - now)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        }
    }

    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How long the oldest waiting request has waited; zero when the queue is empty.
    pub fn oldest_wait(&self) -> Duration {
        self.lock()
            .items
            .front()
            .map(|(since, _)| since.elapsed())
            .unwrap_or_default()
    }

    /// Refuses further pushes and wakes every waiter. Queued items stay and can be popped.
    pub fn close(&self) {
        self.lock().closed = true;
        self.available.notify_all();
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Removes and returns every queued item for which `reject` holds (e.g. requests
    /// whose client went away while they waited), so queue depth stays honest.
    pub fn remove_where(&self, mut reject: impl FnMut(&T) -> bool) -> Vec<T> {
        let mut state = self.lock();
        let mut kept = VecDeque::with_capacity(state.items.len());
        let mut removed = Vec::new();
        for (since, item) in state.items.drain(..) {
            if reject(&item) {
                removed.push(item);
            } else {
                kept.push_back((since, item));
            }
        }
        state.items = kept;
        removed
    }

    fn lock(&self) -> MutexGuard<'_, QueueState<T>> {
        // A panic while holding this lock cannot leave the deque half-updated, so a
        // poisoned lock is still safe to use.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}
