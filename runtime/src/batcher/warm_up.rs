//! The generation a replica must complete before it is reported ready (`docs/api.md`
//! § Lifecycle: READY only after a warm-up succeeded on every replica).

use kernels::{CpuSampler, Sampler, SamplingParams};

use crate::tokenizer::Tokenizer;

use super::replica::ReplicaModel;

/// One short generation on the replica's own model: a prefill and a decode step (candle)
/// or a two-token generation (CTranslate2). Fails on errors and on non-finite logits.
pub(crate) fn warm_up(model: &ReplicaModel, tokenizer: &Tokenizer) -> Result<(), String> {
    let prompt = tokenizer.encode("Hello").map_err(|e| e.to_string())?;
    match model {
        ReplicaModel::Candle(model) => {
            let mut slot = model.new_slot().map_err(|e| e.to_string())?;
            let logits = model
                .prefill(&mut slot, &prompt)
                .map_err(|e| e.to_string())?;
            check_finite(&logits, "prefill")?;
            let next = CpuSampler
                .sample(
                    &logits,
                    model.vocab_size(),
                    &[SamplingParams::GREEDY],
                    &[0.0],
                )
                .map_err(|e| e.to_string())?[0];
            let logits = model
                .decode(&mut [&mut slot], &[next])
                .map_err(|e| e.to_string())?;
            check_finite(&logits, "decode step")
        }
        #[cfg(feature = "ctranslate2")]
        ReplicaModel::Ctranslate2(model) => {
            let request = crate::ct2::Ct2Request {
                prompt,
                max_new_tokens: 2,
                sampling: crate::ct2::Ct2Sampling::GREEDY,
                logprobs: false,
            };
            model
                .generate(&[request], &mut |_| crate::ct2::StepControl::Continue)
                .map(drop)
                .map_err(|e| e.to_string())
        }
    }
}

fn check_finite(logits: &[f32], what: &str) -> Result<(), String> {
    if logits.iter().all(|x| x.is_finite()) {
        Ok(())
    } else {
        Err(format!("the warm-up {what} produced non-finite logits"))
    }
}
