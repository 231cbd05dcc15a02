use kernels::{truncated_distribution, CpuSampler, Sampler, SamplingParams};

const LOGITS: [f32; 6] = [0.5, 4.0, -1.0, 4.0, 3.9, 0.0];

#[test]
fn temperature_zero_returns_the_argmax_whatever_top_k_and_top_p_say() {
    for (top_k, top_p) in [(0, 1.0), (1, 1.0), (3, 0.1), (100, 0.0), (2, 0.5)] {
        let params = SamplingParams {
            temperature: 0.0,
            top_k,
            top_p,
        };
        for u in [0.0, 0.5, 0.999] {
            let token = CpuSampler.sample(&LOGITS, 6, &[params], &[u]).unwrap();
            assert_eq!(token, vec![1], "top_k {top_k}, top_p {top_p}, uniform {u}");
        }
        assert_eq!(
            truncated_distribution(&LOGITS, &params).unwrap(),
            vec![(1, 1.0)]
        );
    }
}

#[test]
fn greedy_ties_go_to_the_lowest_token_id() {
    let logits = [2.0, 7.0, 7.0, 7.0];
    let token = CpuSampler
        .sample(&logits, 4, &[SamplingParams::GREEDY], &[0.9])
        .unwrap();
    assert_eq!(token, vec![1]);
}

#[test]
fn a_tiny_temperature_concentrates_on_the_argmax() {
    let params = SamplingParams {
        temperature: 1e-6,
        top_k: 0,
        top_p: 1.0,
    };
    let law = truncated_distribution(&[0.5, 4.0, -1.0, 3.9], &params).unwrap();
    assert_eq!(law, vec![(1, 1.0)]);
}
