//! Logprobs and echo scoring through the native generate route (`docs/api.md`, native
//! generate; `docs/sampling.md` § Log-probabilities), on the real binary with the tiny
//! fixture checkpoints: the first step's top logprobs against the log-softmax of the
//! reference step-0 logits, echo scoring against transformers' per-token prompt logprobs
//! (golden.json `scoring`), the same request alone and among 30 concurrent others, and the
//! 422s of what a backend cannot honour.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::support::golden::{golden_cases, tokens_of};
use crate::support::http::parse_sse;
use crate::support::kore::{deploy_and_wait_for_success, kore_body};
use crate::support::serving::{deploy_ready, deploy_ready_with, generate, generate_in_background};
use crate::support::{fixtures, Agent, AgentConfig, Endpoint};

const TOLERANCE: f64 = 1e-4;

/// golden.json `models.<arch>.scoring`, one entry per case.
fn scoring(arch: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(fixtures().join("golden.json")).expect("golden");
    let golden: Value = serde_json::from_str(&text).expect("golden parses");
    golden["models"][arch]["scoring"]
        .as_array()
        .expect("scoring section")
        .clone()
}

/// Log-softmax of `prompt{i}` in the fixture's reference_step0_logits.safetensors.
fn reference_step0_logprobs(model_dir: &str) -> HashMap<usize, Vec<f64>> {
    let path = fixtures()
        .join(model_dir)
        .join("reference_step0_logits.safetensors");
    let bytes = std::fs::read(&path).expect("reference logits");
    let tensors = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    (0..5)
        .map(|i| {
            let view = tensors.tensor(&format!("prompt{i}")).expect("tensor");
            let logits: Vec<f64> = view
                .data()
                .chunks_exact(4)
                .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                .collect();
            let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lse = max + logits.iter().map(|x| (x - max).exp()).sum::<f64>().ln();
            (i, logits.iter().map(|x| x - lse).collect())
        })
        .collect()
}

fn number(value: &Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {value}"))
}

fn assert_first_step_top_logprobs_match(model: &str) {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    let id = deploy_ready(&agent, model);
    let reference = reference_step0_logprobs(model);
    for (i, case) in golden_cases(model).iter().enumerate() {
        let body = json!({"prompt": case.prompt,
            "parameters": {"temperature": 0, "maxTokens": 1, "logprobs": 20}});
        let reply = generate(&agent, &id, body);
        assert_eq!(reply.status, 200, "{}", reply.text);
        let first = &reply.json["logprobs"][0];
        assert_eq!(first["id"], reply.json["tokens"][0]);
        let expected = &reference[&i];
        let top = first["top"].as_array().expect("top");
        assert_eq!(top.len(), 20);
        for entry in top {
            let token = entry["id"].as_u64().expect("id") as usize;
            let got = number(&entry["logprob"]);
            assert!(
                (got - expected[token]).abs() <= TOLERANCE,
                "{model} prompt {i}: token {token}: {got} vs reference {}",
                expected[token]
            );
        }
        // The 20 best of the reference, in order (the golden margins are far above 1e-4
        // at step 0, so no reorder by noise is expected).
        let mut ranked: Vec<usize> = (0..expected.len()).collect();
        ranked.sort_by(|&a, &b| expected[b].total_cmp(&expected[a]).then(a.cmp(&b)));
        let ids: Vec<usize> = top
            .iter()
            .map(|e| e["id"].as_u64().unwrap() as usize)
            .collect();
        assert_eq!(ids, ranked[..20], "{model} prompt {i}");
        let chosen = first["id"].as_u64().unwrap() as usize;
        assert!((number(&first["logprob"]) - expected[chosen]).abs() <= TOLERANCE);
    }
}

#[test]
fn gpt2_native_first_step_top_logprobs_equal_the_reference_log_softmax() {
    assert_first_step_top_logprobs_match("gpt2-tiny");
}

#[test]
fn t5_native_first_step_top_logprobs_equal_the_reference_log_softmax() {
    assert_first_step_top_logprobs_match("t5-tiny");
}

#[test]
fn gpt2_native_echo_scoring_equals_transformers_and_streams_logprobs() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    let id = deploy_ready(&agent, "gpt2-tiny");
    for (case, reference) in golden_cases("gpt2-tiny").iter().zip(scoring("gpt2")) {
        let body = json!({"prompt": case.prompt,
            "parameters": {"maxTokens": 0, "promptLogprobs": true}});
        let reply = generate(&agent, &id, body);
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.json["tokens"], json!([]));
        let scored = reply.json["promptLogprobs"]
            .as_array()
            .expect("promptLogprobs");
        let ids: Vec<u32> = scored
            .iter()
            .map(|e| e["id"].as_u64().unwrap() as u32)
            .collect();
        assert_eq!(ids, case.prompt_ids);
        assert!(scored[0]["logprob"].is_null(), "{}", reply.text);
        let mut total = 0.0;
        for (i, (entry, want)) in scored
            .iter()
            .zip(reference["prompt_logprobs"].as_array().unwrap())
            .enumerate()
            .skip(1)
        {
            let got = number(&entry["logprob"]);
            assert!(
                (got - number(want)).abs() <= TOLERANCE,
                "{:?} position {i}",
                case.prompt
            );
            total += got;
        }
        let want = number(&reference["prompt_logprob_sum"]);
        assert!(
            (total - want).abs() <= 1e-3,
            "{:?}: {total} vs transformers {want}",
            case.prompt
        );
    }
    // Streaming: every token event carries its logprob and alternatives.
    let body = json!({"prompt": "Hello, my name is", "stream": true,
        "parameters": {"temperature": 0, "maxTokens": 3, "logprobs": 2}});
    let reply = generate(&agent, &id, body);
    assert_eq!(reply.status, 200, "{}", reply.text);
    let events = parse_sse(&reply.text);
    let tokens: Vec<Value> = events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(&e.data).ok())
        .filter(|v| v.get("token").is_some())
        .collect();
    assert_eq!(tokens.len(), 3, "{}", reply.text);
    for event in &tokens {
        assert!(event["token"]["logprob"].as_f64().unwrap() <= 0.0);
        assert_eq!(event["token"]["top"].as_array().unwrap().len(), 2);
    }
}

fn crowd(
    agent: &Endpoint,
    id: &str,
    range: std::ops::Range<u64>,
) -> Vec<std::thread::JoinHandle<crate::support::Reply>> {
    range
        .map(|i| {
            let body = json!({"prompt": format!("request {i} of the crowd"),
                "parameters": {"temperature": 0.8, "maxTokens": 4 + i % 9, "seed": i,
                    "logprobs": 3, "promptLogprobs": i % 2 == 0}});
            generate_in_background(agent, id, body)
        })
        .collect()
}

#[test]
fn logprobs_of_a_request_are_the_same_alone_and_among_30_concurrent_others() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    let id = deploy_ready_with(
        &agent,
        "gpt2-tiny",
        json!({"maxBatchSize": 32, "minReplicas": 1, "maxReplicas": 1}),
    );
    for scored in [false, true] {
        let probe = json!({"prompt": "The quick brown fox",
            "parameters": {"temperature": 0, "maxTokens": 8, "logprobs": 5, "promptLogprobs": scored}});
        let alone = generate(&agent, &id, probe.clone());
        assert_eq!(alone.status, 200, "{}", alone.text);
        // The probe goes in the middle of the crowd, so it does not sit first in the batch.
        let mut others = crowd(&agent, &id, 0..15);
        let among = generate_in_background(&agent, &id, probe);
        others.extend(crowd(&agent, &id, 15..30));
        for other in others {
            let reply = other.join().expect("thread");
            assert_eq!(reply.status, 200, "{}", reply.text);
        }
        let among = among.join().expect("thread");
        assert_eq!(among.status, 200, "{}", among.text);
        assert_eq!(alone.json["tokens"], among.json["tokens"]);
        let keys: &[&str] = if scored {
            &["logprobs", "promptLogprobs"]
        } else {
            &["logprobs"]
        };
        for key in keys {
            let (a, b) = (&alone.json[*key], &among.json[*key]);
            let (a, b) = (a.as_array().unwrap(), b.as_array().unwrap());
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(b) {
                assert_eq!(x["id"], y["id"]);
                if x["logprob"].is_null() {
                    assert!(y["logprob"].is_null());
                    continue;
                }
                assert!(
                    (number(&x["logprob"]) - number(&y["logprob"])).abs() <= 1e-5,
                    "{x} vs {y}"
                );
                let ids = |v: &Value| {
                    v["top"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|t| t["id"].clone())
                        .collect::<Vec<_>>()
                };
                assert_eq!(ids(x), ids(y));
            }
        }
    }
}

fn assert_refused(agent: &Endpoint, id: &str, parameters: Value, field: &str) {
    let reply = generate(
        agent,
        id,
        json!({"prompt": "Hello", "parameters": parameters}),
    );
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(
        reply.error_code(),
        "UNSUPPORTED_PARAMETER",
        "{}",
        reply.text
    );
    assert_eq!(reply.error_field(), Some(field), "{}", reply.text);
}

#[test]
fn t5_refuses_echo_scoring_and_bad_logprobs_are_refused_naming_the_field() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    let id = deploy_ready(&agent, "t5-tiny");
    assert_refused(
        &agent,
        &id,
        json!({"promptLogprobs": true, "maxTokens": 0}),
        "parameters.promptLogprobs",
    );
    for (parameters, status, field) in [
        (json!({"logprobs": 21}), 422, "parameters.logprobs"),
        (json!({"logprobs": -1}), 422, "parameters.logprobs"),
        (json!({"logprobs": "5"}), 400, "parameters.logprobs"),
        (
            json!({"promptLogprobs": 1}),
            400,
            "parameters.promptLogprobs",
        ),
    ] {
        let reply = generate(
            &agent,
            &id,
            json!({"prompt": "Hello", "parameters": parameters}),
        );
        assert_eq!(reply.status, status, "{}", reply.text);
        assert_eq!(reply.error_field(), Some(field), "{}", reply.text);
    }
    // Without logprobs the answer carries none.
    let plain = generate(
        &agent,
        &id,
        json!({"prompt": "Hello", "parameters": {"maxTokens": 2}}),
    );
    assert_eq!(plain.status, 200, "{}", plain.text);
    assert!(plain.json.get("logprobs").is_none() && plain.json.get("promptLogprobs").is_none());
}

#[test]
fn ctranslate2_reports_logprobs_and_prompt_scores_equal_to_the_references_and_refuses_alternatives()
{
    let agent = Agent::start(AgentConfig::with_fixture_models());
    let mut body = kore_body("cpu");
    body["optimizationInfo"] =
        json!({"optimizationType": "ctranslate2", "quantizationType": "no_quantization"});
    let id = deploy_and_wait_for_success(&agent, "gpt2-tiny", &body);
    for (case, reference) in golden_cases("gpt2-tiny").iter().zip(scoring("gpt2")) {
        let steps = case.comparable().min(8);
        let body = json!({"prompt": case.prompt,
            "parameters": {"temperature": 0, "maxTokens": steps, "logprobs": 0, "promptLogprobs": true}});
        let reply = generate(&agent, &id, body);
        assert_eq!(reply.status, 200, "{}", reply.text);
        case.assert_prefix_matches(&tokens_of(&reply.json), steps, "ct2");
        let logprobs = reply.json["logprobs"].as_array().expect("logprobs");
        let want = reference["ctranslate2_greedy_logprobs"].as_array().unwrap();
        assert_eq!(logprobs.len(), steps);
        for (step, (got, want)) in logprobs.iter().zip(want).enumerate() {
            assert_eq!(got["top"], json!([]));
            let (got, want) = (number(&got["logprob"]), number(want));
            assert!(
                (got - want).abs() <= TOLERANCE,
                "{:?} step {step}: {got} vs CTranslate2 {want}",
                case.prompt
            );
        }
        let scored = reply.json["promptLogprobs"]
            .as_array()
            .expect("promptLogprobs");
        let want = reference["prompt_logprobs"].as_array().unwrap();
        assert_eq!(scored.len(), want.len());
        assert!(scored[0]["logprob"].is_null());
        for (i, (got, want)) in scored.iter().zip(want).enumerate().skip(1) {
            let (got, want) = (number(&got["logprob"]), number(want));
            assert!(
                (got - want).abs() <= TOLERANCE,
                "{:?} prompt token {i}: {got} vs transformers {want}",
                case.prompt
            );
        }
    }
    assert_refused(&agent, &id, json!({"logprobs": 1}), "parameters.logprobs");
}
