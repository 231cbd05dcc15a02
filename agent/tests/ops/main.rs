//! Operations modules (auth, durable state, status callback, probe, systemd, install) as a
//! library, through real files, real loopback HTTP, real datagram sockets and real child
//! processes. One test binary, so the agent library is linked once.

mod callback;
mod common;
mod install_script;
mod jwt;
mod probe;
#[path = "../support/skip.rs"]
mod skip;
mod state;
mod state_crash;
mod systemd;

/// The server keeps these in its shared state, used from many tasks at once.
#[test]
fn ops_types_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<gpu_agent::auth::Authenticator>();
    shareable::<gpu_agent::state::StateStore>();
    shareable::<gpu_agent::callback::StatusCallback>();
    shareable::<gpu_agent::systemd::Heartbeat>();
    shareable::<gpu_agent::systemd::WatchdogTask>();
}
