//! The agent.toml a test runs with.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use super::{fixtures, API_KEY, LW_PREDICT_ONLY, LW_TOKEN};

#[derive(Clone, Debug)]
pub struct AgentConfig {
    pub allow_cpu: bool,
    pub model_roots: Vec<PathBuf>,
    /// modelId → source.
    pub models: Vec<(String, String)>,
    pub nvml_library: Option<PathBuf>,
    /// `[gpu] execution`.
    pub execution: &'static str,
    pub body_limit_bytes: Option<usize>,
    pub drain_timeout_s: u64,
    /// `[auth] jwt_public_key_pem`.
    pub jwt_public_key: Option<PathBuf>,
    /// Extra top-level TOML lines.
    pub extra: String,
    /// More bearer tokens, each with both Lucidworks scopes and bound to one customer:
    /// (token, customer).
    pub customer_tokens: Vec<(String, String)>,
}

impl Default for AgentConfig {
    /// CPU allowed, GPU classes checked with NVML and run on the CPU, no models.
    fn default() -> Self {
        AgentConfig {
            allow_cpu: true,
            model_roots: vec![fixtures()],
            models: Vec::new(),
            nvml_library: None,
            execution: "cpu",
            body_limit_bytes: None,
            drain_timeout_s: 10,
            jwt_public_key: None,
            extra: String::new(),
            customer_tokens: Vec::new(),
        }
    }
}

impl AgentConfig {
    /// `[models."gpt2-tiny"]` and `[models."t5-tiny"]` pointing at the fixtures, CPU
    /// allowed: the config for deploy → generate tests once a serving backend is wired in.
    pub fn with_fixture_models() -> Self {
        let root = fixtures();
        AgentConfig {
            models: vec![
                (
                    "gpt2-tiny".to_owned(),
                    root.join("gpt2-tiny").display().to_string(),
                ),
                (
                    "t5-tiny".to_owned(),
                    root.join("t5-tiny").display().to_string(),
                ),
            ],
            ..AgentConfig::default()
        }
    }

    pub fn model(mut self, id: &str, source: &str) -> Self {
        self.models.push((id.to_owned(), source.to_owned()));
        self
    }

    pub fn jwt_public_key(mut self, pem: &Path) -> Self {
        self.jwt_public_key = Some(pem.to_owned());
        self
    }

    /// Adds a bearer token bound to `customer` (both Lucidworks scopes).
    pub fn customer_token(mut self, token: &str, customer: &str) -> Self {
        self.customer_tokens
            .push((token.to_owned(), customer.to_owned()));
        self
    }

    pub fn nvml(mut self, library: &Path) -> Self {
        self.nvml_library = Some(library.to_owned());
        self
    }

    pub fn render(&self, port: u16, state_dir: &Path) -> String {
        let mut t = String::new();
        let q = |p: &Path| toml_string(&p.display().to_string());
        let _ = writeln!(t, "listen = \"127.0.0.1:{port}\"");
        let _ = writeln!(t, "state_dir = {}", q(state_dir));
        let _ = writeln!(t, "allow_cpu = {}", self.allow_cpu);
        let roots: Vec<String> = self.model_roots.iter().map(|r| q(r)).collect();
        let _ = writeln!(t, "model_roots = [{}]", roots.join(", "));
        let _ = writeln!(t, "drain_timeout_s = {}", self.drain_timeout_s);
        if let Some(limit) = self.body_limit_bytes {
            let _ = writeln!(t, "body_limit_bytes = {limit}");
        }
        t.push_str(&self.extra);
        t.push('\n');
        let _ = writeln!(t, "[auth]");
        let _ = writeln!(t, "api_keys = [\"{API_KEY}\"]");
        let bound: String = self
            .customer_tokens
            .iter()
            .map(|(token, customer)| {
                format!(
                    ", {{ token = {}, scopes = [\"machinelearning.model\", \"machinelearning.predict\"], customers = [{}] }}",
                    toml_string(token),
                    toml_string(customer)
                )
            })
            .collect();
        let _ = writeln!(
            t,
            "bearer_tokens = [{{ token = \"{LW_TOKEN}\", scopes = [\"machinelearning.model\", \"machinelearning.predict\"] }}, \
             {{ token = \"{LW_PREDICT_ONLY}\", scopes = [\"machinelearning.predict\"] }}{bound}]"
        );
        if let Some(pem) = &self.jwt_public_key {
            let _ = writeln!(t, "jwt_public_key_pem = {}", q(pem));
        }
        let _ = writeln!(t, "[gpu]");
        let _ = writeln!(t, "execution = \"{}\"", self.execution);
        if let Some(library) = &self.nvml_library {
            let _ = writeln!(t, "nvml_library = {}", q(library));
        }
        for (id, source) in &self.models {
            let _ = writeln!(t, "[models.{}]", toml_string(id));
            let _ = writeln!(t, "source = {}", toml_string(source));
        }
        t
    }
}

fn toml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}
