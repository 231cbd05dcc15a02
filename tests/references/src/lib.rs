//! The reference outputs every test suite compares against, read in one place: the fixture
//! directory, Hugging Face transformers' greedy continuations (`golden.json` files, made by
//! `scripts/reference/`), and CTranslate2 Python's int8 outputs. Used as a dev-dependency
//! by `runtime`'s tests and the black-box tests, so both compare with the same rules.

mod golden;
mod int8;

pub use golden::{
    golden_cases, golden_model, tokenization_cases, GoldenCase, GoldenModel, TokenizationCase,
    MARGIN_FLOOR,
};
pub use int8::{assert_int8_agreement, int8_agreement, int8_reference, Int8Agreement};

use std::path::PathBuf;

/// `tests/fixtures`: the tiny checkpoints, tokenizers and reference files.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// The fixture model directory `name` (`gpt2-tiny`, `t5-tiny`, `t5-v1_0-tiny`).
pub fn model_path(name: &str) -> PathBuf {
    fixtures_dir().join(name)
}

/// A JSON file of the fixtures, parsed; panics naming the file when it cannot be.
fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> T {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("cannot parse {}: {e}", path.display()))
}
