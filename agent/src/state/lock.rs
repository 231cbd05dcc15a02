//! One agent per state directory: two writers interleaving renames would each believe
//! their own view is durable. The lock is an advisory `flock`, released by the kernel
//! when the process dies, so a `kill -9` never leaves a stale lock behind.
//!
//! The lock belongs to the open file description, which a process forked by the holder
//! shares until it execs; a previous agent that is still exiting holds it too. So a busy
//! lock is retried for a short while before it counts as another running agent.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::error::StateError;

const LOCK_FILE: &str = ".lock";
/// How long a busy lock is retried; far longer than any fork-to-exec window.
const BUSY_WAIT: Duration = Duration::from_secs(2);
const RETRY_EVERY: Duration = Duration::from_millis(20);

/// Holds the lock for as long as it lives.
#[derive(Debug)]
pub(crate) struct DirLock {
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
    let give_up = Instant::now() + BUSY_WAIT;
    loop {
        // SAFETY: flock only reads the descriptor, which `file` keeps open for the call.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if locked == 0 {
            return Ok(DirLock { _file: file });
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::WouldBlock {
            return Err(StateError::io("lock", path, err));
        }
        if Instant::now() >= give_up {
            return Err(StateError::Locked {
                path: dir.to_owned(),
            });
        }
        std::thread::sleep(RETRY_EVERY);
    }
}
