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
    pub dir: String,
    pub cases: Vec<GoldenCase>,
}

#[derive(Debug, Deserialize)]
pub struct GoldenCase {
    pub prompt: String,
    pub prompt_ids: Vec<u32>,
    pub greedy_ids: Vec<u32>,
    pub step_margins: Vec<f64>,
}

#[derive(Debug, Deserialize)]
pub struct TokenizationCase {
    pub text: String,
    pub ids: Vec<u32>,
}

/// The shared `golden.json` (GPT-2 and Flan-T5-shaped fixtures, tokenization cases).
pub fn golden() -> Golden {
    let path = fixtures_dir().join("golden.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("cannot parse {}: {e}", path.display()))
}

#[derive(Debug, Deserialize)]
struct GoldenFile {
    model: GoldenModel,
}

/// A fixture made by `scripts/reference/make_fixtures.py`, which keeps its reference
/// outputs in its own `golden.json`.
pub fn golden_of(model_dir: &str) -> GoldenModel {
    let path = model_path(model_dir).join("golden.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let file: GoldenFile = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("cannot parse {}: {e}", path.display()));
    file.model
}

/// Below this top-2 margin, float noise may legitimately flip the reference's argmax.
pub const TRUSTED_MARGIN: f64 = 5e-4;

impl GoldenCase {
    /// The reference's greedy tokens up to (not including) the first step whose margin is
    /// too small to be reproducible.
    pub fn trusted_greedy_ids(&self) -> &[u32] {
        let cut = self
            .step_margins
            .iter()
            .position(|&m| m < TRUSTED_MARGIN)
            .unwrap_or(self.greedy_ids.len());
        &self.greedy_ids[..cut.min(self.greedy_ids.len())]
    }
}
