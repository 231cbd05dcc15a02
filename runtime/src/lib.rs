//! gpu-agent's data plane: tokenizers, models over caller-owned slots, sequences and the
//! batcher. Knows nothing about HTTP.

pub mod batcher;
pub mod checkpoint;
pub mod ct2;
mod load_error;
pub mod model;
pub mod text;
pub mod tokenizer;
