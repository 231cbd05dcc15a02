//! Stand-in for `state/`: one JSON file per record under `<dir>/<kind>/<id>.json`, written
//! to a temp file, fsynced, renamed over, and the directory fsynced. Files that are not
//! JSON are moved to `<dir>/quarantine/` at open and reported.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StateError {
    #[error("state I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state record {path} does not decode: {message}")]
    Decode { path: PathBuf, message: String },
    #[error("state record {kind}/{id} does not encode: {message}")]
    Encode {
        kind: String,
        id: String,
        message: String,
    },
    #[error("state record name {name:?} is not a safe file name")]
    BadName { name: String },
}

#[derive(Clone, Debug)]
pub struct QuarantinedFile {
    pub original: PathBuf,
    pub moved_to: PathBuf,
    pub reason: String,
}

pub struct StateStore {
    dir: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_owned(),
        source,
    }
}

fn check_name(name: &str) -> Result<(), StateError> {
    let safe = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if safe {
        Ok(())
    } else {
        Err(StateError::BadName {
            name: name.to_owned(),
        })
    }
}

impl StateStore {
    pub fn open(dir: &Path) -> Result<(Self, Vec<QuarantinedFile>), StateError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let store = StateStore {
            dir: dir.to_owned(),
        };
        let mut quarantined = Vec::new();
        for kind in fs::read_dir(dir).map_err(io(dir))? {
            let kind = kind.map_err(io(dir))?.path();
            if !kind.is_dir() || kind.file_name().is_some_and(|n| n == "quarantine") {
                continue;
            }
            for entry in fs::read_dir(&kind).map_err(io(&kind))? {
                let path = entry.map_err(io(&kind))?.path();
                let is_temp = path.extension().is_some_and(|e| e == "tmp");
                if is_temp {
                    // An interrupted write: the rename never happened, the old record stands.
                    let _ = fs::remove_file(&path);
                    continue;
                }
                let reason = match fs::read(&path) {
                    Ok(bytes) => match serde_json::from_slice::<serde_json::Value>(&bytes) {
                        Ok(_) => continue,
                        Err(error) => error.to_string(),
                    },
                    Err(error) => error.to_string(),
                };
                quarantined.push(store.quarantine(&path, reason)?);
            }
        }
        Ok((store, quarantined))
    }

    fn quarantine(&self, path: &Path, reason: String) -> Result<QuarantinedFile, StateError> {
        let target_dir = self.dir.join("quarantine");
        fs::create_dir_all(&target_dir).map_err(io(&target_dir))?;
        let kind = path
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let moved_to = target_dir.join(format!("{kind}-{name}"));
        fs::rename(path, &moved_to).map_err(io(path))?;
        Ok(QuarantinedFile {
            original: path.to_owned(),
            moved_to,
            reason,
        })
    }

    pub fn put<T: Serialize>(&self, kind: &str, id: &str, value: &T) -> Result<(), StateError> {
        check_name(kind)?;
        check_name(id)?;
        let bytes = serde_json::to_vec_pretty(value).map_err(|e| StateError::Encode {
            kind: kind.to_owned(),
            id: id.to_owned(),
            message: e.to_string(),
        })?;
        let dir = self.dir.join(kind);
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let target = dir.join(format!("{id}.json"));
        let temp = dir.join(format!("{id}.json.tmp"));
        let mut file = File::create(&temp).map_err(io(&temp))?;
        file.write_all(&bytes).map_err(io(&temp))?;
        file.sync_all().map_err(io(&temp))?;
        fs::rename(&temp, &target).map_err(io(&target))?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&dir))?;
        Ok(())
    }

    pub fn delete(&self, kind: &str, id: &str) -> Result<(), StateError> {
        check_name(kind)?;
        check_name(id)?;
        let dir = self.dir.join(kind);
        let target = dir.join(format!("{id}.json"));
        match fs::remove_file(&target) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(&target)(e)),
        }
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&dir))
    }

    pub fn list<T: DeserializeOwned>(&self, kind: &str) -> Result<Vec<T>, StateError> {
        check_name(kind)?;
        let dir = self.dir.join(kind);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&dir)(e)),
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|path| {
                let bytes = fs::read(path).map_err(io(path))?;
                serde_json::from_slice(&bytes).map_err(|e| StateError::Decode {
                    path: path.clone(),
                    message: e.to_string(),
                })
            })
            .collect()
    }
}
