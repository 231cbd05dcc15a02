//! One pass over a logits row: reject non-finite values and find the argmax.

use crate::rank::total_order_key;
use crate::KernelError;

/// The largest logit of a row and where it is (lowest token id on ties).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowMax {
    pub token: u32,
    pub value: f32,
}

/// Fails on the first NaN or ±inf, naming the row and token. `row` only labels the error.
pub(crate) fn scan_row(logits: &[f32], row: usize) -> Result<RowMax, KernelError> {
    // Two branch-free passes the compiler vectorises, then a search for the position:
    // cheaper than one branchy pass over 50k logits.
    let all_finite = logits.iter().fold(true, |ok, v| ok & v.is_finite());
    if !all_finite {
        if let Some((token, &value)) = logits.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(KernelError::NonFiniteLogit { row, token, value });
        }
    }
    // Ranked by IEEE totalOrder like every truncation (-0.0 below +0.0).
    let best = logits.iter().map(|&v| total_order_key(v)).max();
    let best = best.ok_or(KernelError::EmptyVocab)?;
    let token = logits
        .iter()
        .position(|&v| total_order_key(v) == best)
        .unwrap_or(0);
    Ok(RowMax {
        token: token as u32,
        value: logits[token],
    })
}
