//! GPU admission through the real nvml-wrapper code path and a fake libnvidia-ml (one test
//! binary, so the agent library and harness are linked once).

mod admission;
mod catalog;
mod common;
mod inventory;
mod placement;
mod real_nvml;
#[path = "../support/skip.rs"]
mod skip;
mod visibility;
