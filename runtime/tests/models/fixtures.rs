//! Paths to the reference fixtures and the parsed `golden.json`.

use std::path::PathBuf;

use serde::Deserialize;

pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

pub fn model_path(name: &str) -> PathBuf {
    fixtures_dir().join(name)
}

#[derive(Debug, Deserialize)]
pub struct Golden {
    pub models: GoldenModels,
    pub gpt2_tokenization: Vec<TokenizationCase>,
    pub t5_tokenization: Vec<TokenizationCase>,
}

#[derive(Debug, Deserialize)]
pub struct GoldenModels {
    pub gpt2: GoldenModel,
    pub t5: GoldenModel,
}

#[derive(Debug, Deserialize)]
pub struct GoldenModel {
    pub cases: Vec<GoldenCase>,
}

#[derive(Debug, Deserialize)]
pub struct GoldenCase {
    pub prompt: String,
    pub prompt_ids: Vec<u32>,
}

#[derive(Debug, Deserialize)]
pub struct TokenizationCase {
    pub text: String,
    pub ids: Vec<u32>,
}

/// `golden.json` from `path`.
pub fn golden_at(path: PathBuf) -> Golden {
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("cannot parse {}: {e}", path.display()))
}

pub fn golden() -> Golden {
    golden_at(fixtures_dir().join("golden.json"))
}
