//! One deployment model for every surface: the validated [`spec::DeploymentSpec`], its
//! [`phase::Phase`], the durable [`registry::Registry`] and the [`lifecycle::Lifecycle`]
//! that drives it.

pub mod footprint;
pub mod lifecycle;
pub mod phase;
pub mod record;
pub mod registry;
pub mod spec;
