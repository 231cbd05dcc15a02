//! Typed errors of the CTranslate2 side: reading/writing `model.bin`, converting a
//! Hugging Face checkpoint, the conversion cache and the ct2rs backend.

use std::path::PathBuf;

use thiserror::Error;

use crate::load_error::LoadError;

/// A `model.bin` that cannot be written or parsed.
#[derive(Debug, Error)]
pub enum ModelBinError {
    #[error("model.bin I/O failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("model.bin binary version {found} is not supported (this reader knows version 6)")]
    UnsupportedVersion { found: u32 },
    #[error("model.bin is truncated while reading {what} at byte {offset}")]
    Truncated { what: String, offset: usize },
    #[error("model.bin has a malformed string while reading {what} (missing NUL or not UTF-8)")]
    BadString { what: String },
    #[error("model.bin variable {variable} has unknown dtype code {code} (known: 0..=5)")]
    UnknownDataType { variable: String, code: u8 },
    #[error("model.bin variable {variable} declares {found} bytes but its shape and dtype need {expected}")]
    SizeMismatch {
        variable: String,
        expected: usize,
        found: usize,
    },
    #[error("model.bin has {count} unexpected bytes after the aliases")]
    TrailingBytes { count: usize },
    #[error("{what} is {value}, too large for the model.bin format")]
    TooLarge { what: String, value: usize },
}

/// A Hugging Face checkpoint that cannot be converted to CTranslate2's format.
#[derive(Debug, Error)]
pub enum ConvertError {
    /// The checkpoint's weights cannot be listed or mapped (the reader's own error).
    #[error(transparent)]
    Checkpoint(#[from] LoadError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid JSON: {message}")]
    Json { path: PathBuf, message: String },
    #[error("{path}: field `{field}` {problem}")]
    ConfigField {
        path: PathBuf,
        field: String,
        problem: String,
    },
    #[error("{path}: architecture {found:?} is not supported for CTranslate2 conversion (supported: GPT2LMHeadModel, T5ForConditionalGeneration)")]
    UnsupportedArchitecture { path: PathBuf, found: String },
    #[error("{path} is not a valid safetensors file: {message}")]
    Safetensors { path: PathBuf, message: String },
    #[error("tensor `{name}` is missing from the checkpoint in {dir}")]
    MissingTensor { name: String, dir: PathBuf },
    #[error("tensor `{name}` has dtype {dtype}; the converter reads F32, F16 and BF16")]
    TensorDtype { name: String, dtype: String },
    #[error("tensor `{name}` has shape {found:?}, expected {expected}")]
    TensorShape {
        name: String,
        found: Vec<usize>,
        expected: String,
    },
    #[error("no vocabulary in {dir}: expected tokenizer.json or vocab.json")]
    MissingVocabulary { dir: PathBuf },
    #[error("vocabulary from {source_file} has {found} tokens but the model's embedding has {expected} rows")]
    VocabularySize {
        source_file: String,
        found: usize,
        expected: usize,
    },
    #[error("token id {id} (`{field}`) is outside the vocabulary of {size} tokens")]
    TokenId { field: String, id: u64, size: usize },
    #[error("unknown quantization {given:?} (allowed: float32, float16, bfloat16, int8, int8_float32, int8_float16, int8_bfloat16)")]
    UnknownQuantization { given: String },
    #[error(transparent)]
    ModelBin(#[from] ModelBinError),
}

/// The conversion cache under the state directory.
#[derive(Debug, Error)]
pub enum CacheError {
    #[error("conversion cache I/O on {path} failed: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Convert(#[from] ConvertError),
}

/// Loading or running a converted model through ct2rs.
#[derive(Debug, Error)]
pub enum BackendError {
    #[error("CTranslate2 could not load {path} with compute type {compute_type}: {message}")]
    Load {
        path: PathBuf,
        compute_type: String,
        message: String,
    },
    #[error("cannot read {path}: {message}")]
    Vocabulary { path: PathBuf, message: String },
    #[error("request {index}: token id {id} is outside the vocabulary of {size} tokens")]
    TokenId { index: usize, id: u32, size: usize },
    #[error("request {index}: `{field}` must be {allowed}; given {given}")]
    InvalidOption {
        index: usize,
        field: &'static str,
        allowed: &'static str,
        given: String,
    },
    #[error("request {index}: the prompt is empty; CTranslate2 needs at least one token")]
    EmptyPrompt { index: usize },
    #[error("CTranslate2 generation failed: {message}")]
    Generation { message: String },
    #[error("CTranslate2 returned token id {id}, outside the vocabulary of {size} tokens")]
    UnknownOutputToken { id: usize, size: usize },
    #[error("CTranslate2 scores prompts of decoder-only models only; this one is encoder-decoder")]
    PromptScoringUnsupported,
    #[error("CTranslate2 scored request {index} with {found} scores; its prompt of {tokens} tokens needs {expected}", expected = tokens.saturating_sub(1))]
    ScoreCount {
        index: usize,
        tokens: usize,
        found: usize,
    },
}
