//! The OpenAI-compatible surface over raw HTTP: the API key as a Bearer token, errors in
//! OpenAI's shape, `/v1/models`, `n`, chat completions and their templates. The official
//! client drives the same surface in `openai_client.rs`.

use serde_json::{json, Value};

use crate::support::golden::golden_cases;
use crate::support::http::parse_sse;
use crate::support::kore::{deploy_and_wait_for_success, kore_body};
use crate::support::serving::deploy_ready;
use crate::support::{fixtures, Agent, AgentConfig, API_KEY, LW_TOKEN};

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn openai_post(agent: &Agent, path: &str, body: &Value) -> crate::support::Reply {
    let auth = bearer(API_KEY);
    agent.request("POST", path, &[("authorization", &auth)], Some(body))
}

#[test]
fn openai_routes_take_the_api_key_as_a_bearer_token_and_answer_errors_in_openai_shape() {
    let agent = Agent::start(AgentConfig::default());
    let auth = bearer(API_KEY);
    let listed = agent.request("GET", "/v1/models", &[("authorization", &auth)], None);
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.json, json!({"object": "list", "data": []}));
    let keyed = agent.request("GET", "/v1/models", &[("x-api-key", API_KEY)], None);
    assert_eq!(keyed.status, 200, "{}", keyed.text);

    for path in ["/v1/models", "/v1/completions", "/v1/chat/completions"] {
        let method = if path == "/v1/models" { "GET" } else { "POST" };
        let missing = agent.request(method, path, &[], Some(&json!({})));
        assert_eq!(missing.status, 401, "{path}: {}", missing.text);
        assert_eq!(missing.error_type(), "authentication_error", "{path}");
        assert_eq!(missing.error_code(), "unauthenticated", "{path}");
        assert!(missing.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer"));
        // A Lucidworks scoped token is not an API key.
        let scoped = bearer(LW_TOKEN);
        let wrong = agent.request(
            method,
            path,
            &[("authorization", &scoped)],
            Some(&json!({})),
        );
        assert_eq!(wrong.status, 401, "{path}: {}", wrong.text);
        assert_eq!(wrong.error_code(), "invalid_credentials");
    }
    // ...and an API key is not a Lucidworks bearer token.
    let lucidworks = agent.request(
        "GET",
        "/customers/acme/ai/deployments",
        &[("authorization", &auth)],
        None,
    );
    assert_eq!(lucidworks.status, 401, "{}", lucidworks.text);
    assert_eq!(lucidworks.error_code(), "INVALID_CREDENTIALS");

    let unknown = openai_post(
        &agent,
        "/v1/completions",
        &json!({"model": "nope", "prompt": "hi", "some_future_field": 1}),
    );
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    assert_eq!(unknown.error_code(), "model_not_found");
    assert_eq!(unknown.error_param(), Some("model"));
    assert_eq!(unknown.error_type(), "not_found_error");
    assert_eq!(
        agent
            .request("GET", "/v1/models/nope", &[("authorization", &auth)], None)
            .status,
        404
    );

    let cases = [
        (
            json!({"model": "m", "prompt": "hi", "temperature": 3}),
            "temperature",
        ),
        (json!({"model": "m", "prompt": "hi", "n": 17}), "n"),
        (
            json!({"model": "m", "prompt": "hi", "n": 2, "best_of": 1}),
            "best_of",
        ),
        (
            json!({"model": "m", "prompt": "hi", "presence_penalty": 0.5}),
            "presence_penalty",
        ),
        (
            json!({"model": "m", "prompt": "hi", "logit_bias": {"1": 5}}),
            "logit_bias",
        ),
        (
            json!({"model": "m", "prompt": "hi", "suffix": "end"}),
            "suffix",
        ),
        (json!({"model": "m", "prompt": [[1, 2]]}), "prompt"),
        (
            json!({"model": "m", "prompt": "hi", "stream_options": {"include_usage": true}}),
            "stream_options",
        ),
        (json!({"model": "m"}), "prompt"),
    ];
    for (body, param) in cases {
        let reply = openai_post(&agent, "/v1/completions", &body);
        assert_eq!(reply.status, 400, "{body}: {}", reply.text);
        assert_eq!(reply.error_type(), "invalid_request_error", "{body}");
        assert_eq!(reply.error_param(), Some(param), "{body}: {}", reply.text);
    }
    let chat_cases = [
        (
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": {"name": "f"}}]}),
            "tools",
        ),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}}),
            "response_format",
        ),
        (json!({"model": "m", "messages": []}), "messages"),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}),
            "messages[0].content[0].type",
        ),
    ];
    for (body, param) in chat_cases {
        let reply = openai_post(&agent, "/v1/chat/completions", &body);
        assert_eq!(reply.status, 400, "{body}: {}", reply.text);
        assert_eq!(reply.error_param(), Some(param), "{body}: {}", reply.text);
    }
    let malformed = agent.request(
        "POST",
        "/v1/completions",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        None,
    );
    assert_eq!(malformed.status, 400, "{}", malformed.text);
    assert_eq!(malformed.error_type(), "invalid_request_error");
}

#[test]
fn models_lists_ready_deployments_under_their_id_and_model_id() {
    let config = AgentConfig::default().model(
        "tiny/gpt2",
        &fixtures().join("gpt2-tiny").display().to_string(),
    );
    let agent = Agent::start(config);
    let id = deploy_ready(&agent, "tiny%2Fgpt2");
    let auth = bearer(API_KEY);
    let listed = agent.request("GET", "/v1/models", &[("authorization", &auth)], None);
    assert_eq!(listed.status, 200, "{}", listed.text);
    let ids: Vec<&str> = listed.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id.as_str(), "tiny/gpt2"]);
    let first = &listed.json["data"][0];
    assert_eq!(first["object"], "model");
    assert_eq!(first["owned_by"], "gpu-agent");
    assert!(first["created"].as_i64().unwrap() > 1_700_000_000);
    // The client puts the id in the path as it is, `/` included.
    for key in [id.as_str(), "tiny/gpt2"] {
        let one = agent.request(
            "GET",
            &format!("/v1/models/{key}"),
            &[("authorization", &auth)],
            None,
        );
        assert_eq!(one.status, 200, "{key}: {}", one.text);
        assert_eq!(one.json["id"], key);
        assert_eq!(one.json["deployment"], id.as_str());
    }
}

#[test]
fn n_choices_are_separate_sequences_replayed_by_the_seed_and_streamed_by_index() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    deploy_ready(&agent, "gpt2-tiny");
    let case = &golden_cases("gpt2-tiny")[0];
    let sampled = json!({"model": "gpt2-tiny", "prompt": case.prompt, "max_tokens": 8,
        "temperature": 1.5, "top_k": 100, "n": 3, "seed": 11});
    let first = openai_post(&agent, "/v1/completions", &sampled);
    assert_eq!(first.status, 200, "{}", first.text);
    let texts = |reply: &crate::support::Reply| -> Vec<String> {
        reply.json["choices"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, c)| {
                assert_eq!(c["index"], i);
                c["text"].as_str().unwrap().to_owned()
            })
            .collect()
    };
    let first_texts = texts(&first);
    assert_eq!(first_texts.len(), 3);
    assert!(
        first_texts[0] != first_texts[1] || first_texts[1] != first_texts[2],
        "each choice samples its own sequence: {first_texts:?}"
    );
    let n = case.prompt_ids.len();
    assert_eq!(
        first.json["usage"],
        json!({"prompt_tokens": n, "completion_tokens": 24, "total_tokens": n + 24}),
        "the prompt is counted once"
    );
    let again = openai_post(&agent, "/v1/completions", &sampled);
    assert_eq!(texts(&again), first_texts, "the seed replays every choice");

    let streamed = openai_post(
        &agent,
        "/v1/completions",
        &json!({"model": "gpt2-tiny", "prompt": case.prompt, "max_tokens": 4, "temperature": 0,
            "n": 2, "stream": true, "stream_options": {"include_usage": true}}),
    );
    assert_eq!(streamed.status, 200, "{}", streamed.text);
    let events = parse_sse(&streamed.text);
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| e.json())
        .collect();
    let mut per_choice = [String::new(), String::new()];
    let mut finished = [false, false];
    for chunk in &chunks[..chunks.len() - 1] {
        let choice = &chunk["choices"][0];
        let index = choice["index"].as_u64().unwrap() as usize;
        per_choice[index].push_str(choice["text"].as_str().unwrap());
        finished[index] |= choice["finish_reason"] == "length";
    }
    assert_eq!(finished, [true, true]);
    let greedy = openai_post(
        &agent,
        "/v1/completions",
        &json!({"model": "gpt2-tiny", "prompt": case.prompt, "max_tokens": 4, "temperature": 0}),
    );
    let expected = greedy.json["choices"][0]["text"].as_str().unwrap();
    assert_eq!(per_choice, [expected, expected]);
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 8);
}

/// The chat prompt GPT-2's default template makes of one user message.
fn gpt2_turns(user: &str) -> String {
    format!("User: {user}\nAssistant:")
}

#[test]
fn chat_completions_use_the_architectures_template_and_stream_deltas() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    deploy_ready(&agent, "gpt2-tiny");
    let user = "Hello, my name is";
    let chat = openai_post(
        &agent,
        "/v1/chat/completions",
        &json!({"model": "gpt2-tiny", "messages": [{"role": "user", "content": user}],
            "max_completion_tokens": 6, "temperature": 0}),
    );
    assert_eq!(chat.status, 200, "{}", chat.text);
    assert_eq!(chat.json["object"], "chat.completion");
    assert!(chat.json["id"].as_str().unwrap().starts_with("chatcmpl-"));
    let message = &chat.json["choices"][0]["message"];
    assert_eq!(message["role"], "assistant");
    let completion = openai_post(
        &agent,
        "/v1/completions",
        &json!({"model": "gpt2-tiny", "prompt": gpt2_turns(user), "max_tokens": 6, "temperature": 0}),
    );
    assert_eq!(message["content"], completion.json["choices"][0]["text"]);
    assert_eq!(chat.json["usage"], completion.json["usage"]);

    let streamed = openai_post(
        &agent,
        "/v1/chat/completions",
        &json!({"model": "gpt2-tiny", "messages": [{"role": "user", "content": user}],
            "max_tokens": 6, "temperature": 0, "stream": true,
            "stream_options": {"include_usage": true}}),
    );
    assert_eq!(streamed.status, 200, "{}", streamed.text);
    let events = parse_sse(&streamed.text);
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| e.json())
        .collect();
    assert_eq!(chunks[0]["object"], "chat.completion.chunk");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, message["content"].as_str().unwrap());
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "length");
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    let usage = &chunks[chunks.len() - 1];
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"], chat.json["usage"]);
}

#[test]
fn flan_t5_chat_takes_one_user_message_as_the_instruction() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    deploy_ready(&agent, "t5-tiny");
    let case = &golden_cases("t5-tiny")[0];
    let chat = openai_post(
        &agent,
        "/v1/chat/completions",
        &json!({"model": "t5-tiny", "messages": [{"role": "user", "content": case.prompt}],
            "max_tokens": 8, "temperature": 0}),
    );
    assert_eq!(chat.status, 200, "{}", chat.text);
    let completion = openai_post(
        &agent,
        "/v1/completions",
        &json!({"model": "t5-tiny", "prompt": case.prompt, "max_tokens": 8, "temperature": 0}),
    );
    assert_eq!(
        chat.json["choices"][0]["message"]["content"],
        completion.json["choices"][0]["text"]
    );
}

#[test]
fn a_deploy_bodys_chat_template_is_used_and_persists_across_a_restart() {
    let mut agent = Agent::start(AgentConfig::with_fixture_models());
    let mut broken = kore_body("cpu");
    broken["chat_template"] = json!("{% for m in messages %}");
    let refused = agent.post_json(
        "/api/public/models/gpt2-tiny/deploy?modelType=openSource",
        &broken,
    );
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert_eq!(refused.error_code(), "INVALID_CHAT_TEMPLATE");
    assert_eq!(refused.error_field(), Some("chat_template"));

    let mut body = kore_body("cpu");
    body["chat_template"] =
        json!("{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}[assistant]");
    let id = deploy_and_wait_for_success(&agent, "gpt2-tiny", &body);
    let chat = json!({"model": "gpt2-tiny", "max_tokens": 5, "temperature": 0,
        "messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}]});
    let expected = openai_post(
        &agent,
        "/v1/completions",
        &json!({"model": "gpt2-tiny", "prompt": "[system] Be kind.\n[user] Hi\n[assistant]",
            "max_tokens": 5, "temperature": 0}),
    );
    let before = openai_post(&agent, "/v1/chat/completions", &chat);
    assert_eq!(before.status, 200, "{}", before.text);
    assert_eq!(
        before.json["choices"][0]["message"]["content"],
        expected.json["choices"][0]["text"]
    );

    agent.kill9_and_restart();
    agent.wait_phase(&id, &["READY"]);
    let after = openai_post(&agent, "/v1/chat/completions", &chat);
    assert_eq!(after.status, 200, "{}", after.text);
    assert_eq!(
        after.json["choices"][0]["message"]["content"],
        before.json["choices"][0]["message"]["content"],
        "the restored deployment renders with the template it was deployed with"
    );
}

fn floats(values: &Value) -> Vec<f64> {
    values
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

#[test]
fn completions_report_logprobs_echo_scored_prompts_and_rank_best_of() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    deploy_ready(&agent, "gpt2-tiny");
    let case = &golden_cases("gpt2-tiny")[0];
    let prompt = case.prompt.as_str();

    let scored = openai_post(
        &agent,
        "/v1/completions",
        &json!({"model": "gpt2-tiny", "prompt": prompt, "max_tokens": 4, "temperature": 0, "logprobs": 5}),
    );
    assert_eq!(scored.status, 200, "{}", scored.text);
    let choice = &scored.json["choices"][0];
    let logprobs = &choice["logprobs"];
    let tokens: Vec<&str> = logprobs["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(tokens.concat(), choice["text"].as_str().unwrap());
    assert_eq!(logprobs["text_offset"][0], prompt.chars().count());
    let chosen = floats(&logprobs["token_logprobs"]);
    assert_eq!(chosen.len(), 4);
    for (step, top) in logprobs["top_logprobs"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let top = top.as_object().unwrap();
        assert_eq!(top.len(), 5, "step {step}: {top:?}");
        let best = top
            .values()
            .map(|v| v.as_f64().unwrap())
            .fold(f64::MIN, f64::max);
        assert!(
            (chosen[step] - best).abs() < 1e-6,
            "greedy takes the likeliest at step {step}"
        );
        assert!(chosen[step] <= 0.0);
    }

    // echo with max_tokens 0 scores the prompt without generating.
    let echoed = openai_post(
        &agent,
        "/v1/completions",
        &json!({"model": "gpt2-tiny", "prompt": prompt, "max_tokens": 0, "echo": true, "logprobs": 0}),
    );
    assert_eq!(echoed.status, 200, "{}", echoed.text);
    let choice = &echoed.json["choices"][0];
    assert_eq!(choice["text"], prompt);
    let logprobs = &choice["logprobs"];
    assert_eq!(
        logprobs["tokens"].as_array().unwrap().len(),
        case.prompt_ids.len()
    );
    assert!(logprobs["token_logprobs"][0].is_null());
    assert!(logprobs["top_logprobs"][0].is_null());
    assert_eq!(logprobs["text_offset"][0], 0);
    let rest = floats(&json!(logprobs["token_logprobs"].as_array().unwrap()[1..]));
    assert!(rest.iter().all(|l| *l <= 0.0), "{rest:?}");
    assert_eq!(echoed.json["usage"]["completion_tokens"], 0);

    // echo with a generation: the prompt's tokens, then the generated ones.
    let both = openai_post(
        &agent,
        "/v1/completions",
        &json!({"model": "gpt2-tiny", "prompt": prompt, "max_tokens": 4, "temperature": 0, "echo": true, "logprobs": 1}),
    );
    assert_eq!(both.status, 200, "{}", both.text);
    let choice = &both.json["choices"][0];
    let generated = scored.json["choices"][0]["text"].as_str().unwrap();
    assert_eq!(choice["text"], format!("{prompt}{generated}"));
    let all = choice["logprobs"]["token_logprobs"].as_array().unwrap();
    assert_eq!(all.len(), case.prompt_ids.len() + 4);
    assert_eq!(
        floats(&json!(all[case.prompt_ids.len()..])),
        chosen,
        "the generated tokens' logprobs do not depend on echo"
    );
    assert_eq!(
        floats(&json!(all[1..case.prompt_ids.len()])),
        rest,
        "the prompt scores the same with and without a generation"
    );

    // best_of: the n candidates with the highest cumulative logprob among best_of.
    let sampled = json!({"model": "gpt2-tiny", "prompt": prompt, "max_tokens": 6, "temperature": 1.5,
        "top_k": 100, "seed": 3, "logprobs": 0});
    let mut four = sampled.clone();
    four["n"] = json!(4);
    let four = openai_post(&agent, "/v1/completions", &four);
    assert_eq!(four.status, 200, "{}", four.text);
    let mut candidates: Vec<(f64, String)> = four.json["choices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let sum: f64 = floats(&c["logprobs"]["token_logprobs"]).iter().sum();
            (sum, c["text"].as_str().unwrap().to_owned())
        })
        .collect();
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut best = sampled.clone();
    best["n"] = json!(2);
    best["best_of"] = json!(4);
    let best = openai_post(&agent, "/v1/completions", &best);
    assert_eq!(best.status, 200, "{}", best.text);
    let picked: Vec<&str> = best.json["choices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    assert_eq!(picked, [candidates[0].1.as_str(), candidates[1].1.as_str()]);
    assert_eq!(
        best.json["usage"]["completion_tokens"], 24,
        "every candidate is counted"
    );

    // Chat reports its logprobs per generated token.
    let chat = openai_post(
        &agent,
        "/v1/chat/completions",
        &json!({"model": "gpt2-tiny", "messages": [{"role": "user", "content": prompt}],
            "max_tokens": 3, "temperature": 0, "logprobs": true, "top_logprobs": 2}),
    );
    assert_eq!(chat.status, 200, "{}", chat.text);
    let content = chat.json["choices"][0]["logprobs"]["content"]
        .as_array()
        .unwrap();
    assert_eq!(content.len(), 3);
    for entry in content {
        assert_eq!(entry["top_logprobs"].as_array().unwrap().len(), 2);
        assert_eq!(
            entry["bytes"],
            json!(entry["token"].as_str().unwrap().as_bytes())
        );
    }
    let refused = openai_post(
        &agent,
        "/v1/chat/completions",
        &json!({"model": "gpt2-tiny", "messages": [{"role": "user", "content": prompt}], "top_logprobs": 2}),
    );
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(refused.error_param(), Some("top_logprobs"));
}

#[test]
fn flan_t5_refuses_prompt_scoring_by_name_but_echoes_and_reports_generated_logprobs() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    deploy_ready(&agent, "t5-tiny");
    let prompt = &golden_cases("t5-tiny")[0].prompt;
    let refused = openai_post(
        &agent,
        "/v1/completions",
        &json!({"model": "t5-tiny", "prompt": prompt, "max_tokens": 0, "echo": true, "logprobs": 0}),
    );
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(refused.error_code(), "unsupported_parameter");
    assert_eq!(refused.error_param(), Some("echo"));
    let echoed = openai_post(
        &agent,
        "/v1/completions",
        &json!({"model": "t5-tiny", "prompt": prompt, "max_tokens": 3, "temperature": 0, "echo": true}),
    );
    assert_eq!(echoed.status, 200, "{}", echoed.text);
    assert!(echoed.json["choices"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with(prompt.as_str()));
    let scored = openai_post(
        &agent,
        "/v1/completions",
        &json!({"model": "t5-tiny", "prompt": prompt, "max_tokens": 3, "temperature": 0, "logprobs": 2}),
    );
    assert_eq!(scored.status, 200, "{}", scored.text);
    assert_eq!(
        scored.json["choices"][0]["logprobs"]["token_logprobs"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn a_requests_logprobs_are_the_same_alone_and_among_thirty_concurrent_others() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    crate::support::serving::deploy_ready_with(
        &agent,
        "gpt2-tiny",
        json!({"maxBatchSize": 16, "minReplicas": 1, "maxReplicas": 1}),
    );
    let cases = golden_cases("gpt2-tiny");
    let body = |prompt: &str| json!({"model": "gpt2-tiny", "prompt": prompt, "max_tokens": 8, "temperature": 0, "logprobs": 3});
    let target = body(&cases[0].prompt);
    let alone = openai_post(&agent, "/v1/completions", &target);
    assert_eq!(alone.status, 200, "{}", alone.text);
    let url = agent.url("/v1/completions");
    let auth = bearer(API_KEY);
    let replies: Vec<crate::support::Reply> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..31)
            .map(|i| {
                let request = if i == 15 {
                    target.clone()
                } else {
                    body(&format!("{} {i}", cases[i % cases.len()].prompt))
                };
                let (url, auth) = (&url, &auth);
                scope.spawn(move || {
                    let bytes = request.to_string();
                    crate::support::http::send(
                        "POST",
                        url,
                        &[("authorization", auth)],
                        Some(bytes.as_bytes()),
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    assert!(replies.iter().all(|r| r.status == 200));
    let crowded = &replies[15].json["choices"][0]["logprobs"];
    let alone = &alone.json["choices"][0]["logprobs"];
    assert_eq!(crowded["tokens"], alone["tokens"]);
    let (a, b) = (
        floats(&alone["token_logprobs"]),
        floats(&crowded["token_logprobs"]),
    );
    for (step, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            (x - y).abs() < 1e-4,
            "step {step}: alone {x}, among others {y}"
        );
    }
}

#[test]
fn openai_logprobs_and_echo_scores_are_the_native_routes_reference_checked_numbers() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    deploy_ready(&agent, "gpt2-tiny");
    let prompt = &golden_cases("gpt2-tiny")[0].prompt;
    let native = crate::support::serving::generate(
        &agent,
        "gpt2-tiny",
        json!({"prompt": prompt, "parameters": {"maxTokens": 3, "temperature": 0, "logprobs": 5}}),
    );
    assert_eq!(native.status, 200, "{}", native.text);
    let openai = openai_post(
        &agent,
        "/v1/completions",
        &json!({"model": "gpt2-tiny", "prompt": prompt, "max_tokens": 3, "temperature": 0, "logprobs": 5}),
    );
    let logprobs = &openai.json["choices"][0]["logprobs"];
    for step in 0..3 {
        let reference = &native.json["logprobs"][step];
        assert_eq!(
            logprobs["token_logprobs"][step].as_f64(),
            reference["logprob"].as_f64()
        );
        let mut theirs: Vec<f64> = reference["top"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["logprob"].as_f64().unwrap())
            .collect();
        let mut ours: Vec<f64> = logprobs["top_logprobs"][step]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_f64().unwrap())
            .collect();
        theirs.sort_by(f64::total_cmp);
        ours.sort_by(f64::total_cmp);
        assert_eq!(ours, theirs, "step {step}");
    }
    let native = crate::support::serving::generate(
        &agent,
        "gpt2-tiny",
        json!({"prompt": prompt, "parameters": {"maxTokens": 0, "promptLogprobs": true}}),
    );
    assert_eq!(native.status, 200, "{}", native.text);
    let reference: Vec<Option<f64>> = native.json["promptLogprobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["logprob"].as_f64())
        .collect();
    let echoed = openai_post(
        &agent,
        "/v1/completions",
        &json!({"model": "gpt2-tiny", "prompt": prompt, "max_tokens": 0, "echo": true, "logprobs": 0}),
    );
    let ours: Vec<Option<f64>> = echoed.json["choices"][0]["logprobs"]["token_logprobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(Value::as_f64)
        .collect();
    assert_eq!(ours, reference);
}
