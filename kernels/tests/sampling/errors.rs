use kernels::{truncated_distribution, CpuSampler, KernelError, Sampler, SamplingParams};

const SAMPLED: SamplingParams = SamplingParams {
    temperature: 1.0,
    top_k: 0,
    top_p: 1.0,
};

fn sample(
    logits: &[f32],
    vocab: usize,
    params: &[SamplingParams],
    uniforms: &[f32],
) -> KernelError {
    CpuSampler
        .sample(logits, vocab, params, uniforms)
        .expect_err("input is invalid")
}

#[test]
fn non_finite_logits_are_rejected_naming_row_and_token() {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut logits = vec![0.0; 8];
        logits[6] = bad;
        // Row 1, token 2 of a [2, 4] batch; greedy rows are checked too.
        for params in [SAMPLED, SamplingParams::GREEDY] {
            let err = sample(&logits, 4, &[params, params], &[0.1, 0.2]);
            match err {
                KernelError::NonFiniteLogit {
                    row: 1,
                    token: 2,
                    value,
                } => {
                    assert_eq!(value.to_bits(), bad.to_bits())
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

#[test]
fn logits_length_must_be_rows_times_vocab() {
    let err = sample(&[0.0; 7], 4, &[SAMPLED, SAMPLED], &[0.1, 0.2]);
    assert_eq!(
        err,
        KernelError::LogitsLength {
            rows: 2,
            vocab: 4,
            expected: 8,
            given: 7
        }
    );
    assert_eq!(
        err.to_string(),
        "logits length must be rows × vocab = 2 × 4 = 8, given 7"
    );
}

#[test]
fn one_uniform_per_row_is_required() {
    let err = sample(&[0.0; 8], 4, &[SAMPLED, SAMPLED], &[0.1]);
    assert_eq!(
        err,
        KernelError::UniformsLength {
            expected: 2,
            given: 1
        }
    );
}

#[test]
fn a_zero_vocabulary_is_rejected() {
    assert_eq!(sample(&[], 0, &[SAMPLED], &[0.1]), KernelError::EmptyVocab);
    assert_eq!(
        truncated_distribution(&[], &SAMPLED).unwrap_err(),
        KernelError::EmptyVocab
    );
}

#[test]
fn out_of_range_parameters_are_rejected_naming_the_row() {
    let with = |temperature, top_p| SamplingParams {
        temperature,
        top_k: 0,
        top_p,
    };
    for t in [-0.5, f32::NAN, f32::INFINITY] {
        let err = sample(&[0.0; 8], 4, &[SAMPLED, with(t, 1.0)], &[0.1, 0.2]);
        assert!(
            matches!(err, KernelError::InvalidTemperature { row: 1, .. }),
            "{err:?}"
        );
    }
    for p in [-0.1, 1.5, f32::NAN] {
        let err = sample(&[0.0; 8], 4, &[with(1.0, p), SAMPLED], &[0.1, 0.2]);
        assert!(
            matches!(err, KernelError::InvalidTopP { row: 0, .. }),
            "{err:?}"
        );
    }
    let err = sample(&[0.0; 4], 4, &[with(1.0, 1.5)], &[0.1]);
    assert_eq!(
        err.to_string(),
        "top_p at row 0 must be within [0, 1], given 1.5"
    );
}

#[test]
fn uniforms_outside_zero_one_are_rejected() {
    for u in [1.0, -0.1, f32::NAN] {
        let err = sample(&[0.0; 4], 4, &[SAMPLED], &[u]);
        assert!(
            matches!(err, KernelError::InvalidUniform { row: 0, .. }),
            "{err:?}"
        );
    }
}
