//! The deploy-body parsers in-process: arbitrary JSON (and arbitrary bytes) never panic and
//! never yield anything but 400 or 422; near-valid bodies (each field at, just inside or
//! just outside its documented range, or of a wrong type) are accepted only when every
//! accepted value is within the documented ranges (`gpu_agent::validation`).

use gpu_agent::api::{kore, lucidworks, native, openai};
use gpu_agent::deployment::spec::DeploymentSpec;
use gpu_agent::error::ApiError;
use gpu_agent::gpu::DeviceCatalog;
use gpu_agent::validation::{self as rules, FloatRange, IntRange};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

fn catalog() -> DeviceCatalog {
    DeviceCatalog::built_in(true).expect("the built-in catalog parses")
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Mostly the real keys, so generated bodies reach deep into the parser.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "name",
            "isDeployedPreviously",
            "isDeployedPreviouly",
            "hyperParameters",
            "temperature",
            "maxTokens",
            "topP",
            "topK",
            "stopSequence",
            "scalingParameters",
            "maxBatchSize",
            "minReplicas",
            "maxReplicas",
            "scaleUpDelay",
            "scaleDownDelay",
            "deviceType",
            "optimizationInfo",
            "optimizationType",
            "quantizationType",
            "modelId",
            "config",
            "region",
            "prompt",
            "parameters",
            "seed",
            "stream",
            "model",
            "stop",
            "n",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z]{1,8}",
    ]
}

/// A valid Kore body with some fields replaced by arbitrary values.
fn mutated_kore_body() -> impl Strategy<Value = Value> {
    let paths = prop::sample::subsequence(
        vec![
            "/name",
            "/hyperParameters/temperature",
            "/hyperParameters/maxTokens",
            "/hyperParameters/topP",
            "/hyperParameters/topK",
            "/hyperParameters/stopSequence",
            "/scalingParameters/maxBatchSize",
            "/scalingParameters/minReplicas",
            "/scalingParameters/maxReplicas",
            "/deviceType",
            "/optimizationInfo/optimizationType",
            "/optimizationInfo/quantizationType",
        ],
        0..4,
    );
    (paths, prop::collection::vec(arbitrary_json(), 4)).prop_map(|(paths, values)| {
        let mut body = json!({
            "name": "n",
            "hyperParameters": {"temperature": 0.5, "maxTokens": 8, "topP": 0.9, "topK": 5, "stopSequence": []},
            "scalingParameters": {"maxBatchSize": 4, "minReplicas": 1, "maxReplicas": 1},
            "deviceType": "g5.xlarge",
            "optimizationInfo": {"optimizationType": "", "quantizationType": ""}
        });
        for (path, value) in paths.into_iter().zip(values) {
            if let Some(slot) = body.pointer_mut(path) {
                *slot = value;
            }
        }
        body
    })
}

/// Values around an integer range: its ends, one past each, the middle, and near misses of
/// the wrong kind (a fraction, a numeric string, null).
fn around_int(range: IntRange) -> impl Strategy<Value = Value> {
    let (min, max) = (range.min, range.max);
    prop_oneof![
        prop::sample::select(vec![
            json!(min - 1),
            json!(min),
            json!(min + 1),
            json!(max - 1),
            json!(max),
            json!(max + 1),
            json!(min as f64 + 0.5),
            json!(max.to_string()),
            Value::Null,
        ]),
        (min..=max).prop_map(|v| json!(v)),
    ]
}

/// Values around a real range: its ends, just past each, inside, and wrong kinds.
fn around_float(range: FloatRange) -> impl Strategy<Value = Value> {
    let (min, max) = (range.min, range.max);
    prop_oneof![
        prop::sample::select(vec![
            json!(min),
            json!(max),
            json!(min - 1e-6),
            json!(max + 1e-6),
            json!(-1),
            json!(max.to_string()),
            Value::Null,
        ]),
        (min..=max).prop_map(|v| json!(v)),
    ]
}

/// Stop sequences: up to one more than allowed, of lengths around the allowed bytes.
fn around_stop_sequences() -> impl Strategy<Value = Value> {
    let max_count = rules::STOP_SEQUENCE_COUNT.max as usize + 1;
    let max_bytes = rules::STOP_SEQUENCE_BYTES.max as usize + 1;
    prop::collection::vec(
        prop_oneof![
            (0..=max_bytes).prop_map(|n| json!("s".repeat(n))),
            Just(json!(
                "é".repeat(rules::STOP_SEQUENCE_BYTES.max as usize / 2 + 1)
            )),
            Just(json!(7)),
        ],
        0..=max_count,
    )
    .prop_map(Value::Array)
}

fn around_name() -> impl Strategy<Value = Value> {
    let max = rules::NAME_CHARS.max as usize;
    prop::sample::select(vec![
        json!(""),
        json!("n"),
        json!("n".repeat(max)),
        json!("n".repeat(max + 1)),
        json!(3),
    ])
}

/// A valid Kore body in which up to four fields are replaced by values at or just beyond
/// their documented limits; a field may also be left out.
fn near_valid_kore_body() -> impl Strategy<Value = Value> {
    let generation = (
        around_name(),
        around_float(rules::TEMPERATURE),
        around_int(rules::MAX_TOKENS),
        around_float(rules::TOP_P),
        around_int(rules::TOP_K),
        around_stop_sequences(),
    );
    let scaling = (
        around_int(rules::MAX_BATCH_SIZE),
        around_int(rules::MIN_REPLICAS),
        around_int(rules::MAX_REPLICAS),
        around_int(rules::SCALE_UP_DELAY),
        around_int(rules::SCALE_DOWN_DELAY),
    );
    let placement = (
        prop::sample::select(vec![
            json!("cpu"),
            json!("g5.xlarge"),
            json!("g4dn.xlarge"),
            json!("g9.huge"),
            json!(""),
        ]),
        prop::sample::select(
            rules::OPTIMIZATION_TYPES
                .iter()
                .map(|t| json!(t))
                .chain([json!("onnx")])
                .collect::<Vec<_>>(),
        ),
        prop::sample::select(
            rules::QUANTIZATION_TYPES
                .iter()
                .map(|t| json!(t))
                .chain([json!("int4")])
                .collect::<Vec<_>>(),
        ),
    );
    let chosen = prop::collection::vec((0..14usize, any::<bool>()), 0..5);
    (generation, scaling, placement, chosen).prop_map(|(g, s, p, chosen)| {
        let values = [
            g.0, g.1, g.2, g.3, g.4, g.5, s.0, s.1, s.2, s.3, s.4, p.0, p.1, p.2,
        ];
        let paths = [
            "/name",
            "/hyperParameters/temperature",
            "/hyperParameters/maxTokens",
            "/hyperParameters/topP",
            "/hyperParameters/topK",
            "/hyperParameters/stopSequence",
            "/scalingParameters/maxBatchSize",
            "/scalingParameters/minReplicas",
            "/scalingParameters/maxReplicas",
            "/scalingParameters/scaleUpDelay",
            "/scalingParameters/scaleDownDelay",
            "/deviceType",
            "/optimizationInfo/optimizationType",
            "/optimizationInfo/quantizationType",
        ];
        let mut body = json!({
            "name": "n",
            "hyperParameters": {"temperature": 0.5, "maxTokens": 8, "topP": 0.9, "topK": 5, "stopSequence": []},
            "scalingParameters": {"maxBatchSize": 4, "minReplicas": 1, "maxReplicas": 2, "scaleUpDelay": 100, "scaleDownDelay": 500},
            "deviceType": "g5.xlarge",
            "optimizationInfo": {"optimizationType": "", "quantizationType": ""}
        });
        for (index, remove) in chosen {
            let (parent, key) = paths[index].rsplit_once('/').expect("a path");
            let parent = body.pointer_mut(parent).expect("parent").as_object_mut().expect("object");
            if remove {
                parent.remove(key);
            } else {
                parent.insert(key.to_owned(), values[index].clone());
            }
        }
        body
    })
}

fn within_int(range: IntRange, value: u32, what: &str) -> Result<(), TestCaseError> {
    let value = i64::from(value);
    prop_assert!(
        range.min <= value && value <= range.max,
        "{what} {value} accepted outside {range:?}"
    );
    Ok(())
}

/// Every value of an accepted deploy is one the documentation allows.
fn assert_within_documented_ranges(spec: &DeploymentSpec) -> Result<(), TestCaseError> {
    let g = &spec.generation;
    let chars = spec.name.chars().count() as u32;
    within_int(rules::NAME_CHARS, chars, "name length")?;
    for (range, value, what) in [
        (rules::TEMPERATURE, g.temperature, "temperature"),
        (rules::TOP_P, g.top_p, "topP"),
    ] {
        let value = f64::from(value);
        prop_assert!(
            range.min <= value && value <= range.max,
            "{what} {value} accepted outside {range:?}"
        );
    }
    within_int(rules::TOP_K, g.top_k, "topK")?;
    within_int(rules::MAX_TOKENS, g.max_tokens, "maxTokens")?;
    within_int(
        rules::STOP_SEQUENCE_COUNT,
        g.stop_sequences.len() as u32,
        "stop sequences",
    )?;
    for stop in &g.stop_sequences {
        within_int(
            rules::STOP_SEQUENCE_BYTES,
            stop.len() as u32,
            "stop sequence bytes",
        )?;
    }
    let s = &spec.scaling;
    within_int(rules::MAX_BATCH_SIZE, s.max_batch_size, "maxBatchSize")?;
    within_int(rules::MIN_REPLICAS, s.min_replicas, "minReplicas")?;
    within_int(rules::MAX_REPLICAS, s.max_replicas, "maxReplicas")?;
    prop_assert!(s.min_replicas <= s.max_replicas, "{s:?}");
    within_int(rules::SCALE_UP_DELAY, s.scale_up_delay_ms, "scaleUpDelay")?;
    within_int(
        rules::SCALE_DOWN_DELAY,
        s.scale_down_delay_ms,
        "scaleDownDelay",
    )?;
    prop_assert!(
        catalog().names().contains(&spec.device_type.as_str()),
        "device {} accepted",
        spec.device_type
    );
    Ok(())
}

fn client_error(result: Result<impl Sized, ApiError>) -> Result<(), TestCaseError> {
    if let Err(error) = result {
        let status = error.status.as_u16();
        prop_assert!(status == 400 || status == 422, "status {status}: {error}");
        prop_assert!(!error.message.is_empty());
        if status == 422 {
            prop_assert!(error.field.is_some(), "a 422 names its field: {error}");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn kore_deploy_parser_answers_any_json_with_success_400_or_422(body in arbitrary_json()) {
        let bytes = body.to_string();
        let result = kore::parse_deploy_request("m", Some("openSource"), bytes.as_bytes(), &catalog());
        if let Ok(spec) = &result {
            assert_within_documented_ranges(spec)?;
        }
        client_error(result)?;
    }

    #[test]
    fn kore_deploy_parser_answers_mutated_valid_bodies_with_success_400_or_422(body in mutated_kore_body()) {
        let bytes = body.to_string();
        let result = kore::parse_deploy_request("m", None, bytes.as_bytes(), &catalog());
        if let Ok(spec) = &result {
            assert_within_documented_ranges(spec)?;
        }
        client_error(result)?;
    }

    #[test]
    fn kore_deploy_parser_accepts_near_valid_bodies_only_within_the_documented_ranges(body in near_valid_kore_body()) {
        let bytes = body.to_string();
        let result = kore::parse_deploy_request("m", None, bytes.as_bytes(), &catalog());
        match &result {
            Ok(spec) => assert_within_documented_ranges(spec)?,
            Err(_) => client_error(result)?,
        }
    }

    #[test]
    fn kore_deploy_parser_answers_arbitrary_bytes_and_path_values(
        bytes in prop::collection::vec(any::<u8>(), 0..64),
        model in ".{0,12}",
        model_type in prop::option::of(".{0,8}"),
    ) {
        client_error(kore::parse_deploy_request(&model, model_type.as_deref(), &bytes, &catalog()))?;
    }

    #[test]
    fn other_body_parsers_answer_any_json_with_success_400_or_422(body in arbitrary_json()) {
        let bytes = body.to_string();
        client_error(lucidworks::parse_create_request(bytes.as_bytes(), &catalog()))?;
        client_error(native::parse_generate_body(bytes.as_bytes()))?;
        client_error(openai::parse_completion_request(bytes.as_bytes()))?;
    }
}

/// The near-valid generator reaches both sides of the documented limits: a good share of
/// its bodies is accepted (and so inspected above), a good share refused.
#[test]
fn near_valid_bodies_are_often_accepted_and_often_refused() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = near_valid_kore_body();
    let cases = 400;
    let accepted = (0..cases)
        .filter(|_| {
            let body = strategy.new_tree(&mut runner).expect("a body").current();
            kore::parse_deploy_request("m", None, body.to_string().as_bytes(), &catalog()).is_ok()
        })
        .count();
    assert!(
        (cases / 5..=cases * 4 / 5).contains(&accepted),
        "{accepted} of {cases} accepted"
    );
}

/// A handful of the same bodies through the real binary: the answer is never a 5xx and the
/// agent keeps serving.
#[test]
fn arbitrary_deploy_bodies_over_http_are_never_answered_with_a_server_error() {
    use crate::support::{Agent, AgentConfig};
    use proptest::test_runner::{Config, TestRunner};
    // Offline: a body that happens to be valid fails fast in FETCHING instead of going out.
    let agent = Agent::start_with_env(AgentConfig::default(), &[("HF_HUB_OFFLINE", "1")]);
    let mut runner = TestRunner::new(Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    });
    let bodies = prop_oneof![arbitrary_json(), mutated_kore_body()];
    let outcome = runner.run(&bodies, |body| {
        let reply = agent.post_json("/api/public/models/prop-model/deploy", &body);
        prop_assert!(
            matches!(reply.status, 202 | 400 | 409 | 422),
            "{body} → {} {}",
            reply.status,
            reply.text
        );
        prop_assert!(reply.json["error"]["code"].is_string() || reply.status == 202);
        Ok(())
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
    assert_eq!(agent.get("/healthz").status, 200);
}
