//! Prometheus metrics (`docs/api.md` § Metrics). The names are a contract; they are
//! declared here once. Recording goes through the `metrics` facade, so without an installed
//! exporter (unit tests) every call is a no-op.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;

use crate::deployment::phase::Phase;
use crate::deployment::record::Deployment;

/// How long a gauge series not set again survives.
const GAUGE_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// FAILED deployments whose phase series are kept (the most recently changed ones).
pub(crate) const FAILED_PHASE_SERIES_KEPT: usize = 16;
use runtime::batcher::SubmitError;

use crate::serving::SubmitRejection;

pub(crate) const REQUESTS_TOTAL: &str = "gpu_agent_requests_total";
pub(crate) const QUEUE_DEPTH: &str = "gpu_agent_queue_depth";
pub(crate) const RUNNING_SEQUENCES: &str = "gpu_agent_running_sequences";
pub(crate) const BATCH_SIZE: &str = "gpu_agent_batch_size";
pub(crate) const TIME_TO_FIRST_TOKEN_SECONDS: &str = "gpu_agent_time_to_first_token_seconds";
pub(crate) const INTER_TOKEN_LATENCY_SECONDS: &str = "gpu_agent_inter_token_latency_seconds";
pub(crate) const REQUEST_DURATION_SECONDS: &str = "gpu_agent_request_duration_seconds";
pub(crate) const GENERATED_TOKENS_TOTAL: &str = "gpu_agent_generated_tokens_total";
pub(crate) const DEPLOYMENT_PHASE: &str = "gpu_agent_deployment_phase";
/// The replica count: operators alert on it (`docs/batcher.md` § Replicas and autoscaling).
pub(crate) const REPLICAS: &str = "gpu_agent_replicas";
/// Batch slots (each holds one sequence's KV cache) in use over those admitted: running
/// sequences / (replicas × maxBatchSize). For least-load routers (docs/operations.md).
pub(crate) const SLOT_USAGE_RATIO: &str = "gpu_agent_slot_usage_ratio";
/// `[batcher] max_queue`, beside the queue depth, so alerts need not know the config.
pub(crate) const QUEUE_CAPACITY: &str = "gpu_agent_queue_capacity";
/// Requests refused at submission, by `reason` (`queue_full` is the 429).
pub(crate) const REJECTIONS_TOTAL: &str = "gpu_agent_rejections_total";

/// `outcome` label values of [`REQUESTS_TOTAL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Finished by length or EOS.
    Ok,
    /// Finished by a stop sequence.
    Stop,
    /// The client went away.
    Cancelled,
    /// Refused before running (queue full, draining, prompt too long).
    Rejected,
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Stop => "stop",
            Outcome::Cancelled => "cancelled",
            Outcome::Rejected => "rejected",
            Outcome::Error => "error",
        }
    }
}

/// Bucket bounds (seconds) of the latency histograms: 1 ms to 5 min, the request timeout.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0,
];
/// Bucket bounds of the per-step batch size: powers of two up to the largest maxBatchSize.
const BATCH_SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

static EXPORTER: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder for this process (once) and describes every metric.
pub fn install() -> Result<PrometheusHandle, String> {
    if let Some(handle) = EXPORTER.get() {
        return Ok(handle.clone());
    }
    // Without buckets the exporter renders summaries; the contract is histograms
    // (`docs/api.md` § Metrics).
    let mut builder = PrometheusBuilder::new();
    for (name, buckets) in [
        (BATCH_SIZE, BATCH_SIZE_BUCKETS),
        (TIME_TO_FIRST_TOKEN_SECONDS, LATENCY_BUCKETS),
        (INTER_TOKEN_LATENCY_SECONDS, LATENCY_BUCKETS),
        (REQUEST_DURATION_SECONDS, LATENCY_BUCKETS),
    ] {
        builder = builder
            .set_buckets_for_metric(Matcher::Full(name.to_owned()), buckets)
            .map_err(|e| format!("histogram buckets for {name}: {e}"))?;
    }
    // Gauges not set for a while are dropped, so deployments that failed or went away do
    // not leave series behind for ever (modelIds are client-chosen); the live ones are set
    // again before every render (see `refresh_phases`), GPU gauges every 15 s.
    let builder = builder.idle_timeout(MetricKindMask::GAUGE, Some(GAUGE_IDLE_TIMEOUT));
    let handle = builder
        .install_recorder()
        .map_err(|e| format!("cannot install the Prometheus recorder: {e}"))?;
    describe();
    crate::gpu::describe_gpu_gauges();
    crate::store::metrics::describe();
    Ok(EXPORTER.get_or_init(|| handle).clone())
}

/// How often histogram samples are folded into their buckets.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Folds the histograms' recorded samples into their buckets every few seconds, for as long
/// as the process runs. The recorder keeps every raw sample until then (a scrape folds them
/// too), so an agent nobody scrapes grew by about 100 bytes per request (docs/benchmarks.md).
pub(crate) async fn run_upkeep(handle: PrometheusHandle) {
    let mut ticker = tokio::time::interval(UPKEEP_INTERVAL);
    loop {
        ticker.tick().await;
        handle.run_upkeep();
    }
}

fn describe() {
    describe_counter!(REQUESTS_TOTAL, "Generation requests by outcome");
    describe_gauge!(QUEUE_DEPTH, "Requests waiting for a batch slot");
    describe_gauge!(RUNNING_SEQUENCES, "Sequences in the running batch");
    describe_gauge!(REPLICAS, "Replicas serving the deployment");
    describe_gauge!(
        QUEUE_CAPACITY,
        "Queued requests a deployment takes before 429"
    );
    describe_counter!(
        REJECTIONS_TOTAL,
        "Requests refused at submission by reason (queue_full = 429)"
    );
    describe_gauge!(
        SLOT_USAGE_RATIO,
        "KV cache slots in use over slots allocated (replicas x maxBatchSize), 0 to 1"
    );
    describe_histogram!(BATCH_SIZE, "Sequences per decode step");
    describe_histogram!(TIME_TO_FIRST_TOKEN_SECONDS, "Submission to first token");
    describe_histogram!(
        INTER_TOKEN_LATENCY_SECONDS,
        "Time between consecutive tokens"
    );
    describe_histogram!(REQUEST_DURATION_SECONDS, "Submission to last event");
    describe_counter!(GENERATED_TOKENS_TOTAL, "Tokens generated");
    describe_gauge!(
        DEPLOYMENT_PHASE,
        "1 for the deployment's current phase, 0 otherwise"
    );
}

/// Sets the phase gauge of `deployment` (its modelId): 1 for `phase`, 0 for the others.
pub(crate) fn record_phase(deployment: &str, phase: Phase) {
    for candidate in Phase::ALL {
        let value = if candidate == phase { 1.0 } else { 0.0 };
        gauge!(DEPLOYMENT_PHASE, "deployment" => deployment.to_owned(), "phase" => candidate.as_str())
            .set(value);
    }
}

/// Sets the phase gauges again for the deployments worth a series: per modelId its newest
/// deployment, unless UNDEPLOYED, and of those that FAILED only the most recent
/// [`FAILED_PHASE_SERIES_KEPT`]. The other series expire (`GAUGE_IDLE_TIMEOUT`).
pub(crate) fn refresh_phases<'a>(records: impl IntoIterator<Item = &'a Deployment>) {
    let mut newest: std::collections::BTreeMap<&str, &Deployment> = Default::default();
    for record in records {
        let slot = newest
            .entry(record.spec.model_id.as_str())
            .or_insert(record);
        if record.created_at > slot.created_at {
            *slot = record;
        }
    }
    let mut kept: Vec<&Deployment> = newest
        .into_values()
        .filter(|r| r.phase != Phase::Undeployed)
        .collect();
    kept.sort_by_key(|r| std::cmp::Reverse(r.updated_at));
    let mut failed = 0;
    for record in kept {
        if record.phase == Phase::Failed {
            failed += 1;
            if failed > FAILED_PHASE_SERIES_KEPT {
                continue;
            }
        }
        record_phase(&record.spec.model_id, record.phase);
    }
}

pub(crate) fn record_outcome(deployment: &str, outcome: Outcome) {
    counter!(REQUESTS_TOTAL, "deployment" => deployment.to_owned(), "outcome" => outcome.as_str())
        .increment(1);
}

pub(crate) fn record_first_token(deployment: &str, seconds: f64) {
    histogram!(TIME_TO_FIRST_TOKEN_SECONDS, "deployment" => deployment.to_owned()).record(seconds);
}

pub(crate) fn record_inter_token(deployment: &str, seconds: f64) {
    histogram!(INTER_TOKEN_LATENCY_SECONDS, "deployment" => deployment.to_owned()).record(seconds);
}

pub(crate) fn record_finished(deployment: &str, seconds: f64, tokens: usize) {
    histogram!(REQUEST_DURATION_SECONDS, "deployment" => deployment.to_owned()).record(seconds);
    counter!(GENERATED_TOKENS_TOTAL, "deployment" => deployment.to_owned())
        .increment(u64::try_from(tokens).unwrap_or(u64::MAX));
}

/// One decode step's batch size (reported by the runtime's batcher).
pub(crate) fn record_batch_size(deployment: &str, sequences: usize) {
    histogram!(BATCH_SIZE, "deployment" => deployment.to_owned()).record(sequences as f64);
}

/// `reason` label values of [`REJECTIONS_TOTAL`].
const REJECTION_REASONS: [&str; 4] = ["queue_full", "draining", "unsupported", "prompt"];

fn rejection_reason(rejection: &SubmitRejection) -> &'static str {
    match rejection {
        SubmitRejection::Engine(SubmitError::QueueFull { .. }) => "queue_full",
        SubmitRejection::Engine(SubmitError::Draining) => "draining",
        SubmitRejection::SeedNotHonoured
        | SubmitRejection::Engine(SubmitError::Tokenizer(_) | SubmitError::Unsupported { .. }) => {
            "unsupported"
        }
        SubmitRejection::Engine(SubmitError::EmptyPrompt | SubmitError::PromptTooLong { .. }) => {
            "prompt"
        }
    }
}

/// Counts a request refused at submission (beside its `rejected` outcome).
pub(crate) fn record_rejection(deployment: &str, rejection: &SubmitRejection) {
    counter!(REJECTIONS_TOTAL, "deployment" => deployment.to_owned(), "reason" => rejection_reason(rejection))
        .increment(1);
}

/// What a serving deployment's gauges are computed from (refreshed before rendering).
pub(crate) struct ServingGauges {
    pub(crate) queue_depth: usize,
    pub queue_capacity: usize,
    pub running: usize,
    pub replicas: usize,
    /// Slots per replica.
    pub max_batch_size: usize,
}

/// Queue, batch, replica and slot gauges of a serving deployment. Also registers its
/// rejection counters at 0, so `rate()` over them works before the first refusal.
pub(crate) fn record_serving(deployment: &str, serving: &ServingGauges) {
    let ServingGauges {
        queue_depth,
        queue_capacity,
        running,
        replicas,
        max_batch_size,
    } = *serving;
    for reason in REJECTION_REASONS {
        counter!(REJECTIONS_TOTAL, "deployment" => deployment.to_owned(), "reason" => reason)
            .increment(0);
    }
    gauge!(QUEUE_CAPACITY, "deployment" => deployment.to_owned()).set(queue_capacity as f64);
    gauge!(QUEUE_DEPTH, "deployment" => deployment.to_owned()).set(queue_depth as f64);
    gauge!(RUNNING_SEQUENCES, "deployment" => deployment.to_owned()).set(running as f64);
    gauge!(REPLICAS, "deployment" => deployment.to_owned()).set(replicas as f64);
    gauge!(SLOT_USAGE_RATIO, "deployment" => deployment.to_owned()).set(slot_usage_ratio(
        running,
        replicas,
        max_batch_size,
    ));
}

/// Running sequences over the slots of every replica; 0 with no slots (no replica yet).
pub(crate) fn slot_usage_ratio(running: usize, replicas: usize, max_batch_size: usize) -> f64 {
    let slots = replicas.saturating_mul(max_batch_size);
    if slots == 0 {
        return 0.0;
    }
    (running as f64 / slots as f64).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::slot_usage_ratio;

    #[test]
    fn slot_usage_is_running_over_replicas_times_batch_size() {
        assert_eq!(slot_usage_ratio(3, 2, 4), 0.375);
        assert_eq!(slot_usage_ratio(8, 2, 4), 1.0);
        assert_eq!(slot_usage_ratio(0, 0, 4), 0.0);
    }
}
