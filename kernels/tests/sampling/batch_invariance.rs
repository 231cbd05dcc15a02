use kernels::{CpuSampler, RequestRng, Sampler, SamplingParams};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[test]
fn a_row_gets_the_same_token_alone_or_inside_any_batch() {
    let vocab = 2000;
    let mut rng = StdRng::seed_from_u64(11);
    let rows = 24;
    let logits: Vec<f32> = (0..rows * vocab)
        .map(|_| rng.random_range(-6.0..6.0))
        .collect();
    let params: Vec<SamplingParams> = (0..rows)
        .map(|row| SamplingParams {
            temperature: [0.0, 0.5, 1.0, 1.7][row % 4],
            top_k: [0, 1, 40, 5000][row % 3],
            top_p: [1.0, 0.9, 0.3][row % 3],
        })
        .collect();
    let uniforms: Vec<f32> = (0..rows as u64)
        .map(|seed| RequestRng::new(seed).next_uniform())
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
        assert_eq!(alone[0], batched[row], "row {row} alone vs batched");
        assert_eq!(
            reversed[rows - 1 - row],
            batched[row],
            "row {row} in reversed batch"
        );
    }
}
