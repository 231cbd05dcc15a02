//! This host's EC2 instance type: from the config (`instance_type`, or the
//! `GPU_AGENT_INSTANCE_TYPE` variable), else asked of the instance metadata service (IMDSv2)
//! when `[control_plane] imds = true`. NVML cannot tell a g5.xlarge from a g5.2xlarge (one
//! A10G each); the instance type can, so when it is known a deploy whose `deviceType` names
//! another instance type is refused DEVICE_MISMATCH (docs/operations.md, "Running a fleet").

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use thiserror::Error;

use crate::config::AgentConfig;
use crate::gpu::DeviceClass;

/// Where a known instance type came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstanceTypeSource {
    /// `instance_type` in agent.toml or `GPU_AGENT_INSTANCE_TYPE`.
    Config,
    /// The EC2 instance metadata service.
    Imds,
}

impl InstanceTypeSource {
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceTypeSource::Config => "config",
            InstanceTypeSource::Imds => "imds",
        }
    }
}

/// The instance type once known; set at most once (config at start, or IMDS later).
#[derive(Debug, Default)]
pub struct HostInstance {
    known: OnceLock<(String, InstanceTypeSource)>,
}

/// A deploy for another instance type than this host's.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("requested {requested} but this host is a {host} instance (instance type from {})", learned_from.as_str())]
pub struct InstanceMismatch {
    pub requested: String,
    pub host: String,
    pub(crate) learned_from: InstanceTypeSource,
}

impl InstanceMismatch {
    /// The same code as a GPU mismatch: the host is not the device class asked for.
    pub fn code(&self) -> &'static str {
        crate::gpu::DEVICE_MISMATCH
    }
}

impl HostInstance {
    /// Known from the config when it names one; otherwise unknown until [`spawn_imds_lookup`].
    pub(crate) fn from_config(config: &AgentConfig) -> Arc<Self> {
        let instance = HostInstance::default();
        let configured = config.instance_type.trim();
        if !configured.is_empty() {
            instance.learn(configured, InstanceTypeSource::Config);
        }
        Arc::new(instance)
    }

    pub fn instance_type(&self) -> Option<&str> {
        self.known.get().map(|(name, _)| name.as_str())
    }

    pub fn source(&self) -> Option<InstanceTypeSource> {
        self.known.get().map(|(_, source)| *source)
    }

    /// Records the instance type; the first one learned stays.
    pub(crate) fn learn(&self, instance_type: &str, source: InstanceTypeSource) {
        let _ = self.known.set((instance_type.to_owned(), source));
    }

    /// A GPU class names an instance type: it must be this host's, when that is known.
    /// CPU classes ("cpu") name no instance type and always pass.
    pub fn check(&self, class: &DeviceClass) -> Result<(), InstanceMismatch> {
        match self.known.get() {
            Some((host, source)) if class.gpus().is_some() && class.name != *host => {
                Err(InstanceMismatch {
                    requested: class.name.clone(),
                    host: host.clone(),
                    learned_from: *source,
                })
            }
            _ => Ok(()),
        }
    }
}

/// Attempts at the metadata service before giving up (the instance type then stays unknown).
const IMDS_ATTEMPTS: u32 = 5;
/// Limit on each metadata request; the service answers in milliseconds when it answers.
const IMDS_TIMEOUT: Duration = Duration::from_secs(2);
/// Lifetime asked for the session token; only two requests use it.
const IMDS_TOKEN_TTL_S: u32 = 60;

/// When `[control_plane] imds = true` and the config named no instance type, asks the
/// metadata service in the background, retrying with backoff (1, 2, 4, 8 s). Deploys
/// admitted before it answers are not checked against the instance type.
pub(crate) fn spawn_imds_lookup(instance: Arc<HostInstance>, config: &AgentConfig) {
    if !config.control_plane.imds || instance.instance_type().is_some() {
        return;
    }
    let base = config
        .control_plane
        .imds_url
        .trim_end_matches('/')
        .to_owned();
    tokio::spawn(async move {
        for attempt in 1..=IMDS_ATTEMPTS {
            let url = base.clone();
            let answer = tokio::task::spawn_blocking(move || imds_instance_type(&url)).await;
            match answer {
                Ok(Ok(instance_type)) => {
                    tracing::info!(instance_type = %instance_type, "instance type from the instance metadata service");
                    instance.learn(&instance_type, InstanceTypeSource::Imds);
                    return;
                }
                Ok(Err(error)) => {
                    tracing::warn!(attempt, %error, "instance metadata service did not answer")
                }
                Err(join) => {
                    tracing::warn!(attempt, error = %join, "instance metadata lookup failed")
                }
            }
            if attempt < IMDS_ATTEMPTS {
                tokio::time::sleep(Duration::from_secs(1 << (attempt - 1).min(3))).await;
            }
        }
        tracing::warn!(
            attempts = IMDS_ATTEMPTS,
            "instance type unknown: deploys are checked against the GPUs only"
        );
    });
}

#[derive(Debug, Error)]
pub(crate) enum ImdsError {
    #[error("IMDSv2 token request to {url} failed: {message}")]
    Token { url: String, message: String },
    #[error("instance-type request to {url} failed: {message}")]
    Metadata { url: String, message: String },
    #[error("the instance metadata service answered an empty instance type")]
    Empty,
}

/// The body of an answered request, or why there is none.
fn body_text(answer: Result<ureq::Response, ureq::Error>) -> Result<String, String> {
    answer
        .map_err(|e| e.to_string())?
        .into_string()
        .map_err(|e| e.to_string())
}

/// IMDSv2: PUT a session token, then GET the instance type with it.
pub(crate) fn imds_instance_type(base_url: &str) -> Result<String, ImdsError> {
    let agent = ureq::AgentBuilder::new()
        .timeout(IMDS_TIMEOUT)
        // The service is link-local; a proxy from the environment must not be used.
        .try_proxy_from_env(false)
        .build();
    let token_url = format!("{base_url}/latest/api/token");
    let token = agent
        .put(&token_url)
        .set(
            "X-aws-ec2-metadata-token-ttl-seconds",
            &IMDS_TOKEN_TTL_S.to_string(),
        )
        .call();
    let token = body_text(token).map_err(|message| ImdsError::Token {
        url: token_url.clone(),
        message,
    })?;
    let metadata_url = format!("{base_url}/latest/meta-data/instance-type");
    let instance_type = agent
        .get(&metadata_url)
        .set("X-aws-ec2-metadata-token", token.trim())
        .call();
    let instance_type = body_text(instance_type).map_err(|message| ImdsError::Metadata {
        url: metadata_url.clone(),
        message,
    })?;
    let instance_type = instance_type.trim();
    if instance_type.is_empty() {
        return Err(ImdsError::Empty);
    }
    Ok(instance_type.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::DeviceCatalog;

    fn class(name: &str) -> DeviceClass {
        DeviceCatalog::built_in(true)
            .unwrap()
            .lookup(name)
            .unwrap()
            .clone()
    }

    #[test]
    fn a_known_instance_type_refuses_another_gpu_class_with_the_same_gpus() {
        let host = HostInstance::default();
        host.learn("g5.xlarge", InstanceTypeSource::Config);
        assert_eq!(host.check(&class("g5.xlarge")), Ok(()));
        let refused = host.check(&class("g5.2xlarge")).unwrap_err();
        assert_eq!(refused.code(), "DEVICE_MISMATCH");
        assert_eq!(
            refused.to_string(),
            "requested g5.2xlarge but this host is a g5.xlarge instance (instance type from config)"
        );
        assert_eq!(host.check(&class("cpu")), Ok(()));
    }

    #[test]
    fn an_unknown_instance_type_checks_nothing_and_the_first_learned_stays() {
        let host = HostInstance::default();
        assert_eq!(host.check(&class("g5.2xlarge")), Ok(()));
        host.learn("g6e.xlarge", InstanceTypeSource::Imds);
        host.learn("g5.xlarge", InstanceTypeSource::Config);
        assert_eq!(host.instance_type(), Some("g6e.xlarge"));
        assert_eq!(host.source(), Some(InstanceTypeSource::Imds));
    }
}
