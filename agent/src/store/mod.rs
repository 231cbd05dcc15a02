//! The model store (docs/models.md): the node's Hub downloads, in the cache layout
//! Python's `huggingface_hub` uses. hf-hub 0.4 cannot verify a sha256, report progress to
//! status, share one transfer between callers or name a 401 apart from a 404, so the
//! transfer is built beside it on ureq (the HTTP client hf-hub itself uses).
//!
//! - [`layout`]: where files live; what counts as a complete snapshot.
//! - [`hub_client`]: the Hub's HTTP protocol.
//! - [`transfer`]: one blob, resumed, retried, verified.
//! - [`blob_lock`]: one writer per blob across processes.
//! - [`progress`]: what status shows while FETCHING.
//! - [`inventory`], [`budget`]: what the cache holds, pins, last use, the disk budget.

pub(crate) mod blob_lock;
pub(crate) mod budget;
pub mod error;
pub(crate) mod hub_client;
pub(crate) mod inventory;
pub(crate) mod layout;
pub(crate) mod metrics;
pub(crate) mod progress;
pub(crate) mod pulls;
pub(crate) mod retry;
pub(crate) mod transfer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use runtime::checkpoint::{self, COMPANION_FILES, CONFIG_FILE, WEIGHTS_FILE, WEIGHTS_INDEX_FILE};

pub use error::StoreError;
use hub_client::{HubClient, RemoteFile, Token};
use layout::RepoDir;
use progress::Progress;
use retry::RetryPolicy;
use transfer::Transfer;

use crate::config::AgentConfig;

/// A snapshot on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub dir: PathBuf,
    pub commit: String,
}

/// One download in flight, shared by everyone who asks for the same repo and revision.
struct Inflight {
    progress: Arc<Progress>,
    outcome: Mutex<Option<Result<Snapshot, StoreError>>>,
    done: Condvar,
}

/// Ends a download's registration: waiters wake with its outcome, or with a failure when
/// the leader unwound without one.
struct Release<'a> {
    store: &'a Store,
    key: &'a str,
    inflight: &'a Inflight,
    repo: &'a str,
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        let mut outcome = self
            .inflight
            .outcome
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if outcome.is_none() {
            *outcome = Some(Err(StoreError::FetchFailed {
                repo: self.repo.to_owned(),
                file: "(download)".to_owned(),
                reason: "the download stopped unexpectedly".to_owned(),
            }));
        }
        drop(outcome);
        self.store
            .inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(self.key);
        self.inflight.done.notify_all();
    }
}

/// Answers "is this repo used by a live deployment?" (set once the registry exists).
pub(crate) type InUse = Arc<dyn Fn(&str) -> bool + Send + Sync>;

pub(crate) struct Store {
    cache: PathBuf,
    client: HubClient,
    retry: RetryPolicy,
    pub budget: budget::Budget,
    pub inventory: inventory::Inventory,
    pub(crate) pulls: pulls::Pulls,
    inflight: Mutex<HashMap<String, Arc<Inflight>>>,
    in_use: Mutex<Option<InUse>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("cache", &self.cache)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

/// The Hub endpoint: `HF_ENDPOINT`, else `[store] endpoint`.
fn endpoint(config: &AgentConfig) -> String {
    std::env::var("HF_ENDPOINT")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| config.store.endpoint.clone())
}

/// The Hub token: `HF_TOKEN`, else the first line of `[store] token_file`.
fn token(config: &AgentConfig) -> Option<Token> {
    if let Some(token) = std::env::var("HF_TOKEN").ok().and_then(|t| Token::new(&t)) {
        return Some(token);
    }
    let path = config.store.token_file.as_ref()?;
    match std::fs::read_to_string(path) {
        Ok(text) => Token::new(text.lines().next().unwrap_or_default()),
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot read [store] token_file; fetching without a token");
            None
        }
    }
}

impl Store {
    pub fn new(config: &AgentConfig, cache: PathBuf) -> Store {
        Store {
            client: HubClient::new(&endpoint(config), token(config)),
            retry: RetryPolicy::default(),
            budget: budget::Budget {
                max_bytes: config.store.max_bytes,
                min_free_bytes: config.store.min_free_bytes,
            },
            inventory: inventory::Inventory::new(&cache, &config.state_dir),
            cache,
            pulls: pulls::Pulls::default(),
            inflight: Mutex::new(HashMap::new()),
            in_use: Mutex::new(None),
        }
    }

    pub(crate) fn cache_dir(&self) -> &Path {
        &self.cache
    }

    /// Tells the store which repos live deployments use (they are never evicted).
    pub(crate) fn set_in_use(&self, check: InUse) {
        *self.in_use.lock().unwrap_or_else(|p| p.into_inner()) = Some(check);
    }

    pub(crate) fn is_in_use(&self, repo: &str) -> bool {
        let check = self
            .in_use
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        check.is_some_and(|check| check(repo))
    }

    /// Whether a download of `repo` (any revision) is in flight in this process.
    pub(crate) fn is_downloading(&self, repo: &str) -> bool {
        let prefix = format!("{repo}@");
        self.inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .any(|key| key.starts_with(&prefix))
    }

    /// The complete snapshot of `repo@revision` already on disk. Never touches the network.
    pub fn cached(&self, repo: &str, revision: &str) -> Option<Snapshot> {
        RepoDir::new(&self.cache, repo)
            .complete_snapshot(revision)
            .map(|(dir, commit)| Snapshot { dir, commit })
    }

    /// Blocking: `repo@revision` complete on disk, downloading what is missing. Callers
    /// asking for the same repo and revision at once share one download; `model_id`'s
    /// status shows its progress meanwhile.
    pub(crate) fn ensure(
        &self,
        model_id: &str,
        repo: &str,
        revision: &str,
    ) -> Result<Snapshot, StoreError> {
        if let Some(snapshot) = self.cached(repo, revision) {
            self.inventory.touch(repo);
            return Ok(snapshot);
        }
        let key = format!("{repo}@{revision}");
        let (inflight, leader) = {
            let mut map = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            match map.get(&key) {
                Some(existing) => (Arc::clone(existing), false),
                None => {
                    let fresh = Arc::new(Inflight {
                        progress: Arc::new(Progress::default()),
                        outcome: Mutex::new(None),
                        done: Condvar::new(),
                    });
                    map.insert(key.clone(), Arc::clone(&fresh));
                    (fresh, true)
                }
            }
        };
        let _shown = progress::publish(model_id, Arc::clone(&inflight.progress));
        if leader {
            // Waiters are released even if the download panics.
            let release = Release {
                store: self,
                key: &key,
                inflight: &inflight,
                repo,
            };
            metrics::download("started");
            let outcome = self.download(repo, revision, &inflight.progress);
            metrics::download(if outcome.is_ok() {
                "completed"
            } else {
                "failed"
            });
            if outcome.is_ok() {
                self.inventory.touch(repo);
            }
            *inflight.outcome.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome.clone());
            drop(release);
            return outcome;
        }
        let mut outcome = inflight.outcome.lock().unwrap_or_else(|p| p.into_inner());
        while outcome.is_none() {
            outcome = inflight
                .done
                .wait(outcome)
                .unwrap_or_else(|p| p.into_inner());
        }
        outcome.clone().expect("set before notify")
    }

    fn download(
        &self,
        repo: &str,
        revision: &str,
        progress: &Progress,
    ) -> Result<Snapshot, StoreError> {
        let hub_failed =
            |file: &str, e: hub_client::HubError| e.into_store_error(repo, revision, file);
        let (commit, siblings) = self
            .retry
            .run("the revision", || self.client.revision(repo, revision))
            .map_err(|e| hub_failed("(revision)", e))?;
        let dir = RepoDir::new(&self.cache, repo);
        let mut wanted: Vec<&str> = vec![CONFIG_FILE];
        wanted.extend(
            COMPANION_FILES
                .iter()
                .copied()
                .filter(|f| siblings.iter().any(|s| s == f)),
        );
        let sharded = !siblings.iter().any(|s| s == WEIGHTS_FILE);
        if sharded && !siblings.iter().any(|s| s == WEIGHTS_INDEX_FILE) {
            return Err(StoreError::NotFound {
                repo: repo.to_owned(),
                revision: revision.to_owned(),
                what: format!("the revision has neither {WEIGHTS_FILE} nor {WEIGHTS_INDEX_FILE}"),
            });
        }
        wanted.push(if sharded {
            WEIGHTS_INDEX_FILE
        } else {
            WEIGHTS_FILE
        });
        let mut files = Vec::new();
        for name in wanted {
            let file = self
                .retry
                .run(name, || self.client.file(repo, &commit, name))
                .map_err(|e| hub_failed(name, e))?;
            files.push(file);
        }
        if sharded {
            // The index is small: fetched first, its shards then join the list.
            let index = files.last().cloned().expect("the index was pushed");
            self.fetch_blob(repo, revision, &dir, &index, &Progress::default())?;
            let shards = checkpoint::shard_names(&dir.blob(&index.etag)).map_err(|e| {
                StoreError::FetchFailed {
                    repo: repo.to_owned(),
                    file: WEIGHTS_INDEX_FILE.to_owned(),
                    reason: e.to_string(),
                }
            })?;
            for shard in shards {
                let file = self
                    .retry
                    .run(&shard, || self.client.file(repo, &commit, &shard))
                    .map_err(|e| hub_failed(&shard, e))?;
                files.push(file);
            }
        }
        progress.set_totals(files.iter().map(|f| f.size).sum(), files.len() as u64);
        budget::make_room(self, repo, &dir, &files)?;
        for file in &files {
            self.fetch_blob(repo, revision, &dir, file, progress)?;
            progress.file_done();
        }
        self.link_snapshot(repo, revision, &dir, &commit, &files)
    }

    /// One blob into `blobs/`, unless a blob of the right size is already there.
    fn fetch_blob(
        &self,
        repo: &str,
        revision: &str,
        dir: &RepoDir,
        file: &RemoteFile,
        progress: &Progress,
    ) -> Result<(), StoreError> {
        let io_failed = |error: std::io::Error| StoreError::FetchFailed {
            repo: repo.to_owned(),
            file: file.name.clone(),
            reason: error.to_string(),
        };
        let blob = dir.blob(&file.etag);
        let whole = |path: &Path| std::fs::metadata(path).is_ok_and(|m| m.len() == file.size);
        if whole(&blob) {
            progress.add_resumed(file.size);
            return Ok(());
        }
        std::fs::create_dir_all(dir.root().join("blobs")).map_err(io_failed)?;
        let _lock = blob_lock::BlobLock::acquire(&dir.lock(&file.etag)).map_err(io_failed)?;
        // Another process may have finished it while this one waited for the lock.
        if whole(&blob) {
            progress.add_resumed(file.size);
            return Ok(());
        }
        Transfer {
            client: &self.client,
            repo,
            revision,
            file,
            progress,
            retry: self.retry,
        }
        .run(&dir.incomplete(&file.etag), &blob)
    }

    /// `snapshots/<commit>/<file> -> ../../blobs/<etag>` for every file, `config.json`
    /// last (a snapshot is complete only with it), then `refs/<revision>`.
    fn link_snapshot(
        &self,
        repo: &str,
        revision: &str,
        dir: &RepoDir,
        commit: &str,
        files: &[RemoteFile],
    ) -> Result<Snapshot, StoreError> {
        let io_failed = |file: &str, error: std::io::Error| StoreError::FetchFailed {
            repo: repo.to_owned(),
            file: file.to_owned(),
            reason: error.to_string(),
        };
        let snapshot = dir.snapshot(commit);
        std::fs::create_dir_all(&snapshot).map_err(|e| io_failed("(snapshot)", e))?;
        let mut ordered: Vec<&RemoteFile> =
            files.iter().filter(|f| f.name != CONFIG_FILE).collect();
        ordered.extend(files.iter().filter(|f| f.name == CONFIG_FILE));
        for file in ordered {
            let link = snapshot.join(&file.name);
            let target = Path::new("../../blobs").join(&file.etag);
            if std::fs::read_link(&link).is_ok_and(|t| t == target) {
                continue;
            }
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&target, &link).map_err(|e| io_failed(&file.name, e))?;
        }
        if revision != commit {
            let refs = dir.ref_file(revision);
            if let Some(parent) = refs.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io_failed("(refs)", e))?;
            }
            std::fs::write(&refs, commit).map_err(|e| io_failed("(refs)", e))?;
        }
        Ok(Snapshot {
            dir: snapshot,
            commit: commit.to_owned(),
        })
    }
}
