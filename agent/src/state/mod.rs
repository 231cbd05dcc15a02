//! Durable state (`docs/operations.md` § State: layout and durability): JSON documents by
//! kind and id under the state directory.
//!
//! Layout: `<dir>/<kind>/<id>.json`, one document per file. A `put` or `delete` is on disk
//! (file data and directory entry both fsynced) before it returns, so anything the API has
//! acknowledged survives `kill -9` and power loss. `open` removes temp files an interrupted
//! write left behind and moves every file it cannot parse to `<dir>/quarantine/<kind>/`,
//! returning the list: nothing is dropped silently.

mod durable_file;
mod error;
mod file_name;
mod lock;
mod quarantine;

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use error::StateError;
pub use file_name::QUARANTINE_DIR;
pub use quarantine::QuarantinedFile;

/// The store. Share it between threads by reference or `Arc`; every method takes `&self`.
/// Concurrent `put`s of the same id each land whole; the last rename wins.
#[derive(Debug)]
pub struct StateStore {
    root: PathBuf,
    /// Distinguishes temp files of concurrent writes from this process.
    sequence: AtomicU64,
    _lock: lock::DirLock,
}

impl StateStore {
    /// Opens (creating if needed) the store at `dir`, takes its lock, cleans up after an
    /// interrupted write and quarantines unreadable files.
    pub fn open(dir: &Path) -> Result<(Self, Vec<QuarantinedFile>), StateError> {
        durable_file::ensure_dir(dir)?;
        let lock = lock::lock(dir)?;
        let mut quarantined = Vec::new();
        for kind in kind_dirs(dir)? {
            quarantined.extend(scan_kind(dir, &kind)?);
        }
        let store = StateStore {
            root: dir.to_owned(),
            sequence: AtomicU64::new(0),
            _lock: lock,
        };
        Ok((store, quarantined))
    }

    /// The directory the store lives in.
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// Stores `value` as the document `kind/id`, replacing any previous one, durably.
    pub fn put<T: Serialize>(&self, kind: &str, id: &str, value: &T) -> Result<(), StateError> {
        file_name::check_kind(kind)?;
        let name = file_name::document_name(id)?;
        let mut bytes =
            serde_json::to_vec_pretty(value).map_err(|source| StateError::Serialize {
                kind: kind.to_owned(),
                id: id.to_owned(),
                source,
            })?;
        bytes.push(b'\n');
        let dir = self.root.join(kind);
        durable_file::ensure_dir(&dir)?;
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let temp = file_name::temp_name(&name, sequence);
        durable_file::replace(&dir, &name, &temp, &bytes)
    }

    /// Removes the document `kind/id`, durably. Removing an absent document succeeds.
    pub fn delete(&self, kind: &str, id: &str) -> Result<(), StateError> {
        file_name::check_kind(kind)?;
        let name = file_name::document_name(id)?;
        let dir = self.root.join(kind);
        if !dir.is_dir() {
            return Ok(());
        }
        durable_file::remove(&dir, &name)
    }

    /// The document `kind/id`, if stored.
    pub fn get<T: DeserializeOwned>(&self, kind: &str, id: &str) -> Result<Option<T>, StateError> {
        file_name::check_kind(kind)?;
        let path = self.root.join(kind).join(file_name::document_name(id)?);
        match read_document(&path)? {
            Some(bytes) => decode(&path, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Every document of `kind`, ordered by file name. Fails, naming the file, if one does
    /// not decode as `T`; use [`StateStore::restore`] to set such files aside instead.
    pub fn list<T: DeserializeOwned>(&self, kind: &str) -> Result<Vec<T>, StateError> {
        file_name::check_kind(kind)?;
        let dir = self.root.join(kind);
        let mut documents = Vec::new();
        for name in document_names(&dir)? {
            let path = dir.join(&name);
            if let Some(bytes) = read_document(&path)? {
                documents.push(decode(&path, &bytes)?);
            }
        }
        Ok(documents)
    }

    /// Like [`StateStore::list`], for startup: a document that is valid JSON but not a `T`
    /// (say, written by an incompatible version) is quarantined and reported instead of
    /// failing the whole restore.
    pub fn restore<T: DeserializeOwned>(
        &self,
        kind: &str,
    ) -> Result<(Vec<T>, Vec<QuarantinedFile>), StateError> {
        file_name::check_kind(kind)?;
        let dir = self.root.join(kind);
        let mut documents = Vec::new();
        let mut quarantined = Vec::new();
        for name in document_names(&dir)? {
            let path = dir.join(&name);
            let Some(bytes) = read_document(&path)? else {
                continue;
            };
            match serde_json::from_slice(&bytes) {
                Ok(document) => documents.push(document),
                Err(err) => quarantined.push(quarantine::quarantine(
                    &self.root,
                    kind,
                    &path,
                    file_name::id_of(&name),
                    format!("does not match the expected document: {err}"),
                )?),
            }
        }
        Ok((documents, quarantined))
    }
}

fn decode<T: DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T, StateError> {
    serde_json::from_slice(bytes).map_err(|source| StateError::Decode {
        path: path.to_owned(),
        source,
    })
}

/// The file's bytes, or `None` if it vanished (a concurrent delete).
fn read_document(path: &Path) -> Result<Option<Vec<u8>>, StateError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
        Err(err) => Err(StateError::io("read", path, err)),
    }
}

/// Names of the entries of `dir`, sorted; empty when `dir` does not exist.
fn entry_names(dir: &Path) -> Result<Vec<(String, fs::FileType)>, StateError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(StateError::io("list", dir, err)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|err| StateError::io("list", dir, err))?;
        let file_type = entry
            .file_type()
            .map_err(|err| StateError::io("inspect", entry.path(), err))?;
        names.push((entry.file_name().to_string_lossy().into_owned(), file_type));
    }
    names.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(names)
}

fn document_names(dir: &Path) -> Result<Vec<String>, StateError> {
    Ok(entry_names(dir)?
        .into_iter()
        .filter(|(name, file_type)| file_type.is_file() && file_name::is_document(name))
        .map(|(name, _)| name)
        .collect())
}

/// Directories other parts of the agent keep under the state directory: not document
/// kinds, and not this store's to scan or warn about. `ctranslate2`: the CTranslate2
/// conversion cache (docs/ctranslate2.md).
const OTHER_OWNERS: &[&str] = &["ctranslate2"];

/// Subdirectories of the root that are kinds (not the quarantine, not foreign ones).
fn kind_dirs(root: &Path) -> Result<Vec<String>, StateError> {
    let mut kinds = Vec::new();
    for (name, file_type) in entry_names(root)? {
        if !file_type.is_dir() || name == QUARANTINE_DIR || OTHER_OWNERS.contains(&name.as_str()) {
            continue;
        }
        if file_name::check_kind(&name).is_ok() {
            kinds.push(name);
        } else {
            tracing::warn!(dir = %root.join(&name).display(), "state: ignoring a directory that is not a document kind");
        }
    }
    Ok(kinds)
}

/// Removes leftover temp files of `kind` and quarantines every file that is not a
/// readable JSON document with a name the store writes.
fn scan_kind(root: &Path, kind: &str) -> Result<Vec<QuarantinedFile>, StateError> {
    let dir = root.join(kind);
    let mut quarantined = Vec::new();
    for (name, file_type) in entry_names(&dir)? {
        let path = dir.join(&name);
        if !file_type.is_file() {
            tracing::warn!(path = %path.display(), "state: ignoring an entry that is not a regular file");
            continue;
        }
        if file_name::is_temp(&name) {
            // An interrupted write never got renamed; the document it was replacing is intact.
            fs::remove_file(&path).map_err(|err| StateError::io("remove temp file", &path, err))?;
            tracing::info!(path = %path.display(), "state: removed a temp file left by an interrupted write");
            continue;
        }
        let id = file_name::id_of(&name).filter(|_| file_name::is_document(&name));
        let problem = match (&id, fs::read(&path)) {
            (None, _) => Some("its name is not one the store writes".to_owned()),
            (Some(_), Err(err)) => Some(format!("cannot read it: {err}")),
            (Some(_), Ok(bytes)) => serde_json::from_slice::<serde::de::IgnoredAny>(&bytes)
                .err()
                .map(|err| format!("not valid JSON: {err}")),
        };
        if let Some(reason) = problem {
            quarantined.push(quarantine::quarantine(root, kind, &path, id, reason)?);
        }
    }
    Ok(quarantined)
}
