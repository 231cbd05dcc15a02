//! Capped exponential backoff for the Hub's transient failures (connection errors,
//! timeouts, 429, 5xx); 401/403/404 and protocol errors are final at once.

use std::time::Duration;

use super::hub_client::HubError;

/// How hard a request or a transfer tries.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RetryPolicy {
    /// Failures in a row (without a byte of progress between them) before giving up.
    pub(crate) attempts: u32,
    pub(crate) first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// The wait after the `failures`-th failure in a row: 0.5 s, 1 s, 2 s, … up to the cap.
    pub(crate) fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(16);
        self.first_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }

    /// `request` until it succeeds, fails for good, or has failed transiently
    /// `attempts` times in a row.
    pub fn run<T>(
        &self,
        what: &str,
        mut request: impl FnMut() -> Result<T, HubError>,
    ) -> Result<T, HubError> {
        let mut failures = 0;
        loop {
            match request() {
                Err(HubError::Transient(reason)) => {
                    failures += 1;
                    if failures >= self.attempts {
                        return Err(HubError::Transient(format!(
                            "{reason} ({failures} attempts in a row)"
                        )));
                    }
                    let wait = self.backoff(failures);
                    tracing::info!(what, %reason, retry_in_ms = wait.as_millis() as u64, "Hub request failed; retrying");
                    std::thread::sleep(wait);
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_half_a_second_and_stops_at_the_cap() {
        let policy = RetryPolicy::default();
        let waits: Vec<u128> = (1..=7).map(|n| policy.backoff(n).as_millis()).collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 8000, 8000]);
    }

    #[test]
    fn only_transient_failures_are_retried() {
        let policy = RetryPolicy {
            attempts: 3,
            first_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
        };
        let mut calls = 0;
        let result: Result<(), _> = policy.run("x", || {
            calls += 1;
            Err(HubError::Transient("503".into()))
        });
        assert!(matches!(result, Err(HubError::Transient(_))));
        assert_eq!(calls, 3);
        let mut calls = 0;
        let result: Result<(), _> = policy.run("x", || {
            calls += 1;
            Err(HubError::Denied(401))
        });
        assert!(matches!(result, Err(HubError::Denied(401))));
        assert_eq!(calls, 1);
    }
}
