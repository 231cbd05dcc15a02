//! Prometheus metrics (`docs/api.md` § Metrics). The names are a contract; they are
//! declared here once. Recording goes through the `metrics` facade, so without an installed
//! exporter (unit tests) every call is a no-op.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::deployment::phase::Phase;

pub const REQUESTS_TOTAL: &str = "gpu_agent_requests_total";
pub const QUEUE_DEPTH: &str = "gpu_agent_queue_depth";
pub const RUNNING_SEQUENCES: &str = "gpu_agent_running_sequences";
pub const BATCH_SIZE: &str = "gpu_agent_batch_size";
pub const TIME_TO_FIRST_TOKEN_SECONDS: &str = "gpu_agent_time_to_first_token_seconds";
pub const INTER_TOKEN_LATENCY_SECONDS: &str = "gpu_agent_inter_token_latency_seconds";
pub const REQUEST_DURATION_SECONDS: &str = "gpu_agent_request_duration_seconds";
pub const GENERATED_TOKENS_TOTAL: &str = "gpu_agent_generated_tokens_total";
pub const DEPLOYMENT_PHASE: &str = "gpu_agent_deployment_phase";
/// The replica count: operators alert on it (`docs/batcher.md` § Replicas and autoscaling).
pub const REPLICAS: &str = "gpu_agent_replicas";

/// `outcome` label values of [`REQUESTS_TOTAL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
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
    let handle = builder
        .install_recorder()
        .map_err(|e| format!("cannot install the Prometheus recorder: {e}"))?;
    describe();
    crate::gpu::describe_gpu_gauges();
    Ok(EXPORTER.get_or_init(|| handle).clone())
}

/// How often histogram samples are folded into their buckets.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Folds the histograms' recorded samples into their buckets every few seconds, for as long
/// as the process runs. The recorder keeps every raw sample until then (a scrape folds them
/// too), so an agent nobody scrapes grew by about 100 bytes per request (docs/benchmarks.md).
pub async fn run_upkeep(handle: PrometheusHandle) {
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
pub fn record_phase(deployment: &str, phase: Phase) {
    for candidate in Phase::ALL {
        let value = if candidate == phase { 1.0 } else { 0.0 };
        gauge!(DEPLOYMENT_PHASE, "deployment" => deployment.to_owned(), "phase" => candidate.as_str())
            .set(value);
    }
}

pub fn record_outcome(deployment: &str, outcome: Outcome) {
    counter!(REQUESTS_TOTAL, "deployment" => deployment.to_owned(), "outcome" => outcome.as_str())
        .increment(1);
}

pub fn record_first_token(deployment: &str, seconds: f64) {
    histogram!(TIME_TO_FIRST_TOKEN_SECONDS, "deployment" => deployment.to_owned()).record(seconds);
}

pub fn record_inter_token(deployment: &str, seconds: f64) {
    histogram!(INTER_TOKEN_LATENCY_SECONDS, "deployment" => deployment.to_owned()).record(seconds);
}

pub fn record_finished(deployment: &str, seconds: f64, tokens: usize) {
    histogram!(REQUEST_DURATION_SECONDS, "deployment" => deployment.to_owned()).record(seconds);
    counter!(GENERATED_TOKENS_TOTAL, "deployment" => deployment.to_owned())
        .increment(u64::try_from(tokens).unwrap_or(u64::MAX));
}

/// One decode step's batch size (reported by the runtime's batcher).
pub fn record_batch_size(deployment: &str, sequences: usize) {
    histogram!(BATCH_SIZE, "deployment" => deployment.to_owned()).record(sequences as f64);
}

/// Queue, batch and replica gauges from a serving deployment's status (refreshed before
/// rendering).
pub fn record_serving(deployment: &str, queue_depth: usize, running: usize, replicas: usize) {
    gauge!(QUEUE_DEPTH, "deployment" => deployment.to_owned()).set(queue_depth as f64);
    gauge!(RUNNING_SEQUENCES, "deployment" => deployment.to_owned()).set(running as f64);
    gauge!(REPLICAS, "deployment" => deployment.to_owned()).set(replicas as f64);
}
