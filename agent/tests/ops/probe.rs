//! `gpu-agent status` logic against real loopback servers: ready, not ready, unreachable.

use std::net::TcpListener;
use std::time::Duration;

use gpu_agent::gpu::{GpuView, InventoryView, MigMode, NvmlStatus, MIB};
use gpu_agent::probe::{probe, probe_with, ProbeOptions, Readiness};

use crate::common::http_stub::{HttpStub, Reply};

const TIMEOUT: Duration = Duration::from_secs(10);

fn two_t4s() -> InventoryView {
    let t4 = |index: u32| GpuView {
        index,
        name: "Tesla T4".to_owned(),
        uuid: format!("GPU-0000000{index}"),
        memory_total_bytes: 15360 * MIB,
        memory_used_bytes: 0,
        memory_free_bytes: 15360 * MIB,
        compute_capability: "7.5".to_owned(),
        mig: MigMode::Unsupported,
    };
    InventoryView {
        nvml: NvmlStatus::Available,
        reason: None,
        driver_version: Some("550.54.15".to_owned()),
        cuda_driver_version: Some("12.4".to_owned()),
        gpus: vec![t4(0), t4(1)],
    }
}

/// An agent stand-in: `/readyz` answers `readyz`; `/v1/gpus` needs `x-api-key: kg-probe`.
fn agent_stub(readyz: u16, readyz_body: &'static str) -> HttpStub {
    let gpus = serde_json::to_string(&two_t4s()).expect("serializable view");
    HttpStub::start(move |request, _| match request.path.as_str() {
        "/readyz" => Reply::new(readyz, readyz_body),
        "/v1/gpus" if request.header("x-api-key") == Some("kg-probe") => {
            Reply::new(200, gpus.clone())
        }
        "/v1/gpus" => Reply::new(
            401,
            r#"{"error":{"code":"UNAUTHENTICATED","message":"send x-api-key","field":null}}"#,
        ),
        _ => Reply::new(404, "{}"),
    })
}

fn with_key() -> ProbeOptions {
    ProbeOptions {
        timeout: TIMEOUT,
        api_key: Some("kg-probe".to_owned()),
    }
}

#[test]
fn ready_agent_exits_0_with_the_gpu_summary() {
    let stub = agent_stub(200, r#"{"status":"ready"}"#);
    let outcome = probe_with(stub.url(), &with_key());
    assert_eq!(outcome.readiness, Readiness::Ready);
    assert_eq!(outcome.exit_code(), 0);
    assert_eq!(outcome.http_status, Some(200));
    let summary = two_t4s().summary_line();
    assert_eq!(outcome.gpus.as_deref(), Some(summary.as_str()));
    assert_eq!(
        outcome.line(),
        format!("ready at {}; {summary}", stub.url())
    );
    let json = outcome.json();
    assert_eq!(json["readiness"], "ready");
    assert_eq!(json["exitCode"], 0);
    assert_eq!(json["gpus"], summary.as_str());
}

#[test]
fn agent_answering_503_exits_1_with_its_reason() {
    let body =
        r#"{"error":{"code":"NOT_READY","message":"deployment cm-1 is LOADING","field":null}}"#;
    let stub = agent_stub(503, body);
    let outcome = probe_with(stub.url(), &with_key());
    assert_eq!(outcome.readiness, Readiness::NotReady);
    assert_eq!(outcome.exit_code(), 1);
    assert_eq!(outcome.http_status, Some(503));
    assert_eq!(
        outcome.reason.as_deref(),
        Some("deployment cm-1 is LOADING")
    );
    assert!(outcome.line().starts_with(&format!(
        "not ready at {} (HTTP 503: deployment cm-1 is LOADING); GPUs: 2× Tesla T4",
        stub.url()
    )));
}

#[test]
fn without_an_api_key_the_probe_still_reports_readiness_and_says_why_gpus_are_unknown() {
    let stub = agent_stub(200, "{}");
    let outcome = probe(stub.url(), TIMEOUT);
    assert_eq!(outcome.exit_code(), 0);
    assert_eq!(outcome.gpus, None);
    assert_eq!(
        outcome.gpus_error.as_deref(),
        Some("HTTP 401 from /v1/gpus")
    );
    assert!(outcome
        .line()
        .ends_with("GPUs: unknown (HTTP 401 from /v1/gpus)"));
}

#[test]
fn nothing_listening_exits_2() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let outcome = probe(&format!("127.0.0.1:{port}"), TIMEOUT);
    assert_eq!(outcome.readiness, Readiness::Unreachable);
    assert_eq!(outcome.exit_code(), 2);
    assert_eq!(outcome.http_status, None);
    assert!(outcome.reason.is_some());
    assert!(outcome
        .line()
        .starts_with(&format!("unreachable at http://127.0.0.1:{port}: ")));
    assert_eq!(outcome.json()["exitCode"], 2);
}

#[test]
fn a_listener_that_never_answers_http_counts_as_unreachable() {
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", silent.local_addr().expect("addr"));
    let outcome = probe(&url, Duration::from_millis(300));
    assert_eq!(outcome.exit_code(), 2, "{outcome:?}");
}

#[test]
fn the_probe_asks_readyz_first_and_then_the_gpus() {
    let stub = agent_stub(200, "{}");
    let _ = probe_with(&format!("{}/", stub.url()), &with_key());
    let first = stub.next_request();
    let second = stub.next_request();
    assert_eq!(
        (first.method.as_str(), first.path.as_str()),
        ("GET", "/readyz")
    );
    assert_eq!(
        first.header("x-api-key"),
        None,
        "/readyz is open: no key sent to it"
    );
    assert_eq!(
        (second.method.as_str(), second.path.as_str()),
        ("GET", "/v1/gpus")
    );
}
