//! One pass over a logits row: reject non-finite values and find the argmax.

use crate::KernelError;

/// The largest logit of a row and where it is (lowest token id on ties).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowMax {
    pub token: u32,
    pub value: f32,
}

/// Fails on the first NaN or ±inf, naming the row and token. `row` only labels the error.
pub(crate) fn scan_row(logits: &[f32], row: usize) -> Result<RowMax, KernelError> {
    let mut best = RowMax {
        token: 0,
        value: f32::NEG_INFINITY,
    };
    for (token, &value) in logits.iter().enumerate() {
        if !value.is_finite() {
            return Err(KernelError::NonFiniteLogit { row, token, value });
        }
        // Strictly greater: the first (lowest) token id wins a tie.
        if value > best.value {
            best = RowMax {
                token: token as u32,
                value,
            };
        }
    }
    if logits.is_empty() {
        return Err(KernelError::EmptyVocab);
    }
    Ok(best)
}
