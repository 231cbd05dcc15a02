//! One agent per state directory: two writers interleaving renames would each believe
//! their own view is durable. The lock is an advisory `flock`, released by the kernel
//! when the process dies, so a `kill -9` never leaves a stale lock behind.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::error::StateError;

const LOCK_FILE: &str = ".lock";

/// Holds the lock for as long as it lives.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

pub fn lock(dir: &Path) -> Result<DirLock, StateError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|err| StateError::io("open lock file", &path, err))?;
    // SAFETY: flock only reads the descriptor, which `file` keeps open for the call.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if locked == 0 {
        return Ok(DirLock { _file: file });
    }
    let err = std::io::Error::last_os_error();
    if err.kind() == std::io::ErrorKind::WouldBlock {
        Err(StateError::Locked {
            path: dir.to_owned(),
        })
    } else {
        Err(StateError::io("lock", path, err))
    }
}
