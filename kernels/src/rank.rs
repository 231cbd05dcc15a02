//! The ranking every truncation uses: descending logit, ties broken by the lower token id.
//! A strict total order, so selections agree on every run and every device. Logits compare
//! by IEEE 754 totalOrder (`f32::total_cmp`: -0.0 ranks below +0.0). Dividing by a positive
//! temperature preserves the order; ranking raw logits avoids ties created by rounding
//! after the division.
//!
//! A token's rank is packed into one `u64` (ascending key = rank order), so selection and
//! sorting compare plain integers instead of looking logits up through ids.

/// A token's position in the ranking: smaller ranks first.
pub(crate) type RankKey = u64;

pub(crate) fn rank_key(logit: f32, id: u32) -> RankKey {
    // Flipping the sign bit maps the i32 total-order key onto u32 order; `!` makes it
    // descending; the id below breaks ties towards lower ids.
    let ascending = (total_order_key(logit) as u32) ^ 0x8000_0000;
    (u64::from(!ascending) << 32) | u64::from(id)
}

pub(crate) fn key_id(key: RankKey) -> u32 {
    key as u32
}

/// The logit's [`total_order_key`] inside a rank key.
pub(crate) fn key_logit_order(key: RankKey) -> i32 {
    (!((key >> 32) as u32) ^ 0x8000_0000) as i32
}

/// An integer whose order is `f32::total_cmp`'s.
#[inline(always)]
pub(crate) fn total_order_key(value: f32) -> i32 {
    let bits = value.to_bits() as i32;
    bits ^ (((bits >> 31) as u32) >> 1) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_by_descending_logit_then_ascending_id() {
        let tokens = [
            (3.5, 7),
            (3.5, 2),
            (0.0, 1),
            (-0.0, 0),
            (-1.0, 4),
            (f32::MAX, 9),
            (-f32::MAX, 3),
        ];
        let mut keys: Vec<RankKey> = tokens.iter().map(|&(l, id)| rank_key(l, id)).collect();
        keys.sort_unstable();
        let ids: Vec<u32> = keys.iter().map(|&k| key_id(k)).collect();
        assert_eq!(ids, vec![9, 2, 7, 1, 0, 4, 3]);
        for (&key, (logit, _)) in keys.iter().zip([
            (f32::MAX, 9),
            (3.5, 2),
            (3.5, 7),
            (0.0, 1),
            (-0.0, 0),
            (-1.0, 4),
            (-f32::MAX, 3),
        ]) {
            assert_eq!(key_logit_order(key), total_order_key(logit));
        }
    }
}
