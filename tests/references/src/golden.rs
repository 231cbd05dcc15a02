//! Hugging Face transformers' greedy continuations of the fixture models: `gpt2-tiny` and
//! `t5-tiny` in the shared `golden.json`, `t5-v1_0-tiny` in its own directory's.

use serde::Deserialize;

use crate::{fixtures_dir, model_path, read_json};

/// Below this top-2 logit margin a greedy step may legitimately flip under float noise;
/// comparisons stop at the first such step.
pub const MARGIN_FLOOR: f64 = 5e-4;

/// One reference prompt with its greedy continuation.
#[derive(Debug, Clone, Deserialize)]
pub struct GoldenCase {
    pub prompt: String,
    pub prompt_ids: Vec<u32>,
    pub greedy_ids: Vec<u32>,
    /// The greedy continuation decoded (special tokens skipped).
    #[serde(default)]
    pub greedy_text: String,
    pub step_margins: Vec<f64>,
}

/// The cases of one fixture model.
#[derive(Debug, Clone, Deserialize)]
pub struct GoldenModel {
    /// The fixture directory, e.g. `gpt2-tiny`.
    pub dir: String,
    pub cases: Vec<GoldenCase>,
}

/// A text and the ids the reference tokenizer gives it.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenizationCase {
    pub text: String,
    pub ids: Vec<u32>,
}

#[derive(Deserialize)]
struct SharedGolden {
    models: SharedModels,
    gpt2_tokenization: Vec<TokenizationCase>,
    t5_tokenization: Vec<TokenizationCase>,
}

#[derive(Deserialize)]
struct SharedModels {
    gpt2: GoldenModel,
    t5: GoldenModel,
}

/// A fixture made by `scripts/reference/make_fixtures.py`, with its own `golden.json`.
#[derive(Deserialize)]
struct OwnGolden {
    model: GoldenModel,
}

fn shared() -> SharedGolden {
    read_json(&fixtures_dir().join("golden.json"))
}

/// The reference cases of fixture model `model_dir`.
pub fn golden_model(model_dir: &str) -> GoldenModel {
    match model_dir {
        "gpt2-tiny" => shared().models.gpt2,
        "t5-tiny" => shared().models.t5,
        other => read_json::<OwnGolden>(&model_path(other).join("golden.json")).model,
    }
}

/// [`golden_model`]'s cases.
pub fn golden_cases(model_dir: &str) -> Vec<GoldenCase> {
    golden_model(model_dir).cases
}

/// The tokenization cases of the shared `golden.json` for `family`, "gpt2" or "t5".
pub fn tokenization_cases(family: &str) -> Vec<TokenizationCase> {
    let golden = shared();
    match family {
        "gpt2" => golden.gpt2_tokenization,
        "t5" => golden.t5_tokenization,
        other => panic!("no tokenization cases for {other:?}"),
    }
}

impl GoldenCase {
    /// How many leading greedy tokens must match exactly: up to (not including) the first
    /// step whose margin is below [`MARGIN_FLOOR`].
    pub fn comparable(&self) -> usize {
        self.step_margins
            .iter()
            .position(|m| *m < MARGIN_FLOOR)
            .unwrap_or(self.greedy_ids.len())
            .min(self.greedy_ids.len())
    }

    /// The greedy tokens every implementation must reproduce: the first
    /// [`comparable`](Self::comparable) ones.
    pub fn decided_ids(&self) -> &[u32] {
        &self.greedy_ids[..self.comparable()]
    }

    /// Asserts `tokens` start with the comparable part of the greedy continuation.
    pub fn assert_matches(&self, tokens: &[u32], context: &str) {
        let n = self.comparable();
        assert!(
            tokens.len() >= n && tokens[..n] == self.greedy_ids[..n],
            "{context}: prompt {:?}: expected the first {n} tokens {:?}, got {:?}",
            self.prompt,
            &self.greedy_ids[..n],
            tokens
        );
    }

    /// Asserts `tokens`, a generation of at most `max_tokens` (below the golden length),
    /// has the length the greedy continuation has there (all `max_tokens`, unless the
    /// reference ended sooner) and agrees with it as far as both are comparable.
    pub fn assert_prefix_matches(&self, tokens: &[u32], max_tokens: usize, context: &str) {
        let length = max_tokens.min(self.greedy_ids.len());
        assert_eq!(
            tokens.len(),
            length,
            "{context}: prompt {:?}: expected {length} tokens, got {tokens:?}",
            self.prompt
        );
        let n = self.comparable().min(length);
        assert!(
            tokens[..n] == self.greedy_ids[..n],
            "{context}: prompt {:?}: expected the first {n} tokens {:?}, got {:?}",
            self.prompt,
            &self.greedy_ids[..n],
            tokens
        );
    }
}
