//! Top-p over a whole vocabulary without sorting it.
//!
//! Hugging Face's `TopPLogitsWarper` keeps a token while the mass ranked above it is below
//! p (so at least one token). The kept set is a prefix of the ranking; only its last token
//! has to be found. Tokens are bucketed by scaled distance from the max logit (monotone in
//! rank), the buckets' masses locate the bucket where the cumulative mass crosses p, and
//! only that bucket is sorted.

use crate::rank::{key_id, rank_key, RankKey};

/// Buckets over scaled distance [0, SPAN); everything further falls in the last bucket.
/// A bucket then spans a weight ratio of e^(SPAN / BUCKETS) ≈ 1.065.
const BUCKETS: usize = 512;
const SPAN: f32 = 32.0;

/// Scratch reused across rows.
#[derive(Debug, Default)]
pub(crate) struct NucleusSearch {
    /// Each token's bucket, computed once in a vectorisable pass.
    bucket: Vec<u16>,
    bucket_mass: Vec<f64>,
    boundary: Vec<RankKey>,
}

impl NucleusSearch {
    /// The rank key of the nucleus' last token, or `None` when it is the whole vocabulary.
    /// `weights[id] = exp((logit - max) / T)`, `mass` is their sum, `max` the largest
    /// logit, `temperature > 0`.
    pub fn last_kept(
        &mut self,
        logits: &[f32],
        weights: &[f32],
        mass: f64,
        max: f32,
        temperature: f32,
        top_p: f32,
    ) -> Option<RankKey> {
        // 1.5 × 2^23: adding it leaves round(v) in the low mantissa bits (v < 2^22), which
        // avoids a float → int cast the compiler would not vectorise.
        const ROUND: f32 = 12_582_912.0;
        let scale = BUCKETS as f32 / SPAN;
        self.bucket.clear();
        self.bucket.extend(logits.iter().map(|&logit| {
            // Monotone in rank; an infinite distance (tiny T) lands in the last bucket.
            let position = ((max - logit) / temperature * scale).min((BUCKETS - 1) as f32);
            (position + ROUND).to_bits().wrapping_sub(ROUND.to_bits()) as u16
        }));
        self.bucket_mass.clear();
        self.bucket_mass.resize(BUCKETS, 0.0);
        for (&bucket, &w) in self.bucket.iter().zip(weights) {
            self.bucket_mass[usize::from(bucket) % BUCKETS] += f64::from(w);
        }

        // The first bucket whose mass takes the running total to p. Every bucket before it
        // is kept whole; every bucket after it is dropped.
        let target = f64::from(top_p) * mass;
        let mut above = 0.0;
        let crossing = self.bucket_mass.iter().position(|&bucket_mass| {
            let crosses = bucket_mass > 0.0 && above + bucket_mass >= target;
            if !crosses {
                above += bucket_mass;
            }
            crosses
        })?;

        self.boundary.clear();
        self.boundary.extend(
            logits
                .iter()
                .zip(&self.bucket)
                .enumerate()
                .filter(|&(_, (_, &bucket))| usize::from(bucket) == crossing)
                .map(|(id, (&logit, _))| rank_key(logit, id as u32)),
        );
        self.boundary.sort_unstable();
        // The first token of the crossing bucket is always kept: either the mass above it
        // is below p, or (p = 0) it is the top-ranked token and one token must stay.
        let mut last = *self.boundary.first()?;
        for &key in &self.boundary[1..] {
            above += f64::from(weights[key_id(last) as usize]);
            if above >= target {
                break;
            }
            last = key;
        }
        Some(last)
    }
}
