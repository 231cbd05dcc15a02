//! The CTranslate2 side: native conversion, the conversion cache, compute-type resolution
//! and generation through ct2rs (one test binary, linked once).

#[cfg(feature = "ctranslate2")]
mod batching;
mod cache;
mod common;
#[cfg(feature = "ctranslate2")]
mod compute_type;
mod conversion;
#[cfg(feature = "ctranslate2")]
mod generation;
#[cfg(feature = "ctranslate2")]
mod logprobs;
