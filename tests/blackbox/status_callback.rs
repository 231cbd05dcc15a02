//! Phase changes are POSTed to `status_callback_url`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::kore_lifecycle::{kore_deploy, wait_job};
use crate::support::{Agent, AgentConfig, PATIENCE};

/// A one-route HTTP server that answers 200 and hands each JSON body to the test.
fn callback_server() -> (String, mpsc::Receiver<Value>) {
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

#[test]
fn each_phase_change_is_posted_to_the_status_callback() {
    let (url, events) = callback_server();
    let config = AgentConfig {
        extra: format!("status_callback_url = \"{url}\"\n"),
        ..AgentConfig::default().model("outside", "/")
    };
    let agent = Agent::start(config);
    let reply = kore_deploy(&agent, "outside", "cpu");
    wait_job(&agent, reply.json["dockStatusId"].as_str().unwrap());
    let mut phases = Vec::new();
    let deadline = std::time::Instant::now() + PATIENCE;
    while !phases.contains(&"FAILED".to_owned()) && std::time::Instant::now() < deadline {
        if let Ok(event) = events.recv_timeout(Duration::from_millis(200)) {
            assert_eq!(event["modelId"], "outside");
            assert_eq!(event["deploymentId"], reply.json["deploymentId"]);
            phases.push(event["phase"].as_str().unwrap_or("").to_owned());
        }
    }
    phases.sort();
    for phase in ["PENDING", "CHECKING_DEVICE", "FETCHING", "FAILED"] {
        assert!(
            phases.iter().any(|p| p == phase),
            "{phase} not posted; got {phases:?}"
        );
    }
}
