//! Where a modelId's files come from (`docs/api.md` § Lifecycle, FETCHING): the config's
//! `[models."<id>"]` (a local directory under `model_roots`, or `hf:REPO[@REVISION]`), else
//! the modelId itself as a Hugging Face repo id, fetched with hf-hub into its cache (the
//! layout Python uses).
//!
//! Downloads go through the model store (`crate::store`, docs/models.md), which resumes,
//! verifies and reports progress; offline mode (`HF_HUB_OFFLINE=1` or `hf_offline = true`)
//! reads the cache only and never touches the network, and commit-hash revisions, which
//! have no `refs/` file, resolve too.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

#[cfg(test)]
use runtime::checkpoint::{self, WEIGHTS_INDEX_FILE};
use thiserror::Error;

use crate::config::{AgentConfig, ModelEntry};
use crate::serving::ResolvedModel;
use crate::store::{Store, StoreError};

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
    #[error(transparent)]
    Store(#[from] StoreError),
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
            SourceError::Store(error) => error.caller_message(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            SourceError::OutsideModelRoots { .. } => "SOURCE_OUTSIDE_MODEL_ROOTS",
            SourceError::LocalMissing { .. } => "MODEL_NOT_FOUND",
            SourceError::Invalid { .. } => "INVALID_MODEL_SOURCE",
            SourceError::NotCached { .. } => "MODEL_NOT_CACHED",
            SourceError::Store(error) => error.code(),
        }
    }
}

/// Resolves and fetches model sources under the agent's configuration.
#[derive(Clone, Debug)]
pub(crate) struct ModelSources {
    roots: Vec<PathBuf>,
    table: BTreeMap<String, ModelEntry>,
    offline: bool,
    store: Arc<Store>,
}

impl ModelSources {
    /// Where Hub files are cached.
    pub(crate) fn cache_dir(&self) -> &Path {
        self.store.cache_dir()
    }

    pub(crate) fn from_config(config: &AgentConfig) -> Self {
        ModelSources {
            roots: config.model_roots.clone(),
            table: config.models.clone(),
            offline: config.hf_offline_effective(),
            store: Arc::new(Store::new(config, hub_cache_dir())),
        }
    }

    /// The model store behind Hub sources.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub fn offline(&self) -> bool {
        self.offline
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
                || revision.split('/').any(|p| p.is_empty() || p == "..")
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
                        cache: self.cache_dir().display().to_string(),
                    });
                }
                self.download(model_id, repo, revision)
            }
        }
    }

    /// `snapshots/<commit>/` of a cached repo when it is complete, with the commit.
    fn cached_snapshot(&self, repo: &str, revision: &str) -> Option<(PathBuf, String)> {
        self.store
            .cached(repo, revision)
            .map(|snapshot| (snapshot.dir, snapshot.commit))
    }

    fn download(
        &self,
        model_id: &str,
        repo: &str,
        revision: &str,
    ) -> Result<ResolvedModel, SourceError> {
        let snapshot = self.store.ensure(model_id, repo, revision)?;
        Ok(ResolvedModel {
            model_id: model_id.to_owned(),
            origin: format!("hf:{repo}@{}", snapshot.commit),
            revision: Some(snapshot.commit),
            dir: snapshot.dir,
        })
    }
}

/// The Hub repo `model_id` is fetched from, if any: its `hf:` source in `table`, or the
/// modelId itself when the table does not name it. For the store's "in use" check.
pub fn hub_repo_of(table: &BTreeMap<String, ModelEntry>, model_id: &str) -> Option<String> {
    match table.get(model_id) {
        Some(entry) => entry
            .source
            .strip_prefix("hf:")
            .map(|hub| hub.split('@').next().unwrap_or(hub).to_owned()),
        None => Some(model_id.to_owned()),
    }
}

/// The shard files a downloaded `model.safetensors.index.json` names, each checked by the
/// checkpoint reader's rule (a plain file name) before anything is fetched: an index must
/// not make the agent write outside the snapshot directory.
#[cfg(test)]
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
            store: Arc::new(Store::new(
                &AgentConfig {
                    state_dir: cache.to_owned(),
                    ..AgentConfig::default()
                },
                cache.to_owned(),
            )),
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
        for file in ["config.json", "model.safetensors"] {
            std::fs::write(repo_dir.join("snapshots").join(commit).join(file), "{}").unwrap();
        }
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
