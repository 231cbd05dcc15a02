//! gpu-agent: the per-host daemon and CLI. The binary in `main.rs` is a thin edge over
//! these modules.

pub mod api;
pub mod config;
pub mod deployment;
pub mod error;
pub mod gpu;
pub mod metrics;
pub mod model_source;
pub mod server;
pub mod serving;
pub mod validation;

mod stand_in;
// Until the ops branch lands its modules under these names (see `stand_in`).
pub use stand_in::{auth, callback, probe, state, systemd};
