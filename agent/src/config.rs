//! The agent's configuration (`docs/operations.md` § Configuration): a TOML file, every key
//! overridable by a `GPU_AGENT_*` environment variable.
//!
//! Overrides name a key path with `__` between table levels, upper case:
//! `GPU_AGENT_LISTEN`, `GPU_AGENT_BATCHER__MAX_QUEUE`, `GPU_AGENT_AUTH__API_KEYS='["kg-1"]'`.
//! The value is read as a TOML value when it parses as one (`true`, `300`, `["a"]`) and as
//! a plain string otherwise. Model ids are case-sensitive, so the segment after `MODELS`
//! is kept as written: `GPU_AGENT_MODELS__cm-abc123__SOURCE=/srv/models/x`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

use crate::auth::AuthConfig;
use crate::gpu::GpuConfig;

/// Prefix of environment overrides.
pub(crate) const ENV_PREFIX: &str = "GPU_AGENT_";
/// Environment variables with the prefix that are not config keys.
const ENV_NOT_KEYS: &[&str] = &[
    "GPU_AGENT_CONFIG",
    "GPU_AGENT_LOG",
    "GPU_AGENT_PROBE_API_KEY",
];

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    pub listen: SocketAddr,
    pub state_dir: PathBuf,
    /// Accept deviceType "cpu" (hosts without GPUs, development).
    pub allow_cpu: bool,
    /// Local directories a model source may point into.
    pub(crate) model_roots: Vec<PathBuf>,
    /// POST each phase change here; empty = off.
    pub status_callback_url: String,
    /// Resolve Hugging Face models from the local cache only (also `HF_HUB_OFFLINE=1`).
    pub(crate) hf_offline: bool,
    /// Largest request body accepted; larger is 413.
    pub body_limit_bytes: usize,
    /// How long SIGTERM and undeploy wait for in-flight requests.
    pub drain_timeout_s: u64,
    /// Log lines as "text" (key=value) or "json" (one object per line). The filter comes
    /// from `GPU_AGENT_LOG` (or `RUST_LOG`), default `info`.
    pub log_format: LogFormat,
    /// This host's EC2 instance type ("g5.xlarge"); empty = unknown (or asked of the
    /// instance metadata service, `[control_plane] imds`). When known, a deploy whose
    /// `deviceType` names another instance type is refused (docs/operations.md).
    pub instance_type: String,
    pub auth: AuthConfig,
    pub gpu: GpuConfig,
    pub batcher: BatcherConfig,
    pub metrics: MetricsConfig,
    pub server: ServerConfig,
    pub control_plane: ControlPlaneConfig,
    /// The model store: where Hub downloads come from and the disk they may use
    /// (docs/models.md).
    pub store: StoreConfig,
    /// modelId → where its weights are.
    pub(crate) models: BTreeMap<String, ModelEntry>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            state_dir: PathBuf::from("/var/lib/gpu-agent"),
            allow_cpu: false,
            model_roots: vec![PathBuf::from("/srv/models")],
            status_callback_url: String::new(),
            hf_offline: false,
            body_limit_bytes: 1024 * 1024,
            drain_timeout_s: 30,
            log_format: LogFormat::Text,
            instance_type: String::new(),
            auth: AuthConfig::default(),
            gpu: GpuConfig::default(),
            batcher: BatcherConfig::default(),
            metrics: MetricsConfig::default(),
            server: ServerConfig::default(),
            control_plane: ControlPlaneConfig::default(),
            store: StoreConfig::default(),
            models: BTreeMap::new(),
        }
    }
}

impl AgentConfig {
    pub(crate) fn drain_timeout(&self) -> Duration {
        Duration::from_secs(self.drain_timeout_s)
    }

    /// The callback URL, or `None` when the key is empty.
    pub fn status_callback(&self) -> Option<String> {
        let url = self.status_callback_url.trim();
        (!url.is_empty()).then(|| url.to_owned())
    }

    /// Offline when configured or when the environment says so, as Python's hub does.
    pub(crate) fn hf_offline_effective(&self) -> bool {
        self.hf_offline || env_flag("HF_HUB_OFFLINE")
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// `[batcher]`: limits each deployment's serving loop applies.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct BatcherConfig {
    /// Requests queued per deployment before new ones get 429.
    pub(crate) max_queue: usize,
    /// A request still unfinished after this long is ended with an error.
    pub(crate) request_timeout_s: u64,
    /// Prompt tokens a replica prefills between two decode steps (at least one prompt is
    /// always admitted), so joiners cannot stall running streams for long.
    pub(crate) prefill_token_budget: usize,
    /// The oldest queued request waiting longer than this counts as queue pressure;
    /// sustained for `scaleUpDelay`, it starts another replica.
    pub(crate) scale_up_queue_wait_ms: u64,
    /// CTranslate2 replicas: a call starts once requests have paused for this long…
    pub(crate) ctranslate2_batch_wait_ms: u64,
    /// …or once its first request has been held this long (docs/batcher.md).
    pub(crate) ctranslate2_max_batch_wait_ms: u64,
}

impl Default for BatcherConfig {
    fn default() -> Self {
        BatcherConfig {
            max_queue: 256,
            request_timeout_s: 300,
            prefill_token_budget: 512,
            scale_up_queue_wait_ms: 50,
            ctranslate2_batch_wait_ms: 5,
            ctranslate2_max_batch_wait_ms: 50,
        }
    }
}

impl BatcherConfig {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_s)
    }
}

/// `[metrics]`: who may read `/metrics`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve `/metrics` to any peer without credentials. Off: open to loopback peers only,
    /// others need an `x-api-key`.
    pub public: bool,
}

/// `[server]`: what one HTTP connection may cost the agent (docs/operations.md
/// § Connections).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Seconds a connection has to send a complete request head, from when it opens or
    /// its previous response ends; also how long a keep-alive connection may sit idle.
    pub header_read_timeout_s: u64,
    /// Seconds a request has to deliver its whole body once its head arrived; past it,
    /// 408 and the connection closes.
    pub body_read_timeout_s: u64,
    /// Open connections at most; further clients wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            header_read_timeout_s: 10,
            body_read_timeout_s: 30,
            max_connections: 1024,
        }
    }
}

/// `[control_plane]`: the node heartbeat, and where the instance type comes from
/// (docs/operations.md, "Running a fleet").
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ControlPlaneConfig {
    /// POST the node's identity, GPUs, health and deployments here; empty = off.
    pub heartbeat_url: String,
    /// Seconds between two heartbeats.
    pub(crate) heartbeat_interval_s: u64,
    /// Sign each heartbeat with HMAC-SHA256 under the key in this file.
    pub hmac_key_file: Option<PathBuf>,
    /// The name the node reports; empty = the host name. The DaemonSet sets the node name.
    pub(crate) node_name: String,
    /// Ask the EC2 instance metadata service (IMDSv2) for the instance type when
    /// `instance_type` is empty. Never contacted unless set.
    pub imds: bool,
    /// Where the instance metadata service answers.
    pub imds_url: String,
}

impl Default for ControlPlaneConfig {
    fn default() -> Self {
        ControlPlaneConfig {
            heartbeat_url: String::new(),
            heartbeat_interval_s: 30,
            hmac_key_file: None,
            node_name: String::new(),
            imds: false,
            imds_url: "http://169.254.169.254".to_owned(),
        }
    }
}

impl ServerConfig {
    pub(crate) fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_s.max(1))
    }

    pub(crate) fn body_read_timeout(&self) -> Duration {
        Duration::from_secs(self.body_read_timeout_s.max(1))
    }
}

impl ControlPlaneConfig {
    /// The heartbeat URL, or `None` when the key is empty.
    pub fn heartbeat(&self) -> Option<&str> {
        let url = self.heartbeat_url.trim();
        (!url.is_empty()).then_some(url)
    }

    /// At least a second, so a zero cannot turn the heartbeat into a busy loop.
    pub(crate) fn heartbeat_interval(&self) -> Duration {
        Duration::from_secs(self.heartbeat_interval_s.max(1))
    }
}

/// `[models."<id>"]`.
/// `[store]` (docs/models.md).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// The Hub's base URL; `HF_ENDPOINT` wins when set, as in Python's hub.
    pub endpoint: String,
    /// A file holding the Hub token; `HF_TOKEN` wins when set. The token is never logged.
    pub(crate) token_file: Option<PathBuf>,
    /// The most bytes the cache may hold; none = unbounded.
    pub max_bytes: Option<u64>,
    /// Free space a download must leave on the cache's filesystem.
    pub min_free_bytes: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            endpoint: "https://huggingface.co".to_owned(),
            token_file: None,
            max_bytes: None,
            min_free_bytes: 5 * 1024 * 1024 * 1024,
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelEntry {
    /// A local directory under `model_roots`, or `hf:REPO[@REVISION]`.
    pub source: String,
}

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("environment variable {name} names no config key path")]
    BadEnvKey { name: String },
    #[error("environment variable {name} sets {key}, but {key} is not a table")]
    EnvNotATable { name: String, key: String },
    #[error("invalid configuration ({origin}): {message}")]
    Invalid { origin: String, message: String },
}

impl AgentConfig {
    /// Reads `path` (absent = all defaults) and applies the `GPU_AGENT_*` variables of the
    /// process environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with_env(path, std::env::vars())
    }

    pub fn load_with_env(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let (mut table, origin) = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                let table = text
                    .parse::<toml::Table>()
                    .map_err(|error| ConfigError::Syntax {
                        path: path.to_owned(),
                        message: error.to_string(),
                    })?;
                (table, path.display().to_string())
            }
            None => (toml::Table::new(), "defaults".to_owned()),
        };
        let mut overridden = Vec::new();
        for (name, value) in env {
            if !name.starts_with(ENV_PREFIX) || ENV_NOT_KEYS.contains(&name.as_str()) {
                continue;
            }
            apply_env_override(&mut table, &name, &value)?;
            overridden.push(name);
        }
        let origin = if overridden.is_empty() {
            origin
        } else {
            format!("{origin} with {}", overridden.join(", "))
        };
        AgentConfig::deserialize(toml::Value::Table(table)).map_err(|error| ConfigError::Invalid {
            origin,
            message: error.to_string(),
        })
    }
}

/// Sets the key path `name` names (after the prefix) to `raw` in `table`.
fn apply_env_override(table: &mut toml::Table, name: &str, raw: &str) -> Result<(), ConfigError> {
    let rest = &name[ENV_PREFIX.len()..];
    let mut path: Vec<String> = Vec::new();
    for (i, segment) in rest.split("__").enumerate() {
        if segment.is_empty() {
            return Err(ConfigError::BadEnvKey {
                name: name.to_owned(),
            });
        }
        let keep_case = i == 1 && path.first().is_some_and(|first| first == "models");
        path.push(if keep_case {
            segment.to_owned()
        } else {
            segment.to_ascii_lowercase()
        });
    }
    let Some((last, parents)) = path.split_last() else {
        return Err(ConfigError::BadEnvKey {
            name: name.to_owned(),
        });
    };
    let mut current = table;
    for key in parents {
        let entry = current
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry
            .as_table_mut()
            .ok_or_else(|| ConfigError::EnvNotATable {
                name: name.to_owned(),
                key: key.clone(),
            })?;
    }
    current.insert(last.clone(), env_value(raw));
    Ok(())
}

/// `raw` as a TOML value when it is one, else as a string.
fn env_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut table| table.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

fn env_flag(name: &str) -> bool {
    std::env::var(name)
        .map(|value| matches!(value.trim(), "1" | "true" | "TRUE" | "yes" | "on" | "ON"))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn absent_file_gives_the_documented_defaults() {
        let config = AgentConfig::load_with_env(None, env(&[])).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.batcher.max_queue, 256);
        assert_eq!(config.batcher.request_timeout_s, 300);
        assert_eq!(config.body_limit_bytes, 1 << 20);
        assert!(!config.allow_cpu);
    }

    #[test]
    fn env_overrides_top_level_nested_and_model_keys() {
        let config = AgentConfig::load_with_env(
            None,
            env(&[
                ("GPU_AGENT_LISTEN", "127.0.0.1:9999"),
                ("GPU_AGENT_ALLOW_CPU", "true"),
                ("GPU_AGENT_BATCHER__MAX_QUEUE", "7"),
                ("GPU_AGENT_GPU__NVML_LIBRARY", "/opt/libnvidia-ml.so"),
                (
                    "GPU_AGENT_MODELS__Tiny-GPT2__SOURCE",
                    "hf:sshleifer/tiny-gpt2",
                ),
                ("GPU_AGENT_AUTH__API_KEYS", r#"["kg-1", "kg-2"]"#),
                ("OTHER_VAR", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(config.listen.port(), 9999);
        assert!(config.allow_cpu);
        assert_eq!(config.batcher.max_queue, 7);
        assert_eq!(
            config.gpu.nvml_library,
            PathBuf::from("/opt/libnvidia-ml.so")
        );
        assert_eq!(config.models["Tiny-GPT2"].source, "hf:sshleifer/tiny-gpt2");
        assert_eq!(config.auth.api_keys, vec!["kg-1", "kg-2"]);
    }

    #[test]
    fn the_example_config_parses_to_the_documented_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/agent.toml");
        let example = AgentConfig::load_with_env(Some(&path), env(&[])).unwrap();
        let defaults = AgentConfig::default();
        assert_eq!(example.listen, defaults.listen);
        assert_eq!(example.state_dir, defaults.state_dir);
        assert_eq!(example.batcher, defaults.batcher);
        assert_eq!(example.gpu, defaults.gpu);
        assert_eq!(example.body_limit_bytes, defaults.body_limit_bytes);
        assert_eq!(example.drain_timeout_s, defaults.drain_timeout_s);
        assert_eq!(example.server, defaults.server);
        assert_eq!(example.instance_type, defaults.instance_type);
        assert_eq!(example.control_plane, defaults.control_plane);
        assert_eq!(example.store, defaults.store);
    }

    #[test]
    fn instance_type_and_control_plane_keys_take_env_overrides() {
        let config = AgentConfig::load_with_env(
            None,
            env(&[
                ("GPU_AGENT_INSTANCE_TYPE", "g5.xlarge"),
                (
                    "GPU_AGENT_CONTROL_PLANE__HEARTBEAT_URL",
                    "https://cp.example/nodes",
                ),
                ("GPU_AGENT_CONTROL_PLANE__HEARTBEAT_INTERVAL_S", "5"),
                ("GPU_AGENT_CONTROL_PLANE__NODE_NAME", "ip-10-0-0-1"),
                ("GPU_AGENT_CONTROL_PLANE__IMDS", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(config.instance_type, "g5.xlarge");
        assert_eq!(
            config.control_plane.heartbeat(),
            Some("https://cp.example/nodes")
        );
        assert_eq!(
            config.control_plane.heartbeat_interval(),
            Duration::from_secs(5)
        );
        assert_eq!(config.control_plane.node_name, "ip-10-0-0-1");
        assert!(config.control_plane.imds);
        let defaults = AgentConfig::load_with_env(None, env(&[])).unwrap();
        assert_eq!(defaults.control_plane.heartbeat(), None);
        assert_eq!(defaults.control_plane.heartbeat_interval_s, 30);
        assert!(!defaults.control_plane.imds);
    }

    #[test]
    fn unknown_key_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:1\"\nlisen = 3\n").unwrap();
        let error = AgentConfig::load_with_env(Some(&path), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("lisen"), "{error}");
    }
}
