//! The Hugging Face reference cases (`golden.json` files) and how to compare against them.

use serde_json::Value;

use super::fixtures;

/// Below this top-2 logit margin a greedy step may legitimately flip under float noise;
/// comparisons stop at the first such step (issue 2).
pub const MARGIN_FLOOR: f64 = 5e-4;

/// One reference prompt with its greedy continuation.
#[derive(Debug, Clone)]
pub struct GoldenCase {
    pub prompt: String,
    pub prompt_ids: Vec<u32>,
    pub greedy_ids: Vec<u32>,
    /// The greedy continuation decoded (special tokens skipped).
    pub greedy_text: String,
    pub step_margins: Vec<f64>,
}

impl GoldenCase {
    /// How many leading greedy tokens must match exactly: up to (not including) the first
    /// step whose margin is below [`MARGIN_FLOOR`].
    pub fn comparable(&self) -> usize {
        self.step_margins
            .iter()
            .position(|m| *m < MARGIN_FLOOR)
            .unwrap_or(self.greedy_ids.len())
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

/// The cases of a fixture model: `gpt2-tiny` and `t5-tiny` live in the shared
/// `golden.json`, `t5-v1_0-tiny` carries its own.
pub fn golden_cases(model_dir: &str) -> Vec<GoldenCase> {
    let (path, pointer) = match model_dir {
        "gpt2-tiny" => (fixtures().join("golden.json"), "/models/gpt2/cases"),
        "t5-tiny" => (fixtures().join("golden.json"), "/models/t5/cases"),
        other => (fixtures().join(other).join("golden.json"), "/model/cases"),
    };
    let text = std::fs::read_to_string(&path).expect("golden file");
    let golden: Value = serde_json::from_str(&text).expect("golden file parses");
    let ids = |v: &Value| -> Vec<u32> {
        v.as_array()
            .expect("id list")
            .iter()
            .filter_map(Value::as_u64)
            .map(|id| id as u32)
            .collect()
    };
    golden
        .pointer(pointer)
        .and_then(Value::as_array)
        .expect("cases")
        .iter()
        .map(|case| GoldenCase {
            prompt: case["prompt"].as_str().unwrap_or_default().to_owned(),
            prompt_ids: ids(&case["prompt_ids"]),
            greedy_ids: ids(&case["greedy_ids"]),
            greedy_text: case["greedy_text"].as_str().unwrap_or_default().to_owned(),
            step_margins: case["step_margins"]
                .as_array()
                .expect("step_margins")
                .iter()
                .filter_map(Value::as_f64)
                .collect(),
        })
        .collect()
}

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
