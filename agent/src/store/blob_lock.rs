//! One writer per blob across processes: an exclusive `flock` on
//! `.locks/models--org--name/<etag>.lock`, the file Python's hub locks (filelock uses
//! `flock` too), so the agent, a second agent and `huggingface-cli` never write one blob
//! at once. The kernel drops the lock when its holder dies, so a `kill -9` never leaves a
//! lock that blocks a later download.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

pub(crate) struct BlobLock {
    _file: File,
}

impl BlobLock {
    /// Waits for the lock.
    pub(crate) fn acquire(path: &Path) -> std::io::Result<BlobLock> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        // SAFETY: flock on a descriptor this function owns; no memory is shared.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(BlobLock { _file: file })
    }
}
