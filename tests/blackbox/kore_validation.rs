//! Every rule of `docs/api.md` § Validation table broken once: the status, the error code and `error.field`.

use serde_json::{json, Value};

use crate::support::{Agent, AgentConfig, Reply, API_KEY};

/// A deploy body that passes every rule.
fn valid_body() -> Value {
    json!({
        "name": "tiny gpt2",
        "isDeployedPreviously": false,
        "hyperParameters": {"temperature": 0.7, "maxTokens": 64, "topP": 0.9, "topK": 40, "stopSequence": ["\n\n"]},
        "scalingParameters": {"maxBatchSize": 16, "minReplicas": 1, "maxReplicas": 2, "scaleUpDelay": 100, "scaleDownDelay": 500},
        "deviceType": "cpu",
        "optimizationInfo": {"optimizationType": "", "quantizationType": ""}
    })
}

/// `body` with the field at dotted `path` set to `value` (or removed when `None`).
fn with(mut body: Value, path: &str, value: Option<Value>) -> Value {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().expect("a path");
    let mut target = &mut body;
    for part in parts {
        target = target.get_mut(part).expect("path exists in the valid body");
    }
    let object = target.as_object_mut().expect("an object");
    match value {
        Some(v) => object.insert(last.to_owned(), v),
        None => object.remove(last),
    };
    body
}

fn deploy(agent: &Agent, model: &str, body: &Value) -> Reply {
    agent.post_json(
        &format!("/api/public/models/{model}/deploy?modelType=openSource"),
        body,
    )
}

struct Case {
    path: &'static str,
    value: Option<Value>,
    status: u16,
    field: &'static str,
}

fn case(path: &'static str, value: Option<Value>, status: u16, field: &'static str) -> Case {
    Case {
        path,
        value,
        status,
        field,
    }
}

/// The code `docs/api.md` gives a case: a wrong JSON type is `INVALID_TYPE`, an absent
/// field `MISSING_FIELD`, a value outside an enum or a range its own code.
fn expected_code(c: &Case) -> &'static str {
    let value = c.value.as_ref().and_then(Value::as_str);
    match (c.status, c.path, value) {
        (400, _, _) => "INVALID_TYPE",
        _ if c.value.is_none() => "MISSING_FIELD",
        (_, "deviceType", _) => "INVALID_DEVICE_TYPE",
        (_, "optimizationInfo.optimizationType" | "optimizationInfo.quantizationType", _) => {
            "INVALID_ENUM"
        }
        _ => "OUT_OF_RANGE",
    }
}

#[test]
fn every_documented_range_and_enum_breach_is_refused_naming_the_field() {
    let agent = Agent::start(AgentConfig::default());
    let long_name = "n".repeat(129);
    let long_stop = "s".repeat(65);
    let cases = vec![
        case("name", None, 422, "name"),
        case("name", Some(json!("")), 422, "name"),
        case("name", Some(json!(long_name)), 422, "name"),
        case("name", Some(json!(5)), 400, "name"),
        case(
            "isDeployedPreviously",
            Some(json!("yes")),
            400,
            "isDeployedPreviously",
        ),
        case("hyperParameters", None, 422, "hyperParameters"),
        case(
            "hyperParameters",
            Some(json!("greedy")),
            400,
            "hyperParameters",
        ),
        case(
            "hyperParameters.temperature",
            None,
            422,
            "hyperParameters.temperature",
        ),
        case(
            "hyperParameters.temperature",
            Some(json!(-0.1)),
            422,
            "hyperParameters.temperature",
        ),
        case(
            "hyperParameters.temperature",
            Some(json!(2.01)),
            422,
            "hyperParameters.temperature",
        ),
        case(
            "hyperParameters.temperature",
            Some(json!("hot")),
            400,
            "hyperParameters.temperature",
        ),
        case(
            "hyperParameters.maxTokens",
            None,
            422,
            "hyperParameters.maxTokens",
        ),
        case(
            "hyperParameters.maxTokens",
            Some(json!(-1)),
            422,
            "hyperParameters.maxTokens",
        ),
        case(
            "hyperParameters.maxTokens",
            Some(json!(513)),
            422,
            "hyperParameters.maxTokens",
        ),
        case(
            "hyperParameters.maxTokens",
            Some(json!(5.5)),
            400,
            "hyperParameters.maxTokens",
        ),
        case("hyperParameters.topP", None, 422, "hyperParameters.topP"),
        case(
            "hyperParameters.topP",
            Some(json!(1.01)),
            422,
            "hyperParameters.topP",
        ),
        case(
            "hyperParameters.topP",
            Some(json!(-0.5)),
            422,
            "hyperParameters.topP",
        ),
        case(
            "hyperParameters.topP",
            Some(json!(0)),
            422,
            "hyperParameters.topP",
        ),
        case("hyperParameters.topK", None, 422, "hyperParameters.topK"),
        case(
            "hyperParameters.topK",
            Some(json!(0)),
            422,
            "hyperParameters.topK",
        ),
        case(
            "hyperParameters.topK",
            Some(json!(101)),
            422,
            "hyperParameters.topK",
        ),
        case(
            "hyperParameters.topK",
            Some(json!([5])),
            400,
            "hyperParameters.topK",
        ),
        case(
            "hyperParameters.stopSequence",
            Some(json!(["a", "b", "c", "d", "e", "f", "g", "h", "i"])),
            422,
            "hyperParameters.stopSequence",
        ),
        case(
            "hyperParameters.stopSequence",
            Some(json!([""])),
            422,
            "hyperParameters.stopSequence[0]",
        ),
        case(
            "hyperParameters.stopSequence",
            Some(json!(["ok", long_stop])),
            422,
            "hyperParameters.stopSequence[1]",
        ),
        case(
            "hyperParameters.stopSequence",
            Some(json!([7])),
            400,
            "hyperParameters.stopSequence[0]",
        ),
        case(
            "hyperParameters.stopSequence",
            Some(json!("\n")),
            400,
            "hyperParameters.stopSequence",
        ),
        case(
            "scalingParameters.maxBatchSize",
            Some(json!(0)),
            422,
            "scalingParameters.maxBatchSize",
        ),
        case(
            "scalingParameters.maxBatchSize",
            Some(json!(257)),
            422,
            "scalingParameters.maxBatchSize",
        ),
        case(
            "scalingParameters.minReplicas",
            Some(json!(0)),
            422,
            "scalingParameters.minReplicas",
        ),
        case(
            "scalingParameters.minReplicas",
            Some(json!(11)),
            422,
            "scalingParameters.minReplicas",
        ),
        case(
            "scalingParameters.maxReplicas",
            Some(json!(0)),
            422,
            "scalingParameters.maxReplicas",
        ),
        case(
            "scalingParameters.maxReplicas",
            Some(json!(51)),
            422,
            "scalingParameters.maxReplicas",
        ),
        case(
            "scalingParameters.scaleUpDelay",
            Some(json!(0)),
            422,
            "scalingParameters.scaleUpDelay",
        ),
        case(
            "scalingParameters.scaleUpDelay",
            Some(json!(1001)),
            422,
            "scalingParameters.scaleUpDelay",
        ),
        case(
            "scalingParameters.scaleDownDelay",
            Some(json!(49)),
            422,
            "scalingParameters.scaleDownDelay",
        ),
        case(
            "scalingParameters.scaleDownDelay",
            Some(json!(2001)),
            422,
            "scalingParameters.scaleDownDelay",
        ),
        case(
            "scalingParameters",
            Some(json!([])),
            400,
            "scalingParameters",
        ),
        case(
            "hyperParameters.topP",
            Some(json!("0.9")),
            400,
            "hyperParameters.topP",
        ),
        case(
            "scalingParameters.maxBatchSize",
            Some(json!("16")),
            400,
            "scalingParameters.maxBatchSize",
        ),
        case(
            "scalingParameters.minReplicas",
            Some(json!(1.5)),
            400,
            "scalingParameters.minReplicas",
        ),
        case(
            "scalingParameters.maxReplicas",
            Some(json!(true)),
            400,
            "scalingParameters.maxReplicas",
        ),
        case(
            "scalingParameters.scaleUpDelay",
            Some(json!({"ms": 100})),
            400,
            "scalingParameters.scaleUpDelay",
        ),
        case(
            "scalingParameters.scaleDownDelay",
            Some(json!("500ms")),
            400,
            "scalingParameters.scaleDownDelay",
        ),
        case(
            "optimizationInfo",
            Some(json!("ctranslate2")),
            400,
            "optimizationInfo",
        ),
        case(
            "optimizationInfo.optimizationType",
            Some(json!(2)),
            400,
            "optimizationInfo.optimizationType",
        ),
        case(
            "optimizationInfo.quantizationType",
            Some(json!(["int8_float16"])),
            400,
            "optimizationInfo.quantizationType",
        ),
        case("deviceType", None, 422, "deviceType"),
        case("deviceType", Some(json!("p4d.24xlarge")), 422, "deviceType"),
        case("deviceType", Some(json!(1)), 400, "deviceType"),
        case(
            "optimizationInfo.optimizationType",
            Some(json!("tensorrt")),
            422,
            "optimizationInfo.optimizationType",
        ),
        case(
            "optimizationInfo.quantizationType",
            Some(json!("int4")),
            422,
            "optimizationInfo.quantizationType",
        ),
    ];
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let body = with(valid_body(), c.path, c.value.clone());
        let reply = deploy(&agent, &format!("validation-{i}"), &body);
        let code = expected_code(c);
        if reply.status != c.status
            || reply.error_field() != Some(c.field)
            || reply.error_code() != code
        {
            failures.push(format!(
                "{} = {:?}: expected {} {code} naming {}, got {} {}",
                c.path, c.value, c.status, c.field, reply.status, reply.text
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn max_replicas_below_min_replicas_is_refused_on_max_replicas() {
    let agent = Agent::start(AgentConfig::default());
    let body = with(
        valid_body(),
        "scalingParameters.minReplicas",
        Some(json!(3)),
    );
    let body = with(body, "scalingParameters.maxReplicas", Some(json!(2)));
    let reply = deploy(&agent, "replicas", &body);
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(reply.error_field(), Some("scalingParameters.maxReplicas"));
    assert!(
        reply.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("minReplicas (3)"),
        "{}",
        reply.text
    );
}

#[test]
fn vllm_is_answered_unsupported_optimization() {
    let agent = Agent::start(AgentConfig::default());
    let body = with(
        valid_body(),
        "optimizationInfo.optimizationType",
        Some(json!("vllm")),
    );
    let reply = deploy(&agent, "vllm-model", &body);
    assert_eq!(reply.status, 422);
    assert_eq!(reply.error_code(), "UNSUPPORTED_OPTIMIZATION");
    assert_eq!(
        reply.error_field(),
        Some("optimizationInfo.optimizationType")
    );
}

#[test]
fn range_messages_name_the_allowed_range_and_the_value_given() {
    let agent = Agent::start(AgentConfig::default());
    let reply = deploy(
        &agent,
        "m",
        &with(valid_body(), "hyperParameters.topK", Some(json!(500))),
    );
    assert_eq!(
        reply.json["error"]["message"],
        "hyperParameters.topK must be between 1 and 100, but 500 was given"
    );
}

#[test]
fn unknown_model_type_is_refused_naming_model_type() {
    let agent = Agent::start(AgentConfig::default());
    let reply = agent.post_json(
        "/api/public/models/m/deploy?modelType=closedSource",
        &valid_body(),
    );
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(reply.error_field(), Some("modelType"));
}

#[test]
fn malformed_json_is_400_with_a_null_field() {
    let agent = Agent::start(AgentConfig::default());
    for body in [
        &b"{\"name\": "[..],
        b"not json",
        b"",
        b"[1, 2]",
        b"\"text\"",
    ] {
        let reply = agent.post_raw(
            "/api/public/models/m/deploy",
            &[("x-api-key", API_KEY)],
            body,
        );
        assert_eq!(
            reply.status,
            400,
            "{:?}: {}",
            String::from_utf8_lossy(body),
            reply.text
        );
        assert!(reply.json["error"]["field"].is_null(), "{}", reply.text);
        assert_eq!(reply.error_code(), "MALFORMED_JSON");
    }
}

#[test]
fn body_over_the_default_one_mebibyte_limit_is_413() {
    let agent = Agent::start(AgentConfig::default());
    let mut body = valid_body();
    body["padding"] = json!("x".repeat(1024 * 1024));
    let reply = deploy(&agent, "big", &body);
    assert_eq!(reply.status, 413, "{}", reply.text);
    assert_eq!(reply.error_code(), "PAYLOAD_TOO_LARGE");
}

#[test]
fn body_limit_is_configurable() {
    let config = AgentConfig {
        body_limit_bytes: Some(512),
        ..AgentConfig::default()
    };
    let agent = Agent::start(config);
    let mut body = valid_body();
    body["padding"] = json!("x".repeat(600));
    assert_eq!(deploy(&agent, "padded", &body).status, 413);
    assert_eq!(deploy(&agent, "small", &valid_body()).status, 202);
}

#[test]
fn unknown_fields_are_ignored_and_logged() {
    let agent = Agent::start(AgentConfig::default());
    let mut body = valid_body();
    body["futureOption"] = json!({"x": 1});
    body["hyperParameters"]["repetitionPenalty"] = json!(1.1);
    let reply = deploy(&agent, "unknown-fields", &body);
    assert_eq!(reply.status, 202, "{}", reply.text);
    let log = agent.log();
    assert!(
        log.contains("futureOption") && log.contains("hyperParameters.repetitionPenalty"),
        "{log}"
    );
}

#[test]
fn the_documented_typo_is_deployed_previouly_is_accepted_and_type_checked() {
    let agent = Agent::start(AgentConfig::default());
    let body = with(valid_body(), "isDeployedPreviously", None);
    let reply = deploy(
        &agent,
        "typo-ok",
        &with(body.clone(), "isDeployedPreviouly", Some(json!(true))),
    );
    assert_eq!(reply.status, 202, "{}", reply.text);
    let id = reply.json["deploymentId"].as_str().unwrap().to_owned();
    let status = agent.get_with_key(&format!("/v1/deployments/{id}"));
    assert_eq!(status.json["isDeployedPreviously"], true);
    let reply = deploy(
        &agent,
        "typo-bad",
        &with(body, "isDeployedPreviouly", Some(json!(1))),
    );
    assert_eq!(reply.status, 400);
    assert_eq!(reply.error_field(), Some("isDeployedPreviouly"));
}

#[test]
fn top_p_zero_is_accepted_for_greedy_decoding() {
    let agent = Agent::start(AgentConfig::default());
    let body = with(valid_body(), "hyperParameters.temperature", Some(json!(0)));
    let body = with(body, "hyperParameters.topP", Some(json!(0)));
    assert_eq!(deploy(&agent, "greedy", &body).status, 202);
}

#[test]
fn cpu_device_type_is_refused_unless_the_config_allows_it() {
    let config = AgentConfig {
        allow_cpu: false,
        ..AgentConfig::default()
    };
    let agent = Agent::start(config);
    let reply = deploy(&agent, "m", &valid_body());
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(reply.error_field(), Some("deviceType"));
    assert!(reply.text.contains("allow_cpu"), "{}", reply.text);
}
