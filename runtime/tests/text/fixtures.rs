//! The real tokenizers and golden continuations from `tests/fixtures/`.

use std::path::PathBuf;

use tokenizers::Tokenizer;

fn fixture(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(relative)
}

pub fn gpt2_tokenizer() -> Tokenizer {
    Tokenizer::from_file(fixture("tokenizers/gpt2/tokenizer.json")).expect("GPT-2 tokenizer")
}

pub fn t5_tokenizer() -> Tokenizer {
    Tokenizer::from_file(fixture("t5-tiny/tokenizer.json")).expect("T5 tokenizer")
}

/// `greedy_ids` of every golden case of `model` ("gpt2" or "t5").
pub fn golden_continuations(model: &str) -> Vec<Vec<u32>> {
    let text = std::fs::read_to_string(fixture("golden.json")).expect("golden.json");
    let golden: serde_json::Value = serde_json::from_str(&text).expect("golden.json is JSON");
    let cases = golden["models"][model]["cases"]
        .as_array()
        .expect("cases array");
    cases
        .iter()
        .map(|case| {
            case["greedy_ids"]
                .as_array()
                .expect("greedy_ids")
                .iter()
                .map(|id| id.as_u64().expect("id") as u32)
                .collect()
        })
        .collect()
}

pub fn encode(tokenizer: &Tokenizer, text: &str) -> Vec<u32> {
    tokenizer
        .encode(text, false)
        .expect("encodes")
        .get_ids()
        .to_vec()
}
