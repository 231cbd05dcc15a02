//! Logprobs through the real engine and scheduler (`docs/sampling.md`
//! § Log-probabilities): the first generated step's top logprobs equal the log-softmax of
//! transformers' step-0 logits, echo scoring equals transformers' per-token log-softmax of
//! the prompt (golden.json `scoring`), every greedy token's logprob equals transformers'
//! teacher-forced one, batching changes nothing, and what a model cannot score is refused.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use candle_core::{Device, Tensor};
use runtime::batcher::{
    Completion, Engine, EngineConfig, Event, LoadedReplica, ReplicaLoader, ReplicaModel,
    RequestOption, SamplingParams, SubmitError, SubmitRequest, MAX_TOP_LOGPROBS,
};
use runtime::checkpoint::Checkpoint;
use runtime::model::Model;
use runtime::tokenizer::Tokenizer;
use serde::Deserialize;

use crate::generation::load_fixture;
use references::{fixtures_dir, model_path};

const TOLERANCE: f64 = 1e-4;

struct Fixture(Arc<dyn Model>);

impl ReplicaLoader for Fixture {
    fn load(&self, _running: &[Option<u32>]) -> Result<LoadedReplica, String> {
        Ok(LoadedReplica {
            model: ReplicaModel::Candle(self.0.clone()),
            device: "cpu".into(),
            gpu: None,
        })
    }
}

fn engine(model_dir: &str, max_batch_size: usize) -> Engine {
    let dir = Checkpoint::open(model_path(model_dir)).expect("fixture opens");
    let tokenizer = Arc::new(Tokenizer::load(&dir).expect("tokenizer loads"));
    Engine::start(
        EngineConfig {
            name: model_dir.into(),
            max_batch_size,
            max_queue: 256,
            prefill_token_budget: 4096,
            min_replicas: 1,
            max_replicas: 1,
            scale_up_delay: Duration::MAX,
            scale_down_delay: Duration::MAX,
            scale_up_queue_wait: Duration::MAX,
            batch_wait: Duration::ZERO,
            max_batch_wait: Duration::ZERO,
        },
        tokenizer,
        dir.limits(),
        Arc::new(Fixture(load_fixture(model_dir))),
        Arc::new(|_| {}),
        &|_| {},
    )
    .expect("engine starts")
}

fn greedy_request(prompt: &str, max_new_tokens: usize, logprobs: usize) -> SubmitRequest {
    SubmitRequest {
        prompt: prompt.into(),
        sampling: SamplingParams::GREEDY,
        max_new_tokens,
        stop: Vec::new(),
        seed: Some(1),
        timeout: None,
        logprobs: Some(logprobs),
        prompt_logprobs: false,
    }
}

fn complete(engine: &Engine, request: SubmitRequest) -> Completion {
    let mut events = engine.submit(request).expect("accepted");
    while let Some(event) = events.blocking_recv() {
        match event {
            Event::Token { logprob, .. } => assert!(logprob.is_some(), "token without logprob"),
            Event::Finished(done) => return done,
            Event::Failed(error) => panic!("generation failed: {error}"),
        }
    }
    panic!("no result")
}

#[derive(Deserialize)]
struct Golden {
    models: HashMap<String, ScoredModel>,
}

#[derive(Deserialize)]
struct ScoredModel {
    dir: String,
    cases: Vec<Case>,
    scoring: Vec<Scoring>,
}

#[derive(Deserialize)]
struct Case {
    prompt: String,
    greedy_ids: Vec<u32>,
    step_margins: Vec<f64>,
}

#[derive(Deserialize)]
struct Scoring {
    #[serde(default)]
    prompt_logprobs: Vec<Option<f64>>,
    #[serde(default)]
    prompt_logprob_sum: f64,
    greedy_logprobs: Vec<f64>,
}

fn golden(arch: &str) -> ScoredModel {
    let text = std::fs::read_to_string(fixtures_dir().join("golden.json")).expect("golden");
    let mut golden: Golden = serde_json::from_str(&text).expect("golden parses");
    golden.models.remove(arch).expect("model in golden.json")
}

fn log_softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = logits.iter().map(|&x| (f64::from(x) - max).exp()).sum();
    logits
        .iter()
        .map(|&x| f64::from(x) - max - sum.ln())
        .collect()
}

fn assert_first_step_matches_reference(arch: &str) {
    let golden = golden(arch);
    let engine = engine(&golden.dir, 8);
    let path = model_path(&golden.dir).join("reference_step0_logits.safetensors");
    let reference: HashMap<String, Tensor> =
        candle_core::safetensors::load(&path, &Device::Cpu).expect("reference logits");
    for (i, case) in golden.cases.iter().enumerate() {
        let logits: Vec<f32> = reference[&format!("prompt{i}")].to_vec1().expect("f32");
        let expected = log_softmax(&logits);
        let done = complete(&engine, greedy_request(&case.prompt, 1, MAX_TOP_LOGPROBS));
        let first = &done.token_logprobs.expect("logprobs asked for")[0];
        assert_eq!(first.top.len(), MAX_TOP_LOGPROBS);
        let mut ranked: Vec<usize> = (0..expected.len()).collect();
        ranked.sort_by(|&a, &b| expected[b].total_cmp(&expected[a]).then(a.cmp(&b)));
        for (rank, &(id, logprob)) in first.top.iter().enumerate() {
            let want = expected[id as usize];
            assert!(
                (f64::from(logprob) - want).abs() <= TOLERANCE,
                "{arch} prompt {i}: top[{rank}] token {id}: {logprob} vs reference {want}"
            );
            // The same tokens in the same order, unless the reference's own gap is noise.
            let reference_id = ranked[rank];
            assert!(
                id as usize == reference_id || (expected[reference_id] - want).abs() <= TOLERANCE,
                "{arch} prompt {i}: top[{rank}] is {id}, reference {reference_id}"
            );
        }
        let chosen = done.tokens[0] as usize;
        assert!((f64::from(first.logprob) - expected[chosen]).abs() <= TOLERANCE);
    }
}

#[test]
fn gpt2_first_step_top_logprobs_equal_log_softmax_of_the_reference_logits() {
    assert_first_step_matches_reference("gpt2");
}

#[test]
fn t5_first_step_top_logprobs_equal_log_softmax_of_the_reference_logits() {
    assert_first_step_matches_reference("t5");
}

/// Steps before the first whose reference margin is too small to reproduce the argmax.
fn trusted_steps(case: &Case) -> usize {
    case.step_margins
        .iter()
        .position(|&m| m < 5e-4)
        .unwrap_or(case.step_margins.len())
}

fn assert_greedy_logprobs_match_reference(arch: &str) {
    let golden = golden(arch);
    let engine = engine(&golden.dir, 8);
    for (case, scoring) in golden.cases.iter().zip(&golden.scoring) {
        let steps = trusted_steps(case);
        let done = complete(&engine, greedy_request(&case.prompt, steps, 0));
        assert_eq!(
            done.tokens,
            case.greedy_ids[..steps],
            "{arch}: {:?}",
            case.prompt
        );
        let logprobs = done.token_logprobs.expect("logprobs asked for");
        assert_eq!(logprobs.len(), steps);
        for (step, (got, want)) in logprobs.iter().zip(&scoring.greedy_logprobs).enumerate() {
            assert!(got.top.is_empty());
            assert!(
                (f64::from(got.logprob) - want).abs() <= TOLERANCE,
                "{arch} {:?} step {step}: {} vs transformers {want}",
                case.prompt,
                got.logprob
            );
        }
    }
}

#[test]
fn gpt2_every_greedy_token_logprob_equals_transformers() {
    assert_greedy_logprobs_match_reference("gpt2");
}

#[test]
fn t5_every_greedy_token_logprob_equals_transformers() {
    assert_greedy_logprobs_match_reference("t5");
}

#[test]
fn gpt2_echo_scoring_equals_transformers_prompt_log_softmax() {
    let golden = golden("gpt2");
    let engine = engine(&golden.dir, 8);
    for (case, scoring) in golden.cases.iter().zip(&golden.scoring) {
        // Score only: no new tokens, as evaluation harnesses ask.
        let request = SubmitRequest {
            prompt_logprobs: true,
            ..greedy_request(&case.prompt, 0, 2)
        };
        let done = complete(&engine, request);
        assert!(done.tokens.is_empty());
        let scored = done.prompt_logprobs.expect("prompt scored");
        assert_eq!(scored.logprobs.len(), scoring.prompt_logprobs.len());
        assert!(
            scored.logprobs[0].is_none(),
            "nothing predicts the first token"
        );
        for (i, (got, want)) in scored
            .logprobs
            .iter()
            .zip(&scoring.prompt_logprobs)
            .enumerate()
        {
            let (Some(got), Some(want)) = (got, want) else {
                assert!(got.is_none() && want.is_none(), "position {i}");
                continue;
            };
            assert_eq!(got.top.len(), 2);
            assert!(
                (f64::from(got.logprob) - want).abs() <= TOLERANCE,
                "{:?} position {i}: {} vs transformers {want}",
                case.prompt,
                got.logprob
            );
        }
        let total = scored.total();
        assert!(
            (total - scoring.prompt_logprob_sum).abs() <= 1e-3,
            "{:?}: sum {total} vs transformers {}",
            case.prompt,
            scoring.prompt_logprob_sum
        );
    }
}

/// Submits `count` requests of varied prompts, lengths and options (half score their
/// prompt) and returns their receivers.
fn crowd(
    engine: &Engine,
    golden: &ScoredModel,
    count: usize,
    offset: usize,
) -> Vec<runtime::batcher::EventReceiver> {
    (offset..offset + count)
        .map(|i| {
            let prompt = &golden.cases[i % golden.cases.len()].prompt;
            let request = SubmitRequest {
                prompt_logprobs: i % 2 == 0,
                sampling: SamplingParams {
                    temperature: 0.8,
                    top_k: 0,
                    top_p: 1.0,
                },
                seed: Some(i as u64),
                ..greedy_request(prompt, 4 + i % 9, 3)
            };
            engine.submit(request).expect("accepted")
        })
        .collect()
}

fn drain(receivers: Vec<runtime::batcher::EventReceiver>) {
    for mut events in receivers {
        while let Some(event) = events.blocking_recv() {
            if let Event::Failed(error) = event {
                panic!("{error}");
            }
        }
    }
}

#[test]
fn logprobs_do_not_depend_on_the_batch_around_a_request() {
    let golden = golden("gpt2");
    let engine = engine(&golden.dir, 32);
    let prompt = &golden.cases[1].prompt;
    for scored in [false, true] {
        let probe = || SubmitRequest {
            prompt_logprobs: scored,
            ..greedy_request(prompt, 12, 5)
        };
        let alone = complete(&engine, probe());
        // The probe joins in the middle of 30 others, so it never sits first in the batch.
        let before = crowd(&engine, &golden, 15, 0);
        let probe_events = engine.submit(probe()).expect("accepted");
        let after = crowd(&engine, &golden, 15, 15);
        let among = {
            let mut events = probe_events;
            let mut done = None;
            while let Some(event) = events.blocking_recv() {
                if let Event::Finished(result) = event {
                    done = Some(result);
                }
            }
            done.expect("probe finished")
        };
        drain(before);
        drain(after);
        assert_eq!(alone.tokens, among.tokens);
        let (a, b) = (alone.token_logprobs.unwrap(), among.token_logprobs.unwrap());
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert!((x.logprob - y.logprob).abs() <= 1e-5, "{x:?} vs {y:?}");
            let ids =
                |t: &runtime::batcher::TokenLogprob| t.top.iter().map(|p| p.0).collect::<Vec<_>>();
            assert_eq!(ids(x), ids(y));
        }
        assert_eq!(alone.prompt_logprobs, among.prompt_logprobs);
    }
}

#[test]
fn an_encoder_decoder_refuses_prompt_scoring_and_every_model_refuses_too_many_alternatives() {
    let golden_t5 = golden("t5");
    let engine = engine(&golden_t5.dir, 4);
    let echo = SubmitRequest {
        prompt_logprobs: true,
        ..greedy_request(&golden_t5.cases[0].prompt, 0, 0)
    };
    match engine.submit(echo) {
        Err(SubmitError::Unsupported { option, reason }) => {
            assert_eq!(option, RequestOption::PromptLogprobs);
            assert!(reason.contains("encoder-decoder"), "{reason}");
        }
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
    let too_many = greedy_request(&golden_t5.cases[0].prompt, 1, MAX_TOP_LOGPROBS + 1);
    match engine.submit(too_many) {
        Err(SubmitError::Unsupported { option, .. }) => assert_eq!(option, RequestOption::Logprobs),
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn without_logprobs_nothing_is_computed_or_sent() {
    let golden = golden("gpt2");
    let engine = engine(&golden.dir, 4);
    let request = SubmitRequest {
        logprobs: None,
        ..greedy_request(&golden.cases[0].prompt, 3, 0)
    };
    let mut events = engine.submit(request).expect("accepted");
    while let Some(event) = events.blocking_recv() {
        match event {
            Event::Token { logprob, .. } => assert!(logprob.is_none()),
            Event::Finished(done) => {
                assert!(done.token_logprobs.is_none() && done.prompt_logprobs.is_none());
                return;
            }
            Event::Failed(error) => panic!("{error}"),
        }
    }
}
