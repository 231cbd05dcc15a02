//! The deploy-body parsers in-process: arbitrary JSON (and arbitrary bytes) never panic and
//! never yield anything but 400 or 422.

use gpu_agent::api::{kore, lucidworks, native, openai};
use gpu_agent::error::ApiError;
use gpu_agent::gpu::DeviceCatalog;
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
        client_error(kore::parse_deploy_request("m", Some("openSource"), bytes.as_bytes(), &catalog()))?;
    }

    #[test]
    fn kore_deploy_parser_answers_mutated_valid_bodies_with_success_400_or_422(body in mutated_kore_body()) {
        let bytes = body.to_string();
        client_error(kore::parse_deploy_request("m", None, bytes.as_bytes(), &catalog()))?;
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
