//! Black-box tests of the `gpu-agent` binary: the real process over real HTTP on
//! loopback, with a private state directory per agent (see `support`). One module runs
//! in-process instead: the deploy-body property tests (the parsers themselves).

mod auth;
mod batching;
mod candle_int8;
mod cli_generate;
mod ctranslate2;
mod deploy_parser_props;
mod device_admission;
mod fleet;
mod generate_surfaces;
mod hardening;
mod health;
mod heartbeat;
mod kore_lifecycle;
mod kore_validation;
mod logprobs;
mod lucidworks;
mod model_sources;
mod model_store;
mod native;
mod openai;
mod openai_client;
mod probe;
mod recovery;
mod serving_end_to_end;
mod status_callback;
mod support;
mod systemd_notify;
