//! gpu-agent: the per-host daemon and CLI. The binary in `main.rs` is a thin edge over
//! these modules.

pub mod api;
pub mod app_state;
pub mod auth;
pub mod callback;
pub mod config;
pub mod deployment;
pub mod error;
pub mod gpu;
pub(crate) mod heartbeat;
pub(crate) mod host_paths;
pub(crate) mod instance;
pub(crate) mod listener;
pub(crate) mod liveness;
pub mod local_generate;
pub(crate) mod metrics;
pub(crate) mod model_source;
pub mod probe;
pub mod runtime_backend;
pub mod server;
pub(crate) mod serving;
pub mod state;
pub mod store;
pub mod store_cli;
pub mod systemd;
pub mod validation;
