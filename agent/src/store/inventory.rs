//! What the cache holds, per repo: size, revision, last use, pin. Pins and last-use times
//! are the agent's own and live in `<state_dir>/store.json`, not in the cache, so a cache
//! shared with Python's hub keeps its layout untouched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::layout::{self, RepoDir};

const FILE_NAME: &str = "store.json";

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    pinned: bool,
    last_used_at: Option<DateTime<Utc>>,
}

/// One cached repo, as the inventory routes show it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CachedModel {
    pub(crate) model_id: String,
    pub source: String,
    pub revision: Option<String>,
    pub(crate) size_bytes: u64,
    pub(crate) last_used_at: Option<DateTime<Utc>>,
    pub pinned: bool,
    pub in_use: bool,
    /// Every file a checkpoint needs is there.
    pub complete: bool,
}

pub(crate) struct Inventory {
    cache: PathBuf,
    state_dir: PathBuf,
    records: Mutex<BTreeMap<String, Record>>,
}

/// Bytes of the regular files under `dir` (blobs and partials; links count nothing).
pub(crate) fn disk_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => disk_bytes(&entry.path()),
            Ok(kind) if kind.is_file() => entry.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

impl Inventory {
    pub fn new(cache: &Path, state_dir: &Path) -> Inventory {
        let records = std::fs::read(state_dir.join(FILE_NAME))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Inventory {
            cache: cache.to_owned(),
            state_dir: state_dir.to_owned(),
            records: Mutex::new(records),
        }
    }

    fn update(&self, repo: &str, change: impl FnOnce(&mut BTreeMap<String, Record>)) {
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        change(&mut records);
        let bytes = serde_json::to_vec_pretty(&*records).unwrap_or_default();
        let temp = self.state_dir.join(format!(".{FILE_NAME}.tmp"));
        let written = std::fs::create_dir_all(&self.state_dir)
            .and_then(|()| std::fs::write(&temp, &bytes))
            .and_then(|()| std::fs::rename(&temp, self.state_dir.join(FILE_NAME)));
        if let Err(error) = written {
            tracing::warn!(repo, %error, "cannot record the store's inventory");
        }
    }

    /// `repo` was just used (fetched, or found in the cache by a deploy).
    pub(crate) fn touch(&self, repo: &str) {
        self.update(repo, |records| {
            records.entry(repo.to_owned()).or_default().last_used_at = Some(Utc::now());
        });
    }

    pub(crate) fn set_pinned(&self, repo: &str, pinned: bool) {
        self.update(repo, |records| {
            records.entry(repo.to_owned()).or_default().pinned = pinned;
        });
    }

    /// Every repo folder in the cache.
    pub fn list(&self, in_use: impl Fn(&str) -> bool) -> Vec<CachedModel> {
        let Ok(entries) = std::fs::read_dir(&self.cache) else {
            return Vec::new();
        };
        let mut models: Vec<CachedModel> = entries
            .flatten()
            .filter_map(|entry| {
                let folder = entry.file_name().to_string_lossy().into_owned();
                layout::repo_of_folder(&folder).map(|repo| self.describe(&repo, &in_use))
            })
            .collect();
        models.sort_by(|a, b| a.model_id.cmp(&b.model_id));
        models
    }

    /// One repo, if the cache has a folder for it.
    pub fn get(&self, repo: &str, in_use: impl Fn(&str) -> bool) -> Option<CachedModel> {
        RepoDir::new(&self.cache, repo)
            .root()
            .is_dir()
            .then(|| self.describe(repo, &in_use))
    }

    fn describe(&self, repo: &str, in_use: &impl Fn(&str) -> bool) -> CachedModel {
        let dir = RepoDir::new(&self.cache, repo);
        let record = self
            .records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(repo)
            .cloned()
            .unwrap_or_default();
        let complete = dir.complete_snapshot("main");
        let revision = complete
            .as_ref()
            .map(|(_, commit)| commit.clone())
            .or_else(|| dir.commit_of("main"));
        // Never used by this agent (a pre-seeded cache): the folder's time stands in.
        let last_used_at = record.last_used_at.or_else(|| {
            std::fs::metadata(dir.root())
                .and_then(|m| m.modified())
                .ok()
                .map(DateTime::<Utc>::from)
        });
        CachedModel {
            model_id: repo.to_owned(),
            source: format!("hf:{repo}"),
            revision,
            size_bytes: disk_bytes(&dir.root().join("blobs")),
            last_used_at,
            pinned: record.pinned,
            in_use: in_use(repo),
            complete: complete.is_some(),
        }
    }

    /// Removes `repo`'s folder (blobs, snapshots, refs) and its lock folder.
    pub fn remove(&self, repo: &str) -> std::io::Result<()> {
        let dir = RepoDir::new(&self.cache, repo);
        let removed = std::fs::remove_dir_all(dir.root());
        let _ = std::fs::remove_dir_all(self.cache.join(".locks").join(layout::repo_folder(repo)));
        self.update(repo, |records| {
            records.remove(repo);
        });
        match removed {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }
}
