//! One event's delivery: POST, and on a transient failure wait and try again, a bounded
//! number of times with exponentially growing, jittered waits.

use std::time::Duration;

/// How hard the callback tries.
#[derive(Clone, Debug)]
pub struct CallbackPolicy {
    /// Events waiting to be sent; when full the oldest is dropped (with a warning).
    pub queue_capacity: usize,
    /// Attempts per event, the first included.
    pub max_attempts: u32,
    /// Wait after the first failure; doubled after each further failure.
    pub initial_backoff: Duration,
    /// Ceiling of the wait between attempts.
    pub max_backoff: Duration,
    /// Limit on one POST (connect + send + response).
    pub request_timeout: Duration,
}

impl Default for CallbackPolicy {
    fn default() -> Self {
        CallbackPolicy {
            queue_capacity: 256,
            max_attempts: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// The result of one POST.
#[derive(Debug)]
pub(crate) enum AttemptOutcome {
    Delivered,
    /// Worth retrying: no connection, timeout, 408, 429 or 5xx.
    Transient(String),
    /// Retrying cannot help: another 4xx.
    Rejected(String),
}

/// POSTs `body` (JSON) to `url` once.
pub fn attempt(agent: &ureq::Agent, url: &str, body: &[u8], attempt: u32) -> AttemptOutcome {
    let result = agent
        .post(url)
        .set("Content-Type", "application/json")
        .set("X-Gpu-Agent-Attempt", &attempt.to_string())
        .send_bytes(body);
    match result {
        Ok(_) => AttemptOutcome::Delivered,
        Err(ureq::Error::Status(code, _)) if code == 408 || code == 429 || code >= 500 => {
            AttemptOutcome::Transient(format!("HTTP {code}"))
        }
        Err(ureq::Error::Status(code, _)) => AttemptOutcome::Rejected(format!("HTTP {code}")),
        Err(ureq::Error::Transport(transport)) => AttemptOutcome::Transient(transport.to_string()),
    }
}

/// The wait before attempt `next_attempt` (2, 3, ...): `initial × 2^(n-2)`, capped, then
/// scaled by a factor in [0.5, 1) so many agents recovering from the same outage do not
/// retry in lockstep.
pub(crate) fn backoff(policy: &CallbackPolicy, next_attempt: u32, jitter_seed: u64) -> Duration {
    let doublings = next_attempt.saturating_sub(2).min(20);
    let base = policy
        .initial_backoff
        .saturating_mul(1u32 << doublings)
        .min(policy.max_backoff);
    let fraction = 0.5 + (mix(jitter_seed) % 1000) as f64 / 2000.0;
    base.mul_f64(fraction)
}

/// SplitMix64 finaliser: spreads a counter into well-mixed bits.
fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_stops_at_the_ceiling() {
        let policy = CallbackPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            ..CallbackPolicy::default()
        };
        for seed in 0..50 {
            let second = backoff(&policy, 2, seed);
            let third = backoff(&policy, 3, seed);
            let tenth = backoff(&policy, 10, seed);
            assert!((50..100).contains(&second.as_millis()), "{second:?}");
            assert!((100..200).contains(&third.as_millis()), "{third:?}");
            assert!((250..500).contains(&tenth.as_millis()), "{tenth:?}");
        }
    }

    #[test]
    fn huge_attempt_numbers_do_not_overflow() {
        let policy = CallbackPolicy::default();
        assert!(backoff(&policy, u32::MAX, 1) <= policy.max_backoff);
    }
}
