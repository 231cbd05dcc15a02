//! The Hub's HTTP protocol as `huggingface_hub` (`file_download.py`) speaks it: the
//! revision's file list from `/api/models/{repo}/revision/{rev}`, each file's metadata from
//! a `HEAD` of `/{repo}/resolve/{commit}/{file}` (relative redirects followed, an absolute
//! one taken as the download URL), then a `GET` with `Range: bytes=N-` to resume.

use std::io::Read;
use std::time::Duration;

use crate::store::error::StoreError;

/// Why one request failed.
#[derive(Debug)]
pub(crate) enum HubError {
    /// 401/403.
    Denied(u16),
    /// 404: the repo, revision or file.
    NotFound(String),
    /// A connection error, a timeout or a 5xx: worth retrying.
    Transient(String),
    /// An answer that breaks the protocol.
    Protocol(String),
}

impl HubError {
    pub(crate) fn into_store_error(self, repo: &str, revision: &str, file: &str) -> StoreError {
        match self {
            HubError::Denied(status) => StoreError::AccessDenied {
                repo: repo.to_owned(),
                status,
            },
            HubError::NotFound(what) => StoreError::NotFound {
                repo: repo.to_owned(),
                revision: revision.to_owned(),
                what,
            },
            HubError::Transient(reason) | HubError::Protocol(reason) => StoreError::FetchFailed {
                repo: repo.to_owned(),
                file: file.to_owned(),
                reason,
            },
        }
    }
}

/// A token for the Hub: sent only to the endpoint, never printed.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn new(text: &str) -> Option<Token> {
        let text = text.trim();
        (!text.is_empty()).then(|| Token(text.to_owned()))
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// One file of a revision, as the Hub describes it.
#[derive(Clone, Debug)]
pub(crate) struct RemoteFile {
    pub name: String,
    /// The blob's name in the cache: the sha256 for LFS files, the git blob id otherwise.
    pub etag: String,
    pub size: u64,
    /// Where the bytes are (an LFS file's redirect target).
    pub url: String,
    /// An LFS file: `etag` is the sha256 of its bytes.
    pub lfs: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct HubClient {
    endpoint: String,
    token: Option<Token>,
    agent: ureq::Agent,
}

fn classify(error: ureq::Error, what: &str) -> HubError {
    match error {
        ureq::Error::Status(status @ (401 | 403), _) => HubError::Denied(status),
        ureq::Error::Status(404, response) => {
            let code = response.header("X-Error-Code").unwrap_or("not found");
            HubError::NotFound(format!("{what}: {code}"))
        }
        ureq::Error::Status(status, _) if status >= 500 || status == 429 => {
            HubError::Transient(format!("{what}: HTTP {status}"))
        }
        ureq::Error::Status(status, _) => HubError::Protocol(format!("{what}: HTTP {status}")),
        ureq::Error::Transport(transport) => HubError::Transient(format!("{what}: {transport}")),
    }
}

/// An ETag without quotes or the weak prefix; it becomes a file name, so only plain
/// characters are accepted.
fn clean_etag(raw: &str) -> Option<String> {
    let etag = raw.trim().trim_start_matches("W/").trim_matches('"');
    (!etag.is_empty()
        && etag.len() <= 128
        && etag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then(|| etag.to_owned())
}

impl HubClient {
    pub fn new(endpoint: &str, token: Option<Token>) -> HubClient {
        let agent = ureq::AgentBuilder::new()
            .redirects(0)
            .timeout_connect(Duration::from_secs(10))
            // A stalled transfer is cut and resumed rather than waited on forever.
            .timeout_read(Duration::from_secs(30))
            .try_proxy_from_env(true)
            .build();
        HubClient {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            token,
            agent,
        }
    }

    fn request(&self, method: &str, url: &str) -> ureq::Request {
        let request = self
            .agent
            .request(method, url)
            .set("Accept-Encoding", "identity")
            .set(
                "User-Agent",
                concat!("gpu-agent/", env!("CARGO_PKG_VERSION")),
            );
        match &self.token {
            Some(Token(token)) if url.starts_with(&self.endpoint) => {
                request.set("Authorization", &format!("Bearer {token}"))
            }
            _ => request,
        }
    }

    /// The commit `revision` resolves to and the files it holds.
    pub fn revision(&self, repo: &str, revision: &str) -> Result<(String, Vec<String>), HubError> {
        let url = format!("{}/api/models/{repo}/revision/{revision}", self.endpoint);
        let response = self
            .request("GET", &url)
            .call()
            .map_err(|e| classify(e, "the revision"))?;
        let info: serde_json::Value = response
            .into_json()
            .map_err(|e| HubError::Transient(format!("the revision's answer: {e}")))?;
        let commit = info["sha"]
            .as_str()
            .filter(|sha| crate::store::layout::is_commit_hash(sha))
            .ok_or_else(|| HubError::Protocol("the revision's answer has no commit sha".into()))?;
        let files = info["siblings"]
            .as_array()
            .map(|siblings| {
                siblings
                    .iter()
                    .filter_map(|s| s["rfilename"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        Ok((commit.to_owned(), files))
    }

    /// A file's metadata, from a HEAD of its resolve URL at `commit`.
    pub fn file(&self, repo: &str, commit: &str, name: &str) -> Result<RemoteFile, HubError> {
        let mut url = format!("{}/{repo}/resolve/{commit}/{name}", self.endpoint);
        for _ in 0..5 {
            let response = self
                .request("HEAD", &url)
                .call()
                .map_err(|e| classify(e, name))?;
            let location = response.header("Location").map(str::to_owned);
            if (300..400).contains(&response.status()) {
                let Some(location) = location else {
                    return Err(HubError::Protocol(format!(
                        "{name}: a redirect without Location"
                    )));
                };
                // A relative redirect (a renamed repo) is followed for metadata; an absolute
                // one is where the bytes are.
                if location.starts_with('/') {
                    url = format!("{}{location}", self.endpoint);
                    continue;
                }
                return self.described(name, &response, location);
            }
            return self.described(name, &response, url);
        }
        Err(HubError::Protocol(format!("{name}: too many redirects")))
    }

    fn described(
        &self,
        name: &str,
        response: &ureq::Response,
        url: String,
    ) -> Result<RemoteFile, HubError> {
        let linked = response.header("X-Linked-Etag");
        let etag = linked
            .or_else(|| response.header("ETag"))
            .and_then(clean_etag)
            .ok_or_else(|| HubError::Protocol(format!("{name}: no usable ETag")))?;
        let size = response
            .header("X-Linked-Size")
            .or_else(|| response.header("Content-Length"))
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| HubError::Protocol(format!("{name}: no size")))?;
        Ok(RemoteFile {
            name: name.to_owned(),
            lfs: linked.is_some(),
            etag,
            size,
            url,
        })
    }

    /// The bytes of `file` from `start` on. The answer's start is checked: a server that
    /// ignores the Range answers 200 from zero, which the caller must know.
    pub(crate) fn open_from(
        &self,
        file: &RemoteFile,
        start: u64,
    ) -> Result<(u64, Box<dyn Read + Send + Sync>), HubError> {
        let mut request = self.request("GET", &file.url);
        if start > 0 {
            request = request.set("Range", &format!("bytes={start}-"));
        }
        let response = request.call().map_err(|e| classify(e, &file.name))?;
        let served_from = match response.status() {
            206 => response
                .header("Content-Range")
                .and_then(|r| r.strip_prefix("bytes "))
                .and_then(|r| r.split('-').next())
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| {
                    HubError::Protocol(format!("{}: a 206 without Content-Range", file.name))
                })?,
            200 => 0,
            status => {
                return Err(HubError::Protocol(format!(
                    "{}: unexpected HTTP {status}",
                    file.name
                )))
            }
        };
        Ok((served_from, response.into_reader()))
    }
}
