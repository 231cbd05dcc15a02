//! The disk budget (docs/models.md § Disk budget): before a download, the cache plus what
//! it still needs must stay within `[store] max_bytes`, and the filesystem must keep
//! `[store] min_free_bytes` free. Least-recently-used models that are neither pinned nor in
//! use are evicted to make room; when even evicting all of them would not, nothing is
//! evicted and the download fails `INSUFFICIENT_DISK` before a byte is fetched.

use std::path::Path;

use super::error::StoreError;
use super::hub_client::RemoteFile;
use super::inventory::disk_bytes;
use super::layout::RepoDir;
use super::Store;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Budget {
    pub max_bytes: Option<u64>,
    pub min_free_bytes: u64,
}

/// Free bytes on the filesystem holding `path` (its nearest existing ancestor).
fn free_bytes(path: &Path) -> Option<u64> {
    let existing = path.ancestors().find(|p| p.exists())?;
    let text = std::ffi::CString::new(existing.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statvfs is plain data; all-zero is a valid value the call overwrites.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and an out-struct the call fills in.
    let rc = unsafe { libc::statvfs(text.as_ptr(), &mut stats) };
    (rc == 0).then(|| stats.f_bavail.saturating_mul(stats.f_frsize))
}

/// Bytes `files` still need: each missing blob less its partial.
fn still_needed(dir: &RepoDir, files: &[RemoteFile]) -> u64 {
    files
        .iter()
        .map(|file| {
            if std::fs::metadata(dir.blob(&file.etag)).is_ok_and(|m| m.len() == file.size) {
                return 0;
            }
            let partial = std::fs::metadata(dir.incomplete(&file.etag))
                .map(|m| m.len())
                .unwrap_or(0);
            file.size.saturating_sub(partial)
        })
        .sum()
}

/// Evicts what must go for `files` of `repo` to fit, or refuses.
pub(crate) fn make_room(
    store: &Store,
    repo: &str,
    dir: &RepoDir,
    files: &[RemoteFile],
) -> Result<(), StoreError> {
    let budget = store.budget;
    let needed = still_needed(dir, files);
    if needed == 0 {
        return Ok(());
    }
    let cached = disk_bytes(store.cache_dir());
    let free = free_bytes(store.cache_dir()).unwrap_or(u64::MAX);
    // Bytes to free for each limit.
    let over_max = budget
        .max_bytes
        .map_or(0, |max| (cached + needed).saturating_sub(max));
    let over_free = (budget.min_free_bytes + needed).saturating_sub(free);
    let to_free = over_max.max(over_free);
    if to_free == 0 {
        return Ok(());
    }
    let mut candidates: Vec<_> = store
        .inventory
        .list(|r| store.is_in_use(r))
        .into_iter()
        .filter(|m| {
            m.model_id != repo && !m.pinned && !m.in_use && !store.is_downloading(&m.model_id)
        })
        .collect();
    candidates.sort_by_key(|m| m.last_used_at);
    let evictable: u64 = candidates.iter().map(|m| m.size_bytes).sum();
    if evictable < to_free {
        let mut limits = Vec::new();
        if let Some(max) = budget.max_bytes {
            limits.push(format!(
                "[store] max_bytes is {max} and the cache holds {cached}"
            ));
        }
        limits.push(format!(
            "{free} bytes are free and [store] min_free_bytes is {}",
            budget.min_free_bytes
        ));
        return Err(StoreError::InsufficientDisk {
            repo: repo.to_owned(),
            needed,
            detail: format!(
                "{}; evicting every unpinned model not in use would free only {evictable} bytes. \
                 Free disk space, raise the budget, or unpin models",
                limits.join("; ")
            ),
        });
    }
    let mut freed = 0;
    for model in candidates {
        if freed >= to_free {
            break;
        }
        tracing::info!(
            evicted = %model.model_id,
            bytes = model.size_bytes,
            for_repo = repo,
            "evicting the least recently used model to stay within the disk budget"
        );
        if let Err(error) = store.inventory.remove(&model.model_id) {
            tracing::warn!(model = %model.model_id, %error, "eviction failed");
            continue;
        }
        freed += model.size_bytes;
    }
    Ok(())
}
