//! `n` and `best_of`: every candidate is its own sequence in the batcher, seeded from the
//! request's seed so a seeded request replays; `best_of` candidates are ranked by
//! cumulative logprob and the best `n` answered (`docs/api.md`, n and best_of).

use runtime::batcher::{Completion, SubmitRequest};

use crate::api::generate::{self, Generation, Target};
use crate::api::openai::request::ChoiceCount;
use crate::api::openai::stream::Usage;
use crate::error::ApiError;

/// The seed of candidate `candidate` of a request seeded with `seed`: distinct per
/// candidate, the same on every replay, within the documented seed range (0 – 2⁶³−1).
pub(crate) fn candidate_seed(seed: Option<u64>, candidate: usize) -> Option<u64> {
    seed.map(|s| s.wrapping_add(candidate as u64) & (i64::MAX as u64))
}

/// Submits `best_of` candidates per prompt, prompt-major: candidate `c` of prompt `p` is
/// generation `p * best_of + c`. `request` builds one prompt's request with a given seed.
/// A refusal of any candidate refuses the request (the ones already queued are dropped,
/// which cancels them).
pub(crate) async fn submit_all(
    target: &Target,
    prompts: &[String],
    count: ChoiceCount,
    seed: Option<u64>,
    request: impl Fn(&str, Option<u64>) -> SubmitRequest,
    fields: &generate::FieldNames,
) -> Result<Vec<Generation>, ApiError> {
    let mut generations = Vec::with_capacity(prompts.len() * count.best_of);
    for prompt in prompts {
        for candidate in 0..count.best_of {
            let submitted = request(prompt, candidate_seed(seed, candidate));
            generations.push(generate::submit(target, submitted, fields).await?);
        }
    }
    Ok(generations)
}

/// The answered choices of one request: per prompt, the `n` best of its `best_of`
/// candidates (by cumulative logprob when there are more candidates than choices, else in
/// the order generated), numbered `prompt * n + k` as OpenAI numbers them.
pub(crate) fn pick(completions: Vec<Completion>, count: ChoiceCount) -> Vec<(usize, Completion)> {
    let mut chosen = Vec::with_capacity(completions.len());
    let mut candidates = completions.into_iter();
    let mut prompt = 0;
    loop {
        let mut group: Vec<Completion> = candidates.by_ref().take(count.best_of).collect();
        if group.is_empty() {
            return chosen;
        }
        if count.best_of > count.n {
            // Stable: equal scores keep the generated order.
            group.sort_by(|a, b| cumulative_logprob(b).total_cmp(&cumulative_logprob(a)));
        }
        chosen.extend(
            group
                .into_iter()
                .take(count.n)
                .enumerate()
                .map(|(k, completion)| (prompt * count.n + k, completion)),
        );
        prompt += 1;
    }
}

/// Token counts of a request: each prompt counted once, every candidate's generated tokens
/// (best_of candidates not answered included: they were generated).
pub fn usage(completions: &[Completion], count: ChoiceCount) -> Usage {
    Usage {
        prompt_tokens: completions
            .iter()
            .step_by(count.best_of.max(1))
            .map(|c| c.prompt_tokens)
            .sum(),
        completion_tokens: completions.iter().map(|c| c.tokens.len()).sum(),
    }
}

/// The sum of the generated tokens' logprobs.
pub(crate) fn cumulative_logprob(completion: &Completion) -> f64 {
    completion
        .token_logprobs
        .iter()
        .flatten()
        .map(|l| f64::from(l.logprob))
        .sum()
}

/// Waits for every generation; the first failure fails the request.
pub(crate) async fn complete_all(
    generations: Vec<Generation>,
) -> Result<Vec<Completion>, ApiError> {
    futures::future::join_all(generations.into_iter().map(Generation::complete))
        .await
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_seeds_differ_replay_and_stay_in_range() {
        assert_eq!(candidate_seed(None, 3), None);
        assert_eq!(candidate_seed(Some(7), 0), Some(7));
        assert_eq!(candidate_seed(Some(7), 2), Some(9));
        assert_eq!(candidate_seed(Some(i64::MAX as u64), 1), Some(0));
    }
}
