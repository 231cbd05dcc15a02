//! Helpers for tests that deploy a model and generate through it: deploy until READY,
//! generate, read `/metrics` values, and a raw streaming connection a test can drop.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{Endpoint, Reply, API_KEY, PATIENCE};

/// Deploys `model` through the Kore surface on the CPU with `scaling` as its
/// scalingParameters (greedy defaults, maxTokens 8) and waits until it is READY; returns
/// the deployment id.
pub fn deploy_ready_with(agent: &Endpoint, model: &str, scaling: Value) -> String {
    let mut body = crate::kore_lifecycle::kore_body("cpu");
    body["scalingParameters"] = scaling;
    let path = format!("/api/public/models/{model}/deploy?modelType=openSource");
    let reply = agent.post_json(&path, &body);
    assert_eq!(reply.status, 202, "{}", reply.text);
    let job = crate::kore_lifecycle::wait_job(
        agent,
        reply.json["dockStatusId"].as_str().unwrap_or_default(),
    );
    assert_eq!(
        job.json["status"],
        "SUCCESS",
        "{}\n{}",
        job.text,
        agent.log()
    );
    reply.json["deploymentId"]
        .as_str()
        .expect("deploymentId")
        .to_owned()
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

/// A client that leaves a stream after its first token must not hold up the next request:
/// runs a long request to the end to learn its duration, streams it again and hangs up after
/// the first token, then asserts a short request sent next is answered in under half that
/// duration.
pub fn assert_hanging_up_does_not_delay_the_next_request(agent: &Endpoint, id: &str) {
    let long = json!({"prompt": "a long story begins ".repeat(30), "parameters": {"temperature": 0, "maxTokens": 512}});
    let started = Instant::now();
    let full = generate(agent, id, long.clone());
    assert_eq!(full.status, 200, "{}", full.text);
    let full_time = started.elapsed();

    let started = Instant::now();
    {
        let mut stream = OpenStream::start(agent, id, long);
        assert!(stream.next_data().expect("a token").contains("\"token\""));
    }
    let next = generate(
        agent,
        id,
        json!({"prompt": "short", "parameters": {"temperature": 0, "maxTokens": 4}}),
    );
    let elapsed = started.elapsed();
    assert_eq!(next.status, 200, "{}", next.text);
    assert!(
        elapsed < full_time / 2,
        "the next request waited {elapsed:?}; the cancelled one would have taken {full_time:?}"
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

    /// Everything left on the connection.
    pub fn rest(mut self) -> String {
        let mut rest = String::new();
        while self.reader.read_line(&mut rest).unwrap_or(0) > 0 {}
        rest
    }
}
