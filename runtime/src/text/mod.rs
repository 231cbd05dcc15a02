//! From generated token ids to the text a client sees: incremental detokenization that never
//! splits a UTF-8 character, stop strings matched across token boundaries, and why a
//! generation ended. Decisions: `docs/sampling.md`.

mod decoder;
mod detokenizer;
mod error;
mod finish_reason;
mod stop_matcher;

pub use decoder::TokenDecoder;
pub use detokenizer::Detokenizer;
pub use error::TextError;
pub use finish_reason::FinishReason;
pub use stop_matcher::{StopMatcher, StopStep};
