//! `gpu-agent pull|models|evict`: the model store's routes (docs/api.md § Model store) from
//! the command line, against a running agent. `pull` shows a progress bar on a terminal.

use std::time::Duration;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

/// Where the agent is and the key it wants.
pub struct Remote {
    pub url: String,
    pub api_key: Option<String>,
}

impl Remote {
    fn agent(&self) -> ureq::Agent {
        ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(30))
            .build()
    }

    fn call(&self, method: &str, path: &str) -> anyhow::Result<(u16, Value)> {
        let url = format!("{}{path}", self.url.trim_end_matches('/'));
        let mut request = self.agent().request(method, &url);
        if let Some(key) = &self.api_key {
            request = request.set("x-api-key", key);
        }
        let response = match request.call() {
            Ok(response) => response,
            Err(ureq::Error::Status(_, response)) => response,
            Err(ureq::Error::Transport(transport)) => {
                bail!("cannot reach the agent at {}: {transport}", self.url)
            }
        };
        let status = response.status();
        let body = response.into_json().unwrap_or(Value::Null);
        Ok((status, body))
    }
}

/// A modelId as one path segment (`org/name` → `org%2Fname`).
fn segment(model_id: &str) -> String {
    model_id.replace('%', "%25").replace('/', "%2F")
}

fn error_text(body: &Value) -> String {
    let error = &body["error"];
    format!(
        "{}: {}",
        error["code"].as_str().unwrap_or("ERROR"),
        error["message"].as_str().unwrap_or("(no message)")
    )
}

/// Starts a pull and follows it to the end; an error names the failure's code.
pub fn pull(remote: &Remote, model_id: &str) -> anyhow::Result<()> {
    let path = format!("/v1/store/models/{}", segment(model_id));
    let (status, body) = remote.call("POST", &format!("{path}/pull"))?;
    if status != 202 {
        bail!("the agent refused the pull: {}", error_text(&body));
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .context("progress template")?
        .progress_chars("=> "),
    );
    bar.set_message(model_id.to_owned());
    loop {
        let (status, body) = remote.call("GET", &path)?;
        if status != 200 {
            bar.abandon();
            bail!("{}", error_text(&body));
        }
        if let Some(total) = body["download"]["bytesTotal"].as_u64() {
            bar.set_length(total);
            bar.set_position(body["download"]["bytesDone"].as_u64().unwrap_or(0));
        }
        match body["pull"]["state"].as_str() {
            Some("READY") => {
                bar.finish_and_clear();
                println!(
                    "{model_id}: ready ({} bytes, revision {})",
                    body["sizeBytes"],
                    body["revision"].as_str().unwrap_or("?")
                );
                return Ok(());
            }
            Some("FAILED") => {
                bar.abandon();
                bail!(
                    "{}: {}",
                    body["pull"]["code"].as_str().unwrap_or("FAILED"),
                    body["pull"]["message"].as_str().unwrap_or("")
                );
            }
            _ => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

/// Lists the cached models, one per line (or the JSON answer).
pub fn models(remote: &Remote, json: bool) -> anyhow::Result<()> {
    let (status, body) = remote.call("GET", "/v1/store/models")?;
    if status != 200 {
        bail!("{}", error_text(&body));
    }
    if json {
        println!("{body}");
        return Ok(());
    }
    for model in body["models"].as_array().into_iter().flatten() {
        println!(
            "{}\t{}\t{} bytes\tlast used {}{}{}",
            model["modelId"].as_str().unwrap_or("?"),
            model["revision"].as_str().unwrap_or("-"),
            model["sizeBytes"],
            model["lastUsedAt"].as_str().unwrap_or("never"),
            if model["pinned"] == true {
                "\tpinned"
            } else {
                ""
            },
            if model["inUse"] == true {
                "\tin use"
            } else {
                ""
            },
        );
    }
    Ok(())
}

/// Evicts one model.
pub fn evict(remote: &Remote, model_id: &str) -> anyhow::Result<()> {
    let (status, body) =
        remote.call("DELETE", &format!("/v1/store/models/{}", segment(model_id)))?;
    if status != 200 {
        bail!("{}", error_text(&body));
    }
    println!("{model_id}: evicted ({} bytes)", body["sizeBytes"]);
    Ok(())
}
