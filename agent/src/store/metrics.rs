//! The store's Prometheus series (docs/api.md § Metrics).

use metrics::{counter, describe_counter};

/// Bytes fetched from the Hub, by modelId repo.
pub(crate) const DOWNLOAD_BYTES_TOTAL: &str = "gpu_agent_model_download_bytes_total";
/// Model downloads by `state`: `started`, `completed`, `failed`.
pub(crate) const DOWNLOADS: &str = "gpu_agent_model_downloads";

pub(crate) fn describe() {
    describe_counter!(
        DOWNLOAD_BYTES_TOTAL,
        "Bytes of model files fetched from the Hub"
    );
    describe_counter!(DOWNLOADS, "Model downloads started, completed and failed");
}

pub(crate) fn bytes_fetched(repo: &str, bytes: u64) {
    counter!(DOWNLOAD_BYTES_TOTAL, "model" => repo.to_owned()).increment(bytes);
}

pub fn download(state: &'static str) {
    counter!(DOWNLOADS, "state" => state).increment(1);
}
