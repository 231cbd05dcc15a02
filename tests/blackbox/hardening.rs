//! Regressions for what an adversarial probe of the running agent found: server-wide
//! stalls, slow clients, confusable ids, cross-customer reach and unbounded input. Each
//! test drives the real binary over loopback.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::serving::deploy_ready;
use crate::support::{Agent, AgentConfig, API_KEY};

/// 16 prompts of 1 MB each are refused (PROMPT_TOO_LONG) without holding the async
/// workers: `/healthz`, sampled every 250 ms meanwhile, stays fast. Before the fix each
/// prompt was tokenized whole on an async worker and `/healthz` took seconds. The bound,
/// 500 ms for the slowest of 24 samples, is ten times the production target of 50 ms
/// p99: this machine may be a loaded 2-core CI runner that compiles beside the test, and
/// an idle agent answers in about a millisecond, so only a stall comes near it.
#[test]
fn large_prompts_in_flight_do_not_stall_healthz() {
    let agent = Agent::start(AgentConfig::with_fixture_models());
    let id = deploy_ready(&agent, "t5-tiny");
    let body = json!({"prompt": "a ".repeat(520_000), "parameters": {"maxTokens": 1}}).to_string();
    let url = agent.url(&format!("/v1/deployments/{id}/generate"));
    let senders: Vec<_> = (0..16)
        .map(|_| {
            let (url, body) = (url.clone(), body.clone());
            std::thread::spawn(move || {
                crate::support::http::send(
                    "POST",
                    &url,
                    &[("x-api-key", API_KEY)],
                    Some(body.as_bytes()),
                )
            })
        })
        .collect();
    let mut samples = Vec::new();
    for _ in 0..24 {
        let started = Instant::now();
        let reply = agent.get("/healthz");
        samples.push(started.elapsed());
        assert_eq!(reply.status, 200, "{}", reply.text);
        std::thread::sleep(Duration::from_millis(250));
    }
    for sender in senders {
        let reply = sender.join().expect("sender thread");
        assert_eq!(reply.status, 422, "{}", reply.text);
        assert_eq!(reply.error_code(), "PROMPT_TOO_LONG", "{}", reply.text);
    }
    samples.sort();
    let slowest = *samples.last().expect("samples");
    assert!(
        slowest < Duration::from_millis(500),
        "/healthz took up to {slowest:?} while large prompts were in flight: {samples:?}"
    );
}
