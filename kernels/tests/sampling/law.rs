//! 2,000 seeded draws from real GPT-2 reference logits follow softmax(logits / T) restricted
//! to the top-k / top-p set.
//!
//! Each configuration is a Pearson chi-square test at significance ALPHA: for a correct
//! sampler, a run with a random seed fails with probability ALPHA per configuration (four
//! configurations: at most 4e-4 overall). The seeds are fixed, so the outcome is
//! deterministic; the power check below shows the same test rejects a wrong law.

use std::collections::HashMap;

use kernels::{truncated_distribution, CpuSampler, RequestRng, Sampler, SamplingParams};
use safetensors::SafeTensors;

use crate::chi_square::goodness_of_fit;
use crate::naive::naive_distribution;

const DRAWS: usize = 2_000;
const ROWS_PER_CALL: usize = 100;
const ALPHA: f64 = 1e-4;
const LOGITS_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/gpt2-tiny/reference_step0_logits.safetensors"
);

fn reference_logits() -> Vec<f32> {
    let bytes = std::fs::read(LOGITS_FILE).expect("fixture present");
    let tensors = SafeTensors::deserialize(&bytes).expect("valid safetensors");
    let prompt0 = tensors.tensor("prompt0").expect("tensor prompt0");
    assert_eq!(prompt0.shape(), &[50257]);
    prompt0
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Token → count over `DRAWS` draws with one request's seeded stream.
fn seeded_draws(logits: &[f32], params: SamplingParams, seed: u64) -> HashMap<u32, usize> {
    let vocab = logits.len();
    let batch = logits.repeat(ROWS_PER_CALL);
    let rows = vec![params; ROWS_PER_CALL];
    let mut rng = RequestRng::new(seed);
    let mut counts = HashMap::new();
    for _ in 0..DRAWS / ROWS_PER_CALL {
        let uniforms: Vec<f32> = (0..ROWS_PER_CALL).map(|_| rng.next_uniform()).collect();
        for token in CpuSampler.sample(&batch, vocab, &rows, &uniforms).unwrap() {
            *counts.entry(token).or_insert(0) += 1;
        }
    }
    counts
}

fn params(temperature: f32, top_k: usize, top_p: f32) -> SamplingParams {
    SamplingParams {
        temperature,
        top_k,
        top_p,
    }
}

#[test]
fn seeded_draws_follow_the_truncated_softmax_of_reference_logits() {
    let logits = reference_logits();
    for (seed, config) in [
        (1, params(1.0, 25, 1.0)), // top-k alone: 25 tokens
        (2, params(0.3, 0, 0.5)),  // top-p alone over the full vocabulary: ~13 tokens
        (3, params(0.3, 0, 0.9)),  // ~440 tokens, most pooled
        (4, params(0.5, 60, 0.7)), // top-k then top-p
    ] {
        let law = truncated_distribution(&logits, &config).unwrap();
        // The law under test is itself the textbook one.
        let reference = naive_distribution(&logits, &config);
        assert_eq!(law.len(), reference.len(), "{config:?}");
        for ((id, p), (ref_id, ref_p)) in law.iter().zip(&reference) {
            assert_eq!(id, ref_id);
            assert!((p - ref_p).abs() < 1e-6, "{config:?}: {p} vs {ref_p}");
        }

        let counts = seeded_draws(&logits, config, seed);
        let fit = goodness_of_fit(&law, &counts);
        eprintln!(
            "{config:?}: {} tokens, X² = {:.2}, {fit:?}",
            law.len(),
            fit.statistic
        );
        assert_eq!(
            fit.outside_support, 0,
            "draws outside the kept set, {config:?}"
        );
        assert!(fit.degrees_of_freedom >= 5, "too few bins to test, {fit:?}");
        assert!(fit.p_value > ALPHA, "{config:?} rejected: {fit:?}");
    }
}

#[test]
fn the_law_test_rejects_draws_from_a_different_temperature() {
    let logits = reference_logits();
    let drawn_at = params(1.0, 25, 1.0);
    let counts = seeded_draws(&logits, drawn_at, 1);
    let wrong_law = truncated_distribution(&logits, &params(0.5, 25, 1.0)).unwrap();
    let fit = goodness_of_fit(&wrong_law, &counts);
    eprintln!("wrong temperature: {fit:?}");
    assert!(fit.p_value < ALPHA, "a wrong law was accepted: {fit:?}");
}

#[test]
fn the_law_test_rejects_draws_that_leave_the_top_p_set() {
    let logits = reference_logits();
    let counts = seeded_draws(&logits, params(0.3, 0, 0.9), 3);
    let narrower = truncated_distribution(&logits, &params(0.3, 0, 0.5)).unwrap();
    assert!(goodness_of_fit(&narrower, &counts).outside_support > 0);
}
