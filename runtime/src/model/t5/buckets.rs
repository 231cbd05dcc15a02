//! T5's relative-position buckets: small distances get a bucket each, larger ones share
//! logarithmically wider buckets up to `max_distance`. The encoder distinguishes keys before
//! and after the query (bidirectional); the decoder only ever sees keys at or before the
//! query (unidirectional), so all its buckets go to past distances.

/// The bucket of `relative_position` (key position − query position), exactly as
/// transformers' `T5Attention._relative_position_bucket` computes it — including its f32
/// arithmetic for the logarithmic part, so bucket boundaries fall on the same distances.
pub fn relative_position_bucket(
    relative_position: i64,
    bidirectional: bool,
    num_buckets: usize,
    max_distance: usize,
) -> u32 {
    let mut num_buckets = num_buckets as i64;
    let mut bucket = 0i64;
    let distance = if bidirectional {
        num_buckets /= 2;
        if relative_position > 0 {
            bucket += num_buckets;
        }
        relative_position.abs()
    } else {
        (-relative_position).max(0)
    };
    let max_exact = num_buckets / 2;
    if distance < max_exact {
        bucket += distance;
    } else {
        // torch: log(float32(d) / max_exact) / math.log(max_distance / max_exact) * (nb - me),
        // each step rounded to f32, then truncated toward zero.
        let log_ratio = (distance as f32 / max_exact as f32).ln();
        let log_span = (max_distance as f64 / max_exact as f64).ln() as f32;
        let scaled = log_ratio / log_span * (num_buckets - max_exact) as f32;
        let large = max_exact + scaled as i64;
        bucket += large.min(num_buckets - 1);
    }
    bucket as u32
}

#[cfg(test)]
mod tests {
    use super::relative_position_bucket;

    #[test]
    fn small_distances_get_one_bucket_each() {
        for d in 0..8 {
            assert_eq!(relative_position_bucket(-d, true, 32, 128), d as u32);
            assert_eq!(
                relative_position_bucket(d, true, 32, 128),
                if d == 0 { 0 } else { 16 + d as u32 }
            );
            assert_eq!(relative_position_bucket(-d, false, 32, 128), d as u32);
        }
    }

    #[test]
    fn decoder_buckets_ignore_future_keys() {
        for d in 1..300 {
            assert_eq!(relative_position_bucket(d, false, 32, 128), 0);
        }
    }

    #[test]
    fn distances_beyond_max_distance_share_the_last_bucket() {
        assert_eq!(relative_position_bucket(-1000, false, 32, 128), 31);
        assert_eq!(relative_position_bucket(-1000, true, 32, 128), 15);
        assert_eq!(relative_position_bucket(1000, true, 32, 128), 31);
    }
}
