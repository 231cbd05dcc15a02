//! Our GPT-2 and T5 reproduce Hugging Face transformers: the step-0 logits to 1e-4 and the
//! greedy continuation token for token (up to the first step whose reference margin is too
//! small to be reproducible).

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use references::{golden_model, model_path};

use crate::generation::{greedy, load_fixture};

const LOGITS_TOLERANCE: f32 = 1e-4;

fn reference_logits(model_dir: &str) -> HashMap<String, Tensor> {
    let path = model_path(model_dir).join("reference_step0_logits.safetensors");
    candle_core::safetensors::load(&path, &Device::Cpu).expect("reference logits load")
}

fn assert_step0_logits_match(model_dir: &str) {
    let golden = golden_model(model_dir);
    let model = load_fixture(&golden.dir);
    let reference = reference_logits(&golden.dir);
    let mut slot = model.new_slot().expect("slot");
    for (i, case) in golden.cases.iter().enumerate() {
        let expected: Vec<f32> = reference[&format!("prompt{i}")]
            .to_vec1()
            .expect("f32 [vocab]");
        let got = model.prefill(&mut slot, &case.prompt_ids).expect("prefill");
        assert_eq!(got.len(), expected.len());
        let worst = got
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            worst <= LOGITS_TOLERANCE,
            "{}: prompt {:?}: max |logit - reference| = {worst}",
            golden.dir,
            case.prompt
        );
    }
}

fn assert_greedy_matches(model_dir: &str) {
    let golden = golden_model(model_dir);
    let model = load_fixture(&golden.dir);
    let mut slot = model.new_slot().expect("slot");
    for case in &golden.cases {
        let expected = case.decided_ids();
        assert!(
            expected.len() >= 20,
            "{}: too few trusted steps",
            case.prompt
        );
        let got = greedy(model.as_ref(), &mut slot, &case.prompt_ids, expected.len());
        assert_eq!(
            got, expected,
            "{}: greedy ids of {:?}",
            golden.dir, case.prompt
        );
    }
}

#[test]
fn gpt2_step0_logits_match_transformers() {
    assert_step0_logits_match("gpt2-tiny");
}

#[test]
fn gpt2_greedy_generation_matches_transformers() {
    assert_greedy_matches("gpt2-tiny");
}

#[test]
fn t5_step0_logits_match_transformers() {
    assert_step0_logits_match("t5-tiny");
}

#[test]
fn t5_greedy_generation_matches_transformers() {
    assert_greedy_matches("t5-tiny");
}

/// T5 v1.0 shape: relu feed-forward and the head tied to the shared embedding.
#[test]
fn t5_v1_0_relu_tied_head_step0_logits_match_transformers() {
    assert_step0_logits_match("t5-v1_0-tiny");
}

#[test]
fn t5_v1_0_relu_tied_head_greedy_generation_matches_transformers() {
    assert_greedy_matches("t5-v1_0-tiny");
}
