//! Minimal stand-ins for modules the `ops` branch delivers (`auth`, `state`, `systemd`,
//! `callback`, `probe`), with the planned signatures, so the control plane builds and is
//! tested before they land. At merge: delete this directory and the re-export in
//! `lib.rs`, and declare the real modules instead; callers use `crate::auth` etc. already.

pub mod auth;
pub mod callback;
pub mod probe;
pub mod state;
pub mod systemd;
