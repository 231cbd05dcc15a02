//! `deploy/prometheus/rules.yaml` and `deploy/grafana/gpu-agent.json`: promtool accepts the
//! rules, and every metric they name is exported by a running agent that has served.

use std::collections::BTreeSet;
use std::process::Command;

use fake_nvml::FakeHardware;
use serde_json::json;

use super::{have_tool, metric_names, read, repo, run_ok};
use crate::support::serving::{deploy_ready, eventually, generate, metric, OpenStream};
use crate::support::slow_model::SLOW_MODEL;
use crate::support::{Agent, AgentConfig};

#[test]
fn promtool_accepts_the_alerting_rules_and_their_unit_tests_pass() {
    if !have_tool("promtool", &["--version"], "promtool check rules") {
        return;
    }
    let output = run_ok(
        Command::new("promtool")
            .args(["check", "rules"])
            .arg(repo().join("deploy/prometheus/rules.yaml")),
    );
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("SUCCESS"), "{said}");
    // The alerts fire on the series they are meant for, and only on those.
    run_ok(
        Command::new("promtool")
            .args(["test", "rules"])
            .arg(repo().join("deploy/prometheus/rules.test.yaml")),
    );
}

/// Every PromQL expression of the rules and the dashboard.
fn expressions() -> Vec<(String, String)> {
    let mut found = Vec::new();
    let rules: serde_yaml::Value =
        serde_yaml::from_str(&read("deploy/prometheus/rules.yaml")).unwrap();
    for group in rules["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let name = rule["alert"].as_str().or(rule["record"].as_str()).unwrap();
            found.push((
                format!("rule {name}"),
                rule["expr"].as_str().unwrap().to_owned(),
            ));
        }
    }
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/gpu-agent.json")).unwrap();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            found.push((
                format!("panel {}", panel["title"]),
                target["expr"].as_str().unwrap().to_owned(),
            ));
        }
    }
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(query) = variable["definition"].as_str() {
            found.push((format!("variable {}", variable["name"]), query.to_owned()));
        }
    }
    found
}

/// Sample names (histograms as `_bucket`, `_sum`, `_count`) in Prometheus text.
fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_metric_in_the_rules_and_the_dashboard_is_exported_by_a_serving_agent() {
    let fake = FakeHardware::a10g(1).install().expect("fake NVML");
    let agent = Agent::start(AgentConfig::with_fixture_models().nvml(fake.library()));
    let id = deploy_ready(&agent, "gpt2-tiny");
    let reply = generate(
        &agent,
        &id,
        json!({"prompt": "Hello", "parameters": {"maxTokens": 4}}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    // /v1/gpus rescans NVML, so the GPU gauges exist without waiting for the periodic scan.
    assert_eq!(agent.get_with_key("/v1/gpus").status, 200);
    let metrics = agent.get("/metrics");
    assert_eq!(metrics.status, 200);
    let names = exported(&metrics.text);

    let expressions = expressions();
    assert!(
        expressions.len() >= 15,
        "rules and panels were read: {expressions:?}"
    );
    let mut missing = Vec::new();
    for (origin, expression) in &expressions {
        for name in metric_names(expression) {
            if !names.contains(&name) {
                missing.push(format!("{name} ({origin})"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "named in deploy/ but not exported by the agent: {missing:?}\nexported: {names:?}"
    );
}

#[test]
fn slot_usage_is_running_sequences_over_the_slots_of_every_replica() {
    // The slow checkpoint keeps a stream running long enough to be seen.
    let agent = Agent::start(AgentConfig::with_fixture_models().with_slow_model());
    // One replica of maxBatchSize 4: one running stream holds a quarter of the slots.
    let id = deploy_ready(&agent, SLOW_MODEL);
    let series = format!("gpu_agent_slot_usage_ratio{{deployment=\"{SLOW_MODEL}\"}}");
    assert_eq!(metric(&agent.get("/metrics").text, &series), Some(0.0));
    let mut stream = OpenStream::start(
        &agent,
        &id,
        json!({"prompt": "Once upon a time", "parameters": {"maxTokens": 512, "temperature": 0}}),
    );
    let first = stream.next_data();
    assert!(
        first.is_some(),
        "the stream produced a token: {}",
        stream.rest()
    );
    // The batcher counts the sequence as running from its next step on.
    eventually("a quarter of the slots in use", || {
        metric(&agent.get("/metrics").text, &series) == Some(0.25)
    });
    drop(stream);
    eventually("the slot freed once the client left", || {
        metric(&agent.get("/metrics").text, &series) == Some(0.0)
    });
}
