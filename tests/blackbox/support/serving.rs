//! Helpers for tests that deploy a model and generate through it: deploy until READY,
//! generate, read `/metrics` values, and a raw streaming connection a test can drop.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::http::SseEvent;
use super::{Endpoint, Reply, API_KEY, PATIENCE};

/// Deploys `model` through the Kore surface on the CPU with `scaling` as its
/// scalingParameters (greedy defaults, maxTokens 8) and waits until it is READY; returns
/// the deployment id.
pub fn deploy_ready_with(agent: &Endpoint, model: &str, scaling: Value) -> String {
    let mut body = super::kore::kore_body("cpu");
    body["scalingParameters"] = scaling;
    super::kore::deploy_and_wait_for_success(agent, model, &body)
}

/// [`deploy_ready_with`] with the Kore body's scaling: maxBatchSize 4, one replica.
pub fn deploy_ready(agent: &Endpoint, model: &str) -> String {
    deploy_ready_with(
        agent,
        model,
        json!({"maxBatchSize": 4, "minReplicas": 1, "maxReplicas": 1}),
    )
}

pub fn generate(agent: &Endpoint, id: &str, body: Value) -> Reply {
    agent.post_json(&format!("/v1/deployments/{id}/generate"), &body)
}

/// A client that leaves a stream after its first token must not hold up the next request.
/// With `maxBatchSize` 1 the next request can only run once the stream's generation has
/// stopped, so rather than time the next request this counts the decode steps the
/// deployment (metrics label `model`) ran: streams a 512-token request, hangs up after the
/// first token, waits for the cancellation to be counted, sends a short request, and
/// asserts that far fewer than 512 steps ran in all — the departed client's generation
/// stopped instead of running to its end ahead of the next request.
pub fn assert_hanging_up_does_not_delay_the_next_request(agent: &Endpoint, id: &str, model: &str) {
    let long = json!({"prompt": "a long story begins ".repeat(30), "parameters": {"temperature": 0, "maxTokens": 512}});
    {
        let mut stream = OpenStream::start(agent, id, long);
        assert!(stream.next_data().expect("a token").contains("\"token\""));
    }
    let cancelled =
        format!("gpu_agent_requests_total{{deployment=\"{model}\",outcome=\"cancelled\"}}");
    eventually("the request is counted as cancelled", || {
        metric_now(agent, &cancelled) == 1.0
    });
    let next = generate(
        agent,
        id,
        json!({"prompt": "short", "parameters": {"temperature": 0, "maxTokens": 4}}),
    );
    assert_eq!(next.status, 200, "{}", next.text);
    let steps = metric_now(
        agent,
        &format!("gpu_agent_batch_size_count{{deployment=\"{model}\"}}"),
    );
    // The next request's first token comes from its prefill, the other three from steps.
    assert!(
        steps >= 3.0,
        "the next request's steps are counted: {steps}"
    );
    assert!(
        steps < 256.0,
        "{steps} decode steps ran: the departed client's 512 tokens were generated anyway"
    );
}

/// Sends a generate request on another thread.
pub fn generate_in_background(
    agent: &Endpoint,
    id: &str,
    body: Value,
) -> std::thread::JoinHandle<Reply> {
    let url = agent.url(&format!("/v1/deployments/{id}/generate"));
    std::thread::spawn(move || {
        super::http::send(
            "POST",
            &url,
            &[("x-api-key", API_KEY)],
            Some(body.to_string().as_bytes()),
        )
    })
}

/// Polls `check` until it holds.
pub fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The value of the sample `series` (name with its labels, exactly as exposed) in
/// Prometheus text, if present.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let rest = line.strip_prefix(series)?;
            rest.strip_prefix(' ')?.trim().parse().ok()
        })
}

/// The current value of `series` in the agent's `/metrics` (0 when absent).
pub fn metric_now(agent: &Endpoint, series: &str) -> f64 {
    metric(&agent.get("/metrics").text, series).unwrap_or(0.0)
}

/// A streamed generate request on a raw connection, read event by event, so a test can
/// read some tokens and then hang up.
pub struct OpenStream {
    reader: BufReader<TcpStream>,
}

impl OpenStream {
    pub fn start(agent: &Endpoint, id: &str, mut body: Value) -> OpenStream {
        body["stream"] = json!(true);
        let body = body.to_string();
        let mut stream = TcpStream::connect(("127.0.0.1", agent.port)).expect("connect");
        stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
        write!(
            stream,
            "POST /v1/deployments/{id}/generate HTTP/1.1\r\nhost: x\r\nx-api-key: {API_KEY}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("send the request");
        OpenStream {
            reader: BufReader::new(stream),
        }
    }

    /// The next `data:` line's payload (None at the end of the stream).
    pub fn next_data(&mut self) -> Option<String> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.reader.read_line(&mut line).ok()? == 0 {
                return None;
            }
            if let Some(data) = line.strip_prefix("data:") {
                return Some(data.trim().to_owned());
            }
        }
    }

    /// The next whole event (None at the end of the stream). Lines that are neither
    /// `event:` nor `data:` (chunk sizes, comments) are skipped.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        let (mut event, mut data) = (None, None::<String>);
        let mut line = String::new();
        loop {
            line.clear();
            if self.reader.read_line(&mut line).ok()? == 0 {
                return data.map(|data| SseEvent { event, data });
            }
            let text = line.trim_end_matches(['\r', '\n']);
            if let Some(name) = text.strip_prefix("event:") {
                event = Some(name.trim().to_owned());
            } else if let Some(value) = text.strip_prefix("data:") {
                data = Some(value.trim().to_owned());
            } else if text.is_empty() && data.is_some() {
                return data.map(|data| SseEvent { event, data });
            }
        }
    }

    /// Everything left on the connection.
    pub fn rest(mut self) -> String {
        let mut rest = String::new();
        while self.reader.read_line(&mut rest).unwrap_or(0) > 0 {}
        rest
    }
}
