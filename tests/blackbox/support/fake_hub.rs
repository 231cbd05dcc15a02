//! A stand-in Hugging Face Hub on loopback that serves the fixture checkpoints with the
//! Hub's protocol, as `huggingface_hub`'s `file_download.py` and hf-hub's `api/sync.rs`
//! read it:
//! - `HEAD|GET /{repo}/resolve/{rev}/{file}`: a small file is answered directly with `ETag`
//!   and `X-Repo-Commit`; an LFS file (`*.safetensors`) is a 302 to `/lfs/{sha256}` with
//!   `X-Linked-Etag` (the sha256, quoted), `X-Linked-Size` and `X-Repo-Commit`;
//! - `GET /lfs/{sha256}`: the blob;
//! - `Range: bytes=a-[b]` is honoured on every answer (206 with `Content-Range`; hf-hub
//!   reads the size from `Content-Range` of a `bytes=0-0` request);
//! - `GET /api/models/{repo}/revision/{rev}`: `{id, sha, siblings: [{rfilename}]}`;
//! - an unknown repo is 404 with `X-Error-Code: RepoNotFound`.
//!
//! Faults can be injected while it runs (dropped connections, 5xx, 401, a slow trickle,
//! corrupted bytes), and every request is logged so tests can assert Range starts and how
//! many times a blob was transferred.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::fixtures;

/// One file of a served repo.
#[derive(Clone)]
struct HubFile {
    bytes: Arc<Vec<u8>>,
    sha256: String,
    lfs: bool,
}

#[derive(Clone)]
struct HubRepo {
    commit: String,
    files: BTreeMap<String, HubFile>,
}

/// What the hub does wrong, changeable while it runs.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Blob transfers cut after this many body bytes, for the next `drop_times` transfers.
    pub drop_after: Option<u64>,
    pub drop_times: u32,
    /// The next this-many requests are answered 503.
    pub server_errors: u32,
    /// Every request is answered 401 (a gated repo without a token).
    pub unauthorized: bool,
    /// Blob bytes are sent in chunks of this size with this pause between them.
    pub trickle: Option<(usize, Duration)>,
    /// Blob bytes are sent with one byte flipped (the sha256 no longer matches).
    pub corrupt: bool,
}

/// One request the hub answered.
#[derive(Clone, Debug)]
pub struct Logged {
    pub method: String,
    pub path: String,
    /// The start of the `Range` header, when there was one.
    pub range_start: Option<u64>,
    /// Body bytes written before the answer ended (or the connection was cut).
    pub body_bytes: u64,
    pub authorization: Option<String>,
}

#[derive(Default)]
struct Shared {
    repos: BTreeMap<String, HubRepo>,
    /// sha256 → file, for `/lfs/`.
    blobs: BTreeMap<String, HubFile>,
    faults: Faults,
    log: Vec<Logged>,
}

pub struct FakeHub {
    pub url: String,
    shared: Arc<Mutex<Shared>>,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

impl FakeHub {
    pub fn start() -> FakeHub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake hub");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let shared = Arc::new(Mutex::new(Shared::default()));
        let serving = Arc::clone(&shared);
        let base = url.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = Arc::clone(&serving);
                let base = base.clone();
                std::thread::spawn(move || serve_connection(stream, &shared, &base));
            }
        });
        FakeHub { url, shared }
    }

    /// Serves `tests/fixtures/<fixture>` as repo `repo` (revision `main`).
    pub fn with_repo(self, repo: &str, fixture: &str) -> FakeHub {
        let mut files = BTreeMap::new();
        for entry in std::fs::read_dir(fixtures().join(fixture)).expect("fixture dir") {
            let path = entry.expect("entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            // The reference logits are the suite's, not the checkpoint's.
            if name.starts_with("reference_") {
                continue;
            }
            let bytes = std::fs::read(&path).expect("fixture file");
            let sha256 = hex(&Sha256::digest(&bytes));
            let lfs = name.ends_with(".safetensors");
            files.insert(
                name,
                HubFile {
                    bytes: Arc::new(bytes),
                    sha256,
                    lfs,
                },
            );
        }
        let commit = hex(&Sha256::digest(repo.as_bytes()))[..40].to_owned();
        let mut shared = lock(&self.shared);
        for file in files.values().filter(|f| f.lfs) {
            shared.blobs.insert(file.sha256.clone(), file.clone());
        }
        shared
            .repos
            .insert(repo.to_owned(), HubRepo { commit, files });
        drop(shared);
        self
    }

    /// The environment an agent needs to fetch from this hub.
    pub fn env(&self) -> [(&str, &str); 1] {
        [("HF_ENDPOINT", self.url.as_str())]
    }

    pub fn set_faults(&self, faults: Faults) {
        lock(&self.shared).faults = faults;
    }

    pub fn log(&self) -> Vec<Logged> {
        lock(&self.shared).log.clone()
    }

    /// The commit `repo`'s `main` resolves to.
    pub fn commit(&self, repo: &str) -> String {
        lock(&self.shared).repos[repo].commit.clone()
    }

    /// The sha256 of `repo`'s `file`.
    pub fn sha256(&self, repo: &str, file: &str) -> String {
        lock(&self.shared).repos[repo].files[file].sha256.clone()
    }

    pub fn size(&self, repo: &str, file: &str) -> u64 {
        lock(&self.shared).repos[repo].files[file].bytes.len() as u64
    }

    /// The GETs of `repo`'s `file`'s blob that carried body bytes.
    pub fn blob_gets(&self, repo: &str, file: &str) -> Vec<Logged> {
        let path = format!("/lfs/{}", self.sha256(repo, file));
        self.log()
            .into_iter()
            .filter(|l| l.method == "GET" && l.path == path && l.body_bytes > 0)
            .collect()
    }

    /// Body bytes of `repo`'s `file`'s blob sent in all.
    pub fn blob_bytes_sent(&self, repo: &str, file: &str) -> u64 {
        self.blob_gets(repo, file)
            .iter()
            .map(|l| l.body_bytes)
            .sum()
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct Request {
    method: String,
    path: String,
    range: Option<(u64, Option<u64>)>,
    authorization: Option<String>,
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut range = None;
    let mut authorization = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "range" => {
                let spec = value.strip_prefix("bytes=")?;
                let (start, end) = spec.split_once('-')?;
                range = Some((start.parse().ok()?, end.parse().ok()));
            }
            "authorization" => authorization = Some(value.to_owned()),
            _ => {}
        }
    }
    Some(Request {
        method,
        path,
        range,
        authorization,
    })
}

fn serve_connection(stream: TcpStream, shared: &Arc<Mutex<Shared>>, base: &str) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut stream = stream;
    while let Some(request) = read_request(&mut reader) {
        let mut logged = Logged {
            method: request.method.clone(),
            path: request.path.clone(),
            range_start: request.range.map(|(start, _)| start),
            body_bytes: 0,
            authorization: request.authorization.clone(),
        };
        let keep_going = answer(&mut stream, shared, base, &request, &mut logged);
        lock(shared).log.push(logged);
        if !keep_going {
            return;
        }
    }
}

/// A head of an answer; `headers` excludes Content-Length.
fn write_head(
    stream: &mut TcpStream,
    status: &str,
    headers: &[(&str, String)],
    length: u64,
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {length}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())
}

fn simple(stream: &mut TcpStream, status: &str, extra: &[(&str, String)], body: &str) -> bool {
    let mut headers = vec![("Content-Type", "application/json".to_owned())];
    headers.extend(extra.iter().cloned());
    write_head(stream, status, &headers, body.len() as u64).is_ok()
        && stream.write_all(body.as_bytes()).is_ok()
}

/// Answers one request; false when the connection must close.
fn answer(
    stream: &mut TcpStream,
    shared: &Arc<Mutex<Shared>>,
    base: &str,
    request: &Request,
    logged: &mut Logged,
) -> bool {
    let head_only = request.method == "HEAD";
    let path = request.path.split('?').next().unwrap_or_default();
    let is_blob_transfer = !head_only
        && path.starts_with("/lfs/")
        && !matches!(request.range, Some((start, Some(end))) if end <= start);
    let (faults, cut) = {
        let mut guard = lock(shared);
        let faults = guard.faults.clone();
        if guard.faults.server_errors > 0 {
            guard.faults.server_errors -= 1;
        }
        // A cut applies to real transfers, not to hf-hub's one-byte size probes.
        let cut = match faults.drop_after {
            Some(after) if is_blob_transfer && faults.drop_times > 0 => {
                guard.faults.drop_times -= 1;
                Some(after)
            }
            _ => None,
        };
        (faults, cut)
    };
    if faults.unauthorized {
        return simple(
            stream,
            "401 Unauthorized",
            &[("X-Error-Code", "GatedRepo".to_owned())],
            r#"{"error":"Access to this model is restricted. You must have access to it and be authenticated."}"#,
        );
    }
    if faults.server_errors > 0 {
        return simple(
            stream,
            "503 Service Unavailable",
            &[],
            r#"{"error":"unavailable"}"#,
        );
    }
    if let Some(sha) = path.strip_prefix("/lfs/") {
        let file = lock(shared).blobs.get(sha).cloned();
        return match file {
            Some(file) => send_blob(stream, &file, request, head_only, &faults, cut, logged),
            None => not_found(stream, "EntryNotFound"),
        };
    }
    if let Some(rest) = path.strip_prefix("/api/models/") {
        let Some((repo, rev)) = rest.split_once("/revision/") else {
            return not_found(stream, "RepoNotFound");
        };
        let Some(found) = lock(shared).repos.get(repo).cloned() else {
            return not_found(stream, "RepoNotFound");
        };
        if rev != "main" && rev != found.commit {
            return not_found(stream, "RevisionNotFound");
        }
        let siblings: Vec<_> = found
            .files
            .keys()
            .map(|name| serde_json::json!({"rfilename": name}))
            .collect();
        let body =
            serde_json::json!({"id": repo, "sha": found.commit, "siblings": siblings}).to_string();
        return simple(stream, "200 OK", &[], &body);
    }
    let Some((repo, rest)) = path.trim_start_matches('/').split_once("/resolve/") else {
        return not_found(stream, "RepoNotFound");
    };
    let Some((rev, name)) = rest.split_once('/') else {
        return not_found(stream, "EntryNotFound");
    };
    let Some(found) = lock(shared).repos.get(repo).cloned() else {
        return not_found(stream, "RepoNotFound");
    };
    if rev != "main" && rev != found.commit {
        return not_found(stream, "RevisionNotFound");
    }
    let Some(file) = found.files.get(name) else {
        return simple(
            stream,
            "404 Not Found",
            &[
                ("X-Error-Code", "EntryNotFound".to_owned()),
                ("X-Repo-Commit", found.commit.clone()),
            ],
            r#"{"error":"Entry not found"}"#,
        );
    };
    let commit = ("X-Repo-Commit", found.commit.clone());
    if file.lfs {
        let headers = [
            commit,
            ("Location", format!("{base}/lfs/{}", file.sha256)),
            ("X-Linked-Etag", format!("\"{}\"", file.sha256)),
            ("X-Linked-Size", file.bytes.len().to_string()),
            ("ETag", format!("\"{}\"", file.sha256)),
        ];
        return write_head(stream, "302 Found", &headers, 0).is_ok();
    }
    send_small(stream, file, &found.commit, request, head_only, logged)
}

fn not_found(stream: &mut TcpStream, code: &str) -> bool {
    simple(
        stream,
        "404 Not Found",
        &[("X-Error-Code", code.to_owned())],
        r#"{"error":"Repository Not Found"}"#,
    )
}

/// The byte range a request asks of `len` bytes, as (start, end inclusive).
fn range_of(request: &Request, len: u64) -> Option<(u64, u64)> {
    let (start, end) = request.range?;
    let end = end
        .unwrap_or(len.saturating_sub(1))
        .min(len.saturating_sub(1));
    Some((start, end))
}

/// The part of a `len`-byte file a request gets: status, first and last byte, and the
/// `Content-Range` header when ranged. `None`: the range starts past the end (416).
type Part = (&'static str, u64, u64, Vec<(&'static str, String)>);

fn part_of(request: &Request, len: u64) -> Option<Part> {
    match range_of(request, len) {
        Some((start, _)) if start >= len => None,
        Some((start, end)) => Some((
            "206 Partial Content",
            start,
            end,
            vec![("Content-Range", format!("bytes {start}-{end}/{len}"))],
        )),
        None => Some(("200 OK", 0, len.saturating_sub(1), vec![])),
    }
}

/// The answer to a range that starts past the end of a `len`-byte file.
fn send_unsatisfiable(stream: &mut TcpStream, len: u64) -> bool {
    let headers = [("Content-Range", format!("bytes */{len}"))];
    write_head(stream, "416 Range Not Satisfiable", &headers, 0).is_ok()
}

fn send_small(
    stream: &mut TcpStream,
    file: &HubFile,
    commit: &str,
    request: &Request,
    head_only: bool,
    logged: &mut Logged,
) -> bool {
    let len = file.bytes.len() as u64;
    // Small files' ETags are git blob ids on the real Hub; any stable opaque id will do.
    let etag = ("ETag", format!("\"{}\"", &file.sha256[..40]));
    let commit = ("X-Repo-Commit", commit.to_owned());
    let Some((status, start, end, mut headers)) = part_of(request, len) else {
        return send_unsatisfiable(stream, len);
    };
    headers.push(etag);
    headers.push(commit);
    let body = &file.bytes[start as usize..=end as usize];
    if write_head(stream, status, &headers, body.len() as u64).is_err() {
        return false;
    }
    if head_only {
        return true;
    }
    logged.body_bytes = body.len() as u64;
    stream.write_all(body).is_ok()
}

fn send_blob(
    stream: &mut TcpStream,
    file: &HubFile,
    request: &Request,
    head_only: bool,
    faults: &Faults,
    cut: Option<u64>,
    logged: &mut Logged,
) -> bool {
    let len = file.bytes.len() as u64;
    let Some((status, start, end, mut headers)) = part_of(request, len) else {
        return send_unsatisfiable(stream, len);
    };
    headers.push(("ETag", format!("\"{}\"", file.sha256)));
    headers.push(("Accept-Ranges", "bytes".to_owned()));
    let mut body = file.bytes[start as usize..=end as usize].to_vec();
    if write_head(stream, status, &headers, body.len() as u64).is_err() {
        return false;
    }
    if head_only || body.is_empty() {
        return true;
    }
    if faults.corrupt {
        let middle = body.len() / 2;
        body[middle] ^= 0xff;
    }
    let chunk = faults.trickle.map(|(size, _)| size).unwrap_or(64 * 1024);
    let pause = faults.trickle.map(|(_, pause)| pause);
    let mut sent = 0u64;
    for piece in body.chunks(chunk.max(1)) {
        let piece = match cut {
            Some(after) if sent + piece.len() as u64 >= after => {
                let keep = (after - sent) as usize;
                let _ = stream.write_all(&piece[..keep]);
                logged.body_bytes = sent + keep as u64;
                let _ = stream.flush();
                let _ = stream.shutdown(std::net::Shutdown::Both);
                return false;
            }
            _ => piece,
        };
        if stream.write_all(piece).is_err() {
            logged.body_bytes = sent;
            return false;
        }
        sent += piece.len() as u64;
        logged.body_bytes = sent;
        if let Some(pause) = pause {
            std::thread::sleep(pause);
        }
    }
    true
}

/// The Python cache layout's blob for `sha256` of `repo` under `hub_cache`.
pub fn cached_blob(hub_cache: &Path, repo: &str, sha256: &str) -> std::path::PathBuf {
    hub_cache
        .join(format!("models--{}", repo.replace('/', "--")))
        .join("blobs")
        .join(sha256)
}
