//! gpu-agent: the per-host daemon and CLI. The binary in `main.rs` is a thin edge over
//! these modules.

pub mod api;
pub mod app_state;
pub mod auth;
pub mod callback;
pub mod chat_template;
pub mod config;
pub mod deployment;
pub mod error;
pub mod gpu;
pub mod heartbeat;
pub mod host_paths;
pub mod instance;
pub mod listener;
pub mod liveness;
pub mod local_generate;
pub mod metrics;
pub mod model_source;
pub mod probe;
pub mod runtime_backend;
pub mod server;
pub mod serving;
pub mod state;
pub mod systemd;
pub mod validation;
