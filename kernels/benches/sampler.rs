//! Per-step cost of `CpuSampler` on a GPT-2-sized batch: `cargo bench -p kernels`.
//! A measurement, not a test; figures go to `docs/sampling.md`.

use std::time::Instant;

use kernels::{CpuSampler, RequestRng, Sampler, SamplingParams};

const VOCAB: usize = 50257;
const ROWS: usize = 256;
const STEPS: usize = 5;

fn main() {
    // Logits shaped like a language model's: a broad bell-shaped bulk (sum of four
    // uniforms). A cheap xorshift makes them; the request RNG draws the uniforms.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    let logits: Vec<f32> = (0..ROWS * VOCAB)
        .map(|_| ((0..4).map(|_| uniform()).sum::<f32>() - 2.0) * 4.0)
        .collect();
    let mut rng = RequestRng::new(1);
    let uniforms: Vec<f32> = (0..ROWS).map(|_| rng.next_uniform()).collect();
    println!("batch {ROWS} × vocab {VOCAB}, mean of {STEPS} steps");
    for (name, temperature, top_k, top_p) in [
        ("greedy", 0.0, 0, 1.0),
        ("T=1", 1.0, 0, 1.0),
        ("T=0.7 top_k=50", 0.7, 50, 1.0),
        ("T=0.7 top_k=50 top_p=0.9", 0.7, 50, 0.9),
        ("T=0.7 top_p=0.9", 0.7, 0, 0.9),
        ("T=0.7 top_k=1000 top_p=0.95", 0.7, 1000, 0.95),
    ] {
        // `cargo bench -p kernels -- top_p` runs only the cases whose name contains "top_p".
        if let Some(filter) = std::env::args().nth(1).filter(|a| !a.starts_with('-')) {
            if !name.contains(filter.as_str()) {
                continue;
            }
        }
        let params = vec![
            SamplingParams {
                temperature,
                top_k,
                top_p,
            };
            ROWS
        ];
        let start = Instant::now();
        for _ in 0..STEPS {
            let tokens = CpuSampler
                .sample(&logits, VOCAB, &params, &uniforms)
                .expect("valid batch");
            std::hint::black_box(tokens);
        }
        let per_step = start.elapsed().as_secs_f64() / STEPS as f64;
        println!(
            "{name:<30} {:8.2} ms/step  {:7.1} µs/row",
            per_step * 1e3,
            per_step * 1e6 / ROWS as f64
        );
    }
}
