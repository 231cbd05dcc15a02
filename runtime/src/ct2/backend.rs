//! A converted model loaded into CTranslate2 through ct2rs: GPT-2 runs on `Generator`,
//! T5 on `Translator`. Requests arrive as token ids from the project's tokenizer and are
//! mapped to CTranslate2's token strings through the model's own vocabulary file.
//!
//! CTranslate2 has no iteration-level batching: one call decodes one batch to the end.
//! `generate` therefore runs each group of requests that share sampling options as one
//! call, enforces each request's own `max_new_tokens` and early stop through the per-step
//! callback (returning `true` there ends that batch entry only), and reports every token.

use std::path::{Path, PathBuf};

use ct2rs::sys::{
    ComputeType as SysComputeType, Config, Device, GenerationOptions, GenerationStepResult,
    Generator, ScoringOptions, TranslationOptions, Translator,
};

use super::compute_type::{effective_compute_type, ComputeType, Ct2Device};
use super::convert::Architecture;
use super::error::BackendError;
use super::request::{
    group_by_sampling, Ct2Finish, Ct2Output, Ct2Request, Ct2Sampling, StepControl, StepEvent,
};

/// How to load a converted model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ct2LoadOptions {
    pub device: Ct2Device,
    /// CUDA device index (ignored on CPU).
    pub device_index: i32,
    /// The compute type asked for; the effective one is resolved by
    /// [`effective_compute_type`] and is what CTranslate2 is given.
    pub compute_type: ComputeType,
    /// Threads per CTranslate2 replica on CPU; 0 lets CTranslate2 choose (min(4, cores)).
    pub threads: usize,
}

enum Engine {
    Generator(Generator),
    Translator(Translator),
}

/// A CTranslate2 model ready to generate.
pub struct Ct2Model {
    engine: Engine,
    dir: PathBuf,
    architecture: Architecture,
    /// Token strings by id, from the converted directory's vocabulary file.
    vocabulary: Vec<String>,
    eos_token_id: u32,
    requested: ComputeType,
    effective: ComputeType,
}

impl Ct2Model {
    /// Loads the converted directory `dir` (as written by [`super::convert()`]).
    pub fn load(
        dir: &Path,
        architecture: Architecture,
        options: &Ct2LoadOptions,
    ) -> Result<Ct2Model, BackendError> {
        let vocabulary = read_vocabulary(&dir.join(architecture.vocabulary_file()))?;
        let eos_token = read_eos_token(&dir.join("config.json"))?;
        let eos_token_id = vocabulary
            .iter()
            .position(|t| *t == eos_token)
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| BackendError::Vocabulary {
                path: dir.join(architecture.vocabulary_file()),
                message: format!("eos_token {eos_token:?} of config.json is not in the vocabulary"),
            })?;
        let effective = effective_compute_type(options.compute_type, options.device, architecture);
        let config = Config {
            device: match options.device {
                Ct2Device::Cpu => Device::CPU,
                Ct2Device::Cuda { .. } => Device::CUDA,
            },
            compute_type: sys_compute_type(effective),
            device_indices: vec![options.device_index],
            num_threads_per_replica: options.threads,
            ..Config::default()
        };
        let load_error = |message: String| BackendError::Load {
            path: dir.to_path_buf(),
            compute_type: effective.to_string(),
            message,
        };
        let engine = match architecture {
            Architecture::Gpt2 => Engine::Generator(
                Generator::new(dir, &config).map_err(|e| load_error(format!("{e:#}")))?,
            ),
            Architecture::T5 => Engine::Translator(
                Translator::new(dir, &config).map_err(|e| load_error(format!("{e:#}")))?,
            ),
        };
        Ok(Ct2Model {
            engine,
            dir: dir.to_path_buf(),
            architecture,
            vocabulary,
            eos_token_id,
            requested: options.compute_type,
            effective,
        })
    }

    pub fn architecture(&self) -> Architecture {
        self.architecture
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The compute type that was asked for.
    pub fn requested_compute_type(&self) -> ComputeType {
        self.requested
    }

    /// The compute type CTranslate2 runs (what status must report).
    pub fn compute_type(&self) -> ComputeType {
        self.effective
    }

    pub fn vocab_size(&self) -> usize {
        self.vocabulary.len()
    }

    pub fn eos_token_id(&self) -> u32 {
        self.eos_token_id
    }

    /// The token string of `id` in CTranslate2's vocabulary.
    pub fn token(&self, id: u32) -> Option<&str> {
        self.vocabulary.get(id as usize).map(String::as_str)
    }

    /// Generates for every request; `on_step` sees each new token as it is produced and
    /// may stop that request. It runs on a CTranslate2 worker thread while this call
    /// blocks, hence `Send`. Outputs come back in request order.
    pub fn generate(
        &self,
        requests: &[Ct2Request],
        on_step: &mut (dyn FnMut(StepEvent) -> StepControl + Send),
    ) -> Result<Vec<Ct2Output>, BackendError> {
        let mut prompts = Vec::with_capacity(requests.len());
        for (index, request) in requests.iter().enumerate() {
            validate_sampling(index, &request.sampling, self.vocabulary.len())?;
            if request.prompt.is_empty() {
                return Err(BackendError::EmptyPrompt { index });
            }
            prompts.push(self.tokens_of(index, &request.prompt)?);
        }
        let mut outputs: Vec<Ct2Output> = requests
            .iter()
            .map(|_| Ct2Output {
                token_ids: Vec::new(),
                finish: Ct2Finish::Length,
            })
            .collect();
        for group in group_by_sampling(requests) {
            self.run_group(requests, &prompts, &group, &mut outputs, on_step)?;
        }
        Ok(outputs)
    }

    /// Whether [`Ct2Model::score_prompts`] works: GPT-2 (`Generator::score_batch`), not T5,
    /// whose prompt is the encoder input (`docs/sampling.md` § Log-probabilities).
    pub fn scores_prompts(&self) -> bool {
        matches!(self.engine, Engine::Generator(_))
    }

    /// Each prompt token's logprob given the tokens before it, one list per prompt: the
    /// raw log-softmax CTranslate2's `score_batch` computes, for tokens 1.. (the first has
    /// nothing predicting it), so `prompt.len() - 1` numbers per prompt.
    pub fn score_prompts(&self, prompts: &[&[u32]]) -> Result<Vec<Vec<f32>>, BackendError> {
        let Engine::Generator(generator) = &self.engine else {
            return Err(BackendError::PromptScoringUnsupported);
        };
        let mut batch = Vec::with_capacity(prompts.len());
        for (index, prompt) in prompts.iter().enumerate() {
            if prompt.is_empty() {
                return Err(BackendError::EmptyPrompt { index });
            }
            batch.push(self.tokens_of(index, prompt)?);
        }
        let options = ScoringOptions {
            // The default (1024) would silently truncate long prompts.
            max_input_length: 0,
            ..ScoringOptions::default()
        };
        let results =
            generator
                .score_batch(&batch, &options)
                .map_err(|e| BackendError::Generation {
                    message: format!("{e:#}"),
                })?;
        prompts
            .iter()
            .zip(results)
            .enumerate()
            .map(|(index, (prompt, result))| {
                if result.tokens_score.len() + 1 == prompt.len() {
                    Ok(result.tokens_score)
                } else {
                    Err(BackendError::ScoreCount {
                        index,
                        tokens: prompt.len(),
                        found: result.tokens_score.len(),
                    })
                }
            })
            .collect()
    }

    fn run_group(
        &self,
        requests: &[Ct2Request],
        prompts: &[Vec<&str>],
        group: &[usize],
        outputs: &mut [Ct2Output],
        on_step: &mut (dyn FnMut(StepEvent) -> StepControl + Send),
    ) -> Result<(), BackendError> {
        let sampling = requests[group[0]].sampling;
        // Groups are split by this flag (`group_by_sampling`).
        let return_scores = requests[group[0]].logprobs;
        let max_new_tokens = group
            .iter()
            .map(|&i| requests[i].max_new_tokens)
            .max()
            .unwrap_or(0);
        let batch: Vec<Vec<&str>> = group.iter().map(|&i| prompts[i].clone()).collect();
        let vocab_size = self.vocabulary.len();
        let eos = self.eos_token_id;
        let mut failure: Option<BackendError> = None;
        let mut callback = |step: GenerationStepResult| -> bool {
            let Some(&request) = group.get(step.batch_id) else {
                return true;
            };
            let token_id = match u32::try_from(step.token_id) {
                Ok(id) if (id as usize) < vocab_size => id,
                _ => {
                    failure = Some(BackendError::UnknownOutputToken {
                        id: step.token_id,
                        size: vocab_size,
                    });
                    return true;
                }
            };
            let output = &mut outputs[request];
            let is_eos = token_id == eos;
            let control = on_step(StepEvent {
                request,
                step: output.token_ids.len(),
                token_id,
                is_eos,
                logprob: step.has_score.then_some(step.score),
            });
            if is_eos {
                output.finish = Ct2Finish::Eos;
                return true;
            }
            output.token_ids.push(token_id);
            if control == StepControl::Stop {
                output.finish = Ct2Finish::Stopped;
                return true;
            }
            // Each request stops at its own limit, though the call runs to the group's.
            output.token_ids.len() >= requests[request].max_new_tokens
        };
        let (top_k, temperature, top_p) = sampling_options(&sampling);
        let result = match &self.engine {
            Engine::Generator(generator) => {
                let options = GenerationOptions {
                    beam_size: 1,
                    max_length: max_new_tokens,
                    min_length: 0,
                    sampling_topk: top_k,
                    sampling_topp: top_p,
                    sampling_temperature: temperature,
                    // The default (true) would return the prompt as part of the output.
                    include_prompt_in_result: false,
                    return_end_token: false,
                    return_scores,
                    ..GenerationOptions::default()
                };
                generator
                    .generate_batch(&batch, &options, Some(&mut callback))
                    .map(|_| ())
            }
            Engine::Translator(translator) => {
                let options = TranslationOptions {
                    // The default beam size is 2: greedy and sampling need 1.
                    beam_size: 1,
                    max_decoding_length: max_new_tokens,
                    // The default (1) would forbid end-of-sequence as the first token.
                    min_decoding_length: 0,
                    // The default (1024) would silently truncate long encoder inputs.
                    max_input_length: 0,
                    sampling_topk: top_k,
                    sampling_topp: top_p,
                    sampling_temperature: temperature,
                    return_end_token: false,
                    return_scores,
                    ..TranslationOptions::default()
                };
                translator
                    .translate_batch(&batch, &options, Some(&mut callback))
                    .map(|_| ())
            }
        };
        result.map_err(|e| BackendError::Generation {
            message: format!("{e:#}"),
        })?;
        match failure {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    fn tokens_of(&self, index: usize, ids: &[u32]) -> Result<Vec<&str>, BackendError> {
        ids.iter()
            .map(|&id| {
                self.token(id).ok_or(BackendError::TokenId {
                    index,
                    id,
                    size: self.vocabulary.len(),
                })
            })
            .collect()
    }
}

/// (sampling_topk, sampling_temperature, sampling_topp) for CTranslate2: top-k 1 is its
/// greedy path; top-k 0 samples from the whole vocabulary.
fn sampling_options(sampling: &Ct2Sampling) -> (usize, f32, f32) {
    if sampling.is_greedy() {
        (1, 1.0, 1.0)
    } else {
        (sampling.top_k, sampling.temperature, sampling.top_p)
    }
}

fn validate_sampling(index: usize, s: &Ct2Sampling, vocab_size: usize) -> Result<(), BackendError> {
    let invalid = |field, allowed, given: String| BackendError::InvalidOption {
        index,
        field,
        allowed,
        given,
    };
    if !(s.temperature.is_finite() && s.temperature >= 0.0) {
        return Err(invalid(
            "temperature",
            "a finite number >= 0",
            s.temperature.to_string(),
        ));
    }
    if !(s.top_p > 0.0 && s.top_p <= 1.0) {
        return Err(invalid("top_p", "in (0, 1]", s.top_p.to_string()));
    }
    if s.top_k > vocab_size {
        return Err(invalid(
            "top_k",
            "at most the vocabulary size",
            s.top_k.to_string(),
        ));
    }
    Ok(())
}

fn sys_compute_type(compute_type: ComputeType) -> SysComputeType {
    match compute_type {
        ComputeType::Auto => SysComputeType::AUTO,
        ComputeType::Float32 => SysComputeType::FLOAT32,
        ComputeType::Float16 => SysComputeType::FLOAT16,
        ComputeType::Bfloat16 => SysComputeType::BFLOAT16,
        ComputeType::Int8 => SysComputeType::INT8,
        ComputeType::Int8Float32 => SysComputeType::INT8_FLOAT32,
        ComputeType::Int8Float16 => SysComputeType::INT8_FLOAT16,
        ComputeType::Int8Bfloat16 => SysComputeType::INT8_BFLOAT16,
        ComputeType::Int16 => SysComputeType::INT16,
    }
}

fn read_vocabulary(path: &Path) -> Result<Vec<String>, BackendError> {
    let bytes = std::fs::read(path).map_err(|e| BackendError::Vocabulary {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| BackendError::Vocabulary {
        path: path.to_path_buf(),
        message: format!("not a JSON list of tokens: {e}"),
    })
}

fn read_eos_token(path: &Path) -> Result<String, BackendError> {
    let bytes = std::fs::read(path).map_err(|e| BackendError::Vocabulary {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let json: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| BackendError::Vocabulary {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    json.get("eos_token")
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| BackendError::Vocabulary {
            path: path.to_path_buf(),
            message: "field `eos_token` must be a string".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::Ct2Model;

    #[test]
    fn a_loaded_model_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Ct2Model>();
    }
}
