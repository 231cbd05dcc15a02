//! e^x for the softmax weights, x = (logit - max) / T <= 0.
//!
//! Our own rather than `f32::exp` for two reasons: the platform's `expf` is an opaque library
//! call the compiler cannot vectorise (it dominated the full-vocabulary paths), and its
//! result differs between C libraries and from CUDA's, whereas these few multiply-adds can be
//! reproduced bit for bit by a CUDA kernel compiled without FMA contraction.

/// Below this, e^x is under f32's smallest normal number: the weight is 0 (such a token
/// could not be drawn with a 24-bit uniform anyway).
const UNDERFLOW: f32 = -87.0;

/// e^x for x <= 0 (larger x is not used), within 2 ulp; exactly 0 below [`UNDERFLOW`].
#[inline(always)]
pub(crate) fn exp_nonpositive(x: f32) -> f32 {
    // 1.5 × 2^23: adding and subtracting it rounds to the nearest integer in plain SSE2.
    const ROUND: f32 = 12_582_912.0;
    // ln 2 split so that n × LN2_HIGH is exact for |n| < 2^9 (Cody–Waite reduction).
    const LN2_HIGH: f32 = 0.693_359_4;
    const LN2_LOW: f32 = -2.121_944_4e-4;
    let clamped = x.max(UNDERFLOW);
    // The low mantissa bits of `shifted` hold n = round(x / ln 2) as an integer.
    let shifted = clamped * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    // e^x = 2^n × e^r with |r| <= ln2 / 2.
    let r = (clamped - n * LN2_HIGH) - n * LN2_LOW;
    // Taylor to degree 7: the remainder r^8 / 8! is below 6e-9 on |r| <= 0.347.
    let p = 1.0
        + r * (1.0
            + r * (1.0 / 2.0
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r / 5040.0))))));
    // 2^n built from its exponent bits, n + 127 in [1, 127]: integer lanes, no float→int cast.
    let biased = shifted
        .to_bits()
        .wrapping_sub(ROUND.to_bits())
        .wrapping_add(127);
    let scale = f32::from_bits(biased << 23);
    if x < UNDERFLOW {
        0.0
    } else {
        p * scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_f64_exp_within_two_ulp_over_the_whole_range() {
        let mut x = 0.0f32;
        while x > UNDERFLOW {
            let exact = f64::from(x).exp();
            let got = f64::from(exp_nonpositive(x));
            let ulp = f64::from(f32::EPSILON) * exact;
            assert!((got - exact).abs() <= 2.0 * ulp, "x {x}: {got} vs {exact}");
            x -= 0.000_37;
        }
    }

    #[test]
    fn is_one_at_zero_and_zero_below_underflow() {
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(-0.0), 1.0);
        assert_eq!(exp_nonpositive(-88.0), 0.0);
        assert_eq!(exp_nonpositive(f32::NEG_INFINITY), 0.0);
    }
}
