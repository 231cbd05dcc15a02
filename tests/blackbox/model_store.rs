//! The model store through the binary (docs/models.md): Hub downloads from a stand-in Hub
//! on loopback (`support::fake_hub`) that resume, verify, report progress, share one
//! transfer, and fail with distinct codes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::support::fake_hub::{cached_blob, hex, FakeHub, Faults};
use crate::support::golden::{golden_cases, tokens_of};
use crate::support::kore::{kore_deploy, wait_job};
use crate::support::python::python_importing;
use crate::support::serving::{generate, metric};
use crate::support::{Agent, AgentConfig, PATIENCE};

const REPO: &str = "blackbox/gpt2-tiny";
const REPO_PATH: &str = "blackbox%2Fgpt2-tiny";
const WEIGHTS: &str = "model.safetensors";

/// An agent fetching from `hub` into a fresh `HF_HOME`, with no free-space floor (the
/// test disk's free space is not the test's business; the budget tests set their own).
struct StoreAgent {
    agent: Agent,
    hf_home: tempfile::TempDir,
}

impl StoreAgent {
    /// `store` is more of `[store]`.
    fn start(hub: &FakeHub, store: &str) -> StoreAgent {
        Self::start_with(hub, store, AgentConfig::default())
    }

    fn start_with(hub: &FakeHub, store: &str, config: AgentConfig) -> StoreAgent {
        let hf_home = tempfile::tempdir().unwrap();
        let home = hf_home.path().display().to_string();
        let floor = if store.contains("min_free_bytes") {
            ""
        } else {
            "min_free_bytes = 0\n"
        };
        let config = AgentConfig {
            extra: format!("{}[store]\n{floor}{store}\n", config.extra),
            ..config
        };
        let agent = Agent::start_with_env(
            config,
            &[
                ("HF_HOME", home.as_str()),
                ("HF_ENDPOINT", hub.url.as_str()),
            ],
        );
        StoreAgent { agent, hf_home }
    }

    fn hub_cache(&self) -> PathBuf {
        self.hf_home.path().join("hub")
    }
}

impl std::ops::Deref for StoreAgent {
    type Target = Agent;
    fn deref(&self) -> &Agent {
        &self.agent
    }
}

impl std::ops::DerefMut for StoreAgent {
    fn deref_mut(&mut self) -> &mut Agent {
        &mut self.agent
    }
}

fn gpt2_hub() -> FakeHub {
    FakeHub::start().with_repo(REPO, "gpt2-tiny")
}

/// Deploys `model` (a path segment) through Kore; returns (job id, deployment id).
fn deploy(agent: &Agent, model: &str) -> (String, String) {
    let reply = kore_deploy(agent, model, "cpu");
    assert_eq!(reply.status, 202, "{}", reply.text);
    (
        reply.json["dockStatusId"].as_str().unwrap().to_owned(),
        reply.json["deploymentId"].as_str().unwrap().to_owned(),
    )
}

fn deploy_and_wait(agent: &Agent, model: &str) -> (Value, String) {
    let (job, id) = deploy(agent, model);
    (wait_job(agent, &job).json, id)
}

fn assert_golden(agent: &Agent, id: &str) {
    let case = &golden_cases("gpt2-tiny")[0];
    let answer = generate(
        agent,
        id,
        json!({"prompt": case.prompt, "parameters": {"temperature": 0, "maxTokens": 24}}),
    );
    assert_eq!(answer.status, 200, "{}", answer.text);
    case.assert_matches(&tokens_of(&answer.json), "fetched from the Hub");
}

/// The Python layout: `refs/main` → commit, each snapshot file a relative link into
/// `blobs/`, the weights' blob named by its sha256, and no partial left.
fn assert_python_layout(hub_cache: &Path, hub: &FakeHub) {
    let repo_dir = hub_cache.join("models--blackbox--gpt2-tiny");
    let commit = hub.commit(REPO);
    assert_eq!(
        std::fs::read_to_string(repo_dir.join("refs/main")).unwrap(),
        commit
    );
    let snapshot = repo_dir.join("snapshots").join(&commit);
    for file in ["config.json", WEIGHTS, "vocab.json", "merges.txt"] {
        let link = std::fs::read_link(snapshot.join(file)).unwrap();
        assert!(
            link.starts_with("../../blobs"),
            "{file}: {}",
            link.display()
        );
        assert!(snapshot.join(file).is_file(), "{file}");
    }
    let weights = cached_blob(hub_cache, REPO, &hub.sha256(REPO, WEIGHTS));
    assert_eq!(
        std::fs::metadata(&weights).unwrap().len(),
        hub.size(REPO, WEIGHTS)
    );
    let partials: Vec<_> = std::fs::read_dir(repo_dir.join("blobs"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".incomplete"))
        .collect();
    assert!(partials.is_empty(), "{partials:?}");
}

#[test]
fn a_hub_repo_id_deploys_to_ready_with_golden_tokens_into_the_python_cache_layout() {
    let hub = gpt2_hub();
    let agent = StoreAgent::start(&hub, "");
    let (job, id) = deploy_and_wait(&agent, REPO_PATH);
    assert_eq!(job["status"], "SUCCESS", "{job}\n{}", agent.log());
    assert_golden(&agent, &id);
    assert_python_layout(&agent.hub_cache(), &hub);
    // Every file once, the weights through the LFS redirect.
    assert_eq!(hub.blob_gets(REPO, WEIGHTS).len(), 1);
    let metrics = agent.get_with_key("/metrics").text;
    let fetched = metric(
        &metrics,
        &format!("gpu_agent_model_download_bytes_total{{model=\"{REPO}\"}}"),
    );
    let total: u64 = [
        "config.json",
        "generation_config.json",
        "merges.txt",
        WEIGHTS,
    ]
    .iter()
    .chain(&[
        "special_tokens_map.json",
        "tokenizer_config.json",
        "vocab.json",
    ])
    .map(|file| hub.size(REPO, file))
    .sum();
    assert_eq!(fetched, Some(total as f64), "{metrics}");
    assert_eq!(
        metric(&metrics, "gpu_agent_model_downloads{state=\"completed\"}"),
        Some(1.0),
        "{metrics}"
    );
}

#[test]
fn the_status_callback_hears_download_progress_at_most_once_a_second() {
    let hub = gpt2_hub();
    hub.set_faults(Faults {
        trickle: Some((64 * 1024, Duration::from_millis(40))),
        ..Faults::default()
    });
    let (url, events) = crate::status_callback::callback_server();
    let config = AgentConfig {
        extra: format!("status_callback_url = \"{url}\"\n"),
        ..AgentConfig::default()
    };
    let agent = StoreAgent::start_with(&hub, "", config);
    let (job, _) = deploy(&agent, REPO_PATH);
    assert_eq!(wait_job(&agent, &job).json["status"], "SUCCESS");
    let mut progress = Vec::new();
    while let Ok(event) = events.recv_timeout(Duration::from_secs(2)) {
        if event["download"].is_object() {
            progress.push(event);
        }
    }
    assert!(progress.len() >= 2, "{progress:?}");
    let at = |e: &Value| chrono::DateTime::parse_from_rfc3339(e["at"].as_str().unwrap()).unwrap();
    for pair in progress.windows(2) {
        let done = |e: &Value| e["download"]["bytesDone"].as_u64().unwrap();
        assert!(done(&pair[1]) >= done(&pair[0]), "{pair:?}");
        let gap = at(&pair[1]) - at(&pair[0]);
        assert!(gap.num_milliseconds() >= 900, "{gap:?} between {pair:?}");
        assert_eq!(pair[0]["phase"], "FETCHING");
    }
}

#[test]
fn a_connection_dropped_half_way_resumes_with_a_range_past_zero() {
    let hub = gpt2_hub();
    let half = hub.size(REPO, WEIGHTS) / 2;
    hub.set_faults(Faults {
        drop_after: Some(half),
        drop_times: 1,
        ..Faults::default()
    });
    let agent = StoreAgent::start(&hub, "");
    let (job, id) = deploy_and_wait(&agent, REPO_PATH);
    assert_eq!(job["status"], "SUCCESS", "{job}\n{}", agent.log());
    assert_golden(&agent, &id);
    let gets = hub.blob_gets(REPO, WEIGHTS);
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert_eq!(gets[0].range_start, None);
    assert_eq!(gets[0].body_bytes, half);
    assert_eq!(gets[1].range_start, Some(half), "{gets:?}");
    assert_eq!(gets[1].body_bytes, hub.size(REPO, WEIGHTS) - half);
}

#[test]
fn server_errors_are_retried_with_backoff() {
    let hub = gpt2_hub();
    hub.set_faults(Faults {
        server_errors: 3,
        ..Faults::default()
    });
    let agent = StoreAgent::start(&hub, "");
    let (job, _) = deploy_and_wait(&agent, REPO_PATH);
    assert_eq!(job["status"], "SUCCESS", "{job}\n{}", agent.log());
}

/// Polls native status until FETCHING shows a download with some bytes; returns it.
fn wait_for_bytes(agent: &Agent, id: &str, past: u64) -> Value {
    agent
        .poll(&format!("/v1/deployments/{id}"), "download bytes", |r| {
            r.json["phase"] == "FETCHING"
                && r.json["download"]["bytesDone"].as_u64().unwrap_or(0) > past
        })
        .json
}

#[test]
fn status_while_fetching_shows_growing_bytes_done_against_bytes_total() {
    let hub = gpt2_hub();
    let size = hub.size(REPO, WEIGHTS);
    hub.set_faults(Faults {
        trickle: Some((64 * 1024, Duration::from_millis(40))),
        ..Faults::default()
    });
    let agent = StoreAgent::start(&hub, "");
    let (job, id) = deploy(&agent, REPO_PATH);
    let first = wait_for_bytes(&agent, &id, 0);
    let download = &first["download"];
    let total = download["bytesTotal"].as_u64().unwrap();
    assert!(total > size, "{download}");
    assert_eq!(download["filesTotal"], 7, "{download}");
    let done = download["bytesDone"].as_u64().unwrap();
    let later = wait_for_bytes(&agent, &id, done + 256 * 1024);
    assert!(
        later["download"]["bytesPerSecond"].as_u64().unwrap() > 0,
        "{later}"
    );
    // Kore's dock-status and Lucidworks show the same object.
    let dock = agent.get_with_key(&format!("/api/public/dock-status/{job}"));
    assert!(
        dock.json["download"]["bytesTotal"].as_u64() == Some(total),
        "{}",
        dock.text
    );
    let lucid = agent.lucidworks("GET", &format!("/customers/acme/ai/deployments/{id}"), None);
    assert_eq!(lucid.status, 200, "{}", lucid.text);
    assert!(
        lucid.json["download"]["bytesDone"].as_u64().is_some(),
        "{}",
        lucid.text
    );
    hub.set_faults(Faults::default());
    let ended = wait_job(&agent, &job);
    assert_eq!(ended.json["status"], "SUCCESS", "{}", ended.text);
    let ready = agent.get_with_key(&format!("/v1/deployments/{id}"));
    assert_eq!(ready.json["download"], Value::Null, "{}", ready.text);
}

#[test]
fn kill_9_during_a_slow_download_resumes_after_restart_and_downloads_nothing_twice() {
    let hub = gpt2_hub();
    let size = hub.size(REPO, WEIGHTS);
    hub.set_faults(Faults {
        trickle: Some((64 * 1024, Duration::from_millis(40))),
        ..Faults::default()
    });
    let mut agent = StoreAgent::start(&hub, "");
    let (_, id) = deploy(&agent, REPO_PATH);
    let partial = cached_blob(&agent.hub_cache(), REPO, &hub.sha256(REPO, WEIGHTS))
        .with_extension("incomplete");
    let deadline = Instant::now() + PATIENCE;
    while std::fs::metadata(&partial).map_or(0, |m| m.len()) < size / 4 {
        assert!(
            Instant::now() < deadline,
            "no partial grew\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    agent.kill9();
    let kept = std::fs::metadata(&partial).unwrap().len();
    assert!(kept > 0 && kept < size);
    // The dead agent's lock file stays behind; it must not block the next one.
    let lock = agent
        .hub_cache()
        .join(".locks/models--blackbox--gpt2-tiny")
        .join(format!("{}.lock", hub.sha256(REPO, WEIGHTS)));
    assert!(lock.is_file());
    hub.set_faults(Faults::default());
    agent.restart();
    let ready = agent.wait_phase(&id, &["READY", "FAILED"]);
    assert_eq!(
        ready.json["phase"],
        "READY",
        "{}\n{}",
        ready.text,
        agent.log()
    );
    assert_golden(&agent, &id);
    // The hub logs a request when its answer ends; the cut one may end last.
    let mut gets = hub.blob_gets(REPO, WEIGHTS);
    gets.sort_by_key(|g| g.range_start);
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert_eq!(gets[0].range_start, None, "{gets:?}");
    let resumed = &gets[1];
    assert_eq!(resumed.range_start, Some(kept), "{gets:?}");
    assert_eq!(kept + resumed.body_bytes, size);
    // The small files finished before the kill are not fetched again.
    for file in ["config.json", "vocab.json", "merges.txt"] {
        let path = format!("/{REPO}/resolve/{}/{file}", hub.commit(REPO));
        let fetched = hub
            .log()
            .iter()
            .filter(|l| l.method == "GET" && l.path == path && l.body_bytes > 0)
            .count();
        assert!(fetched <= 1, "{file} fetched {fetched} times");
    }
}

/// Deploys and returns the failure, asserting it came within `limit` and left the agent
/// healthy.
fn fails_fast(agent: &Agent, model: &str, limit: Duration) -> Value {
    let started = Instant::now();
    let (job, _) = deploy_and_wait(agent, model);
    assert!(
        started.elapsed() < limit,
        "took {:?}: {job}",
        started.elapsed()
    );
    assert_eq!(job["status"], "FAILED", "{job}");
    assert_eq!(job["error"]["phase"], "FETCHING", "{job}");
    assert_eq!(agent.get("/healthz").status, 200);
    job["error"].clone()
}

#[test]
fn a_corrupted_blob_fails_checksum_mismatch_naming_the_file_after_one_retry() {
    let hub = gpt2_hub();
    hub.set_faults(Faults {
        corrupt: true,
        ..Faults::default()
    });
    let agent = StoreAgent::start(&hub, "");
    let error = fails_fast(&agent, REPO_PATH, Duration::from_secs(20));
    assert_eq!(error["code"], "CHECKSUM_MISMATCH", "{error}");
    assert!(
        error["message"].as_str().unwrap().contains(WEIGHTS),
        "{error}"
    );
    // Fetched from zero twice (the retry), then given up; no partial is left.
    let gets = hub.blob_gets(REPO, WEIGHTS);
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert!(gets.iter().all(|g| g.range_start.is_none()), "{gets:?}");
    let partial = cached_blob(&agent.hub_cache(), REPO, &hub.sha256(REPO, WEIGHTS))
        .with_extension("incomplete");
    assert!(!partial.exists());
    assert!(!cached_blob(&agent.hub_cache(), REPO, &hub.sha256(REPO, WEIGHTS)).exists());
}

#[test]
fn a_401_fails_model_access_denied_and_a_wrong_repo_model_not_found() {
    let hub = gpt2_hub();
    let agent = StoreAgent::start(&hub, "");
    let missing = fails_fast(&agent, "blackbox%2Fno-such-repo", Duration::from_secs(10));
    assert_eq!(missing["code"], "MODEL_NOT_FOUND", "{missing}");
    assert!(
        missing["message"].as_str().unwrap().contains("repo id"),
        "{missing}"
    );
    hub.set_faults(Faults {
        unauthorized: true,
        ..Faults::default()
    });
    let denied = fails_fast(&agent, REPO_PATH, Duration::from_secs(10));
    assert_eq!(denied["code"], "MODEL_ACCESS_DENIED", "{denied}");
    assert!(
        denied["message"].as_str().unwrap().contains("HF_TOKEN"),
        "{denied}"
    );
}

#[test]
fn the_token_from_hf_token_is_sent_to_the_hub_and_never_logged_or_shown() {
    let hub = gpt2_hub();
    let hf_home = tempfile::tempdir().unwrap();
    let home = hf_home.path().display().to_string();
    let token = "hf_blackboxSecretToken123";
    let agent = Agent::start_with_env(
        AgentConfig {
            extra: "[store]\nmin_free_bytes = 0\n".to_owned(),
            ..AgentConfig::default()
        },
        &[
            ("HF_HOME", home.as_str()),
            ("HF_ENDPOINT", hub.url.as_str()),
            ("HF_TOKEN", token),
            ("GPU_AGENT_LOG", "debug"),
        ],
    );
    let (job, id) = deploy_and_wait(&agent, REPO_PATH);
    assert_eq!(job["status"], "SUCCESS", "{job}");
    let bearer = format!("Bearer {token}");
    let log = hub.log();
    assert!(
        log.iter()
            .filter(|l| l.path.contains("/resolve/") || l.path.starts_with("/api/"))
            .all(|l| l.authorization.as_deref() == Some(bearer.as_str())),
        "{log:?}"
    );
    assert!(!agent.log().contains(token));
    let status = agent.get_with_key(&format!("/v1/deployments/{id}"));
    assert!(!status.text.contains(token));
}

#[test]
fn two_deploys_of_one_repo_at_once_share_one_transfer_of_each_blob() {
    let hub = gpt2_hub();
    hub.set_faults(Faults {
        trickle: Some((256 * 1024, Duration::from_millis(40))),
        ..Faults::default()
    });
    // Two modelIds, one repo: the repo id itself and a configured alias.
    let config = AgentConfig::default().model("gpt2-alias", &format!("hf:{REPO}"));
    let agent = StoreAgent::start_with(&hub, "", config);
    let (first_job, first) = deploy(&agent, REPO_PATH);
    let (second_job, second) = deploy(&agent, "gpt2-alias");
    // Both show the one download's progress.
    wait_for_bytes(&agent, &first, 0);
    wait_for_bytes(&agent, &second, 0);
    hub.set_faults(Faults::default());
    for job in [first_job, second_job] {
        let ended = wait_job(&agent, &job);
        assert_eq!(ended.json["status"], "SUCCESS", "{}", ended.text);
    }
    assert_eq!(hub.blob_gets(REPO, WEIGHTS).len(), 1);
    for file in ["config.json", "vocab.json"] {
        let path = format!("/{REPO}/resolve/{}/{file}", hub.commit(REPO));
        let gets = hub
            .log()
            .iter()
            .filter(|l| l.method == "GET" && l.path == path)
            .count();
        assert_eq!(gets, 1, "{file}");
    }
}

#[test]
fn a_snapshot_left_without_its_weights_is_not_taken_as_complete() {
    // What hf-hub left after a kill: config.json linked, the weights still a partial.
    let hub = gpt2_hub();
    let agent = StoreAgent::start(&hub, "");
    let repo_dir = agent.hub_cache().join("models--blackbox--gpt2-tiny");
    let commit = hub.commit(REPO);
    let snapshot = repo_dir.join("snapshots").join(&commit);
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::create_dir_all(repo_dir.join("refs")).unwrap();
    std::fs::write(repo_dir.join("refs/main"), &commit).unwrap();
    std::fs::copy(
        crate::support::fixtures().join("gpt2-tiny/config.json"),
        snapshot.join("config.json"),
    )
    .unwrap();
    let (job, id) = deploy_and_wait(&agent, REPO_PATH);
    assert_eq!(job["status"], "SUCCESS", "{job}\n{}", agent.log());
    assert_golden(&agent, &id);
}

const T5_REPO: &str = "blackbox/t5-tiny";
const T5_PATH: &str = "blackbox%2Ft5-tiny";

/// A request with the API key.
fn keyed(agent: &Agent, method: &str, path: &str) -> crate::support::Reply {
    agent.request(
        method,
        path,
        &[("x-api-key", crate::support::API_KEY)],
        None,
    )
}

fn store_path(model: &str) -> String {
    format!("/v1/store/models/{model}")
}

/// Pulls `model` through the route and waits for the pull to end; returns the view.
fn pull(agent: &Agent, model: &str) -> Value {
    let started = keyed(agent, "POST", &format!("{}/pull", store_path(model)));
    assert_eq!(started.status, 202, "{}", started.text);
    agent
        .poll(&store_path(model), "the pull to end", |r| {
            r.status == 200 && r.json["pull"]["state"] != "FETCHING"
        })
        .json
}

fn listed(agent: &Agent) -> Vec<String> {
    let list = agent.get_with_key("/v1/store/models");
    assert_eq!(list.status, 200, "{}", list.text);
    list.json["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["modelId"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn pull_list_pin_and_evict_with_409_while_a_deployment_uses_the_model() {
    let hub = gpt2_hub();
    let agent = StoreAgent::start(&hub, "");
    let pulled = pull(&agent, REPO_PATH);
    assert_eq!(pulled["pull"]["state"], "READY", "{pulled}");
    assert_eq!(pulled["revision"], hub.commit(REPO), "{pulled}");
    assert_eq!(pulled["complete"], true);
    assert!(pulled["sizeBytes"].as_u64().unwrap() > hub.size(REPO, WEIGHTS));
    assert_python_layout(&agent.hub_cache(), &hub);
    let list = agent.get_with_key("/v1/store/models");
    let model = &list.json["models"][0];
    assert_eq!(model["modelId"], REPO, "{}", list.text);
    assert_eq!(model["source"], format!("hf:{REPO}"));
    assert_eq!(model["pinned"], false);
    assert_eq!(model["inUse"], false);
    assert!(model["lastUsedAt"].is_string(), "{model}");

    let pinned = keyed(&agent, "PUT", &format!("{}/pin", store_path(REPO_PATH)));
    assert_eq!(pinned.status, 200, "{}", pinned.text);
    assert_eq!(pinned.json["pinned"], true);
    let unpinned = keyed(&agent, "DELETE", &format!("{}/pin", store_path(REPO_PATH)));
    assert_eq!(unpinned.json["pinned"], false, "{}", unpinned.text);

    // The deploy finds the pulled files: nothing is fetched again.
    let (job, id) = deploy_and_wait(&agent, REPO_PATH);
    assert_eq!(job["status"], "SUCCESS", "{job}");
    assert_eq!(hub.blob_gets(REPO, WEIGHTS).len(), 1);
    let in_use = keyed(&agent, "DELETE", &store_path(REPO_PATH));
    assert_eq!(in_use.status, 409, "{}", in_use.text);
    assert_eq!(in_use.error_code(), "MODEL_IN_USE");
    assert_eq!(
        agent.get_with_key("/v1/store/models").json["models"][0]["inUse"],
        true
    );

    let undeploy = keyed(&agent, "DELETE", &format!("/v1/deployments/{id}"));
    assert_eq!(undeploy.status, 202, "{}", undeploy.text);
    agent.wait_phase(&id, &["UNDEPLOYED"]);
    let evicted = keyed(&agent, "DELETE", &store_path(REPO_PATH));
    assert_eq!(evicted.status, 200, "{}", evicted.text);
    assert!(listed(&agent).is_empty());
    assert!(!agent
        .hub_cache()
        .join("models--blackbox--gpt2-tiny")
        .exists());
    assert_eq!(agent.get_with_key(&store_path(REPO_PATH)).status, 404);
    // Routes need the API key.
    assert_eq!(agent.get("/v1/store/models").status, 401);
}

#[test]
fn a_budget_that_needs_room_evicts_the_least_recently_used_unpinned_model() {
    let hub = gpt2_hub().with_repo(T5_REPO, "t5-tiny");
    let gpt2 = hub.size(REPO, WEIGHTS);
    let t5 = hub.size(T5_REPO, WEIGHTS);
    // Room for either model, not both.
    let max = t5 + gpt2 / 2 + 4_000_000;
    let agent = StoreAgent::start(&hub, &format!("max_bytes = {max}"));
    assert_eq!(pull(&agent, REPO_PATH)["pull"]["state"], "READY");
    let t5_view = pull(&agent, T5_PATH);
    assert_eq!(
        t5_view["pull"]["state"],
        "READY",
        "{t5_view}\n{}",
        agent.log()
    );
    assert_eq!(listed(&agent), [T5_REPO]);
    assert!(agent
        .log()
        .contains("evicting the least recently used model"));

    // Pinned, the other model cannot be evicted: the pull fails before a byte is fetched.
    keyed(&agent, "PUT", &format!("{}/pin", store_path(T5_PATH)));
    let refused = pull(&agent, REPO_PATH);
    assert_eq!(refused["pull"]["state"], "FAILED", "{refused}");
    assert_eq!(refused["pull"]["code"], "INSUFFICIENT_DISK", "{refused}");
    assert_eq!(
        hub.blob_gets(REPO, WEIGHTS).len(),
        1,
        "only the first pull's"
    );
    assert_eq!(listed(&agent), [T5_REPO]);
}

#[test]
fn a_budget_that_cannot_fit_fails_insufficient_disk_and_fetches_nothing() {
    let hub = gpt2_hub();
    let agent = StoreAgent::start(&hub, "max_bytes = 1000000");
    let error = fails_fast(&agent, REPO_PATH, Duration::from_secs(10));
    assert_eq!(error["code"], "INSUFFICIENT_DISK", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("max_bytes is 1000000"), "{message}");
    assert!(
        hub.log()
            .iter()
            .all(|l| l.body_bytes == 0 || l.path.starts_with("/api/")),
        "{:?}",
        hub.log()
    );

    // min_free_bytes larger than any disk's free space: the same, before a byte.
    let agent = StoreAgent::start(&hub, "min_free_bytes = 1000000000000000000");
    let error = fails_fast(&agent, REPO_PATH, Duration::from_secs(10));
    assert_eq!(error["code"], "INSUFFICIENT_DISK", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("min_free_bytes"),
        "{error}"
    );
    assert!(hub.blob_gets(REPO, WEIGHTS).is_empty());
}

#[test]
fn gpu_agent_pull_models_and_evict_drive_the_store_from_the_command_line() {
    let hub = gpt2_hub();
    let agent = StoreAgent::start(&hub, "");
    let cli = |args: &[&str]| {
        let output = std::process::Command::new(crate::support::agent_binary())
            .args(args)
            .args([
                "--url",
                &agent.url(""),
                "--api-key",
                crate::support::API_KEY,
            ])
            .output()
            .expect("run gpu-agent");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, out, err) = cli(&["pull", REPO]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("ready"), "{out}");
    let (code, out, _) = cli(&["models"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains(REPO) && out.contains(&hub.commit(REPO)),
        "{out}"
    );
    let (code, out, err) = cli(&["evict", REPO]);
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, _, err) = cli(&["pull", "blackbox/no-such-repo"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("MODEL_NOT_FOUND"), "{err}");
}

#[test]
fn a_pull_and_a_deploy_of_one_repo_share_one_transfer_and_its_progress() {
    let hub = gpt2_hub();
    hub.set_faults(Faults {
        trickle: Some((128 * 1024, Duration::from_millis(40))),
        ..Faults::default()
    });
    let agent = StoreAgent::start(&hub, "");
    let started = keyed(&agent, "POST", &format!("{}/pull", store_path(REPO_PATH)));
    assert_eq!(started.status, 202, "{}", started.text);
    let (job, id) = deploy(&agent, REPO_PATH);
    let deploying = wait_for_bytes(&agent, &id, 0);
    let pulling = agent.get_with_key(&store_path(REPO_PATH));
    assert_eq!(
        pulling.json["pull"]["state"], "FETCHING",
        "{}",
        pulling.text
    );
    assert_eq!(
        pulling.json["download"]["bytesTotal"], deploying["download"]["bytesTotal"],
        "{}",
        pulling.text
    );
    hub.set_faults(Faults::default());
    assert_eq!(wait_job(&agent, &job).json["status"], "SUCCESS");
    assert_eq!(hub.blob_gets(REPO, WEIGHTS).len(), 1);
    let pulled = agent.poll(&store_path(REPO_PATH), "the pull to end", |r| {
        r.json["pull"]["state"] == "READY"
    });
    assert_eq!(pulled.json["inUse"], true, "{}", pulled.text);
}

#[test]
fn offline_a_pull_of_an_uncached_model_is_refused_and_nothing_is_fetched() {
    let hub = gpt2_hub();
    let hf_home = tempfile::tempdir().unwrap();
    let home = hf_home.path().display().to_string();
    let agent = Agent::start_with_env(
        AgentConfig::default(),
        &[
            ("HF_HOME", home.as_str()),
            ("HF_ENDPOINT", hub.url.as_str()),
            ("HF_HUB_OFFLINE", "1"),
        ],
    );
    let refused = keyed(&agent, "POST", &format!("{}/pull", store_path(REPO_PATH)));
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert_eq!(refused.error_code(), "MODEL_NOT_CACHED");
    let failed = fails_fast(&agent, REPO_PATH, Duration::from_secs(10));
    assert_eq!(failed["code"], "MODEL_NOT_CACHED", "{failed}");
    assert!(hub.log().is_empty(), "{:?}", hub.log());
}

/// Runs Python `huggingface_hub.snapshot_download(REPO)` into `hub_cache` against `hub`
/// (offline: from the cache only) and returns the snapshot directory it names.
fn python_snapshot_download(
    python: &Path,
    hub: &FakeHub,
    hub_cache: &Path,
    offline: bool,
) -> PathBuf {
    let script = "import sys\n\
                  from huggingface_hub import snapshot_download\n\
                  print(snapshot_download(repo_id=sys.argv[1], cache_dir=sys.argv[2]))";
    let output = std::process::Command::new(python)
        .args(["-c", script, REPO])
        .arg(hub_cache)
        .env("HF_ENDPOINT", &hub.url)
        .env("HF_HUB_OFFLINE", if offline { "1" } else { "0" })
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env_remove("HF_TOKEN")
        .env_remove("HF_HOME")
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "snapshot_download failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

const PYTHON_HUB_TEST: &str =
    "model_store::a_cache_filled_by_python_huggingface_hub_is_reused_and_the_reverse";

/// The layout is the one Python's `huggingface_hub` writes and reads (docs/models.md): a
/// cache it filled deploys without a byte fetched, and it reads the agent's cache offline.
#[test]
fn a_cache_filled_by_python_huggingface_hub_is_reused_and_the_reverse() {
    let Some(python) = python_importing("huggingface_hub", "HF_CLIENT", PYTHON_HUB_TEST) else {
        return;
    };
    // Python fills the cache; the agent deploys from it, fetching nothing.
    let hub = gpt2_hub();
    let agent = StoreAgent::start(&hub, "");
    python_snapshot_download(&python, &hub, &agent.hub_cache(), false);
    assert_eq!(
        hub.blob_gets(REPO, WEIGHTS).len(),
        1,
        "Python fetched the weights"
    );
    let fetched_by_python = hub.log().len();
    let (job, id) = deploy_and_wait(&agent, REPO_PATH);
    assert_eq!(job["status"], "SUCCESS", "{job}\n{}", agent.log());
    assert_golden(&agent, &id);
    let after: Vec<_> = hub.log().into_iter().skip(fetched_by_python).collect();
    assert!(
        after.iter().all(|request| request.body_bytes == 0),
        "the agent downloaded again: {after:?}"
    );
    assert_eq!(hub.blob_gets(REPO, WEIGHTS).len(), 1);

    // The agent fills the cache; Python reads it offline.
    let hub = gpt2_hub();
    let agent = StoreAgent::start(&hub, "");
    let (job, _) = deploy_and_wait(&agent, REPO_PATH);
    assert_eq!(job["status"], "SUCCESS", "{job}\n{}", agent.log());
    let snapshot = python_snapshot_download(&python, &hub, &agent.hub_cache(), true);
    assert_eq!(
        snapshot,
        agent
            .hub_cache()
            .join("models--blackbox--gpt2-tiny/snapshots")
            .join(hub.commit(REPO))
    );
    let weights = std::fs::read(snapshot.join(WEIGHTS)).unwrap();
    assert_eq!(hex(&Sha256::digest(&weights)), hub.sha256(REPO, WEIGHTS));
}
