//! Logprobs on CTranslate2 (`docs/ctranslate2.md` § Logprobs): each greedy token's
//! `return_scores` logprob equals what CTranslate2's own Python `generate_tokens(...,
//! return_log_prob=True)` reports and transformers' log-softmax, and GPT-2 prompt scoring
//! (`score_batch`) equals transformers' per-token prompt logprobs (golden.json `scoring`).

use runtime::ct2::{convert, ComputeType, Ct2Device, Ct2LoadOptions, Ct2Model, Ct2Request};
use runtime::ct2::{Ct2Sampling, Quantization, StepControl};
use serde_json::Value;

use references::fixtures_dir as fixtures;

use crate::common::Scratch;

/// golden.json as JSON: its `scoring` section holds the reference logprobs.
fn golden() -> Value {
    let bytes = std::fs::read(fixtures().join("golden.json")).expect("read golden.json");
    serde_json::from_slice(&bytes).expect("golden.json is JSON")
}

const TOLERANCE: f64 = 1e-4;

fn load(model: &str) -> (Scratch, Ct2Model) {
    let dir = Scratch::new("ct2-logprobs");
    let converted =
        convert(&fixtures().join(model), dir.path(), Quantization::Float32).expect("convert");
    let options = Ct2LoadOptions {
        device: Ct2Device::Cpu,
        device_index: 0,
        compute_type: ComputeType::Float32,
        threads: 0,
    };
    let model = Ct2Model::load(&converted.dir, converted.architecture, &options).expect("load");
    (dir, model)
}

fn numbers(value: &Value) -> Vec<Option<f64>> {
    value
        .as_array()
        .expect("list")
        .iter()
        .map(Value::as_f64)
        .collect()
}

fn ids(value: &Value) -> Vec<u32> {
    value
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_u64().expect("id") as u32)
        .collect()
}

fn assert_greedy_logprobs_match(arch: &str, dir: &str) {
    let (_scratch, model) = load(dir);
    let golden = golden();
    let cases = golden["models"][arch]["cases"].as_array().expect("cases");
    let scoring = golden["models"][arch]["scoring"]
        .as_array()
        .expect("scoring");
    for (case, reference) in cases.iter().zip(scoring) {
        let expected_ids = ids(&reference["ctranslate2_greedy_ids"]);
        let request = Ct2Request {
            prompt: ids(&case["prompt_ids"]),
            max_new_tokens: expected_ids.len(),
            sampling: Ct2Sampling::GREEDY,
            logprobs: true,
        };
        let mut steps = Vec::new();
        model
            .generate(&[request], &mut |event| {
                steps.push((event.token_id, event.logprob));
                StepControl::Continue
            })
            .expect("generate");
        let python = numbers(&reference["ctranslate2_greedy_logprobs"]);
        let transformers = numbers(&reference["greedy_logprobs"]);
        for (step, (token, logprob)) in steps.iter().enumerate() {
            assert_eq!(*token, expected_ids[step], "{arch} step {step}");
            let got = f64::from(logprob.expect("score requested"));
            for (who, want) in [
                ("CTranslate2", python[step]),
                ("transformers", transformers[step]),
            ] {
                let want = want.expect("number");
                assert!(
                    (got - want).abs() <= TOLERANCE,
                    "{arch} step {step}: {got} vs {who} {want}"
                );
            }
        }
    }
}

#[test]
fn gpt2_step_logprobs_equal_ctranslate2_python_and_transformers() {
    assert_greedy_logprobs_match("gpt2", "gpt2-tiny");
}

#[test]
fn t5_step_logprobs_equal_ctranslate2_python_and_transformers() {
    assert_greedy_logprobs_match("t5", "t5-tiny");
}

#[test]
fn without_logprobs_no_scores_are_reported() {
    let (_scratch, model) = load("gpt2-tiny");
    let request = Ct2Request {
        prompt: vec![15496, 11],
        max_new_tokens: 3,
        sampling: Ct2Sampling::GREEDY,
        logprobs: false,
    };
    model
        .generate(&[request], &mut |event| {
            assert!(event.logprob.is_none());
            StepControl::Continue
        })
        .expect("generate");
}

#[test]
fn gpt2_prompt_scores_equal_transformers_and_t5_refuses() {
    let (_scratch, model) = load("gpt2-tiny");
    assert!(model.scores_prompts());
    let golden = golden();
    let cases = golden["models"]["gpt2"]["cases"].as_array().expect("cases");
    let scoring = golden["models"]["gpt2"]["scoring"]
        .as_array()
        .expect("scoring");
    let prompts: Vec<Vec<u32>> = cases.iter().map(|c| ids(&c["prompt_ids"])).collect();
    let batch: Vec<&[u32]> = prompts.iter().map(Vec::as_slice).collect();
    let scores = model.score_prompts(&batch).expect("scores");
    for ((prompt, got), reference) in prompts.iter().zip(&scores).zip(scoring) {
        let want = numbers(&reference["prompt_logprobs"]);
        assert_eq!(got.len() + 1, prompt.len());
        assert!(want[0].is_none());
        for (i, (got, want)) in got.iter().zip(&want[1..]).enumerate() {
            let want = want.expect("number");
            assert!(
                (f64::from(*got) - want).abs() <= TOLERANCE,
                "prompt {prompt:?} token {}: {got} vs transformers {want}",
                i + 1
            );
        }
    }
    let (_scratch, t5) = load("t5-tiny");
    assert!(!t5.scores_prompts());
    assert!(t5.score_prompts(&[&[1, 2][..]]).is_err());
}
