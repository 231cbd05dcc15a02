//! Temperature → top-k → top-p: which tokens a draw may pick, with what weight, in which
//! order the inverse CDF walks them. The sampler and `truncated_distribution` share this
//! code, so the law the tests check is the law the sampler draws from.
//!
//! Ranking is by raw logit, descending, ties broken by the lower token id. Dividing by a
//! positive temperature preserves that order, and ranking the raw values avoids ties
//! created by rounding after the division.

use std::cmp::Ordering;

use crate::row_scan::RowMax;
use crate::SamplingParams;

/// First chunk the top-p search sorts when top-k is off; it grows ×4 until the mass is reached.
const TOP_P_FIRST_CHUNK: usize = 64;
const TOP_P_CHUNK_GROWTH: usize = 4;

/// Buffers reused across the rows of one batch, so a decode step allocates once.
#[derive(Debug, Default)]
pub(crate) struct KeptSet {
    /// Token ids in walk order: descending probability when truncated, id order otherwise.
    pub ids: Vec<u32>,
    /// Unnormalised weights exp((logit - max) / T), aligned with `ids`.
    pub weights: Vec<f64>,
    /// Sum of `weights`, accumulated in walk order (the draw accumulates the same way).
    pub total: f64,
}

impl KeptSet {
    /// Fills the set for one row. Requires `temperature > 0` and finite logits.
    pub fn fill(&mut self, logits: &[f32], max: RowMax, params: &SamplingParams) {
        let vocab = logits.len();
        let weight = |token: u32| -> f64 {
            let scaled = (logits[token as usize] - max.value) / params.temperature;
            f64::from(scaled.exp())
        };
        let top_k_on = params.top_k > 0 && params.top_k < vocab;
        let top_p_on = params.top_p < 1.0;

        self.ids.clear();
        self.weights.clear();
        self.ids.extend(0..vocab as u32);

        if top_k_on {
            let order = by_rank(logits);
            self.ids.select_nth_unstable_by(params.top_k - 1, order);
            self.ids.truncate(params.top_k);
            self.ids.sort_unstable_by(order);
            self.weights.extend(self.ids.iter().map(|&t| weight(t)));
            if top_p_on {
                let mass: f64 = self.weights.iter().sum();
                let kept = nucleus_len(&self.weights, mass, params.top_p);
                self.ids.truncate(kept);
                self.weights.truncate(kept);
            }
        } else if top_p_on {
            self.fill_nucleus_of_full_vocab(logits, params.top_p, weight);
        } else {
            self.weights.extend(self.ids.iter().map(|&t| weight(t)));
        }
        self.total = self.weights.iter().sum();
    }

    /// Top-p over the whole vocabulary without a full sort: the normaliser needs every
    /// weight, but only the head of the ranking is ever sorted, chunk by chunk.
    fn fill_nucleus_of_full_vocab(
        &mut self,
        logits: &[f32],
        top_p: f32,
        weight: impl Fn(u32) -> f64,
    ) {
        let vocab = logits.len();
        let mass: f64 = (0..vocab as u32).map(&weight).sum();
        let target = f64::from(top_p) * mass;
        let order = by_rank(logits);
        let mut sorted = 0;
        let mut chunk = TOP_P_FIRST_CHUNK.min(vocab);
        let mut cumulative = 0.0;
        loop {
            let rest = &mut self.ids[sorted..];
            let head = chunk - sorted;
            if head < rest.len() {
                rest.select_nth_unstable_by(head - 1, order);
            }
            rest[..head].sort_unstable_by(order);
            for &token in &self.ids[sorted..chunk] {
                // HF TopPLogitsWarper: a token stays while the mass ranked above it is < p.
                if cumulative >= target && !self.weights.is_empty() {
                    self.ids.truncate(self.weights.len());
                    return;
                }
                let w = weight(token);
                cumulative += w;
                self.weights.push(w);
            }
            if chunk == vocab {
                return;
            }
            sorted = chunk;
            chunk = (chunk * TOP_P_CHUNK_GROWTH).min(vocab);
        }
    }
}

/// Descending logit, then ascending token id: a strict total order, so selection and
/// sorting give the same result on every run and on every device.
fn by_rank(logits: &[f32]) -> impl Fn(&u32, &u32) -> Ordering + Copy + '_ {
    move |a, b| {
        logits[*b as usize]
            .total_cmp(&logits[*a as usize])
            .then(a.cmp(b))
    }
}

/// How many of the ranked `weights` the nucleus keeps: every token whose preceding mass is
/// below `top_p` of `mass`, and always at least one.
fn nucleus_len(weights: &[f64], mass: f64, top_p: f32) -> usize {
    let target = f64::from(top_p) * mass;
    let mut cumulative = 0.0;
    for (kept, w) in weights.iter().enumerate() {
        if cumulative >= target && kept > 0 {
            return kept;
        }
        cumulative += w;
    }
    weights.len()
}
