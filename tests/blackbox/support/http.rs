//! A small client over ureq 2, which reports non-2xx statuses as errors: wrapped once here
//! so every test sees a status, headers and a body.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{API_KEY, LW_TOKEN, PATIENCE};

/// A reply of any status.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub text: String,
    /// The body parsed as JSON (`Null` when it is not JSON).
    pub json: Value,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `error.code` of an error reply.
    pub fn error_code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }

    /// `error.field` of an error reply.
    pub fn error_field(&self) -> Option<&str> {
        self.json["error"]["field"].as_str()
    }

    /// `error.param` of an error reply in OpenAI's shape (the OpenAI routes).
    pub fn error_param(&self) -> Option<&str> {
        self.json["error"]["param"].as_str()
    }

    /// `error.type` of an error reply in OpenAI's shape.
    pub fn error_type(&self) -> &str {
        self.json["error"]["type"].as_str().unwrap_or("")
    }
}

fn client() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build()
}

/// Sends a request; `body` is raw bytes (so tests can send broken JSON).
pub fn send(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Reply {
    let mut request = client().request(method, url);
    for (name, value) in headers {
        request = request.set(name, value);
    }
    let outcome = match body {
        Some(bytes) => request
            .set("content-type", "application/json")
            .send_bytes(bytes),
        None => request.call(),
    };
    let response = match outcome {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(ureq::Error::Transport(error)) => {
            return Reply {
                status: 0,
                text: error.to_string(),
                json: Value::Null,
                headers: Vec::new(),
            }
        }
    };
    let status = response.status();
    let headers = response
        .headers_names()
        .into_iter()
        .filter_map(|name| response.header(&name).map(|v| (name.clone(), v.to_owned())))
        .collect();
    let text = response.into_string().unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        text,
        json,
        headers,
    }
}

/// Where an agent answers (a child process or an in-process server), with the requests
/// tests send it. `log` is shown when a poll gives up.
pub struct Endpoint {
    pub port: u16,
    base: String,
    log: Option<PathBuf>,
}

impl Endpoint {
    pub fn new(port: u16, log: Option<PathBuf>) -> Self {
        Endpoint {
            port,
            base: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Everything the agent logged so far (all runs); empty for in-process agents.
    pub fn log(&self) -> String {
        self.log
            .as_ref()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .unwrap_or_default()
    }

    pub fn get(&self, path: &str) -> Reply {
        send("GET", &self.url(path), &[], None)
    }

    pub fn get_with_key(&self, path: &str) -> Reply {
        send("GET", &self.url(path), &[("x-api-key", API_KEY)], None)
    }

    /// POST with the API key and a JSON body.
    pub fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.post_raw(path, &[("x-api-key", API_KEY)], body.to_string().as_bytes())
    }

    pub fn post_raw(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        send("POST", &self.url(path), headers, Some(body))
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Reply {
        let bytes = body.map(|b| b.to_string().into_bytes());
        send(method, &self.url(path), headers, bytes.as_deref())
    }

    /// A Lucidworks request, with the Bearer token that holds both scopes.
    pub fn lucidworks(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        let auth = format!("Bearer {LW_TOKEN}");
        self.request(method, path, &[("authorization", auth.as_str())], body)
    }

    /// Polls `GET path` (with the API key) until `done` accepts the reply.
    pub fn poll(&self, path: &str, what: &str, mut done: impl FnMut(&Reply) -> bool) -> Reply {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let reply = self.get_with_key(path);
            if done(&reply) {
                return reply;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {what} on {path}; last reply {} {}\nlog:\n{}",
                reply.status,
                reply.text,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls the native status of `id` until its phase is one of `phases`.
    pub fn wait_phase(&self, id: &str, phases: &[&str]) -> Reply {
        self.poll(
            &format!("/v1/deployments/{id}"),
            &format!("phase in {phases:?}"),
            |r| r.status == 200 && phases.contains(&r.json["phase"].as_str().unwrap_or("")),
        )
    }
}

/// One Server-Sent Event: its `event:` name (None for the default type) and `data:`.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or(Value::Null)
    }
}

/// Splits a complete `text/event-stream` body into events; comments (keep-alives) are
/// dropped. For streamed generate/completions replies, which ureq reads to the end.
pub fn parse_sse(body: &str) -> Vec<SseEvent> {
    let mut events = Vec::new();
    for block in body.split("\n\n") {
        let mut event = None;
        let mut data: Vec<&str> = Vec::new();
        for line in block.lines() {
            if let Some(name) = line.strip_prefix("event:") {
                event = Some(name.trim().to_owned());
            } else if let Some(value) = line.strip_prefix("data:") {
                data.push(value.strip_prefix(' ').unwrap_or(value));
            }
        }
        if !data.is_empty() {
            events.push(SseEvent {
                event,
                data: data.join("\n"),
            });
        }
    }
    events
}
