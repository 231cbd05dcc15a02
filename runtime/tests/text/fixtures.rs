//! The real tokenizers and golden continuations from `tests/fixtures/`.

use std::path::PathBuf;

use tokenizers::Tokenizer;

fn fixture(relative: &str) -> PathBuf {
    references::fixtures_dir().join(relative)
}

pub fn gpt2_tokenizer() -> Tokenizer {
    Tokenizer::from_file(fixture("tokenizers/gpt2/tokenizer.json")).expect("GPT-2 tokenizer")
}

pub fn t5_tokenizer() -> Tokenizer {
    Tokenizer::from_file(fixture("t5-tiny/tokenizer.json")).expect("T5 tokenizer")
}

/// `greedy_ids` of every golden case of fixture model `model_dir`.
pub fn golden_continuations(model_dir: &str) -> Vec<Vec<u32>> {
    references::golden_cases(model_dir)
        .into_iter()
        .map(|case| case.greedy_ids)
        .collect()
}

pub fn encode(tokenizer: &Tokenizer, text: &str) -> Vec<u32> {
    tokenizer
        .encode(text, false)
        .expect("encodes")
        .get_ids()
        .to_vec()
}
