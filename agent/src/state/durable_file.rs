//! The filesystem steps that make a write survive a crash or power loss: data reaches the
//! disk (fsync) before the rename that publishes it, and the rename reaches the disk
//! (fsync of the directory) before the caller is told it is done.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use super::error::StateError;

/// State may hold deployment configs; only the agent's user reads it.
const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;

/// Writes `bytes` to `dir/temp_name`, syncs it, renames it over `dir/file_name` and syncs
/// `dir`. On failure the temp file is removed (best effort) and `dir/file_name` is either
/// the old document or the new one, never a mix.
pub fn replace(
    dir: &Path,
    file_name: &str,
    temp_name: &str,
    bytes: &[u8],
) -> Result<(), StateError> {
    let temp = dir.join(temp_name);
    let written = write_synced(&temp, bytes).and_then(|()| {
        let target = dir.join(file_name);
        fs::rename(&temp, &target).map_err(|err| StateError::io("rename into", target, err))
    });
    if let Err(err) = written {
        let _ = fs::remove_file(&temp);
        return Err(err);
    }
    sync_dir(dir)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
        .map_err(|err| StateError::io("create", path, err))?;
    file.write_all(bytes)
        .map_err(|err| StateError::io("write", path, err))?;
    file.sync_all()
        .map_err(|err| StateError::io("sync", path, err))
}

/// Removes `dir/file_name` and syncs `dir`. Removing a file that is not there succeeds:
/// the outcome the caller asked for holds.
pub fn remove(dir: &Path, file_name: &str) -> Result<(), StateError> {
    let path = dir.join(file_name);
    match fs::remove_file(&path) {
        Ok(()) => sync_dir(dir),
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(()),
        Err(err) => Err(StateError::io("remove", path, err)),
    }
}

/// Moves `from` to `to` (same filesystem) and syncs both directories.
pub(crate) fn move_file(from: &Path, to: &Path) -> Result<(), StateError> {
    fs::rename(from, to).map_err(|err| StateError::io("move", from, err))?;
    for dir in [to.parent(), from.parent()].into_iter().flatten() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Creates `dir` (and missing parents) if needed; a directory created here is made
/// durable by syncing its parent.
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), StateError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(|err| StateError::io("create directory", dir, err))?;
    match dir.parent() {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

/// Flushes a directory's entries (creations, renames, removals) to disk.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StateError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(|err| StateError::io("sync directory", dir, err))
}
