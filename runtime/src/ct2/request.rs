//! What a caller hands the CTranslate2 backend and gets back: a batch of requests with
//! their own options, one event per generated token, and per-request outputs. Plain data,
//! available without the `ctranslate2` feature.

/// How one request picks its tokens. CTranslate2 applies top-k, temperature, then top-p,
/// which draws from the same law as temperature → top-k → top-p (`docs/sampling.md`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ct2Sampling {
    /// 0 means greedy (argmax), whatever `top_k` and `top_p` say.
    pub temperature: f32,
    /// 0 means no top-k cut.
    pub top_k: usize,
    /// 1.0 means no nucleus cut.
    pub top_p: f32,
}

impl Ct2Sampling {
    pub const GREEDY: Ct2Sampling = Ct2Sampling {
        temperature: 0.0,
        top_k: 0,
        top_p: 1.0,
    };

    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0 || self.top_k == 1
    }

    /// The key requests are grouped by: CTranslate2 takes one set of options per call.
    fn group_key(&self) -> (u32, usize, u32) {
        if self.is_greedy() {
            (0, 1, 1.0f32.to_bits())
        } else {
            (self.temperature.to_bits(), self.top_k, self.top_p.to_bits())
        }
    }
}

/// One generation request.
#[derive(Clone, Debug, PartialEq)]
pub struct Ct2Request {
    /// Token ids from the project's tokenizer (GPT-2: the prompt; T5: the encoder input,
    /// `</s>` included, as the tokenizer produces it).
    pub prompt: Vec<u32>,
    /// New tokens at most; 0 returns an empty output without running the model.
    pub max_new_tokens: usize,
    pub sampling: Ct2Sampling,
    /// Report each generated token's logprob (CTranslate2's `return_scores`: the raw
    /// log-softmax of the chosen token, before temperature and truncation).
    pub logprobs: bool,
}

/// One generated token, reported while the batch runs (from a CTranslate2 worker thread).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepEvent {
    /// Index of the request in the slice given to `generate`.
    pub request: usize,
    /// 0 for the first new token.
    pub step: usize,
    pub token_id: u32,
    /// The token is the model's end-of-sequence token: generation of this request ends
    /// here and the token is not part of the output.
    pub is_eos: bool,
    /// The token's raw log-softmax, when the request asked for logprobs.
    pub logprob: Option<f32>,
}

/// The caller's answer to a [`StepEvent`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepControl {
    Continue,
    /// End this request now (a stop string matched, the client went away); the other
    /// requests of the batch go on.
    Stop,
}

/// Why a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ct2Finish {
    /// The model produced its end-of-sequence token.
    Eos,
    /// `max_new_tokens` were generated.
    Length,
    /// The step callback answered [`StepControl::Stop`].
    Stopped,
}

/// The result of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ct2Output {
    /// Generated ids, without the prompt and without the end-of-sequence token.
    pub token_ids: Vec<u32>,
    pub finish: Ct2Finish,
}

/// Requests that share sampling options and whether they want logprobs, in the order they
/// first appear; each group is one CTranslate2 call. Logprobs split groups because
/// `return_scores` makes CTranslate2 sample from log-softmaxed logits: the same law, but
/// other rounding, and requests that did not ask must not see any change.
pub fn group_by_sampling(requests: &[Ct2Request]) -> Vec<Vec<usize>> {
    // (sampling options, logprobs) → the requests sharing them.
    type Key = ((u32, usize, u32), bool);
    let mut groups: Vec<(Key, Vec<usize>)> = Vec::new();
    for (index, request) in requests.iter().enumerate() {
        if request.max_new_tokens == 0 {
            continue; // nothing to run
        }
        let key = (request.sampling.group_key(), request.logprobs);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(index),
            None => groups.push((key, vec![index])),
        }
    }
    groups.into_iter().map(|(_, members)| members).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(sampling: Ct2Sampling, max_new_tokens: usize) -> Ct2Request {
        Ct2Request {
            prompt: vec![1],
            max_new_tokens,
            sampling,
            logprobs: false,
        }
    }

    #[test]
    fn requests_are_grouped_by_sampling_options_in_order_of_first_appearance() {
        let hot = Ct2Sampling {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.9,
        };
        let requests = [
            request(hot, 4),
            request(Ct2Sampling::GREEDY, 4),
            request(hot, 8),
            request(Ct2Sampling::GREEDY, 2),
        ];
        assert_eq!(group_by_sampling(&requests), vec![vec![0, 2], vec![1, 3]]);
    }

    #[test]
    fn every_greedy_spelling_lands_in_one_group() {
        let top1 = Ct2Sampling {
            temperature: 0.7,
            top_k: 1,
            top_p: 0.5,
        };
        let cold = Ct2Sampling {
            temperature: 0.0,
            top_k: 50,
            top_p: 0.9,
        };
        let requests = [
            request(top1, 3),
            request(cold, 3),
            request(Ct2Sampling::GREEDY, 3),
        ];
        assert_eq!(group_by_sampling(&requests), vec![vec![0, 1, 2]]);
    }

    #[test]
    fn requests_asking_for_logprobs_run_apart() {
        let mut scored = request(Ct2Sampling::GREEDY, 4);
        scored.logprobs = true;
        let requests = [
            request(Ct2Sampling::GREEDY, 4),
            scored.clone(),
            request(Ct2Sampling::GREEDY, 2),
            scored,
        ];
        assert_eq!(group_by_sampling(&requests), vec![vec![0, 2], vec![1, 3]]);
    }

    #[test]
    fn zero_token_requests_are_not_run() {
        let requests = [
            request(Ct2Sampling::GREEDY, 0),
            request(Ct2Sampling::GREEDY, 1),
        ];
        assert_eq!(group_by_sampling(&requests), vec![vec![1]]);
    }
}
