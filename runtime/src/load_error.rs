//! Why a model directory could not be opened or loaded. Every variant names the file or tensor
//! at fault and what was expected there, so an operator can fix the directory without reading
//! code.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum LoadError {
    #[error("model directory {dir} does not exist or is not a directory")]
    NotADirectory { dir: PathBuf },

    #[error("model directory {dir} has no {file}: expected {expected}")]
    MissingFile {
        dir: PathBuf,
        file: &'static str,
        expected: &'static str,
    },

    #[error(
        "model directory {dir} has no tokenizer: expected tokenizer.json, or GPT-2's vocab.json \
         together with merges.txt"
    )]
    MissingTokenizer { dir: PathBuf },

    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot parse {path}: {message}")]
    UnparsableConfig { path: PathBuf, message: String },

    #[error("{path} has no \"model_type\"; expected one of: {supported}")]
    MissingModelType {
        path: PathBuf,
        supported: &'static str,
    },

    #[error("{path} has model_type {found:?}; supported model types are: {supported}")]
    UnknownModelType {
        path: PathBuf,
        found: String,
        supported: &'static str,
    },

    #[error("{path}: field `{field}` {expected}, got {found}")]
    InvalidConfig {
        path: PathBuf,
        field: &'static str,
        expected: String,
        found: String,
    },

    #[error("cannot read the safetensors file {path}: {message}")]
    UnreadableWeights { path: PathBuf, message: String },

    #[error("{path} has no tensor {name:?} (expected a tensor of shape {expected:?})")]
    MissingTensor {
        path: PathBuf,
        name: String,
        expected: Vec<usize>,
    },

    #[error("{path}: tensor {name:?} has shape {found:?}, expected {expected:?}")]
    TensorShape {
        path: PathBuf,
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },

    #[error("{path}: tensor {name:?} has dtype {found}, expected a floating-point dtype (F32, F16 or BF16)")]
    TensorDtype {
        path: PathBuf,
        name: String,
        found: String,
    },

    #[error("cannot open {device}: {message}")]
    OpenDevice { device: String, message: String },

    #[error("compute dtype {dtype} is not supported on {device}: {reason}")]
    UnsupportedDtype {
        dtype: String,
        device: String,
        reason: &'static str,
    },

    #[error("{format} weights are not supported on {device}: {reason}")]
    UnsupportedWeightFormat {
        format: &'static str,
        device: String,
        reason: &'static str,
    },

    #[error("cannot build the tokenizer from {path}: {message}")]
    Tokenizer { path: PathBuf, message: String },

    #[error("cannot place tensor {name:?} from {path} on the device: {source}")]
    Device {
        path: PathBuf,
        name: String,
        #[source]
        source: Box<candle_core::Error>,
    },

    #[error("cannot prepare the model after loading its weights: {0}")]
    Prepare(#[source] Box<candle_core::Error>),
}

impl LoadError {
    /// A failure while arranging already-loaded weights (transposes, concatenations).
    pub(crate) fn prepare(error: candle_core::Error) -> Self {
        Self::Prepare(Box::new(error))
    }
}
