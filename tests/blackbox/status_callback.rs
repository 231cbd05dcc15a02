//! Phase changes are POSTed to `status_callback_url`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::support::kore::{kore_deploy, wait_job};
use crate::support::{Agent, AgentConfig, PATIENCE};

/// A one-route HTTP server that answers 200 and hands each JSON body to the test.
pub(crate) fn callback_server() -> (String, mpsc::Receiver<Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/phases", listener.local_addr().unwrap());
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0u8; length];
            if reader.read_exact(&mut body).is_ok() {
                if let Ok(value) = serde_json::from_slice(&body) {
                    let _ = sender.send(value);
                }
            }
            let mut stream = reader.into_inner();
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, receiver)
}

/// Deploys `model` on the CPU with the callback configured and returns the phases posted,
/// in the order they arrived, up to the first of `last`. Delivery is at least once, so a
/// retried event may arrive twice in a row: repeats are folded.
fn posted_phases(config: AgentConfig, model: &str, last: &str) -> Vec<String> {
    let (url, events) = callback_server();
    let config = AgentConfig {
        extra: format!("status_callback_url = \"{url}\"\n"),
        ..config
    };
    let agent = Agent::start(config);
    let reply = kore_deploy(&agent, model, "cpu");
    wait_job(&agent, reply.json["dockStatusId"].as_str().unwrap());
    let mut phases: Vec<String> = Vec::new();
    let deadline = std::time::Instant::now() + PATIENCE;
    while phases.last().map(String::as_str) != Some(last) {
        assert!(
            std::time::Instant::now() < deadline,
            "{last} never posted; got {phases:?}"
        );
        if let Ok(event) = events.recv_timeout(Duration::from_millis(200)) {
            assert_eq!(event["modelId"], model);
            assert_eq!(event["deploymentId"], reply.json["deploymentId"]);
            let phase = event["phase"].as_str().unwrap_or("").to_owned();
            if phases.last() != Some(&phase) {
                phases.push(phase);
            }
        }
    }
    phases
}

#[test]
fn each_phase_change_of_a_deploy_is_posted_to_the_status_callback_in_order() {
    let phases = posted_phases(AgentConfig::with_fixture_models(), "gpt2-tiny", "READY");
    assert_eq!(
        phases,
        [
            "PENDING",
            "CHECKING_DEVICE",
            "FETCHING",
            "LOADING",
            "WARMING",
            "READY"
        ]
    );
}

#[test]
fn each_phase_change_of_a_failing_deploy_is_posted_to_the_status_callback_in_order() {
    let phases = posted_phases(
        AgentConfig::default().model("outside", "/"),
        "outside",
        "FAILED",
    );
    assert_eq!(phases, ["PENDING", "CHECKING_DEVICE", "FETCHING", "FAILED"]);
}
