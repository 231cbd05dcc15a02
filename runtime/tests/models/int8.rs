//! Candle with int8 weights (docs/models.md § int8 weights) on the fixture models: greedy
//! tokens measured against transformers' float32 greedy (golden.json), and a sequence's
//! logits bit for bit the same alone and in a batch.

use std::sync::Arc;

use references::{golden_cases, model_path};
use runtime::checkpoint::Checkpoint;
use runtime::model::{Model, Target, WeightFormat};

use crate::batching::assert_model_batched_decode_within;
use crate::generation::greedy;

pub fn load_int8(name: &str) -> Arc<dyn Model> {
    Checkpoint::open(model_path(name))
        .expect("fixture model directory opens")
        .load_with(Target::Cpu, WeightFormat::Int8)
        .expect("fixture model loads with int8 weights")
}

/// Per golden case of `model_dir`: how many leading int8 greedy tokens equal the float32
/// reference's, out of how many are decided there (above the margin floor).
fn agreement(model_dir: &str) -> Vec<(usize, usize)> {
    let model = load_int8(model_dir);
    golden_cases(model_dir)
        .iter()
        .map(|case| {
            let mut slot = model.new_slot().expect("slot");
            let tokens = greedy(
                model.as_ref(),
                &mut slot,
                &case.prompt_ids,
                case.greedy_ids.len(),
            );
            let decided = case.decided_ids();
            let agreeing = tokens
                .iter()
                .zip(decided)
                .take_while(|(a, b)| a == b)
                .count();
            (agreeing, decided.len())
        })
        .collect()
}

/// Leading greedy tokens equal to float32's, summed over the golden cases, as measured on
/// 2026-12-08 (docs/models.md § int8 weights): these random tiny models have top-2 margins
/// far below int8's rounding, so int8 departs early on most prompts of `gpt2-tiny` and
/// `t5-tiny` (CTranslate2 Python's int8 does as well: 62 of 120 on `gpt2-tiny`), and never on
/// `t5-v1_0-tiny`. The floors keep a few tokens of room under the measured figure.
const AGREEMENT_FLOORS: [(&str, usize, usize); 3] = [
    ("gpt2-tiny", 33, 28),
    ("t5-tiny", 48, 42),
    ("t5-v1_0-tiny", 120, 120),
];

#[test]
fn int8_greedy_tokens_agree_with_float32_as_far_as_measured() {
    for (model_dir, measured, floor) in AGREEMENT_FLOORS {
        let per_case = agreement(model_dir);
        let agreeing: usize = per_case.iter().map(|(a, _)| a).sum();
        let decided: usize = per_case.iter().map(|(_, d)| d).sum();
        eprintln!(
            "{model_dir}: {agreeing} of {decided} (measured {measured}); per case {per_case:?}"
        );
        assert!(
            agreeing >= floor,
            "{model_dir}: {agreeing} of {decided} greedy tokens agree with float32, below {floor}"
        );
    }
}

#[test]
fn int8_batched_decode_is_bit_identical_to_decoding_alone() {
    for model_dir in ["gpt2-tiny", "t5-tiny"] {
        assert_model_batched_decode_within(load_int8(model_dir).as_ref(), model_dir, 0.0);
    }
}

/// A paragraph of English to score (the project's own description).
const TEXT: &str = "A control plane asks the agent to deploy a model; it checks that the GPUs \
    NVML reports are the device class asked for, loads GPT-2 or Flan-T5, serves generation \
    through a continuous batcher, and reports readiness as deployment status. It runs under \
    systemd on each GPU host, and its users are platform teams who would otherwise run their \
    own inference servers.";

/// Mean log-likelihood per token of `ids` under `model`, teacher-forced (GPT-2: every
/// prompt position predicts the next token).
fn mean_log_likelihood(model: &dyn Model, ids: &[u32]) -> f64 {
    let mut slot = model.new_slot().expect("slot");
    let logits = model
        .prefill_scored(&mut slot, ids)
        .expect("scored prefill");
    let vocab = model.vocab_size();
    let total: f64 = logits
        .chunks_exact(vocab)
        .zip(&ids[1..])
        .map(|(row, &next)| {
            let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let sum: f64 = row.iter().map(|&v| f64::from(v - max).exp()).sum();
            f64::from(row[next as usize] - max) - sum.ln()
        })
        .sum();
    total / (ids.len() - 1) as f64
}

#[test]
fn int8_log_likelihood_of_a_text_is_close_to_float32s() {
    let checkpoint = Checkpoint::open(model_path("gpt2-tiny")).expect("fixture opens");
    let tokenizer = runtime::tokenizer::Tokenizer::load(&checkpoint).expect("tokenizer");
    let ids = tokenizer.encode(TEXT).expect("encodes");
    let float = checkpoint.load_on(Target::Cpu).expect("float32 model");
    let int8 = load_int8("gpt2-tiny");
    let (f, q) = (
        mean_log_likelihood(float.as_ref(), &ids),
        mean_log_likelihood(int8.as_ref(), &ids),
    );
    eprintln!(
        "gpt2-tiny, {} tokens: mean log-likelihood float32 {f:.5}, int8 {q:.5}, gap {:.5}",
        ids.len(),
        q - f
    );
    // Measured: -11.57999 and -11.57839, a gap of 0.0016 nats per token.
    assert!((q - f).abs() < 0.01, "int8 {q} vs float32 {f}");
}
