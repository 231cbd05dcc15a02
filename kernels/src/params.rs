//! Per-row sampling parameters and their validation.

use crate::KernelError;

/// How one row is sampled: temperature → top-k → top-p → draw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingParams {
    /// 0 means greedy (argmax), whatever `top_k` and `top_p` say.
    pub temperature: f32,
    /// Keep the `top_k` most likely tokens; 0 (or >= vocab) turns it off.
    pub top_k: usize,
    /// Keep the smallest most-likely set whose mass reaches `top_p`; 1.0 turns it off.
    pub top_p: f32,
}

impl SamplingParams {
    /// Greedy decoding: argmax, lowest token id on ties.
    pub const GREEDY: SamplingParams = SamplingParams {
        temperature: 0.0,
        top_k: 0,
        top_p: 1.0,
    };

    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }

    /// Checks the ranges; `row` only labels the error.
    pub(crate) fn validate(&self, row: usize) -> Result<(), KernelError> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(KernelError::InvalidTemperature {
                row,
                value: self.temperature,
            });
        }
        if !(0.0..=1.0).contains(&self.top_p) {
            return Err(KernelError::InvalidTopP {
                row,
                value: self.top_p,
            });
        }
        Ok(())
    }
}
