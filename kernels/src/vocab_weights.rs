//! Softmax weights over a whole vocabulary, summed in fixed blocks.
//!
//! One sequential f64 sum over 50k tokens is a 50k-long chain of dependent additions; sums
//! of independent 64-token blocks overlap in the CPU and the block totals are then a short
//! chain. The inverse-CDF walk repeats exactly these additions (block by block, then inside
//! the block), so it reaches the total exactly and lands on a token of nonzero weight.

use crate::exp::exp_nonpositive;

const BLOCK: usize = 64;

#[derive(Debug, Default)]
pub(crate) struct VocabWeights {
    /// exp((logit - max) / T) per token; 0 for tokens a truncation removed.
    weights: Vec<f32>,
    block_sums: Vec<f64>,
    total: f64,
}

impl VocabWeights {
    /// Computes every token's weight and the sums. `max` is the row's largest logit.
    pub fn fill(&mut self, logits: &[f32], max: f32, temperature: f32) {
        self.weights.clear();
        self.weights.extend(
            logits
                .iter()
                .map(|&logit| exp_nonpositive((logit - max) / temperature)),
        );
        self.sum();
    }

    /// Zeroes the weight of every token `keep` rejects, and re-sums.
    pub fn retain(&mut self, logits: &[f32], keep: impl Fn(u32, f32) -> bool) {
        for (id, (w, &logit)) in self.weights.iter_mut().zip(logits).enumerate() {
            if !keep(id as u32, logit) {
                *w = 0.0;
            }
        }
        self.sum();
    }

    fn sum(&mut self) {
        self.block_sums.clear();
        self.block_sums.extend(
            self.weights
                .chunks(BLOCK)
                .map(|block| block.iter().map(|&w| f64::from(w)).sum::<f64>()),
        );
        self.total = self.block_sums.iter().sum();
    }

    pub fn weights(&self) -> &[f32] {
        &self.weights
    }

    pub fn total(&self) -> f64 {
        self.total
    }

    /// The first token (in id order) whose cumulative weight exceeds `target`, for
    /// `0 <= target < total`.
    pub fn inverse_cdf(&self, target: f64) -> Option<u32> {
        let mut before = 0.0;
        for (block, &block_sum) in self.block_sums.iter().enumerate() {
            let after = before + block_sum;
            if after > target {
                let start = block * BLOCK;
                let mut inside = 0.0;
                for (offset, &w) in self.weights[start..].iter().take(BLOCK).enumerate() {
                    inside += f64::from(w);
                    if before + inside > target {
                        return Some((start + offset) as u32);
                    }
                }
            }
            before = after;
        }
        None
    }
}
