//! A Hugging Face endpoint that accepts connections and never answers: a deploy of a
//! model fetched from it stays in FETCHING, which lets tests observe an in-progress
//! deploy (409, readiness, kill -9 mid-deploy) without a real download. And a Hugging
//! Face cache laid out on disk, for offline mode.

use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::fixtures;

pub struct HangingHub {
    pub url: String,
    /// Connections held open so the client waits forever.
    _held: Arc<Mutex<Vec<std::net::TcpStream>>>,
}

impl HangingHub {
    pub fn start() -> HangingHub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the hanging hub");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let held = Arc::new(Mutex::new(Vec::new()));
        let keep = Arc::clone(&held);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                keep.lock().unwrap_or_else(|p| p.into_inner()).push(stream);
            }
        });
        HangingHub { url, _held: held }
    }

    /// The environment an agent needs to fetch from this hub.
    pub fn env(&self) -> [(&str, &str); 1] {
        [("HF_ENDPOINT", self.url.as_str())]
    }
}

/// A Hugging Face cache as Python lays it out: blobs, snapshot symlinks, `refs/main`.
pub fn fake_hf_cache(hf_home: &Path, repo: &str, fixture: &str) {
    let commit = "4f1c0b7e9d2a3c5b6e8f0a1b2c3d4e5f60718293";
    let repo_dir = hf_home
        .join("hub")
        .join(format!("models--{}", repo.replace('/', "--")));
    let snapshot = repo_dir.join("snapshots").join(commit);
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::create_dir_all(repo_dir.join("blobs")).unwrap();
    std::fs::create_dir_all(repo_dir.join("refs")).unwrap();
    std::fs::write(repo_dir.join("refs/main"), commit).unwrap();
    for entry in std::fs::read_dir(fixtures().join(fixture)).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let blob = repo_dir.join("blobs").join(format!("blob-{name}"));
        std::fs::copy(&path, &blob).unwrap();
        std::os::unix::fs::symlink(
            Path::new("../../blobs").join(format!("blob-{name}")),
            snapshot.join(&name),
        )
        .unwrap();
    }
}
