//! The Hugging Face reference cases (`golden.json` files, read by the `references` crate the
//! runtime tests share) and how a generate answer is compared against them.

use serde_json::Value;

pub use references::golden_cases;

/// The `tokens` array of a native generate answer, as ids.
pub fn tokens_of(answer: &Value) -> Vec<u32> {
    answer["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .filter_map(|t| t.as_u64())
        .map(|t| t as u32)
        .collect()
}
