//! Log-probabilities of tokens under the model's raw distribution: the log-softmax of the
//! logits as the model returned them, before temperature, top-k or top-p (as vLLM and
//! OpenAI report them; `docs/sampling.md` § Log-probabilities). They describe the model,
//! not the sampling law, so a request's logprobs do not depend on its sampling options.

use crate::rank::{key_id, rank_key, RankKey};
use crate::top_k::top_k_keys;

/// Most alternatives a request may ask for per token (OpenAI's completions limit).
pub const MAX_TOP_LOGPROBS: usize = 20;

/// A token's log-probability and the most likely tokens at its position.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogprob {
    /// `ln p(token)`, ≤ 0.
    pub logprob: f32,
    /// The most likely tokens as `(token id, logprob)`, best first, ties to the lower id
    /// (the ranking sampling uses, `docs/sampling.md`); as many as were asked for.
    pub top: Vec<(u32, f32)>,
}

/// The log-probability of `token` in the row `logits` `[vocab]` and the `top` most likely
/// tokens. Sums run in f64; a non-finite logit gives NaN log-probabilities rather than a
/// panic. `token` outside the row gives `-inf`.
pub fn token_logprob(logits: &[f32], token: u32, top: usize) -> TokenLogprob {
    let lse = log_sum_exp(logits);
    let logprob_of = |logit: f32| (f64::from(logit) - lse) as f32;
    let logprob = logits
        .get(token as usize)
        .map_or(f32::NEG_INFINITY, |&logit| logprob_of(logit));
    let top = best_ranked(logits, top)
        .into_iter()
        .map(|key| {
            let id = key_id(key);
            (id, logprob_of(logits[id as usize]))
        })
        .collect();
    TokenLogprob { logprob, top }
}

/// `ln Σ exp(x)`, shifted by the maximum so no term overflows.
fn log_sum_exp(logits: &[f32]) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return f64::NAN;
    }
    let max = f64::from(max);
    let sum: f64 = logits.iter().map(|&x| (f64::from(x) - max).exp()).sum();
    max + sum.ln()
}

/// The rank keys of the `k` best-ranked tokens, best first.
fn best_ranked(logits: &[f32], k: usize) -> Vec<RankKey> {
    let mut keys = Vec::new();
    if k == 0 || logits.is_empty() {
        return keys;
    }
    if k < logits.len() {
        top_k_keys(logits, k, &mut keys);
    } else {
        keys.extend(
            logits
                .iter()
                .enumerate()
                .map(|(id, &logit)| rank_key(logit, id as u32)),
        );
    }
    keys.sort_unstable();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference_log_softmax(logits: &[f32]) -> Vec<f64> {
        let sum: f64 = logits.iter().map(|&x| f64::from(x).exp()).sum();
        logits.iter().map(|&x| f64::from(x) - sum.ln()).collect()
    }

    #[test]
    fn the_chosen_token_gets_its_log_softmax_and_the_top_are_the_best_first() {
        let logits = [1.0f32, 3.0, -2.0, 3.0, 0.5];
        let expected = reference_log_softmax(&logits);
        let scored = token_logprob(&logits, 4, 3);
        assert!((f64::from(scored.logprob) - expected[4]).abs() < 1e-6);
        let ids: Vec<u32> = scored.top.iter().map(|&(id, _)| id).collect();
        // Equal logits: the lower id first, as the sampler ranks them.
        assert_eq!(ids, vec![1, 3, 0]);
        for (id, logprob) in scored.top {
            assert!((f64::from(logprob) - expected[id as usize]).abs() < 1e-6);
        }
    }

    #[test]
    fn probabilities_sum_to_one_even_for_large_logits() {
        let logits: Vec<f32> = (0..1000).map(|i| 80.0 + (i as f32) * 0.01).collect();
        let scored = token_logprob(&logits, 0, logits.len());
        let total: f64 = scored.top.iter().map(|&(_, lp)| f64::from(lp).exp()).sum();
        assert!((total - 1.0).abs() < 1e-5, "total {total}");
        assert_eq!(scored.top.len(), logits.len());
        assert_eq!(scored.top[0].0, 999);
    }

    #[test]
    fn no_alternatives_when_none_are_asked_for() {
        let scored = token_logprob(&[0.0, 0.0], 1, 0);
        assert!(scored.top.is_empty());
        assert!((scored.logprob - 0.5f32.ln()).abs() < 1e-7);
    }

    #[test]
    fn a_non_finite_row_gives_nan_not_a_panic() {
        let scored = token_logprob(&[f32::NAN, f32::NEG_INFINITY], 0, 1);
        assert!(scored.logprob.is_nan());
        assert_eq!(token_logprob(&[0.0], 5, 0).logprob, f32::NEG_INFINITY);
    }
}
