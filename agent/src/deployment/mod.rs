//! One deployment model for every surface: the validated [`spec::DeploymentSpec`], its
//! `phase::Phase`, the durable `registry::Registry` and the `lifecycle::Lifecycle`
//! that drives it.

pub(crate) mod footprint;
pub(crate) mod lifecycle;
pub(crate) mod phase;
pub(crate) mod record;
pub(crate) mod registry;
pub mod spec;
