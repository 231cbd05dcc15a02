//! The CTranslate2 backend through the real binary: deploys with
//! `optimizationType: "ctranslate2"` of the tiny fixture models (mostly Kore, on the CPU
//! class), converted by the agent, loaded into real CTranslate2, and asked over real HTTP.
//!
//! - int8_float16 is reported as asked and as run (`int8_float32` on CPU, also for a GPU
//!   class run on the CPU), and greedy output equals CTranslate2 Python's on its own
//!   int8_float16 conversion;
//! - float32 (`quantizationType: "no_quantization"`) greedy equals Hugging Face's;
//! - the conversion cache is reused on `isDeployedPreviously` and by restored deployments,
//!   survives `kill -9`, and is rebuilt (saying why) when its files were damaged;
//! - stop strings, maxTokens, the context limit, batching, seeds, and the OpenAI and
//!   Lucidworks surfaces behave as on candle;
//! - `optimizationType: "vllm"` is refused on every deploy surface.

use std::path::PathBuf;

use references::assert_int8_agreement;
use serde_json::{json, Value};

use crate::support::golden::golden_cases;
use crate::support::http::parse_sse;
use crate::support::kore::{deploy_and_wait_for_success, kore_body, wait_job};
use crate::support::serving::assert_hanging_up_does_not_delay_the_next_request;
use crate::support::slow_model::SLOW_MODEL;
use crate::support::{Agent, AgentConfig, Endpoint, Reply, API_KEY};

/// The golden continuations are 24 tokens.
const GOLDEN_TOKENS: usize = 24;

/// A Kore deploy body for the CPU class on CTranslate2 with `quantization`.
fn ct2_body(quantization: &str, deployed_previously: bool) -> Value {
    let mut body = kore_body("cpu");
    body["optimizationInfo"] =
        json!({"optimizationType": "ctranslate2", "quantizationType": quantization});
    body["isDeployedPreviously"] = json!(deployed_previously);
    body
}

/// Deploys `model` through Kore, waits for SUCCESS, and returns the deployment id and its
/// native status.
fn deploy(agent: &Endpoint, model: &str, body: &Value) -> (String, Value) {
    let id = deploy_and_wait_for_success(agent, model, body);
    let status = agent.get_with_key(&format!("/v1/deployments/{id}"));
    assert_eq!(status.status, 200, "{}", status.text);
    (id, status.json)
}

/// Undeploys `model` through Kore and waits until deployment `id` is UNDEPLOYED.
fn undeploy(agent: &Endpoint, model: &str, id: &str) {
    let reply = agent.post_json(&format!("/api/public/models/{model}/undeploy"), &json!({}));
    assert_eq!(reply.status, 202, "{}", reply.text);
    let job = wait_job(
        agent,
        reply.json["dockStatusId"].as_str().unwrap_or_default(),
    );
    assert_eq!(job.json["status"], "SUCCESS", "{}", job.text);
    agent.wait_phase(id, &["UNDEPLOYED"]);
}

fn generate(agent: &Endpoint, id: &str, body: &Value) -> Reply {
    agent.post_json(&format!("/v1/deployments/{id}/generate"), body)
}

fn greedy_body(prompt: &str, max_tokens: usize) -> Value {
    json!({"prompt": prompt, "parameters": {"temperature": 0, "maxTokens": max_tokens}})
}

/// The token ids of a native generate reply.
fn token_ids(reply: &Reply) -> Vec<u32> {
    reply.json["tokens"]
        .as_array()
        .unwrap_or_else(|| panic!("no tokens in {} {}", reply.status, reply.text))
        .iter()
        .filter_map(Value::as_u64)
        .map(|id| id as u32)
        .collect()
}

/// Greedy ids of every golden prompt of `model` on deployment `id`, in golden order.
fn greedy_outputs(agent: &Endpoint, id: &str, model: &str) -> Vec<Vec<u32>> {
    golden_cases(model)
        .iter()
        .map(|case| {
            let reply = generate(agent, id, &greedy_body(&case.prompt, GOLDEN_TOKENS));
            assert_eq!(reply.status, 200, "{:?}: {}", case.prompt, reply.text);
            assert_eq!(
                reply.json["usage"]["promptTokens"],
                case.prompt_ids.len(),
                "{:?}: the agent's tokenizer gives the golden prompt ids",
                case.prompt
            );
            token_ids(&reply)
        })
        .collect()
}

fn assert_backend(status: &Value, requested: &str, effective: &str, cache_hit: bool) {
    let backend = &status["backend"];
    assert_eq!(backend["kind"], "ctranslate2", "{status}");
    assert_eq!(backend["requestedComputeType"], requested, "{status}");
    assert_eq!(backend["computeType"], effective, "{status}");
    assert_eq!(backend["cacheHit"], cache_hit, "{status}");
    assert_eq!(status["computeType"], effective, "{status}");
}

fn assert_int8_float16_on_cpu_matches_ctranslate2_python(model: &str) {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    let (id, status) = deploy(&agent, model, &ct2_body("int8_float16", false));
    // CPU has no float16: CTranslate2 runs int8 weights with float32 activations, and
    // status says so next to what was asked.
    assert_backend(&status, "int8_float16", "int8_float32", false);
    assert_eq!(status["quantizationType"], "int8_float16", "{status}");
    let outputs = greedy_outputs(&agent, &id, model);
    // The converted model is byte-identical to CTranslate2 Python's (runtime tests); only
    // the int8 GEMM builds differ (see references::assert_int8_agreement).
    assert_int8_agreement(model, &outputs);

    // quantizationType "" is CTranslate2's default, int8_float16: the same model.
    undeploy(&agent, model, &id);
    let (id, status) = deploy(&agent, model, &ct2_body("", false));
    assert_backend(&status, "int8_float16", "int8_float32", false);
    assert_eq!(greedy_outputs(&agent, &id, model), outputs);
}

#[test]
fn gpt2_int8_float16_on_cpu_reports_int8_float32_and_greedy_equals_ctranslate2_python() {
    assert_int8_float16_on_cpu_matches_ctranslate2_python("gpt2-tiny");
}

#[test]
fn t5_int8_float16_on_cpu_reports_int8_float32_and_greedy_equals_ctranslate2_python() {
    assert_int8_float16_on_cpu_matches_ctranslate2_python("t5-tiny");
}

#[test]
fn float32_conversion_greedy_equals_hugging_face_golden_for_gpt2_and_flan_t5() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    for model in ["gpt2-tiny", "t5-tiny"] {
        let (id, status) = deploy(&agent, model, &ct2_body("no_quantization", false));
        assert_backend(&status, "float32", "float32", false);
        let outputs = greedy_outputs(&agent, &id, model);
        for (case, tokens) in golden_cases(model).iter().zip(&outputs) {
            case.assert_matches(tokens, &format!("{model} on CTranslate2 float32"));
        }
    }
}

/// A named way to damage a file's bytes.
type Damage = (&'static str, fn(&mut Vec<u8>));

/// The conversion cache's entries under the agent's state directory (staging dirs aside).
fn cache_entries(agent: &Agent) -> Vec<PathBuf> {
    let root = agent.state_dir().join("ctranslate2");
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.expect("cache entry").path())
        .filter(|p| {
            p.is_dir()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    entries.sort();
    entries
}

#[test]
fn conversion_cache_is_reused_survives_kill_9_and_is_rebuilt_when_damaged() {
    let model = "gpt2-tiny";
    let mut agent = Agent::start(AgentConfig::with_fixture_models());

    // First deploy converts; every later load of the conversion must answer the same.
    let (id, status) = deploy(&agent, model, &ct2_body("int8_float16", false));
    assert_backend(&status, "int8_float16", "int8_float32", false);
    let expected = greedy_outputs(&agent, &id, model);
    assert_int8_agreement(model, &expected);
    let entries = cache_entries(&agent);
    assert_eq!(entries.len(), 1, "one conversion cached: {entries:?}");
    let model_bin = entries[0].join("model.bin");
    let converted = std::fs::read(&model_bin).expect("cached model.bin");
    undeploy(&agent, model, &id);

    // A redeploy that may reuse artifacts takes the cached conversion.
    let (id, status) = deploy(&agent, model, &ct2_body("int8_float16", true));
    assert_backend(&status, "int8_float16", "int8_float32", true);
    assert_eq!(
        status["backend"]["cacheRebuiltBecause"],
        Value::Null,
        "{status}"
    );
    assert_eq!(greedy_outputs(&agent, &id, model), expected);

    // kill -9: the restored deployment loads the same cached conversion.
    agent.kill9_and_restart();
    let status = agent.wait_phase(&id, &["READY", "FAILED"]);
    assert_eq!(status.json["phase"], "READY", "{}", status.text);
    assert_backend(&status.json, "int8_float16", "int8_float32", true);
    assert_eq!(greedy_outputs(&agent, &id, model), expected);
    assert_eq!(
        cache_entries(&agent),
        entries,
        "the cache outlived the restart"
    );
    undeploy(&agent, model, &id);

    // Damage that CTranslate2 would load without complaint: flipped weight bytes (same
    // size). Then damage it could not load: a truncated file. Each time the manifest check
    // finds it, the conversion is rebuilt, reported as a miss, and outputs are golden.
    let damages: [Damage; 2] = [
        ("flipped bytes", |bytes: &mut Vec<u8>| {
            let middle = bytes.len() / 2;
            for byte in &mut bytes[middle..middle + 64] {
                *byte ^= 0x5a;
            }
        }),
        ("truncated", |bytes: &mut Vec<u8>| {
            bytes.truncate(bytes.len() / 3)
        }),
    ];
    for (damage, apply) in damages {
        let mut bytes = converted.clone();
        apply(&mut bytes);
        std::fs::write(&model_bin, &bytes).expect("damage the cached model.bin");
        let (id, status) = deploy(&agent, model, &ct2_body("int8_float16", true));
        assert_backend(&status, "int8_float16", "int8_float32", false);
        let reason = status["backend"]["cacheRebuiltBecause"]
            .as_str()
            .unwrap_or_else(|| panic!("{damage}: the rebuild says why: {status}"));
        assert!(reason.contains("model.bin"), "{damage}: {reason}");
        eprintln!("{damage}: cacheRebuiltBecause {reason:?}");
        assert_eq!(
            greedy_outputs(&agent, &id, model),
            expected,
            "{damage}: rebuilt conversion gives the golden outputs"
        );
        assert!(
            std::fs::read(&model_bin).expect("rebuilt model.bin") == converted,
            "{damage}: the rebuilt model.bin is the original conversion"
        );
        undeploy(&agent, model, &id);
    }
}

#[test]
fn a_restored_deployment_reuses_its_cached_conversion_even_if_first_deployed_fresh() {
    let mut agent = Agent::start(AgentConfig::with_fixture_models());
    let (id, status) = deploy(&agent, "t5-tiny", &ct2_body("int8_float16", false));
    assert_backend(&status, "int8_float16", "int8_float32", false);
    let before = greedy_outputs(&agent, &id, "t5-tiny");
    agent.kill9_and_restart();
    let status = agent.wait_phase(&id, &["READY", "FAILED"]);
    assert_eq!(status.json["phase"], "READY", "{}", status.text);
    // The agent resumes its own deployment: the conversion it made is still valid.
    assert_backend(&status.json, "int8_float16", "int8_float32", true);
    assert_eq!(
        status.json["isDeployedPreviously"], false,
        "the spec as given"
    );
    assert_eq!(greedy_outputs(&agent, &id, "t5-tiny"), before);
}

/// The text of each token of a greedy stream, and the final event.
fn stream(agent: &Endpoint, id: &str, mut body: Value) -> (Vec<(u32, String)>, Value) {
    body["stream"] = json!(true);
    let reply = generate(agent, id, &body);
    assert_eq!(reply.status, 200, "{}", reply.text);
    let events = parse_sse(&reply.text);
    let (last, tokens) = events.split_last().expect("at least the final event");
    assert_eq!(last.event, None, "{}", reply.text);
    let tokens = tokens
        .iter()
        .map(|e| {
            let token = &e.json()["token"];
            (
                token["id"].as_u64().expect("token id") as u32,
                token["text"].as_str().expect("token text").to_owned(),
            )
        })
        .collect();
    (tokens, last.json())
}

#[test]
fn stop_string_across_a_token_boundary_truncates_before_it_streamed_and_not() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    let (id, _) = deploy(&agent, "gpt2-tiny", &ct2_body("int8_float16", false));
    let prompt = &golden_cases("gpt2-tiny")[0].prompt;
    let (tokens, full) = stream(&agent, &id, greedy_body(prompt, GOLDEN_TOKENS));
    let full_text = full["text"].as_str().expect("text").to_owned();
    let streamed: String = tokens.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(streamed, full_text);

    // A stop string made of the last two characters of token k and the first two of
    // token k+1, at the first boundary where it does not occur earlier.
    let mut offset = 0;
    let (stop, cut) = tokens
        .windows(2)
        .find_map(|pair| {
            let (left, right) = (&pair[0].1, &pair[1].1);
            let at = offset + left.len();
            offset = at;
            let ascii = left.is_ascii() && right.is_ascii();
            if !ascii || left.len() < 2 || right.len() < 2 {
                return None;
            }
            let stop = format!("{}{}", &left[left.len() - 2..], &right[..2]);
            (full_text.find(&stop) == Some(at - 2)).then_some((stop, at - 2))
        })
        .expect("a token boundary to put a stop string across");
    let expected = &full_text[..cut];
    eprintln!("stop string {stop:?} across a token boundary; text before it {expected:?}");

    let mut body = greedy_body(prompt, GOLDEN_TOKENS);
    body["parameters"]["stopSequence"] = json!([stop]);
    let reply = generate(&agent, &id, &body);
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["text"], expected, "{}", reply.text);
    assert_eq!(reply.json["finishReason"], "stop_sequence");
    let ids = token_ids(&reply);
    let full_ids: Vec<u32> = tokens.iter().map(|(id, _)| *id).collect();
    assert!(
        ids.len() < full_ids.len() && full_ids.starts_with(&ids),
        "generation ended at the stop: {ids:?} of {full_ids:?}"
    );

    let (streamed_tokens, last) = stream(&agent, &id, body);
    let streamed: String = streamed_tokens.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(streamed, expected, "held-back text never streamed");
    assert_eq!(last["text"], expected);
    assert_eq!(last["finishReason"], "stop_sequence");

    let completion = agent.post_json(
        "/v1/completions",
        &json!({"model": id, "prompt": prompt, "max_tokens": GOLDEN_TOKENS, "temperature": 0, "stop": stop}),
    );
    assert_eq!(completion.status, 200, "{}", completion.text);
    assert_eq!(completion.json["choices"][0]["text"], expected);
    assert_eq!(completion.json["choices"][0]["finish_reason"], "stop");
}

#[test]
fn max_tokens_bounds_new_tokens_and_zero_returns_an_empty_completion() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    for model in ["gpt2-tiny", "t5-tiny"] {
        let (id, _) = deploy(&agent, model, &ct2_body("int8_float16", false));
        let prompt = &golden_cases(model)[1].prompt;
        let full = token_ids(&generate(&agent, &id, &greedy_body(prompt, GOLDEN_TOKENS)));
        for max_tokens in [1, 5, 13] {
            let reply = generate(&agent, &id, &greedy_body(prompt, max_tokens));
            assert_eq!(reply.status, 200, "{}", reply.text);
            assert_eq!(
                token_ids(&reply),
                full[..max_tokens],
                "{model} maxTokens {max_tokens}"
            );
            assert_eq!(reply.json["finishReason"], "length");
            assert_eq!(reply.json["usage"]["completionTokens"], max_tokens);
        }
        let reply = generate(&agent, &id, &greedy_body(prompt, 0));
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.json["text"], "", "{model}");
        assert_eq!(reply.json["tokens"], json!([]), "{model}");
        assert_eq!(reply.json["usage"]["completionTokens"], 0);
    }
}

/// `<name>_sum` and `<name>_count` of the batch-size histogram of `deployment`.
fn batch_size_histogram(agent: &Endpoint, deployment: &str) -> (f64, f64) {
    let text = agent.get("/metrics").text;
    let read = |suffix: &str| -> f64 {
        let prefix = format!("gpu_agent_batch_size_{suffix}{{deployment=\"{deployment}\"}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in /metrics:\n{text}"))
    };
    (read("sum"), read("count"))
}

#[test]
fn twelve_concurrent_greedy_requests_each_equal_their_single_result_beside_sampled_ones() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    for model in ["gpt2-tiny", "t5-tiny"] {
        let (id, status) = deploy(&agent, model, &ct2_body("int8_float16", false));
        assert_eq!(status["maxBatchSize"], 4, "{status}");
        // Different prompts and lengths, so a batch mixes prompt lengths and each request
        // stops at its own limit inside CTranslate2's call.
        let requests: Vec<(String, usize)> = golden_cases(model)
            .iter()
            .cycle()
            .zip([24, 7, 16, 3, 24, 11, 20, 1, 24, 9, 18, 5])
            .map(|(case, max_tokens)| (case.prompt.clone(), max_tokens))
            .collect();
        let singles: Vec<Vec<u32>> = requests
            .iter()
            .map(|(prompt, max_tokens)| {
                token_ids(&generate(&agent, &id, &greedy_body(prompt, *max_tokens)))
            })
            .collect();
        let (sum_before, count_before) = batch_size_histogram(&agent, model);
        // Four sampled requests run beside them: CTranslate2 takes one option set per
        // call, so they form their own group of the same batch, which must not disturb
        // the greedy ones.
        let mut bodies: Vec<Value> = requests
            .iter()
            .map(|(prompt, max_tokens)| greedy_body(prompt, *max_tokens))
            .collect();
        for (i, (prompt, _)) in requests.iter().take(4).enumerate() {
            bodies.insert(
                3 * i + 1,
                json!({"prompt": prompt, "parameters": {"temperature": 0.9, "topK": 50, "maxTokens": 12}}),
            );
        }
        let replies: Vec<Reply> = std::thread::scope(|scope| {
            let handles: Vec<_> = bodies
                .iter()
                .map(|body| {
                    let agent = &agent;
                    let id = &id;
                    scope.spawn(move || generate(agent, id, body))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("request thread"))
                .collect()
        });
        let mut concurrent = Vec::new();
        for (body, reply) in bodies.iter().zip(&replies) {
            assert_eq!(reply.status, 200, "{body}: {}", reply.text);
            if body["parameters"]["temperature"] == 0 {
                concurrent.push(token_ids(reply));
            } else {
                assert!(token_ids(reply).len() <= 12, "{}", reply.text);
            }
        }
        for (i, ((prompt, max_tokens), single)) in requests.iter().zip(&singles).enumerate() {
            assert_eq!(single.len(), *max_tokens, "{model} request {i}");
            assert_eq!(
                &concurrent[i], single,
                "{model} request {i} ({prompt:?}, maxTokens {max_tokens}) in a batch"
            );
        }
        let (sum, count) = batch_size_histogram(&agent, model);
        let (steps, sequences) = (count - count_before, sum - sum_before);
        eprintln!("{model}: {sequences} sequence-steps in {steps} decode steps while concurrent");
        assert!(
            sequences > steps,
            "{model}: some decode step ran more than one sequence ({sequences} in {steps} steps)"
        );
    }
}

#[test]
fn seeded_sampling_is_refused_naming_the_field_and_greedy_with_a_seed_is_served() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    let (id, _) = deploy(&agent, "gpt2-tiny", &ct2_body("int8_float16", false));
    let prompt = &golden_cases("gpt2-tiny")[0].prompt;

    let seeded = json!({"prompt": prompt, "parameters": {"temperature": 0.8, "topK": 40, "maxTokens": 8, "seed": 7}});
    let reply = generate(&agent, &id, &seeded);
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(reply.error_code(), "UNSUPPORTED_PARAMETER");
    assert_eq!(reply.error_field(), Some("parameters.seed"));
    let mut streamed = seeded.clone();
    streamed["stream"] = json!(true);
    let reply = generate(&agent, &id, &streamed);
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(reply.error_field(), Some("parameters.seed"));

    let reply = agent.post_json(
        "/v1/completions",
        &json!({"model": id, "prompt": prompt, "max_tokens": 8, "temperature": 0.8, "seed": 7}),
    );
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.error_code(), "unsupported_parameter");
    assert_eq!(
        reply.error_param(),
        Some("seed"),
        "the OpenAI body's own key"
    );

    let reply = agent.lucidworks(
        "POST",
        &format!("/ai/prediction/passthrough/{id}"),
        Some(&json!({"batch": [{"text": prompt}], "modelConfig": {"temperature": 0.8, "maxTokens": 8, "seed": 7}})),
    );
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(reply.error_code(), "UNSUPPORTED_PARAMETER");
    assert_eq!(
        reply.error_field(),
        Some("modelConfig.seed"),
        "the Lucidworks body's own key"
    );

    // Sampling without a seed is served; so is greedy with a seed (greedy is reproducible).
    let sampled =
        json!({"prompt": prompt, "parameters": {"temperature": 0.8, "topK": 40, "maxTokens": 8}});
    let reply = generate(&agent, &id, &sampled);
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(token_ids(&reply).len(), 8);
    let mut greedy = greedy_body(prompt, GOLDEN_TOKENS);
    let unseeded = generate(&agent, &id, &greedy);
    assert_eq!(unseeded.status, 200, "{}", unseeded.text);
    greedy["parameters"]["seed"] = json!(7);
    let reply = generate(&agent, &id, &greedy);
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(token_ids(&reply), token_ids(&unseeded));
}

#[test]
fn openai_completions_through_a_ctranslate2_deployment_equal_native_generate() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    let (id, _) = deploy(&agent, "t5-tiny", &ct2_body("int8_float16", false));
    for case in golden_cases("t5-tiny").iter().take(3) {
        let native = generate(&agent, &id, &greedy_body(&case.prompt, GOLDEN_TOKENS));
        assert_eq!(native.status, 200, "{}", native.text);
        let text = native.json["text"].as_str().expect("text");
        let completion = agent.post_json(
            "/v1/completions",
            &json!({"model": "t5-tiny", "prompt": case.prompt, "max_tokens": GOLDEN_TOKENS, "temperature": 0}),
        );
        assert_eq!(completion.status, 200, "{}", completion.text);
        assert_eq!(completion.json["choices"][0]["text"], text);
        assert_eq!(completion.json["choices"][0]["finish_reason"], "length");
        assert_eq!(
            completion.json["usage"]["completion_tokens"], GOLDEN_TOKENS,
            "{}",
            completion.text
        );

        let streamed = agent.post_json(
            "/v1/completions",
            &json!({"model": "t5-tiny", "prompt": case.prompt, "max_tokens": GOLDEN_TOKENS, "temperature": 0, "stream": true}),
        );
        assert_eq!(streamed.status, 200, "{}", streamed.text);
        let events = parse_sse(&streamed.text);
        assert_eq!(events.last().map(|e| e.data.as_str()), Some("[DONE]"));
        let chunks: String = events[..events.len() - 1]
            .iter()
            .map(|e| {
                e.json()["choices"][0]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        assert_eq!(chunks, text, "{:?} streamed", case.prompt);
    }
}

#[test]
fn vllm_is_refused_with_unsupported_optimization_on_every_deploy_surface() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    let mut kore = kore_body("cpu");
    kore["optimizationInfo"] = json!({"optimizationType": "vllm", "quantizationType": ""});
    let reply = agent.post_json(
        "/api/public/models/gpt2-tiny/deploy?modelType=openSource",
        &kore,
    );
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(reply.error_code(), "UNSUPPORTED_OPTIMIZATION");
    assert_eq!(
        reply.error_field(),
        Some("optimizationInfo.optimizationType")
    );

    let mut native = kore.clone();
    native["modelId"] = json!("gpt2-tiny");
    let reply = agent.post_json("/v1/deployments", &native);
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(reply.error_code(), "UNSUPPORTED_OPTIMIZATION");
    assert_eq!(
        reply.error_field(),
        Some("optimizationInfo.optimizationType")
    );

    let reply = agent.lucidworks(
        "POST",
        "/customers/acme/ai/deployments",
        Some(&json!({
            "modelId": "gpt2-tiny",
            "region": "local",
            "config": {"deviceType": "cpu", "optimizationType": "vllm"},
        })),
    );
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(reply.error_code(), "UNSUPPORTED_OPTIMIZATION");
    assert_eq!(reply.error_field(), Some("config.optimizationType"));

    // Nothing was recorded by any of them.
    let list = agent.request("GET", "/v1/deployments", &[("x-api-key", API_KEY)], None);
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(list.json["deployments"], json!([]), "{}", list.text);
}

#[test]
fn a_gpu_class_run_on_the_cpu_reports_the_cpu_compute_type_not_the_gpus() {
    // g5.xlarge is checked against (fake) NVML, then, with `execution = "cpu"`, runs on
    // the CPU: T5 int8_float16 would be int8_bfloat16 on the A10G (sm 8.6), but the
    // replica is on the CPU, and status reports what CTranslate2 runs there.
    let fake = fake_nvml::FakeHardware::a10g(1)
        .install()
        .expect("fake NVML");
    let agent = Agent::start(AgentConfig::with_fixture_models().nvml(fake.library()));
    let mut body = ct2_body("int8_float16", false);
    body["deviceType"] = json!("g5.xlarge");
    let (id, status) = deploy(&agent, "t5-tiny", &body);
    assert_backend(&status, "int8_float16", "int8_float32", false);
    assert_eq!(status["gpuIndices"], json!([0]), "{status}");
    assert_eq!(
        status["replicas"]["devices"][0]["device"], "cpu",
        "{status}"
    );
    assert_int8_agreement("t5-tiny", &greedy_outputs(&agent, &id, "t5-tiny"));
}

#[test]
fn lucidworks_and_native_deploys_select_ctranslate2_from_their_own_fields() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    // Lucidworks: the Kore keys flat in `config`.
    let lw = |method: &str, path: &str, body: Option<&Value>| agent.lucidworks(method, path, body);
    let created = lw(
        "POST",
        "/customers/acme/ai/deployments",
        Some(&json!({
            "modelId": "t5-tiny",
            "region": "local",
            "config": {"deviceType": "cpu", "maxBatchSize": 8,
                       "optimizationType": "ctranslate2", "quantizationType": "int8_float16"},
        })),
    );
    assert_eq!(created.status, 200, "{}", created.text);
    let id = created.json["id"].as_str().unwrap_or_default().to_owned();
    let status = agent.wait_phase(&id, &["READY", "FAILED"]);
    assert_eq!(status.json["phase"], "READY", "{}", status.text);
    assert_backend(&status.json, "int8_float16", "int8_float32", false);
    let cases = golden_cases("t5-tiny");
    let batch: Vec<Value> = cases.iter().map(|c| json!({"text": c.prompt})).collect();
    let predicted = lw(
        "POST",
        &format!("/ai/prediction/passthrough/{id}"),
        Some(
            &json!({"batch": batch, "modelConfig": {"temperature": 0, "maxTokens": GOLDEN_TOKENS}}),
        ),
    );
    assert_eq!(predicted.status, 200, "{}", predicted.text);
    // Each item equals the same prompt asked alone through the native surface.
    let mut alone_outputs = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let alone = generate(&agent, &id, &greedy_body(&case.prompt, GOLDEN_TOKENS));
        alone_outputs.push(token_ids(&alone));
        assert_eq!(
            predicted.json["predictions"][i]["response"], alone.json["text"],
            "{:?} in a Lucidworks batch",
            case.prompt
        );
    }
    assert_int8_agreement("t5-tiny", &alone_outputs);

    // Native: the Kore body plus modelId.
    let mut body = ct2_body("no_quantization", false);
    body["modelId"] = json!("gpt2-tiny");
    let created = agent.post_json("/v1/deployments", &body);
    assert_eq!(created.status, 202, "{}", created.text);
    let status = agent.wait_phase("gpt2-tiny", &["READY", "FAILED"]);
    assert_eq!(status.json["phase"], "READY", "{}", status.text);
    assert_backend(&status.json, "float32", "float32", false);
    let outputs = greedy_outputs(&agent, "gpt2-tiny", "gpt2-tiny");
    for (case, tokens) in golden_cases("gpt2-tiny").iter().zip(&outputs) {
        case.assert_matches(tokens, "gpt2-tiny deployed natively on CTranslate2 float32");
    }
}

#[test]
fn a_gpt2_prompt_beyond_the_context_is_refused_with_prompt_too_long() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    let (id, _) = deploy(&agent, "gpt2-tiny", &ct2_body("int8_float16", false));
    // gpt2-tiny has 128 positions: 100 prompt tokens + 29 new ones do not fit.
    let prompt = " hello".repeat(100);
    let fits = generate(&agent, &id, &greedy_body(&prompt, 28));
    assert_eq!(fits.status, 200, "{}", fits.text);
    assert_eq!(fits.json["usage"]["promptTokens"], 100, "{}", fits.text);
    assert_eq!(token_ids(&fits).len(), 28);
    let reply = generate(&agent, &id, &greedy_body(&prompt, 29));
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(reply.error_code(), "PROMPT_TOO_LONG");
    assert_eq!(reply.error_field(), Some("prompt"));
}

#[test]
fn a_client_that_disconnects_mid_stream_stops_its_ctranslate2_call_for_the_next_request() {
    let agent = Agent::start(AgentConfig::with_fixture_models().with_slow_model());
    let (id, _) = deploy(&agent, SLOW_MODEL, &ct2_body("int8_float16", false));
    // A CTranslate2 call runs to its end unless its step callback says stop: a request
    // queued behind a call that went on for the departed client would wait for all of it.
    assert_hanging_up_does_not_delay_the_next_request(&agent, &id, SLOW_MODEL);
}
