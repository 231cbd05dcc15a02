//! gpu-agent's data plane: tokenizers, models over caller-owned slots, sequences and the
//! batcher. Knows nothing about HTTP.

pub mod ct2;
pub mod text;
