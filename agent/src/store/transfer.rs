//! One blob from the Hub to the cache: appended to `blobs/<etag>.incomplete` from the
//! bytes already there (HTTP Range, also after a restart), retried with capped exponential
//! backoff on connection errors and 5xx, hashed while it streams and, for an LFS file,
//! compared with the Hub's sha256 before it is renamed into place.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::error::StoreError;
use super::hub_client::{HubClient, HubError, RemoteFile};
use super::progress::Progress;
use super::retry::RetryPolicy;

/// Everything one transfer needs.
pub(crate) struct Transfer<'a> {
    pub client: &'a HubClient,
    pub repo: &'a str,
    pub revision: &'a str,
    pub file: &'a RemoteFile,
    pub progress: &'a Progress,
    pub retry: RetryPolicy,
}

enum Attempt {
    Done,
    /// Failed after writing this many new bytes.
    Retry {
        reason: String,
        progressed: bool,
    },
}

impl Transfer<'_> {
    /// Downloads into `incomplete` and renames it to `blob` once whole and verified.
    pub fn run(&self, incomplete: &Path, blob: &Path) -> Result<(), StoreError> {
        let mut mismatches = 0;
        loop {
            let digest = self.fill(incomplete)?;
            match self.verify(incomplete, digest) {
                Ok(()) => {
                    std::fs::rename(incomplete, blob).map_err(|e| self.io_failed(&e))?;
                    return Ok(());
                }
                Err(actual) => {
                    // The partial is worthless: start again from zero, once.
                    mismatches += 1;
                    let _ = std::fs::remove_file(incomplete);
                    self.progress.take_back(self.file.size);
                    tracing::warn!(
                        repo = self.repo,
                        file = %self.file.name,
                        expected = %self.file.etag,
                        %actual,
                        attempt = mismatches,
                        "sha256 mismatch; the partial file was deleted"
                    );
                    if mismatches >= 2 {
                        return Err(StoreError::ChecksumMismatch {
                            repo: self.repo.to_owned(),
                            file: self.file.name.clone(),
                            expected: self.file.etag.clone(),
                            actual,
                        });
                    }
                }
            }
        }
    }

    fn io_failed(&self, error: &std::io::Error) -> StoreError {
        StoreError::FetchFailed {
            repo: self.repo.to_owned(),
            file: self.file.name.clone(),
            reason: error.to_string(),
        }
    }

    /// Appends until `incomplete` holds `size` bytes, retrying transient failures; returns
    /// the sha256 of the whole file, hashed as the bytes arrived (a partial left by an
    /// earlier run is hashed once from disk).
    fn fill(&self, incomplete: &Path) -> Result<String, StoreError> {
        let mut failures = 0;
        let mut first = true;
        let mut hashed: Option<(Sha256, u64)> = None;
        loop {
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(incomplete)
                .map_err(|e| self.io_failed(&e))?;
            let mut have = file.metadata().map_err(|e| self.io_failed(&e))?.len();
            if have > self.file.size {
                file.set_len(0).map_err(|e| self.io_failed(&e))?;
                have = 0;
            }
            if first {
                self.progress.add_resumed(have);
                first = false;
            }
            let mut hasher = match hashed.take() {
                Some((hasher, upto)) if upto == have => hasher,
                _ => prefix_hasher(incomplete, have).map_err(|e| self.io_failed(&e))?,
            };
            if have == self.file.size {
                return Ok(hex::encode(hasher.finalize()));
            }
            let outcome = self.attempt(&mut file, have, &mut hasher);
            let now = file.metadata().map_err(|e| self.io_failed(&e))?.len();
            match outcome {
                Ok(Attempt::Done) => return Ok(hex::encode(hasher.finalize())),
                Ok(Attempt::Retry { reason, progressed }) => {
                    failures = if progressed { 1 } else { failures + 1 };
                    if failures >= self.retry.attempts {
                        return Err(StoreError::FetchFailed {
                            repo: self.repo.to_owned(),
                            file: self.file.name.clone(),
                            reason: format!("{reason} ({failures} attempts in a row)"),
                        });
                    }
                    let wait = self.retry.backoff(failures);
                    tracing::info!(
                        repo = self.repo,
                        file = %self.file.name,
                        %reason,
                        retry_in_ms = wait.as_millis() as u64,
                        "download interrupted; resuming"
                    );
                    std::thread::sleep(wait);
                    hashed = Some((hasher, now));
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// One request from `have` on.
    fn attempt(
        &self,
        file: &mut File,
        have: u64,
        hasher: &mut Sha256,
    ) -> Result<Attempt, StoreError> {
        let (served_from, mut body) = match self.client.open_from(self.file, have) {
            Ok(opened) => opened,
            Err(HubError::Transient(reason)) => {
                return Ok(Attempt::Retry {
                    reason,
                    progressed: false,
                })
            }
            Err(other) => {
                return Err(other.into_store_error(self.repo, self.revision, &self.file.name))
            }
        };
        if served_from != have {
            // The server sent the file from the start: drop what we had.
            file.set_len(0).map_err(|e| self.io_failed(&e))?;
            *hasher = Sha256::new();
            self.progress.take_back(have);
            if served_from != 0 {
                return Ok(Attempt::Retry {
                    reason: format!("the Hub answered from byte {served_from}, asked {have}"),
                    progressed: false,
                });
            }
        }
        let mut buffer = vec![0u8; 256 * 1024];
        let mut written = served_from;
        let mut progressed = false;
        while written < self.file.size {
            let read = match body.read(&mut buffer) {
                Ok(0) => {
                    return Ok(Attempt::Retry {
                        reason: format!("the connection closed at byte {written}"),
                        progressed,
                    })
                }
                Ok(read) => read,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    return Ok(Attempt::Retry {
                        reason: error.to_string(),
                        progressed,
                    })
                }
            };
            let read = read.min((self.file.size - written) as usize);
            file.write_all(&buffer[..read])
                .map_err(|e| self.io_failed(&e))?;
            hasher.update(&buffer[..read]);
            written += read as u64;
            progressed = true;
            self.progress.add_bytes(read as u64);
            crate::store::metrics::bytes_fetched(self.repo, read as u64);
        }
        file.sync_all().map_err(|e| self.io_failed(&e))?;
        Ok(Attempt::Done)
    }

    /// An LFS file's sha256 against its ETag (`Err` is the actual digest); other files
    /// by size (their ETag is a git id).
    fn verify(&self, incomplete: &Path, digest: String) -> Result<(), String> {
        if !self.file.lfs {
            let len = std::fs::metadata(incomplete).map(|m| m.len()).unwrap_or(0);
            return if len == self.file.size {
                Ok(())
            } else {
                Err(format!("{len} bytes"))
            };
        }
        if digest.eq_ignore_ascii_case(&self.file.etag) {
            Ok(())
        } else {
            Err(digest)
        }
    }
}

/// A hasher that has seen the first `len` bytes of `path` (a partial from earlier).
fn prefix_hasher(path: &Path, len: u64) -> std::io::Result<Sha256> {
    let mut hasher = Sha256::new();
    let mut file = File::open(path)?.take(len);
    let mut buffer = vec![0u8; 1024 * 1024];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hasher)
}
