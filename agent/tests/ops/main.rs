//! Operations modules (auth, durable state, status callback, probe, systemd, install) as a
//! library, through real files, real loopback HTTP, real datagram sockets and real child
//! processes. One test binary, so the agent library is linked once.

mod callback;
mod common;
mod install_script;
mod jwt;
mod probe;
mod state;
mod state_crash;
mod systemd;
