//! Specification of `runtime::text`: incremental detokenization with the real GPT-2 and T5
//! tokenizers, stop strings over streamed text, finish reasons.

mod detokenizer;
mod detokenizer_properties;
mod finish_reason;
mod fixtures;
mod stop_matcher;
mod stop_matcher_properties;
mod stops_across_tokens;
