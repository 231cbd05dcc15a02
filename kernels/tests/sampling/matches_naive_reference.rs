use std::collections::HashMap;

use kernels::{truncated_distribution, CpuSampler, Sampler, SamplingParams};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::naive::{naive_distribution, naive_draw};

const TEMPERATURES: [f32; 5] = [0.05, 0.7, 1.0, 5.0, 100.0];
const TOP_PS: [f32; 5] = [1.0, 0.9, 0.5, 1e-4, 0.0];

fn top_ks(vocab: usize) -> [usize; 6] {
    [0, 1, 5, 50, vocab, vocab + 10]
}

fn random_logits(rng: &mut StdRng, vocab: usize, with_ties: bool) -> Vec<f32> {
    (0..vocab)
        .map(|_| {
            let x: f32 = rng.random_range(-8.0..8.0);
            // Integer logits force many exact ties, exercising the tie rule.
            if with_ties {
                x.round()
            } else {
                x
            }
        })
        .collect()
}

fn all_params(vocab: usize) -> Vec<SamplingParams> {
    let mut all = Vec::new();
    for temperature in TEMPERATURES {
        for top_k in top_ks(vocab) {
            for top_p in TOP_PS {
                all.push(SamplingParams {
                    temperature,
                    top_k,
                    top_p,
                });
            }
        }
    }
    all
}

/// The kernel's law equals the reference's: same tokens in the same walk order, same
/// probabilities; tokens the kernel omits only where f32 underflow makes them impossible.
fn assert_same_law(logits: &[f32], params: &SamplingParams) {
    let kernel = truncated_distribution(logits, params).expect("valid row");
    let reference = naive_distribution(logits, params);
    let kernel_p: HashMap<u32, f64> = kernel.iter().copied().collect();
    for &(id, p) in &reference {
        let q = kernel_p.get(&id).copied().unwrap_or(0.0);
        assert!(
            (p - q).abs() <= 1e-6 + 1e-4 * p,
            "token {id}: reference {p}, kernel {q}, params {params:?}, vocab {}",
            logits.len()
        );
    }
    let reference_order: Vec<u32> = reference
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| kernel_p.contains_key(id))
        .collect();
    let kernel_order: Vec<u32> = kernel.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        kernel_order, reference_order,
        "walk order, params {params:?}"
    );
    let total: f64 = kernel.iter().map(|(_, p)| p).sum();
    assert!((total - 1.0).abs() < 1e-9, "probabilities sum to {total}");
}

#[test]
fn law_matches_reference_for_every_parameter_combination() {
    let mut rng = StdRng::seed_from_u64(7);
    for vocab in [1, 2, 7, 100, 1000] {
        for with_ties in [false, true] {
            let logits = random_logits(&mut rng, vocab, with_ties);
            for params in all_params(vocab) {
                assert_same_law(&logits, &params);
            }
        }
    }
}

#[test]
fn law_matches_reference_at_gpt2_vocabulary_size() {
    let mut rng = StdRng::seed_from_u64(8);
    for with_ties in [false, true] {
        let logits = random_logits(&mut rng, 50257, with_ties);
        // Top-k up to 256 runs a bounded heap, above it quickselect: both are covered.
        for (temperature, top_k, top_p) in [
            (1.0, 0, 1.0),
            (0.7, 50, 1.0),
            (0.7, 0, 0.9),
            (0.3, 0, 0.95),
            (1.3, 400, 0.8),
            (0.05, 0, 0.999),
            (1.0, 3000, 1.0),
            (0.8, 2000, 0.9),
            (50.0, 0, 0.5),
        ] {
            let params = SamplingParams {
                temperature,
                top_k,
                top_p,
            };
            assert_same_law(&logits, &params);
        }
    }
}

#[test]
fn draws_pick_the_reference_inverse_cdf_token_for_the_same_uniform() {
    let mut rng = StdRng::seed_from_u64(9);
    let vocab = 300;
    let mut checked = 0;
    for _ in 0..4 {
        let logits = random_logits(&mut rng, vocab, false);
        for params in all_params(vocab) {
            let uniforms: Vec<f32> = (0..8).map(|_| rng.random_range(0.0..1.0)).collect();
            let rows = vec![params; uniforms.len()];
            let batch: Vec<f32> = logits.repeat(uniforms.len());
            let tokens = CpuSampler
                .sample(&batch, vocab, &rows, &uniforms)
                .expect("valid batch");
            let law = naive_distribution(&logits, &params);
            for (&token, &u) in tokens.iter().zip(&uniforms) {
                let (expected, distance_to_step) = naive_draw(&law, u);
                if distance_to_step > 1e-5 {
                    assert_eq!(token, expected, "uniform {u}, params {params:?}");
                    checked += 1;
                }
            }
        }
    }
    // Nearly every draw is far from a CDF step; the comparison must not be vacuous.
    assert!(
        checked > 4 * 150 * 8 * 9 / 10,
        "only {checked} draws compared"
    );
}

#[test]
fn top_k_one_always_returns_the_argmax() {
    let mut rng = StdRng::seed_from_u64(10);
    let logits = random_logits(&mut rng, 1000, true);
    let argmax = naive_distribution(&logits, &SamplingParams::GREEDY)[0].0;
    for u in [0.0, 0.3, 0.999_999] {
        let params = SamplingParams {
            temperature: 2.0,
            top_k: 1,
            top_p: 1.0,
        };
        let token = CpuSampler.sample(&logits, 1000, &[params], &[u]).unwrap();
        assert_eq!(token, vec![argmax]);
    }
}

#[test]
fn top_k_ties_at_the_cut_keep_the_lowest_token_ids() {
    let logits = [1.0, 3.0, 2.0, 2.0, 2.0, 0.5];
    let params = SamplingParams {
        temperature: 1.0,
        top_k: 3,
        top_p: 1.0,
    };
    let law = truncated_distribution(&logits, &params).unwrap();
    let ids: Vec<u32> = law.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, vec![1, 2, 3]);
}

#[test]
fn top_p_keeps_the_smallest_set_whose_mass_reaches_p() {
    // Probabilities 0.5, 0.3, 0.2 (logits are their logs).
    let logits = [0.2f32.ln(), 0.5f32.ln(), 0.3f32.ln()];
    let keep = |top_p| {
        let params = SamplingParams {
            temperature: 1.0,
            top_k: 0,
            top_p,
        };
        let law = truncated_distribution(&logits, &params).unwrap();
        law.iter().map(|(id, _)| *id).collect::<Vec<u32>>()
    };
    assert_eq!(keep(0.0), vec![1], "at least one token");
    assert_eq!(keep(0.4), vec![1]);
    assert_eq!(keep(0.7), vec![1, 2]);
    assert_eq!(keep(0.95), vec![0, 1, 2]);
}

#[test]
fn extreme_finite_logits_keep_the_law_without_overflow() {
    // max - min overflows f32 to infinity; weights must still be exact.
    let logits = [f32::MAX, -f32::MAX, 0.0, f32::MAX, 1e30, -1e-30];
    for params in all_params(logits.len()) {
        assert_same_law(&logits, &params);
        let token = CpuSampler
            .sample(&logits, logits.len(), &[params], &[0.999_999])
            .unwrap();
        // Only the two tokens at f32::MAX carry any weight at these temperatures.
        assert!(token[0] == 0 || token[0] == 3, "{params:?} gave {token:?}");
    }
}
