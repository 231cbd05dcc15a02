//! Paths of the Hugging Face cache as Python's `huggingface_hub` lays it out, so a cache
//! filled by `huggingface-cli download` is reused and the reverse:
//! `models--org--name/{blobs/<etag>, snapshots/<commit>/<file> -> ../../blobs/<etag>,
//! refs/<revision>}`, partials at `blobs/<etag>.incomplete`, locks at
//! `.locks/models--org--name/<etag>.lock`.

use std::path::{Path, PathBuf};

use runtime::checkpoint::{self, CONFIG_FILE, WEIGHTS_FILE, WEIGHTS_INDEX_FILE};

/// `models--org--name`.
pub(crate) fn repo_folder(repo: &str) -> String {
    format!("models--{}", repo.replace('/', "--"))
}

/// The repo folder name back to a repo id, for listing the cache.
pub(crate) fn repo_of_folder(folder: &str) -> Option<String> {
    folder
        .strip_prefix("models--")
        .map(|rest| rest.replace("--", "/"))
}

pub(crate) fn is_commit_hash(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// One repo's place in the cache.
#[derive(Clone, Debug)]
pub(crate) struct RepoDir {
    cache: PathBuf,
    folder: String,
}

impl RepoDir {
    pub fn new(cache: &Path, repo: &str) -> RepoDir {
        RepoDir {
            cache: cache.to_owned(),
            folder: repo_folder(repo),
        }
    }

    pub fn root(&self) -> PathBuf {
        self.cache.join(&self.folder)
    }

    pub fn blob(&self, etag: &str) -> PathBuf {
        self.root().join("blobs").join(etag)
    }

    pub fn incomplete(&self, etag: &str) -> PathBuf {
        self.root().join("blobs").join(format!("{etag}.incomplete"))
    }

    pub fn lock(&self, etag: &str) -> PathBuf {
        self.cache
            .join(".locks")
            .join(&self.folder)
            .join(format!("{etag}.lock"))
    }

    pub fn snapshot(&self, commit: &str) -> PathBuf {
        self.root().join("snapshots").join(commit)
    }

    pub(crate) fn ref_file(&self, revision: &str) -> PathBuf {
        self.root().join("refs").join(revision)
    }

    /// The commit `revision` names: `refs/<revision>`, or the revision itself when it is a
    /// commit hash. Anything else in a ref must not become a path.
    pub(crate) fn commit_of(&self, revision: &str) -> Option<String> {
        let commit = match std::fs::read_to_string(self.ref_file(revision)) {
            Ok(text) => text.trim().to_owned(),
            Err(_) if is_commit_hash(revision) => revision.to_owned(),
            Err(_) => return None,
        };
        is_commit_hash(&commit).then_some(commit)
    }

    /// `snapshots/<commit>/` of `revision` when it is complete, with the commit.
    pub(crate) fn complete_snapshot(&self, revision: &str) -> Option<(PathBuf, String)> {
        let commit = self.commit_of(revision)?;
        let dir = self.snapshot(&commit);
        snapshot_is_complete(&dir).then_some((dir, commit))
    }
}

/// A snapshot counts as complete only when the files a checkpoint needs are all there:
/// `config.json` and the weights (one file, or an index and every shard it names). Links
/// into `blobs/` are made only once a blob is whole and verified, so a link that resolves
/// is a whole file; a kill during a download leaves the snapshot incomplete, never a
/// half-read checkpoint.
pub(crate) fn snapshot_is_complete(dir: &Path) -> bool {
    if !dir.join(CONFIG_FILE).is_file() {
        return false;
    }
    if dir.join(WEIGHTS_FILE).is_file() {
        return true;
    }
    let index = dir.join(WEIGHTS_INDEX_FILE);
    match checkpoint::shard_names(&index) {
        Ok(shards) => shards.iter().all(|shard| dir.join(shard).is_file()),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

    fn repo_with(files: &[(&str, &str)]) -> (tempfile::TempDir, RepoDir) {
        let cache = tempfile::tempdir().unwrap();
        let dir = RepoDir::new(cache.path(), "org/name");
        std::fs::create_dir_all(dir.snapshot(COMMIT)).unwrap();
        std::fs::create_dir_all(dir.root().join("refs")).unwrap();
        std::fs::write(dir.ref_file("main"), COMMIT).unwrap();
        for (name, text) in files {
            std::fs::write(dir.snapshot(COMMIT).join(name), text).unwrap();
        }
        (cache, dir)
    }

    #[test]
    fn paths_follow_the_python_layout() {
        let dir = RepoDir::new(Path::new("/c"), "org/name");
        assert_eq!(dir.blob("abc"), Path::new("/c/models--org--name/blobs/abc"));
        assert_eq!(
            dir.incomplete("abc"),
            Path::new("/c/models--org--name/blobs/abc.incomplete")
        );
        assert_eq!(
            dir.lock("abc"),
            Path::new("/c/.locks/models--org--name/abc.lock")
        );
        assert_eq!(
            repo_of_folder("models--org--name").as_deref(),
            Some("org/name")
        );
    }

    #[test]
    fn a_snapshot_without_its_weights_is_incomplete() {
        let (_cache, dir) = repo_with(&[("config.json", "{}")]);
        assert!(dir.complete_snapshot("main").is_none());
        let (_cache, dir) = repo_with(&[("config.json", "{}"), (WEIGHTS_FILE, "w")]);
        assert_eq!(dir.complete_snapshot("main").unwrap().1, COMMIT);
    }

    #[test]
    fn a_sharded_snapshot_is_complete_only_with_every_shard() {
        let index = r#"{"weight_map": {"a": "model-1.safetensors", "b": "model-2.safetensors"}}"#;
        let (_cache, dir) = repo_with(&[
            ("config.json", "{}"),
            (WEIGHTS_INDEX_FILE, index),
            ("model-1.safetensors", "1"),
        ]);
        assert!(dir.complete_snapshot("main").is_none());
        std::fs::write(dir.snapshot(COMMIT).join("model-2.safetensors"), "2").unwrap();
        assert!(dir.complete_snapshot("main").is_some());
    }

    #[test]
    fn a_ref_that_is_not_a_commit_hash_never_becomes_a_path() {
        let (_cache, dir) = repo_with(&[("config.json", "{}"), (WEIGHTS_FILE, "w")]);
        std::fs::write(dir.ref_file("main"), "../../etc").unwrap();
        assert!(dir.commit_of("main").is_none());
    }
}
