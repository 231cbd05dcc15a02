//! The continuous batcher's promises, shown through the real binary: concurrency never
//! changes greedy or seeded results, steps really batch, stop sequences across token
//! boundaries, cancellation frees the slot, backpressure, and autoscaling.

use serde_json::{json, Value};

use crate::support::golden::golden_cases;
use crate::support::http::parse_sse;
use crate::support::serving::{
    assert_hanging_up_does_not_delay_the_next_request, deploy_ready, deploy_ready_with, eventually,
    generate, generate_in_background, metric, metric_now,
};
use crate::support::slow_model::SLOW_MODEL;
use crate::support::{Agent, AgentConfig};

fn tokens(reply: &Value) -> Vec<u32> {
    reply["tokens"]
        .as_array()
        .unwrap_or_else(|| panic!("tokens in {reply}"))
        .iter()
        .filter_map(Value::as_u64)
        .map(|id| id as u32)
        .collect()
}

#[test]
fn forty_concurrent_greedy_requests_over_two_deployments_equal_their_golden_outputs_and_share_steps(
) {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    let scaling = json!({"maxBatchSize": 16, "minReplicas": 1, "maxReplicas": 1});
    let gpt2 = deploy_ready_with(&agent, "gpt2-tiny", scaling.clone());
    let t5 = deploy_ready_with(&agent, "t5-tiny", scaling);
    let mut requests = Vec::new();
    for i in 0..40 {
        let (model, id) = if i % 2 == 0 {
            ("gpt2-tiny", &gpt2)
        } else {
            ("t5-tiny", &t5)
        };
        let cases = golden_cases(model);
        let case = cases[(i / 2) % cases.len()].clone();
        let body = json!({"prompt": case.prompt, "parameters": {"temperature": 0, "maxTokens": case.greedy_ids.len()}});
        requests.push((model, case, generate_in_background(&agent, id, body)));
    }
    for (model, case, request) in requests {
        let reply = request.join().expect("request thread");
        assert_eq!(reply.status, 200, "{model}: {}", reply.text);
        case.assert_matches(&tokens(&reply.json), model);
    }
    let text = agent.get("/metrics").text;
    // Series are labelled with the deployment's model id.
    let batched = ["gpt2-tiny", "t5-tiny"].iter().any(|id| {
        let sum = metric(
            &text,
            &format!("gpu_agent_batch_size_sum{{deployment=\"{id}\"}}"),
        );
        let count = metric(
            &text,
            &format!("gpu_agent_batch_size_count{{deployment=\"{id}\"}}"),
        );
        matches!((sum, count), (Some(s), Some(c)) if s > c)
    });
    assert!(
        batched,
        "some decode step ran more than one sequence:\n{text}"
    );
}

#[test]
fn a_seeded_sampled_request_gives_the_same_tokens_alone_and_among_thirty_others() {
    // The slow model, so the others are still generating while the crowded run goes on.
    let agent = Agent::start(AgentConfig::with_fixture_models().with_slow_model());
    let id = deploy_ready_with(
        &agent,
        SLOW_MODEL,
        json!({"maxBatchSize": 32, "minReplicas": 1, "maxReplicas": 1}),
    );
    let target = json!({"prompt": "Hello, my name is", "parameters": {"temperature": 0.8, "topK": 40, "topP": 0.9, "seed": 424242, "maxTokens": 12}});
    let alone = generate(&agent, &id, target.clone());
    assert_eq!(alone.status, 200, "{}", alone.text);
    let others: Vec<_> = (0..30)
        .map(|i| {
            let body = json!({"prompt": format!("Other request number {i} says"), "parameters": {
                "temperature": 0.3 + (i % 10) as f64 * 0.15, "topK": 1 + i * 3, "topP": 0.5 + (i % 5) as f64 * 0.1,
                "seed": 1000 + i, "maxTokens": 40}});
            generate_in_background(&agent, &id, body)
        })
        .collect();
    let running = format!("gpu_agent_running_sequences{{deployment=\"{SLOW_MODEL}\"}}");
    eventually("all thirty others are running", || {
        metric_now(&agent, &running) == 30.0
    });
    let crowded = generate(&agent, &id, target);
    assert_eq!(crowded.status, 200, "{}", crowded.text);
    // All thirty were running before the crowded request was sent, and one still is after
    // it was answered (the gauge is updated before a client hears it is done): the crowded
    // request ran among others from its first token to its last.
    let still_running = metric_now(&agent, &running);
    assert!(
        still_running >= 1.0,
        "no other was running when the crowded request ended"
    );
    for other in others {
        assert_eq!(other.join().unwrap().status, 200);
    }
    assert_eq!(tokens(&crowded.json).len(), 12);
    assert_eq!(tokens(&crowded.json), tokens(&alone.json));
    assert_eq!(crowded.json["text"], alone.json["text"]);
}

#[test]
fn a_stop_string_spanning_a_token_boundary_truncates_before_it_streamed_and_not() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    let id = deploy_ready(&agent, "gpt2-tiny");
    let case = &golden_cases("gpt2-tiny")[0];
    let n = case.comparable();
    let greedy = |extra: Value| {
        let mut body = json!({"prompt": case.prompt, "stream": true, "parameters": {"temperature": 0, "maxTokens": n}});
        body["parameters"]
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let free = generate(&agent, &id, greedy(json!({})));
    let events = parse_sse(&free.text);
    let pieces: Vec<String> = events[..events.len() - 1]
        .iter()
        .map(|e| e.json()["token"]["text"].as_str().unwrap().to_owned())
        .collect();
    let full: String = pieces.concat();
    // The first boundary where both neighbours have two characters to give and the
    // spanning string does not occur earlier in the text.
    let (stop, cut) = (1..pieces.len())
        .find_map(|i| {
            let (left, right) = (&pieces[i - 1], &pieces[i]);
            let (lc, rc): (Vec<char>, Vec<char>) =
                (left.chars().collect(), right.chars().collect());
            if lc.len() < 2 || rc.len() < 2 {
                return None;
            }
            let stop: String = lc[lc.len() - 2..].iter().chain(&rc[..2]).collect();
            let boundary: usize = pieces[..i].iter().map(String::len).sum();
            let start = boundary
                - lc[lc.len() - 2..]
                    .iter()
                    .map(|c| c.len_utf8())
                    .sum::<usize>();
            (full.find(&stop) == Some(start)).then_some((stop, start))
        })
        .unwrap_or_else(|| panic!("no usable token boundary in {pieces:?}"));
    let expected = &full[..cut];

    let mut plain_body = greedy(json!({"stopSequence": [stop]}));
    plain_body["stream"] = json!(false);
    let plain = generate(&agent, &id, plain_body);
    assert_eq!(plain.status, 200, "{}", plain.text);
    assert_eq!(plain.json["text"], expected, "stop {stop:?} in {full:?}");
    assert_eq!(plain.json["finishReason"], "stop_sequence");

    let streamed = generate(&agent, &id, greedy(json!({"stopSequence": [stop]})));
    let events = parse_sse(&streamed.text);
    let (token_events, last) = events.split_at(events.len() - 1);
    let sent: String = token_events
        .iter()
        .map(|e| e.json()["token"]["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(sent, expected, "streamed token texts: {}", streamed.text);
    assert_eq!(last[0].json()["text"], expected);
    assert_eq!(last[0].json()["finishReason"], "stop_sequence");
}

#[test]
fn a_client_that_disconnects_mid_stream_frees_its_slot_for_the_next_request() {
    let agent = Agent::start(AgentConfig::with_fixture_models().with_slow_model());
    let id = deploy_ready_with(
        &agent,
        SLOW_MODEL,
        json!({"maxBatchSize": 1, "minReplicas": 1, "maxReplicas": 1}),
    );
    assert_hanging_up_does_not_delay_the_next_request(&agent, &id, SLOW_MODEL);
    let running = format!("gpu_agent_running_sequences{{deployment=\"{SLOW_MODEL}\"}}");
    eventually("nothing running", || metric_now(&agent, &running) == 0.0);
}

#[test]
fn sustained_load_scales_up_to_max_replicas_and_idle_scales_back_to_min() {
    let agent = Agent::start(AgentConfig::with_fixture_models().with_slow_model());
    let id = deploy_ready_with(
        &agent,
        SLOW_MODEL,
        json!({"maxBatchSize": 1, "minReplicas": 1, "maxReplicas": 2, "scaleUpDelay": 100, "scaleDownDelay": 200}),
    );
    // The count as status shows it, once the metrics gauge says the same.
    let gauge = format!("gpu_agent_replicas{{deployment=\"{SLOW_MODEL}\"}}");
    let replicas = |agent: &Agent| {
        let status = agent.get_with_key(&format!("/v1/deployments/{id}")).json["replicas"]
            ["running"]
            .as_u64()
            .unwrap_or(0);
        let metric = metric(&agent.get("/metrics").text, &gauge);
        if metric == Some(status as f64) {
            status
        } else {
            u64::MAX
        }
    };
    assert_eq!(replicas(&agent), 1);
    // Four requests on one-request replicas keep the queue non-empty for seconds (the scale-up
    // delay is 100 ms); 256 tokens each keeps the last one, which waits for two others, well
    // inside the client's 30 s timeout on a loaded 2-core runner.
    let load: Vec<_> = (0..4)
        .map(|i| {
            generate_in_background(
                &agent,
                &id,
                json!({"prompt": format!("load {i} ").repeat(60), "parameters": {"temperature": 0, "maxTokens": 256}}),
            )
        })
        .collect();
    eventually("a second replica starts under queue pressure", || {
        replicas(&agent) == 2
    });
    for request in load {
        assert_eq!(request.join().unwrap().status, 200);
    }
    eventually("the extra replica is released when idle", || {
        replicas(&agent) == 1
    });
}
