//! The CTranslate2 side of the runtime (backend `ctranslate2`; `docs/ctranslate2.md`).
//!
//! - [`convert()`]: Hugging Face checkpoint → CTranslate2 model directory, in Rust (no
//!   Python at deploy time), byte-identical to CTranslate2's own converter.
//! - [`ConversionCache`]: converted directories under the state dir, keyed by the
//!   source's content hash and the quantization, checked by a manifest written last.
//! - [`effective_compute_type`]: what CTranslate2 will really run for a requested compute
//!   type on a device (reported in status instead of the requested one).
//! - `Ct2Model` (feature `ctranslate2`): loads a converted directory through ct2rs and
//!   generates for a batch of requests with per-step callbacks.

mod activation;
#[cfg(feature = "ctranslate2")]
mod backend;
mod cache;
mod compute_type;
mod convert;
mod error;
mod gpt2_spec;
mod hf_vocabulary;
mod model_bin;
mod py_json;
mod quantize;
mod request;
mod source;
mod spec;
mod t5_spec;

#[cfg(feature = "ctranslate2")]
pub use backend::{Ct2LoadOptions, Ct2Model};
pub use cache::{source_key, CachedConversion, ConversionCache, ConversionSource};
pub use compute_type::{
    effective_compute_type, memory_estimate, ComputeType, Ct2Device, UnknownComputeType,
};
pub use convert::{convert, convert_checkpoint, Architecture, ConvertedModel};
pub use error::{BackendError, CacheError, ConvertError, ModelBinError};
pub use model_bin::{DataType, ModelBin, Variable, BINARY_VERSION};
pub use quantize::Quantization;
pub use request::{
    group_by_sampling, Ct2Finish, Ct2Output, Ct2Request, Ct2Sampling, StepControl, StepEvent,
};
