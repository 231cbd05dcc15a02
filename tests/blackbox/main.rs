//! Black-box tests of the `gpu-agent` binary: the real process over real HTTP on
//! loopback, with a private state directory per agent (see `support`). The deploy-body
//! property test runs the same parser in-process.

mod auth;
mod deploy_parser_props;
mod device_admission;
mod health;
mod kore_lifecycle;
mod kore_validation;
mod lucidworks;
mod model_sources;
mod native;
mod probe;
mod recovery;
mod status_callback;
mod support;
mod systemd_notify;
