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
            // A select rather than a branch: kept and dropped tokens interleave randomly.
            *w = if keep(id as u32, logit) { *w } else { 0.0 };
        }
        self.sum();
    }

    fn sum(&mut self) {
        // Eight blocks at a time, one accumulator each: eight independent addition chains
        // keep the FPU busy. Each block is still summed first to last, as the walk does.
        const LANES: usize = 8;
        self.block_sums.clear();
        let mut groups = self.weights.chunks_exact(BLOCK * LANES);
        for group in groups.by_ref() {
            let mut sums = [0.0f64; LANES];
            for i in 0..BLOCK {
                for (lane, sum) in sums.iter_mut().enumerate() {
                    *sum += f64::from(group[lane * BLOCK + i]);
                }
            }
            self.block_sums.extend(sums);
        }
        self.block_sums.extend(
            groups
                .remainder()
                .chunks(BLOCK)
                .map(|block| block.iter().fold(0.0, |sum, &w| sum + f64::from(w))),
        );
        self.total = self.block_sums.iter().fold(0.0, |total, &s| total + s);
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
        let mut before = 0.0f64;
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
