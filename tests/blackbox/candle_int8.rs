//! Candle with int8 weights through the real binary (docs/models.md § int8 weights):
//! `optimizationType: ""` with `quantizationType: "int8_float16"` deploys, reports
//! `int8_float32` as its compute type (int8 weights, float32 activations on the CPU), and
//! answers over HTTP with exactly the runtime's own int8 greedy tokens — which are not the
//! float32 model's — whether a request runs alone or among others.

use std::thread;

use references::{golden_cases, model_path};
use runtime::checkpoint::Checkpoint;
use runtime::model::{Model, Target, WeightFormat};
use serde_json::{json, Value};

use crate::support::kore::{deploy_and_wait_for_success, kore_body};
use crate::support::{Agent, AgentConfig, Endpoint, Reply};

const MODEL: &str = "gpt2-tiny";
const TOKENS: usize = 24;

fn int8_body() -> Value {
    let mut body = kore_body("cpu");
    body["optimizationInfo"] = json!({"optimizationType": "", "quantizationType": "int8_float16"});
    body
}

fn greedy(agent: &Endpoint, id: &str, prompt: &str) -> Vec<u32> {
    let reply: Reply = agent.post_json(
        &format!("/v1/deployments/{id}/generate"),
        &json!({"prompt": prompt, "parameters": {"temperature": 0, "maxTokens": TOKENS}}),
    );
    assert_eq!(reply.status, 200, "{prompt:?}: {}", reply.text);
    reply.json["tokens"]
        .as_array()
        .unwrap_or_else(|| panic!("no tokens in {}", reply.text))
        .iter()
        .filter_map(Value::as_u64)
        .map(|id| id as u32)
        .collect()
}

/// `model`'s greedy tokens after `prompt_ids`, one prompt at a time: what the agent must
/// serve.
fn runtime_greedy(model: &dyn Model, prompt_ids: &[u32]) -> Vec<u32> {
    let mut slot = model.new_slot().expect("slot");
    let mut logits = model.prefill(&mut slot, prompt_ids).expect("prefill");
    let mut tokens = Vec::new();
    loop {
        let next = (0..logits.len())
            .max_by(|&a, &b| logits[a].total_cmp(&logits[b]).then(b.cmp(&a)))
            .expect("logits") as u32;
        if next == model.eos_token_id() {
            return tokens;
        }
        tokens.push(next);
        if tokens.len() == TOKENS {
            return tokens;
        }
        logits = model.decode(&mut [&mut slot], &[next]).expect("decode");
    }
}

#[test]
fn candle_int8_reports_its_compute_type_and_serves_the_runtimes_int8_tokens_alone_and_batched() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    let id = deploy_and_wait_for_success(&agent, MODEL, &int8_body());
    let status = agent.get_with_key(&format!("/v1/deployments/{id}")).json;
    assert_eq!(status["backend"]["kind"], "candle", "{status}");
    assert_eq!(status["computeType"], "int8_float32", "{status}");
    assert_eq!(status["quantizationType"], "int8_float16", "{status}");

    let cases = golden_cases(MODEL);
    let model = Checkpoint::open(model_path(MODEL))
        .and_then(|c| c.load_with(Target::Cpu, WeightFormat::Int8))
        .expect("int8 model loads");
    let expected: Vec<Vec<u32>> = cases
        .iter()
        .map(|c| runtime_greedy(model.as_ref(), &c.prompt_ids))
        .collect();
    let alone: Vec<Vec<u32>> = cases
        .iter()
        .map(|c| greedy(&agent, &id, &c.prompt))
        .collect();
    assert_eq!(
        alone, expected,
        "HTTP int8 greedy = the runtime's int8 greedy"
    );
    // The weights really are int8: the float32 reference continues differently somewhere.
    assert!(
        cases
            .iter()
            .zip(&alone)
            .any(|(c, a)| a[..] != c.greedy_ids[..a.len().min(c.greedy_ids.len())]),
        "int8 output equals the float32 reference on every prompt: were the weights quantized?"
    );
    // All prompts at once, several times over: each still gets its lone tokens.
    let together: Vec<Vec<u32>> = thread::scope(|scope| {
        let handles: Vec<_> = (0..3)
            .flat_map(|_| cases.iter())
            .map(|case| scope.spawn(|| greedy(&agent, &id, &case.prompt)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client"))
            .collect()
    });
    for (i, tokens) in together.iter().enumerate() {
        assert_eq!(
            tokens,
            &expected[i % cases.len()],
            "request {i} in the crowd"
        );
    }
}
