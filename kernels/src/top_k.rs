//! The k best-ranked tokens of a row, without sorting the vocabulary.

use std::collections::BinaryHeap;

use crate::rank::{rank_key, RankKey};

/// Up to this k a bounded heap is used: one pass, and almost every token is rejected by a
/// single comparison with the worst kept key. Larger k: quickselect over all keys.
const HEAP_MAX_K: usize = 256;

/// Fills `out` with the rank keys of the `k` best-ranked tokens (any order).
/// Requires `0 < k < vocab`.
pub(crate) fn top_k_keys(logits: &[f32], k: usize, out: &mut Vec<RankKey>) {
    out.clear();
    let keys = logits
        .iter()
        .enumerate()
        .map(|(id, &logit)| rank_key(logit, id as u32));
    if k <= HEAP_MAX_K {
        heap_top_k(keys, k, out);
    } else {
        out.extend(keys);
        out.select_nth_unstable(k - 1);
        out.truncate(k);
    }
}

fn heap_top_k(mut keys: impl Iterator<Item = RankKey>, k: usize, out: &mut Vec<RankKey>) {
    // A max-heap of keys: its top is the worst-ranked token kept so far. It lives in
    // `out`'s buffer, so rows after the first allocate nothing.
    out.extend(keys.by_ref().take(k));
    let mut kept = BinaryHeap::from(std::mem::take(out));
    let mut worst = kept.peek().copied().unwrap_or(RankKey::MAX);
    for key in keys {
        if key < worst {
            if let Some(mut top) = kept.peek_mut() {
                // Replacing the top in place sifts once, instead of a pop and a push.
                *top = key;
            }
            worst = kept.peek().copied().unwrap_or(RankKey::MAX);
        }
    }
    *out = kept.into_vec();
}
