//! Where a modelId's files come from (`docs/api.md` § Lifecycle, FETCHING): the config's
//! `[models."<id>"]` (a local directory under `model_roots`, or `hf:REPO[@REVISION]`), else
//! the modelId itself as a Hugging Face repo id, fetched with hf-hub into its cache (the
//! layout Python uses).
//!
//! hf-hub 0.4 is used for downloads (ureq, small tree); the cache is read here directly so
//! that offline mode (`HF_HUB_OFFLINE=1` or `hf_offline = true`) never touches the network
//! and so that commit-hash revisions, which have no `refs/` file, resolve too.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use runtime::checkpoint::{self, COMPANION_FILES, CONFIG_FILE, WEIGHTS_FILE, WEIGHTS_INDEX_FILE};
use thiserror::Error;

use crate::config::{AgentConfig, ModelEntry};
use crate::serving::ResolvedModel;

/// Where a model's files are, before fetching.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ModelSource {
    /// A directory under one of `model_roots`, canonical (symlinks resolved).
    Local(PathBuf),
    Hub {
        repo: String,
        revision: String,
    },
}

impl std::fmt::Display for ModelSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelSource::Local(dir) => write!(f, "local:{}", dir.display()),
            ModelSource::Hub { repo, revision } => write!(f, "hf:{repo}@{revision}"),
        }
    }
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub(crate) enum SourceError {
    #[error("model source {source_text:?} for {model_id} is outside the configured model_roots ({roots}){detail}")]
    OutsideModelRoots {
        model_id: String,
        source_text: String,
        roots: String,
        detail: String,
    },
    #[error("model source {source_text:?} for {model_id} does not exist or is not a directory: {reason}")]
    LocalMissing {
        model_id: String,
        source_text: String,
        reason: String,
    },
    #[error("model source {source_text:?} for {model_id} is not valid: {reason}")]
    Invalid {
        model_id: String,
        source_text: String,
        reason: String,
    },
    #[error("{repo}@{revision} is not in the Hugging Face cache at {cache} and offline mode is on (HF_HUB_OFFLINE); populate the cache or turn offline mode off")]
    NotCached {
        repo: String,
        revision: String,
        cache: String,
    },
    #[error("fetching {file} of {repo}@{revision} from the Hugging Face Hub failed: {reason}")]
    FetchFailed {
        repo: String,
        revision: String,
        file: String,
        reason: String,
    },
}

impl SourceError {
    /// The message for callers: no configured source paths, model roots or cache
    /// location (those stay in the log, in the `Display` text).
    pub(crate) fn caller_message(&self) -> String {
        match self {
            SourceError::OutsideModelRoots { model_id, .. } => {
                format!("the configured source of {model_id} is outside the agent's model roots")
            }
            SourceError::LocalMissing { model_id, .. } => {
                format!("the configured source of {model_id} does not exist or is not a directory")
            }
            SourceError::Invalid { model_id, .. } => {
                format!("the configured source of {model_id} is not valid")
            }
            SourceError::NotCached { repo, revision, .. } => format!(
                "{repo}@{revision} is not in the agent's Hugging Face cache and offline mode \
                 is on (HF_HUB_OFFLINE); populate the cache or turn offline mode off"
            ),
            SourceError::FetchFailed {
                repo,
                revision,
                file,
                ..
            } => format!(
                "fetching {file} of {repo}@{revision} from the Hugging Face Hub failed; \
                 the agent's log has the details"
            ),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            SourceError::OutsideModelRoots { .. } => "SOURCE_OUTSIDE_MODEL_ROOTS",
            SourceError::LocalMissing { .. } => "MODEL_NOT_FOUND",
            SourceError::Invalid { .. } => "INVALID_MODEL_SOURCE",
            SourceError::NotCached { .. } => "MODEL_NOT_CACHED",
            SourceError::FetchFailed { .. } => "MODEL_FETCH_FAILED",
        }
    }
}

/// Resolves and fetches model sources under the agent's configuration.
#[derive(Clone, Debug)]
pub(crate) struct ModelSources {
    roots: Vec<PathBuf>,
    table: BTreeMap<String, ModelEntry>,
    offline: bool,
    cache_dir: PathBuf,
}

impl ModelSources {
    /// Where Hub files are cached.
    pub(crate) fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    pub(crate) fn from_config(config: &AgentConfig) -> Self {
        ModelSources {
            roots: config.model_roots.clone(),
            table: config.models.clone(),
            offline: config.hf_offline_effective(),
            cache_dir: hub_cache_dir(),
        }
    }

    /// Where `model_id`'s files come from; checks local sources against `model_roots`.
    pub(crate) fn resolve(&self, model_id: &str) -> Result<ModelSource, SourceError> {
        match self.table.get(model_id) {
            Some(entry) => self.resolve_entry(model_id, &entry.source),
            None => Ok(ModelSource::Hub {
                repo: model_id.to_owned(),
                revision: "main".to_owned(),
            }),
        }
    }

    fn resolve_entry(&self, model_id: &str, source: &str) -> Result<ModelSource, SourceError> {
        if let Some(hub) = source.strip_prefix("hf:") {
            let (repo, revision) = match hub.split_once('@') {
                Some((repo, revision)) => (repo, revision),
                None => (hub, "main"),
            };
            if repo.is_empty()
                || revision.is_empty()
                || repo.split('/').any(|p| p.is_empty() || p == "..")
            {
                return Err(SourceError::Invalid {
                    model_id: model_id.to_owned(),
                    source_text: source.to_owned(),
                    reason: "expected hf:REPO or hf:REPO@REVISION".to_owned(),
                });
            }
            return Ok(ModelSource::Hub {
                repo: repo.to_owned(),
                revision: revision.to_owned(),
            });
        }
        self.local_under_roots(model_id, source)
            .map(ModelSource::Local)
    }

    /// `source` as a canonical directory inside a root. `..` components are refused
    /// before touching the disk; symlinks are resolved and the result must still lie under
    /// a (canonical) root. Relative sources are taken relative to each root in turn.
    fn local_under_roots(&self, model_id: &str, source: &str) -> Result<PathBuf, SourceError> {
        let outside = |detail: String| SourceError::OutsideModelRoots {
            model_id: model_id.to_owned(),
            source_text: source.to_owned(),
            roots: self
                .roots
                .iter()
                .map(|r| r.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            detail,
        };
        let path = Path::new(source);
        if path.components().any(|c| c == Component::ParentDir) {
            return Err(outside(
                ": \"..\" is not allowed in a model source".to_owned(),
            ));
        }
        let candidates: Vec<PathBuf> = if path.is_absolute() {
            vec![path.to_owned()]
        } else {
            self.roots.iter().map(|root| root.join(path)).collect()
        };
        let roots: Vec<PathBuf> = self
            .roots
            .iter()
            .filter_map(|root| root.canonicalize().ok())
            .collect();
        let mut last_reason = "no model_roots are configured".to_owned();
        for candidate in candidates {
            let lexically_inside = self.roots.iter().any(|root| candidate.starts_with(root))
                || roots.iter().any(|root| candidate.starts_with(root));
            if !lexically_inside {
                return Err(outside(String::new()));
            }
            match candidate.canonicalize() {
                Ok(real) => {
                    if !roots.iter().any(|root| real.starts_with(root)) {
                        return Err(outside(format!(
                            ": it resolves through a symlink to {}",
                            real.display()
                        )));
                    }
                    if !real.is_dir() {
                        return Err(SourceError::LocalMissing {
                            model_id: model_id.to_owned(),
                            source_text: source.to_owned(),
                            reason: format!("{} is not a directory", real.display()),
                        });
                    }
                    return Ok(real);
                }
                Err(error) => last_reason = format!("{}: {error}", candidate.display()),
            }
        }
        Err(SourceError::LocalMissing {
            model_id: model_id.to_owned(),
            source_text: source.to_owned(),
            reason: last_reason,
        })
    }

    /// The local directory holding the model's files if they are already on disk (a local
    /// source, or a Hub source present in the cache). Never touches the network.
    pub(crate) fn local_dir(&self, source: &ModelSource) -> Option<PathBuf> {
        match source {
            ModelSource::Local(dir) => Some(dir.clone()),
            ModelSource::Hub { repo, revision } => {
                self.cached_snapshot(repo, revision).map(|(dir, _)| dir)
            }
        }
    }

    /// Blocking: the model's files on local disk, downloading them unless offline.
    pub fn fetch(
        &self,
        model_id: &str,
        source: &ModelSource,
    ) -> Result<ResolvedModel, SourceError> {
        match source {
            ModelSource::Local(dir) => Ok(ResolvedModel {
                model_id: model_id.to_owned(),
                dir: dir.clone(),
                origin: source.to_string(),
                revision: None,
            }),
            ModelSource::Hub { repo, revision } => {
                if let Some((dir, commit)) = self.cached_snapshot(repo, revision) {
                    return Ok(ResolvedModel {
                        model_id: model_id.to_owned(),
                        dir,
                        origin: format!("hf:{repo}@{commit}"),
                        revision: Some(commit),
                    });
                }
                if self.offline {
                    return Err(SourceError::NotCached {
                        repo: repo.clone(),
                        revision: revision.clone(),
                        cache: self.cache_dir.display().to_string(),
                    });
                }
                self.download(model_id, repo, revision)
            }
        }
    }

    /// `snapshots/<commit>/` of a cached repo when it holds `config.json`, with the commit.
    fn cached_snapshot(&self, repo: &str, revision: &str) -> Option<(PathBuf, String)> {
        let repo_dir = self.cache_dir.join(repo_folder(repo));
        let commit = match std::fs::read_to_string(repo_dir.join("refs").join(revision)) {
            Ok(text) => text.trim().to_owned(),
            Err(_) if is_commit_hash(revision) => revision.to_owned(),
            Err(_) => return None,
        };
        // A ref holds a commit hash; anything else must not become a path.
        if !is_commit_hash(&commit) {
            return None;
        }
        let dir = repo_dir.join("snapshots").join(&commit);
        dir.join(CONFIG_FILE).is_file().then_some((dir, commit))
    }

    fn download(
        &self,
        model_id: &str,
        repo: &str,
        revision: &str,
    ) -> Result<ResolvedModel, SourceError> {
        use hf_hub::api::sync::ApiBuilder;
        use hf_hub::{Repo, RepoType};

        let failed = |file: &str, reason: String| SourceError::FetchFailed {
            repo: repo.to_owned(),
            revision: revision.to_owned(),
            file: file.to_owned(),
            reason,
        };
        let mut builder =
            ApiBuilder::from_cache(hf_hub::Cache::new(self.cache_dir.clone())).with_progress(false);
        // A mirror, as Python's hub honours it.
        if let Some(endpoint) = std::env::var("HF_ENDPOINT").ok().filter(|e| !e.is_empty()) {
            builder = builder.with_endpoint(endpoint);
        }
        let api = builder
            .build()
            .map_err(|e| failed("(client)", e.to_string()))?;
        let hub = api.repo(Repo::with_revision(
            repo.to_owned(),
            RepoType::Model,
            revision.to_owned(),
        ));
        // The layout is the checkpoint reader's: config, companions when present, weights.
        let config = hub
            .get(CONFIG_FILE)
            .map_err(|e| failed(CONFIG_FILE, e.to_string()))?;
        for file in COMPANION_FILES {
            // Absent optional files are normal (a T5 has no merges.txt); the runtime's
            // directory check reports what is really missing.
            if let Err(error) = hub.get(file) {
                tracing::debug!(repo, file, %error, "optional model file not fetched");
            }
        }
        if hub.get(WEIGHTS_FILE).is_err() {
            let index = hub.get(WEIGHTS_INDEX_FILE).map_err(|e| {
                failed(
                    WEIGHTS_FILE,
                    format!(
                        "neither {WEIGHTS_FILE} nor {WEIGHTS_INDEX_FILE} could be fetched: {e}"
                    ),
                )
            })?;
            let shards = shards_to_fetch(&index).map_err(|e| failed(WEIGHTS_INDEX_FILE, e))?;
            for shard in shards {
                hub.get(&shard).map_err(|e| failed(&shard, e.to_string()))?;
            }
        }
        let dir = config.parent().map(Path::to_owned).ok_or_else(|| {
            failed(
                CONFIG_FILE,
                "downloaded to a path without a parent".to_owned(),
            )
        })?;
        let commit = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| revision.to_owned());
        Ok(ResolvedModel {
            model_id: model_id.to_owned(),
            dir,
            origin: format!("hf:{repo}@{commit}"),
            revision: Some(commit),
        })
    }
}

/// `models--org--name`, as Python's hub and hf-hub name repo folders.
fn repo_folder(repo: &str) -> String {
    format!("models--{}", repo.replace('/', "--"))
}

fn is_commit_hash(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The shard files a downloaded `model.safetensors.index.json` names, each checked by the
/// checkpoint reader's rule (a plain file name) before anything is fetched: an index must
/// not make the agent write outside the snapshot directory.
fn shards_to_fetch(index: &Path) -> Result<Vec<String>, String> {
    checkpoint::shard_names(index).map_err(|e| e.to_string())
}

/// The hub cache: `HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`.
fn hub_cache_dir() -> PathBuf {
    match std::env::var_os("HF_HUB_CACHE") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => hf_hub::Cache::from_env().path().clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(roots: Vec<PathBuf>, table: &[(&str, &str)], cache: &Path) -> ModelSources {
        ModelSources {
            roots,
            table: table
                .iter()
                .map(|(id, source)| {
                    (
                        id.to_string(),
                        ModelEntry {
                            source: source.to_string(),
                        },
                    )
                })
                .collect(),
            offline: true,
            cache_dir: cache.to_owned(),
        }
    }

    #[test]
    fn local_source_under_a_root_resolves_to_its_canonical_directory() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("m")).unwrap();
        let s = sources(vec![root.path().to_owned()], &[("m", "m")], root.path());
        let resolved = s.resolve("m").unwrap();
        assert_eq!(
            resolved,
            ModelSource::Local(root.path().join("m").canonicalize().unwrap())
        );
    }

    #[test]
    fn parent_components_absolute_paths_outside_and_symlink_escapes_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("m")).unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), root.path().join("escape")).unwrap();
        let outside = elsewhere.path().display().to_string();
        let s = sources(
            vec![root.path().to_owned()],
            &[("dots", "m/../m"), ("abs", &outside), ("link", "escape")],
            root.path(),
        );
        for id in ["dots", "abs", "link"] {
            let error = s.resolve(id).unwrap_err();
            assert_eq!(error.code(), "SOURCE_OUTSIDE_MODEL_ROOTS", "{id}: {error}");
        }
    }

    #[test]
    fn hf_sources_parse_repo_and_revision() {
        let dir = tempfile::tempdir().unwrap();
        let s = sources(
            vec![],
            &[("a", "hf:org/name@v1"), ("b", "hf:gpt2"), ("c", "hf:@x")],
            dir.path(),
        );
        assert_eq!(
            s.resolve("a").unwrap(),
            ModelSource::Hub {
                repo: "org/name".into(),
                revision: "v1".into()
            }
        );
        assert_eq!(
            s.resolve("b").unwrap(),
            ModelSource::Hub {
                repo: "gpt2".into(),
                revision: "main".into()
            }
        );
        assert_eq!(s.resolve("c").unwrap_err().code(), "INVALID_MODEL_SOURCE");
        assert_eq!(
            s.resolve("unlisted/repo").unwrap(),
            ModelSource::Hub {
                repo: "unlisted/repo".into(),
                revision: "main".into()
            }
        );
    }

    #[test]
    fn offline_fetch_reads_the_python_cache_layout_and_refuses_a_miss() {
        let cache = tempfile::tempdir().unwrap();
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let repo_dir = cache.path().join("models--org--tiny");
        std::fs::create_dir_all(repo_dir.join("snapshots").join(commit)).unwrap();
        std::fs::create_dir_all(repo_dir.join("refs")).unwrap();
        std::fs::write(repo_dir.join("refs/main"), commit).unwrap();
        std::fs::write(
            repo_dir.join("snapshots").join(commit).join("config.json"),
            "{}",
        )
        .unwrap();
        let s = sources(vec![], &[], cache.path());
        let model = s
            .fetch("org/tiny", &s.resolve("org/tiny").unwrap())
            .unwrap();
        assert_eq!(model.dir, repo_dir.join("snapshots").join(commit));
        assert_eq!(model.revision.as_deref(), Some(commit));
        let miss = s
            .fetch("org/other", &s.resolve("org/other").unwrap())
            .unwrap_err();
        assert_eq!(miss.code(), "MODEL_NOT_CACHED");
    }

    #[test]
    fn a_downloaded_index_naming_shards_outside_the_snapshot_is_refused_before_fetching() {
        let dir = tempfile::tempdir().unwrap();
        let index = dir.path().join(WEIGHTS_INDEX_FILE);
        let write = |shard: &str| {
            let json = serde_json::json!({"weight_map": {"a": "model-1.safetensors", "b": shard}});
            std::fs::write(&index, json.to_string()).unwrap();
        };
        for shard in [
            "../escape.safetensors",
            "/tmp/escape.safetensors",
            "sub/x.safetensors",
        ] {
            write(shard);
            let error = shards_to_fetch(&index).unwrap_err();
            assert!(
                error.contains("weight_map") && error.contains(&format!("{shard:?}")),
                "{shard}: {error}"
            );
        }
        write("model-2.safetensors");
        assert_eq!(
            shards_to_fetch(&index).unwrap(),
            ["model-1.safetensors", "model-2.safetensors"]
        );
    }
}
