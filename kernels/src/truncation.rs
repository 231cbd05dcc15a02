//! Temperature → top-k → top-p: which tokens a draw may pick and with what weight. The
//! sampler and `truncated_distribution` share this code, so the law the tests check is the
//! law the sampler draws from.
//!
//! The kept tokens are always walked in ascending token id. Any fixed order gives the same
//! law; this one needs no sort of the kept set and is what a GPU prefix sum produces.

use crate::exp::exp_nonpositive;
use crate::nucleus::NucleusSearch;
use crate::rank::{key_id, key_logit_order, total_order_key, RankKey};
use crate::row_scan::RowMax;
use crate::top_k::top_k_keys;
use crate::vocab_weights::VocabWeights;
use crate::SamplingParams;

/// Where the kept set lives, depending on which truncations ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Storage {
    /// Top-k ran: the few kept tokens are listed in id order.
    Listed,
    /// No top-k: every token has a weight, 0 for those top-p removed.
    Dense,
}

/// The kept tokens of one row. Buffers are reused across the rows of a batch, so a
/// decode step allocates once.
#[derive(Debug)]
pub(crate) struct KeptSet {
    storage: Storage,
    listed: Vec<(u32, f32)>,
    listed_total: f64,
    dense: VocabWeights,
    candidates: Vec<RankKey>,
    ids: Vec<u32>,
    nucleus: NucleusSearch,
}

impl Default for KeptSet {
    fn default() -> Self {
        Self {
            storage: Storage::Dense,
            listed: Vec::new(),
            listed_total: 0.0,
            dense: VocabWeights::default(),
            candidates: Vec::new(),
            ids: Vec::new(),
            nucleus: NucleusSearch::default(),
        }
    }
}

impl KeptSet {
    /// Fills the set for one row. Requires `temperature > 0` and finite logits.
    pub fn fill(&mut self, logits: &[f32], max: RowMax, params: &SamplingParams) {
        let weight =
            |id: u32| exp_nonpositive((logits[id as usize] - max.value) / params.temperature);
        let top_p_on = params.top_p < 1.0;

        if params.top_k > 0 && params.top_k < logits.len() {
            top_k_keys(logits, params.top_k, &mut self.candidates);
            if top_p_on {
                // Top-p after top-k renormalises over the k tokens, walked in rank order.
                self.candidates.sort_unstable();
                let mass: f64 = self
                    .candidates
                    .iter()
                    .map(|&key| f64::from(weight(key_id(key))))
                    .sum();
                let kept = nucleus_len(&self.candidates, weight, f64::from(params.top_p) * mass);
                self.candidates.truncate(kept);
            }
            self.ids.clear();
            self.ids
                .extend(self.candidates.iter().map(|&key| key_id(key)));
            self.ids.sort_unstable();
            self.listed.clear();
            self.listed
                .extend(self.ids.iter().map(|&id| (id, weight(id))));
            self.listed_total = self.listed.iter().map(|&(_, w)| f64::from(w)).sum();
            self.storage = Storage::Listed;
            return;
        }

        self.dense.fill(logits, max.value, params.temperature);
        if top_p_on {
            let last = self.nucleus.last_kept(
                logits,
                self.dense.weights(),
                self.dense.total(),
                max.value,
                params.temperature,
                params.top_p,
            );
            if let Some(last) = last {
                // The nucleus is a prefix of the ranking: tokens ranked at or before `last`,
                // compared as 32-bit parts so the pass vectorises.
                let (last_logit, last_id) = (key_logit_order(last), key_id(last));
                self.dense.retain(logits, |id, logit| {
                    let order = total_order_key(logit);
                    order > last_logit || (order == last_logit && id <= last_id)
                });
            }
        }
        self.storage = Storage::Dense;
    }

    /// Sum of the kept weights.
    pub fn total(&self) -> f64 {
        match self.storage {
            Storage::Listed => self.listed_total,
            Storage::Dense => self.dense.total(),
        }
    }

    /// Inverse CDF over the kept tokens in id order: the first whose cumulative weight
    /// exceeds `uniform × total`. Cumulative sums repeat the additions that made `total`,
    /// so a uniform below 1 always lands on a kept token of nonzero weight.
    pub fn draw(&self, uniform: f32) -> Option<u32> {
        let target = f64::from(uniform) * self.total();
        match self.storage {
            Storage::Listed => {
                let mut cumulative = 0.0;
                self.listed.iter().find_map(|&(id, w)| {
                    cumulative += f64::from(w);
                    (cumulative > target).then_some(id)
                })
            }
            Storage::Dense => self.dense.inverse_cdf(target),
        }
    }

    /// Kept tokens of nonzero weight and their unnormalised weights, in ascending token id.
    pub fn members(&self) -> Vec<(u32, f32)> {
        match self.storage {
            Storage::Listed => self
                .listed
                .iter()
                .copied()
                .filter(|&(_, w)| w > 0.0)
                .collect(),
            Storage::Dense => self
                .dense
                .weights()
                .iter()
                .enumerate()
                .filter(|&(_, &w)| w > 0.0)
                .map(|(id, &w)| (id as u32, w))
                .collect(),
        }
    }
}

/// How many of the rank-ordered `keys` the nucleus keeps: every token whose preceding mass
/// is below `target`, and always at least one.
fn nucleus_len(keys: &[RankKey], weight: impl Fn(u32) -> f32, target: f64) -> usize {
    let mut above = 0.0;
    for (kept, &key) in keys.iter().enumerate() {
        if above >= target && kept > 0 {
            return kept;
        }
        above += f64::from(weight(key_id(key)));
    }
    keys.len()
}
