//! sd_notify messages received on a real datagram socket standing in for systemd's
//! `NOTIFY_SOCKET`. The sending side runs in a child process: the env vars it reads are
//! process-global and must not leak into the other tests of this binary.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use gpu_agent::systemd::{self, Heartbeat, Watchdog};

use crate::common::child_test;

const SCENARIO_ENV: &str = "GPU_AGENT_TEST_SYSTEMD_SCENARIO";
const EXPECT_WATCHDOG_ENV: &str = "GPU_AGENT_TEST_EXPECT_WATCHDOG_MS";
const CHILD: &str = "systemd::notifying_child";
/// Far more than any scenario needs; only there so a broken child cannot hang the suite.
const HANG_GUARD: Duration = Duration::from_secs(30);

#[test]
#[ignore = "helper process for the systemd tests; started by them with NOTIFY_SOCKET set"]
fn notifying_child() {
    let Ok(scenario) = std::env::var(SCENARIO_ENV) else {
        println!("helper process: run by the systemd tests, not on its own");
        return;
    };
    match scenario.as_str() {
        "lifecycle" => {
            systemd::notify_status("restoring deployments\nfrom state");
            systemd::notify_ready();
            let heartbeat = Heartbeat::new();
            let mut watchdog = Watchdog::for_heartbeat(heartbeat.clone());
            watchdog.tick(); // no beat yet: silent
            heartbeat.beat();
            watchdog.tick(); // WATCHDOG=1
            watchdog.tick(); // stuck since: silent
            heartbeat.beat();
            watchdog.tick(); // WATCHDOG=1
            systemd::notify_stopping();
        }
        "watchdog-interval" => {
            let expected = std::env::var(EXPECT_WATCHDOG_ENV).expect("expectation given");
            let shown = match systemd::watchdog_interval() {
                Some(interval) => interval.as_millis().to_string(),
                None => "off".to_owned(),
            };
            assert_eq!(shown, expected);
            systemd::notify_status(&format!("watchdog {shown}"));
        }
        "watchdog-task" => {
            let heartbeat = Heartbeat::new();
            let task = Watchdog::for_heartbeat(heartbeat.clone()).spawn(Duration::from_millis(20));
            // Beat like a serving loop until the task has pinged a few times.
            for _ in 0..30_000 {
                if task.pings() >= 3 {
                    break;
                }
                heartbeat.beat();
                std::thread::sleep(Duration::from_millis(1));
            }
            let pings = task.pings();
            task.stop();
            systemd::notify_status(&format!("pinged {pings}"));
        }
        other => panic!("unknown scenario {other}"),
    }
}

/// Binds the stand-in notify socket in `dir`.
fn notify_socket(dir: &Path) -> (UnixDatagram, String) {
    let path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&path).expect("bind notify socket");
    socket.set_read_timeout(Some(HANG_GUARD)).expect("timeout");
    (socket, path.to_string_lossy().into_owned())
}

/// Datagrams received until one equals `last` (inclusive).
fn receive_until(socket: &UnixDatagram, last: &str) -> Vec<String> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let len = socket
            .recv(&mut buffer)
            .expect("a notification before the hang guard");
        let message = String::from_utf8_lossy(&buffer[..len])
            .trim_end()
            .to_owned();
        let done = message == last || message.starts_with(last);
        received.push(message);
        if done {
            return received;
        }
    }
}

fn assert_success(mut command: Command) {
    let output = command.output().expect("run child");
    assert!(
        output.status.success(),
        "child failed: {:?}\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn ready_status_watchdog_and_stopping_reach_the_notify_socket_in_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (socket, path) = notify_socket(dir.path());
    let child = child_test(
        CHILD,
        &[("NOTIFY_SOCKET", &path), (SCENARIO_ENV, "lifecycle")],
    );
    assert_success(child);
    assert_eq!(
        receive_until(&socket, "STOPPING=1"),
        vec![
            "STATUS=restoring deployments from state",
            "READY=1",
            "WATCHDOG=1",
            "WATCHDOG=1",
            "STOPPING=1",
        ]
    );
}

/// The child that reports what `watchdog_interval()` says with `WATCHDOG_USEC` = 30 s.
fn interval_child(socket_path: &str, expect: &str, watchdog_pid: Option<&str>) -> Command {
    let mut envs = vec![
        ("NOTIFY_SOCKET", socket_path),
        (SCENARIO_ENV, "watchdog-interval"),
        ("WATCHDOG_USEC", "30000000"),
        (EXPECT_WATCHDOG_ENV, expect),
    ];
    envs.extend(watchdog_pid.map(|pid| ("WATCHDOG_PID", pid)));
    let mut child = child_test(CHILD, &envs);
    if watchdog_pid.is_none() {
        child.env_remove("WATCHDOG_PID");
    }
    child
}

#[test]
fn watchdog_interval_comes_from_watchdog_usec_for_this_process_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (socket, path) = notify_socket(dir.path());

    // No WATCHDOG_PID: the interval applies to whoever reads it.
    assert_success(interval_child(&path, "30000", None));
    assert_eq!(
        receive_until(&socket, "STATUS="),
        vec!["STATUS=watchdog 30000"]
    );

    // WATCHDOG_PID names another process (this one): the child must ignore the watchdog.
    let parent_pid = std::process::id().to_string();
    assert_success(interval_child(&path, "off", Some(&parent_pid)));
    assert_eq!(
        receive_until(&socket, "STATUS="),
        vec!["STATUS=watchdog off"]
    );

    // WATCHDOG_PID names the child itself ($$ survives exec): the watchdog applies.
    let inner = interval_child(&path, "30000", None);
    let mut shell = Command::new("sh");
    shell
        .arg("-c")
        .arg("WATCHDOG_PID=$$ exec \"$0\" \"$@\"")
        .arg(inner.get_program())
        .args(inner.get_args());
    for (key, value) in inner.get_envs() {
        if let Some(value) = value {
            shell.env(key, value);
        }
    }
    assert_success(shell);
    assert_eq!(
        receive_until(&socket, "STATUS="),
        vec!["STATUS=watchdog 30000"]
    );
}

#[test]
fn spawned_watchdog_pings_while_the_heartbeat_advances() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (socket, path) = notify_socket(dir.path());
    let child = child_test(
        CHILD,
        &[("NOTIFY_SOCKET", &path), (SCENARIO_ENV, "watchdog-task")],
    );
    assert_success(child);
    let received = receive_until(&socket, "STATUS=pinged");
    let (status, pings) = received.split_last().expect("messages");
    assert!(pings.len() >= 3, "{received:?}");
    assert!(
        pings.iter().all(|message| message == "WATCHDOG=1"),
        "{received:?}"
    );
    assert_eq!(status, &format!("STATUS=pinged {}", pings.len()));
}
