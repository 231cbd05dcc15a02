//! The exact law a draw follows, for tests, documentation and other implementations.

use crate::row_scan::scan_row;
use crate::truncation::KeptSet;
use crate::{KernelError, SamplingParams};

/// The tokens one row can produce and their probabilities, in ascending token id (the order
/// the sampler's inverse CDF walks them). Tokens whose weight underflows to zero are left
/// out. Greedy rows give `[(argmax, 1.0)]`.
pub fn truncated_distribution(
    logits: &[f32],
    params: &SamplingParams,
) -> Result<Vec<(u32, f64)>, KernelError> {
    params.validate(0)?;
    let max = scan_row(logits, 0)?;
    if params.is_greedy() {
        return Ok(vec![(max.token, 1.0)]);
    }
    let mut kept = KeptSet::default();
    kept.fill(logits, max, params);
    let total = kept.total();
    Ok(kept
        .members()
        .into_iter()
        .map(|(token, w)| (token, f64::from(w) / total))
        .collect())
}
