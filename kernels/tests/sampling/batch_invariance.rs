use kernels::{CpuSampler, RequestRng, Sampler, SamplingParams};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Every parameter drawn on its own: temperature (greedy included), `top_k` from off through
/// the vocabulary's size to above it, `top_p` anywhere in (0, 1].
fn random_params(rng: &mut StdRng, vocab: usize) -> SamplingParams {
    SamplingParams {
        temperature: [0.0, 0.5, 1.0, 1.7][rng.random_range(0..4)],
        top_k: [
            0,
            1,
            2,
            40,
            vocab - 1,
            vocab,
            vocab + 1,
            5 * vocab,
            rng.random_range(1..=vocab),
        ][rng.random_range(0..9)],
        top_p: [1.0, rng.random_range(0.01f32..1.0)][rng.random_range(0..2)],
    }
}

#[test]
fn a_row_gets_the_same_token_alone_or_inside_any_batch() {
    for seed in 0..8 {
        assert_batch_invariant(seed);
    }
}

fn assert_batch_invariant(seed: u64) {
    let vocab = 2000;
    let mut rng = StdRng::seed_from_u64(11 + seed);
    let rows = 24;
    let logits: Vec<f32> = (0..rows * vocab)
        .map(|_| rng.random_range(-6.0..6.0))
        .collect();
    let params: Vec<SamplingParams> = (0..rows).map(|_| random_params(&mut rng, vocab)).collect();
    let uniforms: Vec<f32> = (0..rows as u64)
        .map(|row| RequestRng::new(seed * 1000 + row).next_uniform())
        .collect();

    let batched = CpuSampler
        .sample(&logits, vocab, &params, &uniforms)
        .unwrap();
    let reversed_order: Vec<usize> = (0..rows).rev().collect();
    let reversed_logits: Vec<f32> = reversed_order
        .iter()
        .flat_map(|&r| logits[r * vocab..(r + 1) * vocab].iter().copied())
        .collect();
    let reversed_params: Vec<_> = reversed_order.iter().map(|&r| params[r]).collect();
    let reversed_uniforms: Vec<_> = reversed_order.iter().map(|&r| uniforms[r]).collect();
    let reversed = CpuSampler
        .sample(
            &reversed_logits,
            vocab,
            &reversed_params,
            &reversed_uniforms,
        )
        .unwrap();

    for row in 0..rows {
        let alone = CpuSampler
            .sample(
                &logits[row * vocab..(row + 1) * vocab],
                vocab,
                &params[row..=row],
                &uniforms[row..=row],
            )
            .unwrap();
        assert_eq!(
            alone[0], batched[row],
            "seed {seed}, row {row} ({:?}): alone vs batched",
            params[row]
        );
        assert_eq!(
            reversed[rows - 1 - row],
            batched[row],
            "seed {seed}, row {row}: in a reversed batch"
        );
    }
}
