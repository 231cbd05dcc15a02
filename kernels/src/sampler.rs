//! The batch entry point: one token per logits row, each row with its own parameters and
//! its own uniform, so a row's token never depends on the other rows of the batch.

use crate::row_scan::scan_row;
use crate::truncation::KeptSet;
use crate::{KernelError, SamplingParams};

/// Picks one token per row of a row-major `[rows, vocab]` logits batch, where
/// `rows = params.len() = uniforms.len()`. Implementations must follow the law of
/// [`truncated_distribution`](crate::truncated_distribution) and walk the kept tokens by
/// inverse CDF in ascending token id, so that a given uniform picks the same token on every
/// device (up to rounding at a CDF step).
pub trait Sampler: Send + Sync {
    fn sample(
        &self,
        logits: &[f32],
        vocab: usize,
        params: &[SamplingParams],
        uniforms: &[f32],
    ) -> Result<Vec<u32>, KernelError>;
}

/// The reference implementation, always available.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuSampler;

impl Sampler for CpuSampler {
    fn sample(
        &self,
        logits: &[f32],
        vocab: usize,
        params: &[SamplingParams],
        uniforms: &[f32],
    ) -> Result<Vec<u32>, KernelError> {
        check_batch_shape(logits.len(), vocab, params.len(), uniforms.len())?;
        let mut kept = KeptSet::default();
        logits
            .chunks_exact(vocab)
            .zip(params.iter().zip(uniforms))
            .enumerate()
            .map(|(row, (logits, (params, &uniform)))| {
                sample_row(logits, row, params, uniform, &mut kept)
            })
            .collect()
    }
}

fn check_batch_shape(
    logits_len: usize,
    vocab: usize,
    rows: usize,
    uniforms_len: usize,
) -> Result<(), KernelError> {
    if vocab == 0 {
        return Err(KernelError::EmptyVocab);
    }
    if uniforms_len != rows {
        return Err(KernelError::UniformsLength {
            expected: rows,
            given: uniforms_len,
        });
    }
    let expected = rows.checked_mul(vocab);
    if expected != Some(logits_len) {
        return Err(KernelError::LogitsLength {
            rows,
            vocab,
            expected: expected.unwrap_or(usize::MAX),
            given: logits_len,
        });
    }
    Ok(())
}

fn sample_row(
    logits: &[f32],
    row: usize,
    params: &SamplingParams,
    uniform: f32,
    kept: &mut KeptSet,
) -> Result<u32, KernelError> {
    params.validate(row)?;
    if !(0.0..1.0).contains(&uniform) {
        return Err(KernelError::InvalidUniform {
            row,
            value: uniform,
        });
    }
    let max = scan_row(logits, row)?;
    if params.is_greedy() {
        return Ok(max.token);
    }
    kept.fill(logits, max, params);
    // `draw` cannot miss for a uniform below 1; the top-ranked token is the safe answer.
    Ok(kept.draw(uniform).unwrap_or(max.token))
}
