//! Status events POSTed to a real loopback receiver.

use std::net::TcpListener;
use std::time::Duration;

use gpu_agent::callback::{CallbackPolicy, CallbackStats, StatusCallback};
use serde_json::{json, Value};

use crate::common::http_stub::{HttpStub, Reply};

/// Short waits so retries do not slow the suite; the assertions never depend on timing.
fn quick_policy() -> CallbackPolicy {
    CallbackPolicy {
        queue_capacity: 16,
        max_attempts: 4,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        request_timeout: Duration::from_secs(10),
    }
}

/// Generous: only there so a stuck worker fails the test instead of hanging it.
const GRACE: Duration = Duration::from_secs(30);

fn phase_event(id: &str, phase: &str) -> Value {
    json!({ "deploymentId": id, "phase": phase })
}

fn body_of(request: &crate::common::http_stub::Recorded) -> Value {
    serde_json::from_str(&request.body).expect("the callback posts JSON")
}

#[test]
fn a_failing_receiver_gets_the_event_again_until_it_accepts() {
    let stub = HttpStub::start(|_, index| {
        if index < 2 {
            Reply::new(503, "{}")
        } else {
            Reply::new(200, "{}")
        }
    });
    let url = format!("{}/hooks/status", stub.url());
    let callback = StatusCallback::with_policy(Some(url), quick_policy());
    let event = phase_event("cm-1", "READY");
    callback.send(event.clone());

    for attempt in 1..=3 {
        let request = stub.next_request();
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("POST", "/hooks/status")
        );
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(
            request.header("x-gpu-agent-attempt"),
            Some(attempt.to_string().as_str())
        );
        assert_eq!(body_of(&request), event);
    }
    let stats = callback.shutdown(GRACE);
    assert_eq!(
        stats,
        CallbackStats {
            delivered: 1,
            ..CallbackStats::default()
        }
    );
    assert!(
        stub.received_so_far().is_empty(),
        "no attempt after the success"
    );
}

#[test]
fn events_are_delivered_in_the_order_they_were_sent() {
    let stub = HttpStub::start(|_, _| Reply::new(204, ""));
    let callback = StatusCallback::with_policy(Some(stub.url().to_owned()), quick_policy());
    let phases = [
        "PENDING",
        "CHECKING_DEVICE",
        "FETCHING",
        "LOADING",
        "WARMING",
        "READY",
    ];
    for phase in phases {
        callback.send(phase_event("cm-1", phase));
    }
    let received: Vec<Value> = phases
        .iter()
        .map(|_| body_of(&stub.next_request()))
        .collect();
    let expected: Vec<Value> = phases
        .iter()
        .map(|phase| phase_event("cm-1", phase))
        .collect();
    assert_eq!(received, expected);
    assert_eq!(callback.shutdown(GRACE).delivered, phases.len() as u64);
}

#[test]
fn an_event_is_abandoned_after_the_attempt_limit_and_the_next_one_still_goes_out() {
    let stub = HttpStub::start(|request, _| {
        if request.body.contains("FAILED") {
            Reply::new(500, "{}")
        } else {
            Reply::new(200, "{}")
        }
    });
    let callback = StatusCallback::with_policy(Some(stub.url().to_owned()), quick_policy());
    callback.send(phase_event("cm-1", "FAILED"));
    callback.send(phase_event("cm-2", "READY"));
    let bodies: Vec<Value> = (0..5).map(|_| body_of(&stub.next_request())).collect();
    assert!(
        bodies[..4].iter().all(|body| body["phase"] == "FAILED"),
        "{bodies:?}"
    );
    assert_eq!(bodies[4], phase_event("cm-2", "READY"));
    let stats = callback.shutdown(GRACE);
    assert_eq!((stats.delivered, stats.abandoned), (1, 1));
}

#[test]
fn a_client_error_is_not_retried() {
    let stub = HttpStub::start(|request, _| {
        if request.body.contains("cm-bad") {
            Reply::new(400, "{}")
        } else {
            Reply::new(200, "{}")
        }
    });
    let callback = StatusCallback::with_policy(Some(stub.url().to_owned()), quick_policy());
    callback.send(phase_event("cm-bad", "READY"));
    callback.send(phase_event("cm-good", "READY"));
    assert_eq!(body_of(&stub.next_request())["deploymentId"], "cm-bad");
    assert_eq!(body_of(&stub.next_request())["deploymentId"], "cm-good");
    let stats = callback.shutdown(GRACE);
    assert_eq!((stats.delivered, stats.abandoned), (1, 1));
}

#[test]
fn a_receiver_that_never_answers_does_not_block_the_sender_and_the_oldest_events_are_dropped() {
    // Accepts connections (the kernel completes the handshake) but never answers.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", silent.local_addr().expect("addr"));
    let policy = CallbackPolicy {
        queue_capacity: 4,
        request_timeout: Duration::from_secs(60),
        ..quick_policy()
    };
    let callback = StatusCallback::with_policy(Some(url), policy);
    for sequence in 0..100 {
        callback.send(json!({ "sequence": sequence }));
    }
    // Every send returned although the one event in flight is stuck for a minute.
    let stats = callback.stats();
    // Whether the worker took its one event before or after the last send, the queue is
    // full and the rest were dropped.
    assert!(stats.pending + stats.in_flight >= 4, "{stats:?}");
    assert!(stats.dropped_queue_full >= 95, "{stats:?}");
    assert_eq!(
        stats.dropped_queue_full + stats.pending + stats.in_flight,
        100,
        "{stats:?}"
    );
    assert_eq!(stats.delivered, 0);
    drop(callback); // the worker gives up after its current attempt; nobody waits for it
}

#[test]
fn an_unreachable_url_does_not_block_the_sender() {
    // A port that was free a moment ago: connections are refused.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let policy = CallbackPolicy {
        max_attempts: 2,
        ..quick_policy()
    };
    let callback = StatusCallback::with_policy(Some(format!("http://127.0.0.1:{port}/cb")), policy);
    for sequence in 0..10 {
        callback.send(json!({ "sequence": sequence }));
    }
    let stats = callback.shutdown(GRACE);
    assert_eq!(stats.delivered, 0);
    assert_eq!(stats.abandoned, 10, "{stats:?}");
}

#[test]
fn no_url_or_an_empty_one_disables_the_callback() {
    for url in [None, Some(String::new()), Some("  ".to_owned())] {
        let callback = StatusCallback::new(url);
        assert!(!callback.is_enabled());
        callback.send(phase_event("cm-1", "READY"));
        assert_eq!(callback.stats(), CallbackStats::default());
    }
}
