//! The one error type of the kernels: every message names the row, the field, the allowed
//! range and the value given, so a caller can report it without re-deriving context.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Error)]
pub enum KernelError {
    #[error("vocab must be at least 1, given 0")]
    EmptyVocab,

    #[error("logits length must be rows × vocab = {rows} × {vocab} = {expected}, given {given}")]
    LogitsLength {
        rows: usize,
        vocab: usize,
        expected: usize,
        given: usize,
    },

    #[error("uniforms must hold one value per row ({expected} rows), given {given}")]
    UniformsLength { expected: usize, given: usize },

    #[error("logit at row {row}, token {token} must be finite, given {value}")]
    NonFiniteLogit {
        row: usize,
        token: usize,
        value: f32,
    },

    #[error("temperature at row {row} must be finite and >= 0, given {value}")]
    InvalidTemperature { row: usize, value: f32 },

    #[error("top_p at row {row} must be within [0, 1], given {value}")]
    InvalidTopP { row: usize, value: f32 },

    #[error("uniform at row {row} must be within [0, 1), given {value}")]
    InvalidUniform { row: usize, value: f32 },
}
