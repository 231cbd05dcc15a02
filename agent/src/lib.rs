//! gpu-agent: the per-host daemon and CLI. The binary in `main.rs` is a thin edge over
//! these modules.

pub mod auth;
pub mod callback;
pub mod gpu;
pub mod probe;
pub mod state;
pub mod systemd;
