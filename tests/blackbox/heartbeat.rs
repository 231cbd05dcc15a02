//! The node heartbeat (`[control_plane]`) and the instance-type check, against a heartbeat
//! receiver and an IMDSv2 stand-in that are real HTTP servers on loopback.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fake_nvml::FakeHardware;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::support::kore::{deploy_and_wait_for_success, kore_body, kore_deploy, wait_job};
use crate::support::serving::{deploy_ready, generate};
use crate::support::{free_port, Agent, AgentConfig, PATIENCE};

/// One HTTP request as a loopback server read it.
struct Request {
    method: String,
    path: String,
    /// Lower-case names.
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// Reads one request from `stream`; `None` when the peer closed first.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut start = String::new();
    if reader.read_line(&mut start).ok()? == 0 {
        return None;
    }
    let mut parts = start.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let length = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

fn respond(stream: &mut TcpStream, status: &str, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// A heartbeat receiver that answers 204 and hands each request to the test.
fn heartbeat_receiver(listener: TcpListener) -> mpsc::Receiver<Request> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            if let Some(request) = read_request(&mut reader) {
                respond(reader.get_mut(), "204 No Content", "");
                let _ = sender.send(request);
            }
        }
    });
    receiver
}

/// What a receiver that never answers saw, per connection (numbered from 0).
enum Hanging {
    /// A heartbeat arrived; the receiver holds the connection without answering.
    Received(usize),
    /// The agent gave up and closed the connection.
    Closed(usize),
}

/// Accepts heartbeats and never answers them.
fn hanging_receiver() -> (String, mpsc::Receiver<Hanging>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/nodes", listener.local_addr().unwrap());
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for (id, stream) in listener.incoming().flatten().enumerate() {
            let sender = sender.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                if read_request(&mut reader).is_some() {
                    let _ = sender.send(Hanging::Received(id));
                    // Holds the connection until the agent closes it.
                    let mut rest = Vec::new();
                    let _ = reader.read_to_end(&mut rest);
                    let _ = sender.send(Hanging::Closed(id));
                }
            });
        }
    });
    (url, receiver)
}

/// A heartbeat connection the receiver holds open right now.
fn open_heartbeat(events: &mpsc::Receiver<Hanging>) -> usize {
    let mut open = std::collections::BTreeSet::new();
    let deadline = Instant::now() + PATIENCE;
    loop {
        for event in events.try_iter() {
            match event {
                Hanging::Received(id) => open.insert(id),
                Hanging::Closed(id) => open.remove(&id),
            };
        }
        if let Some(id) = open.last() {
            return *id;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match events
            .recv_timeout(left)
            .expect("a heartbeat reaches the receiver")
        {
            Hanging::Received(id) => open.insert(id),
            Hanging::Closed(id) => open.remove(&id),
        };
    }
}

const IMDS_TOKEN: &str = "imds-session-token";

/// An IMDSv2 stand-in: a token for a PUT with a TTL header, the instance type for a GET
/// that carries the token, 401 otherwise. Sends each request's "METHOD PATH" to the test.
fn imds_stand_in(instance_type: &'static str) -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let Some(request) = read_request(&mut reader) else {
                continue;
            };
            let _ = sender.send(format!("{} {}", request.method, request.path));
            let stream = reader.get_mut();
            match (request.method.as_str(), request.path.as_str()) {
                ("PUT", "/latest/api/token")
                    if request
                        .headers
                        .contains_key("x-aws-ec2-metadata-token-ttl-seconds") =>
                {
                    respond(stream, "200 OK", IMDS_TOKEN)
                }
                ("GET", "/latest/meta-data/instance-type")
                    if request
                        .headers
                        .get("x-aws-ec2-metadata-token")
                        .map(String::as_str)
                        == Some(IMDS_TOKEN) =>
                {
                    respond(stream, "200 OK", instance_type)
                }
                _ => respond(stream, "401 Unauthorized", ""),
            }
        }
    });
    (url, receiver)
}

/// The body's HMAC-SHA256 under `key`, as the signature header carries it.
fn expected_signature(key: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Receives heartbeats until one satisfies `done`, checking every signature on the way.
fn heartbeat_until(
    heartbeats: &mpsc::Receiver<Request>,
    key: &[u8],
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let request = heartbeats
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no heartbeat showed {what}"));
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/nodes");
        assert_eq!(
            request.headers.get("x-gpu-agent-signature"),
            Some(&expected_signature(key, &request.body)),
            "every heartbeat is signed over its exact body"
        );
        let body: Value = serde_json::from_slice(&request.body).expect("heartbeat is JSON");
        if done(&body) {
            return body;
        }
    }
}

fn phase_of(heartbeat: &Value, deployment: &str) -> Option<String> {
    heartbeat["deployments"]
        .as_array()?
        .iter()
        .find(|d| d["deploymentId"] == deployment)
        .and_then(|d| d["phase"].as_str().map(str::to_owned))
}

#[test]
fn signed_heartbeats_carry_identity_inventory_and_phase_changes_and_imds_decides_the_instance_type()
{
    let fake = FakeHardware::a10g(1).install().expect("fake NVML");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let heartbeat_url = format!("http://{}/nodes", listener.local_addr().unwrap());
    let heartbeats = heartbeat_receiver(listener);
    let (imds_url, imds_requests) = imds_stand_in("g5.xlarge");
    let key_dir = tempfile::tempdir().unwrap();
    let key_file = key_dir.path().join("heartbeat.key");
    let key = b"fleet-shared-secret";
    std::fs::write(&key_file, [&key[..], b"\n"].concat()).unwrap();

    let config = AgentConfig {
        extra: format!(
            "[control_plane]\nheartbeat_url = \"{heartbeat_url}\"\nheartbeat_interval_s = 1\n\
             hmac_key_file = \"{}\"\nnode_name = \"node-a\"\nimds = true\nimds_url = \"{imds_url}\"\n",
            key_file.display()
        ),
        ..AgentConfig::with_fixture_models().nvml(fake.library())
    };
    let agent = Agent::start(config);

    let first = heartbeat_until(&heartbeats, key, "the IMDS instance type", |h| {
        h["node"]["instanceType"] == "g5.xlarge"
    });
    assert_eq!(first["node"]["name"], "node-a");
    assert_eq!(first["node"]["instanceTypeSource"], "imds");
    assert!(first["node"]["hostname"]
        .as_str()
        .is_some_and(|h| !h.is_empty()));
    assert_eq!(first["node"]["listen"], format!("127.0.0.1:{}", agent.port));
    assert_eq!(first["gpus"]["nvml"], "available");
    assert_eq!(first["gpus"]["gpus"][0]["name"], "NVIDIA A10G");
    assert_eq!(first["health"]["ready"], true);
    assert!(first["sequence"].as_u64().is_some_and(|n| n >= 1));
    let imds: Vec<String> = imds_requests.try_iter().collect();
    assert_eq!(
        imds,
        [
            "PUT /latest/api/token",
            "GET /latest/meta-data/instance-type"
        ],
        "IMDSv2: a session token first, then the instance type with it"
    );

    // g5.2xlarge carries the same single A10G: only the instance type tells them apart.
    let wrong = kore_deploy(&agent, "gpt2-tiny", "g5.2xlarge");
    assert_eq!(wrong.status, 202, "{}", wrong.text);
    let job = wait_job(&agent, wrong.json["dockStatusId"].as_str().unwrap());
    assert_eq!(job.json["status"], "FAILED", "{}", job.text);
    assert_eq!(job.json["error"]["code"], "DEVICE_MISMATCH");
    assert_eq!(
        job.json["error"]["message"],
        "requested g5.2xlarge but this host is a g5.xlarge instance (instance type from imds)"
    );
    let wrong_id = wrong.json["deploymentId"].as_str().unwrap().to_owned();
    let failed = heartbeat_until(&heartbeats, key, "the FAILED deployment", |h| {
        phase_of(h, &wrong_id).as_deref() == Some("FAILED")
    });
    let reported = failed["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["deploymentId"] == wrong_id.as_str())
        .unwrap();
    assert_eq!(reported["failure"]["code"], "DEVICE_MISMATCH");
    assert_eq!(reported["deviceType"], "g5.2xlarge");

    let undeploy = agent.post_json("/api/public/models/gpt2-tiny/undeploy", &json!({}));
    wait_job(&agent, undeploy.json["dockStatusId"].as_str().unwrap());
    let id = deploy_and_wait_for_success(&agent, "gpt2-tiny", &kore_body("g5.xlarge"));
    let ready = heartbeat_until(&heartbeats, key, "the READY deployment", |h| {
        phase_of(h, &id).as_deref() == Some("READY")
    });
    let serving = ready["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["deploymentId"] == id.as_str())
        .unwrap();
    assert_eq!(serving["modelId"], "gpt2-tiny");
    assert_eq!(serving["replicas"], 1);

    let undeploy = agent.post_json("/api/public/models/gpt2-tiny/undeploy", &json!({}));
    wait_job(&agent, undeploy.json["dockStatusId"].as_str().unwrap());
    heartbeat_until(&heartbeats, key, "the UNDEPLOYED deployment", |h| {
        phase_of(h, &id).as_deref() == Some("UNDEPLOYED")
    });
    assert!(
        !agent.log().contains("fleet-shared-secret"),
        "the HMAC key never reaches the log"
    );
}

#[test]
fn instance_type_from_the_environment_refuses_a_deploy_for_another_instance_type() {
    let fake = FakeHardware::a10g(1).install().expect("fake NVML");
    let config = AgentConfig::with_fixture_models().nvml(fake.library());
    let agent = Agent::start_with_env(config, &[("GPU_AGENT_INSTANCE_TYPE", "g5.xlarge")]);
    let wrong = kore_deploy(&agent, "gpt2-tiny", "g5.2xlarge");
    let job = wait_job(&agent, wrong.json["dockStatusId"].as_str().unwrap());
    assert_eq!(job.json["error"]["code"], "DEVICE_MISMATCH", "{}", job.text);
    assert_eq!(job.json["error"]["phase"], "CHECKING_DEVICE");
    assert_eq!(
        job.json["error"]["message"],
        "requested g5.2xlarge but this host is a g5.xlarge instance (instance type from config)"
    );
    // A CPU deploy names no instance type.
    deploy_ready(&agent, "t5-tiny");
}

#[test]
fn a_heartbeat_receiver_that_never_answers_does_not_delay_generate_requests() {
    let (url, receiver) = hanging_receiver();
    let config = AgentConfig {
        extra: format!("[control_plane]\nheartbeat_url = \"{url}\"\nheartbeat_interval_s = 1\n"),
        ..AgentConfig::with_fixture_models()
    };
    let agent = Agent::start(config);
    let id = deploy_ready(&agent, "gpt2-tiny");
    // A heartbeat is now waiting for an answer that never comes.
    let hanging = open_heartbeat(&receiver);
    let reply = generate(
        &agent,
        &id,
        json!({"prompt": "Hello", "parameters": {"maxTokens": 4}}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(
        !receiver
            .try_iter()
            .any(|event| matches!(event, Hanging::Closed(id) if id == hanging)),
        "the generate request finished while the heartbeat was still unanswered"
    );
    assert_eq!(agent.get("/readyz").status, 200);
}

#[test]
fn a_heartbeat_receiver_that_is_down_is_retried_until_it_is_up_and_serving_goes_on() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/nodes");
    let config = AgentConfig {
        extra: format!("[control_plane]\nheartbeat_url = \"{url}\"\nheartbeat_interval_s = 1\n"),
        ..AgentConfig::with_fixture_models()
    };
    let agent = Agent::start(config);
    let id = deploy_ready(&agent, "gpt2-tiny");
    crate::support::serving::eventually("a failed heartbeat is logged", || {
        agent.log().contains("heartbeat not delivered")
    });
    let reply = generate(
        &agent,
        &id,
        json!({"prompt": "Hello", "parameters": {"maxTokens": 4}}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    // The receiver comes up: the retries reach it, unsigned (no key configured).
    let heartbeats = heartbeat_receiver(TcpListener::bind(("127.0.0.1", port)).unwrap());
    let request = heartbeats
        .recv_timeout(Duration::from_secs(30))
        .expect("a retried heartbeat arrives once the receiver is up");
    assert!(!request.headers.contains_key("x-gpu-agent-signature"));
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(phase_of(&body, &id).as_deref(), Some("READY"));
}

#[test]
fn an_unreadable_hmac_key_file_stops_the_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent.key");
    let config = AgentConfig {
        extra: format!(
        "[control_plane]\nheartbeat_url = \"http://127.0.0.1:9/nodes\"\nhmac_key_file = \"{}\"\n",
            missing.display()
        ),
        ..AgentConfig::default()
    };
    let output = start_expecting_failure(&config);
    assert!(
        output.contains("hmac_key_file") && output.contains("absent.key"),
        "{output}"
    );
}

/// Runs `gpu-agent serve` with `config`, expects it to exit unsuccessfully, returns its stderr.
fn start_expecting_failure(config: &AgentConfig) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, config.render(free_port(), &dir.path().join("state"))).unwrap();
    let mut child = std::process::Command::new(crate::support::agent_binary())
        .args(["serve", "--config"])
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn gpu-agent");
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("gpu-agent kept running with a broken [control_plane] config");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success(), "{stderr}");
    stderr
}
