//! Logits processing and sampling kernels: temperature → top-k → top-p → draw, and argmax.
//!
//! Each row of a `[rows, vocab]` batch carries its own [`SamplingParams`] and its own
//! uniform from a [`RequestRng`], so a row's token is independent of the batch around it.
//! [`CpuSampler`] is the one implementation (sampling runs on the host, over the logits the
//! model returns); the [`Sampler`] trait and the law ([`truncated_distribution`]) are what a
//! device sampler would have to match. There is no CUDA sampler.
//! Decisions and their reasons: `docs/sampling.md`.

mod distribution;
mod error;
mod exp;
mod logprobs;
mod nucleus;
mod params;
mod rank;
mod rng;
mod row_scan;
mod sampler;
mod top_k;
mod truncation;
mod vocab_weights;

pub use distribution::truncated_distribution;
pub use error::KernelError;
pub use logprobs::{token_logprob, TokenLogprob, MAX_TOP_LOGPROBS};
pub use params::SamplingParams;
pub use rng::RequestRng;
pub use sampler::{CpuSampler, Sampler};
