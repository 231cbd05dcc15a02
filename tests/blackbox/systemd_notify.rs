//! sd_notify messages on a test NOTIFY_SOCKET: READY=1 once HTTP is up and state restored,
//! WATCHDOG=1 while the serving loops make progress, STOPPING=1 on SIGTERM.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use crate::support::{Agent, AgentConfig, PATIENCE};

/// Reads datagrams until one contains `wanted`.
fn wait_for_message(socket: &UnixDatagram, wanted: &str, seen: &mut Vec<String>) {
    let deadline = Instant::now() + PATIENCE;
    let mut buffer = [0u8; 512];
    while Instant::now() < deadline {
        if let Ok(n) = socket.recv(&mut buffer) {
            let message = String::from_utf8_lossy(&buffer[..n]).into_owned();
            seen.push(message.clone());
            if message.lines().any(|line| line == wanted) {
                return;
            }
        }
    }
    panic!("no {wanted} on the notify socket; received {seen:?}");
}

#[test]
fn ready_watchdog_and_stopping_reach_the_notify_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let socket_path = path.display().to_string();
    let mut agent = Agent::start_with_env(
        AgentConfig::default(),
        &[
            ("NOTIFY_SOCKET", socket_path.as_str()),
            ("WATCHDOG_USEC", "200000"),
        ],
    );
    let mut seen = Vec::new();
    wait_for_message(&socket, "READY=1", &mut seen);
    assert_eq!(
        agent.get("/readyz").status,
        200,
        "READY=1 comes after the state is restored"
    );
    wait_for_message(&socket, "WATCHDOG=1", &mut seen);
    let status = agent.sigterm_and_wait();
    assert!(status.success(), "{status}");
    wait_for_message(&socket, "STOPPING=1", &mut seen);
}
