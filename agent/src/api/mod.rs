//! The HTTP surfaces. Each module translates one wire format into the internal
//! deployment and generation types; none of them holds state of its own.

pub mod body;
pub mod health;
