//! `gpu-agent status`: the probe a load balancer, a control plane or an operator runs
//! (`docs/operations.md` § Probe). It asks a running agent's `/readyz` and, when the agent
//! is up, `/v1/gpus` for a one-line GPU summary.
//!
//! Exit codes: 0 ready, 1 up but not ready (any HTTP answer from `/readyz` other than
//! 200: loading, draining, ...), 2 unreachable (no connection, or no HTTP answer within
//! the timeout).

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::gpu::InventoryView;

/// Where `gpu-agent status` looks when no `--url` is given: the default `listen`.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";
/// Per-request limit when none is given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the probe concluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Readiness {
    Ready,
    NotReady,
    Unreachable,
}

/// Options beyond the URL.
#[derive(Clone, Debug)]
pub struct ProbeOptions {
    pub timeout: Duration,
    /// Sent as `x-api-key` to `/v1/gpus` (which needs it when keys are configured);
    /// `/readyz` is open.
    pub api_key: Option<String>,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            timeout: DEFAULT_TIMEOUT,
            api_key: None,
        }
    }
}

/// The probe's findings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeOutcome {
    /// The agent's base URL as probed.
    pub url: String,
    pub readiness: Readiness,
    /// Status `/readyz` answered with, when it answered.
    pub http_status: Option<u16>,
    /// Why the agent is not ready (its error message) or unreachable (the connection
    /// error).
    pub reason: Option<String>,
    /// [`InventoryView::summary_line`] of `/v1/gpus`.
    pub gpus: Option<String>,
    /// Why the GPU summary is missing although the agent answered.
    pub gpus_error: Option<String>,
}

impl ProbeOutcome {
    /// 0 ready, 1 up but not ready, 2 unreachable.
    pub fn exit_code(&self) -> i32 {
        match self.readiness {
            Readiness::Ready => 0,
            Readiness::NotReady => 1,
            Readiness::Unreachable => 2,
        }
    }

    /// The one line `gpu-agent status` prints, e.g.
    /// `ready at http://127.0.0.1:8080; GPUs: 1× Tesla T4 (15360 MiB), ...`.
    pub fn line(&self) -> String {
        let head = match (self.readiness, self.http_status) {
            (Readiness::Ready, _) => format!("ready at {}", self.url),
            (Readiness::NotReady, Some(status)) => match &self.reason {
                Some(reason) => format!("not ready at {} (HTTP {status}: {reason})", self.url),
                None => format!("not ready at {} (HTTP {status})", self.url),
            },
            (Readiness::NotReady, None) => format!("not ready at {}", self.url),
            (Readiness::Unreachable, _) => {
                let reason = self.reason.as_deref().unwrap_or("no answer");
                return format!("unreachable at {}: {reason}", self.url);
            }
        };
        match (&self.gpus, &self.gpus_error) {
            (Some(gpus), _) => format!("{head}; {gpus}"),
            (None, Some(error)) => format!("{head}; GPUs: unknown ({error})"),
            (None, None) => head,
        }
    }

    /// The outcome as `--json` prints it (camelCase, with `exitCode`).
    pub fn json(&self) -> Value {
        let mut value = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut value {
            map.insert("exitCode".to_owned(), Value::from(self.exit_code()));
        }
        value
    }
}

/// Probes the agent at `url` with no API key.
pub fn probe(url: &str, timeout: Duration) -> ProbeOutcome {
    probe_with(
        url,
        &ProbeOptions {
            timeout,
            api_key: None,
        },
    )
}

/// Probes the agent at `url` (`http://host:port`; a bare `host:port` gets `http://`).
pub fn probe_with(url: &str, options: &ProbeOptions) -> ProbeOutcome {
    let base = normalise(url);
    let agent = ureq::AgentBuilder::new().timeout(options.timeout).build();
    let mut outcome = ProbeOutcome {
        url: base.clone(),
        readiness: Readiness::Unreachable,
        http_status: None,
        reason: None,
        gpus: None,
        gpus_error: None,
    };
    match agent.get(&format!("{base}/readyz")).call() {
        Ok(response) => {
            outcome.readiness = Readiness::Ready;
            outcome.http_status = Some(response.status());
        }
        Err(ureq::Error::Status(status, response)) => {
            outcome.readiness = Readiness::NotReady;
            outcome.http_status = Some(status);
            outcome.reason = response
                .into_string()
                .ok()
                .and_then(|body| reason_of(&body));
        }
        Err(ureq::Error::Transport(transport)) => {
            outcome.reason = Some(transport.to_string());
            return outcome;
        }
    }
    match gpu_summary(&agent, &base, options.api_key.as_deref()) {
        Ok(summary) => outcome.gpus = Some(summary),
        Err(error) => outcome.gpus_error = Some(error),
    }
    outcome
}

fn normalise(url: &str) -> String {
    let trimmed = url.trim().trim_end_matches('/');
    if trimmed.contains("://") {
        trimmed.to_owned()
    } else {
        format!("http://{trimmed}")
    }
}

/// The sentence to show from an error body: its `error.message` (`docs/api.md`), a `reason` or
/// `message` field, or the start of a plain-text body.
fn reason_of(body: &str) -> Option<String> {
    if let Ok(json) = serde_json::from_str::<Value>(body) {
        let candidates = [&json["error"]["message"], &json["reason"], &json["message"]];
        if let Some(text) = candidates.iter().find_map(|value| value.as_str()) {
            return Some(text.to_owned());
        }
    }
    let text = body.trim();
    if text.is_empty() {
        None
    } else {
        Some(text.chars().take(200).collect())
    }
}

fn gpu_summary(agent: &ureq::Agent, base: &str, api_key: Option<&str>) -> Result<String, String> {
    let mut request = agent.get(&format!("{base}/v1/gpus"));
    if let Some(key) = api_key {
        request = request.set("x-api-key", key);
    }
    let response = request.call().map_err(|err| match err {
        ureq::Error::Status(status, _) => format!("HTTP {status} from /v1/gpus"),
        ureq::Error::Transport(transport) => transport.to_string(),
    })?;
    let view: InventoryView = response
        .into_json()
        .map_err(|err| format!("unexpected /v1/gpus body: {err}"))?;
    Ok(view.summary_line())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_host_port_gets_a_scheme_and_trailing_slashes_go() {
        assert_eq!(normalise("127.0.0.1:8080/"), "http://127.0.0.1:8080");
        assert_eq!(normalise(" https://gpu-7:443// "), "https://gpu-7:443");
    }

    #[test]
    fn reason_prefers_the_spec_error_message() {
        let body = r#"{"error":{"code":"NOT_READY","message":"cm-1 is LOADING","field":null}}"#;
        assert_eq!(reason_of(body).as_deref(), Some("cm-1 is LOADING"));
        assert_eq!(
            reason_of(r#"{"reason":"draining"}"#).as_deref(),
            Some("draining")
        );
        assert_eq!(
            reason_of("  Service Unavailable \n").as_deref(),
            Some("Service Unavailable")
        );
        assert_eq!(reason_of(""), None);
    }

    #[test]
    fn exit_codes_and_lines_follow_readiness() {
        let mut outcome = ProbeOutcome {
            url: DEFAULT_URL.to_owned(),
            readiness: Readiness::NotReady,
            http_status: Some(503),
            reason: Some("draining".to_owned()),
            gpus: None,
            gpus_error: Some("HTTP 401 from /v1/gpus".to_owned()),
        };
        assert_eq!(outcome.exit_code(), 1);
        assert_eq!(
            outcome.line(),
            "not ready at http://127.0.0.1:8080 (HTTP 503: draining); GPUs: unknown (HTTP 401 from /v1/gpus)"
        );
        assert_eq!(outcome.json()["exitCode"], 1);
        assert_eq!(outcome.json()["readiness"], "not_ready");
        outcome.readiness = Readiness::Unreachable;
        outcome.reason = Some("Connection refused".to_owned());
        assert_eq!(outcome.exit_code(), 2);
        assert_eq!(
            outcome.line(),
            "unreachable at http://127.0.0.1:8080: Connection refused"
        );
    }
}
