//! Credentials: x-api-key on Kore and native routes, Bearer with scopes on Lucidworks
//! routes; open health routes.

use serde_json::json;

use crate::support::{Agent, AgentConfig, API_KEY, LW_PREDICT_ONLY, LW_TOKEN};

#[test]
fn kore_and_native_routes_need_a_known_api_key() {
    let agent = Agent::start(AgentConfig::default());
    let routes = [
        ("POST", "/api/public/models/m/deploy"),
        ("POST", "/api/public/models/m/undeploy"),
        ("GET", "/api/public/dock-status/ds-x"),
        ("GET", "/v1/deployments"),
        ("GET", "/v1/deployments/m"),
        ("POST", "/v1/deployments/m/generate"),
        ("GET", "/v1/gpus"),
    ];
    for (method, path) in routes {
        let body = json!({});
        let missing = agent.request(method, path, &[], Some(&body));
        assert_eq!(
            missing.status, 401,
            "{method} {path} without a key: {}",
            missing.text
        );
        assert_eq!(missing.error_code(), "UNAUTHENTICATED");
        let wrong = agent.request(method, path, &[("x-api-key", "kg-wrong")], Some(&body));
        assert_eq!(
            wrong.status, 401,
            "{method} {path} with a wrong key: {}",
            wrong.text
        );
        assert_eq!(wrong.error_code(), "INVALID_CREDENTIALS");
    }
}

#[test]
fn the_api_key_header_name_is_case_insensitive() {
    let agent = Agent::start(AgentConfig::default());
    let reply = agent.request("GET", "/v1/deployments", &[("X-API-KEY", API_KEY)], None);
    assert_eq!(reply.status, 200, "{}", reply.text);
}

#[test]
fn api_keys_may_be_configured_as_sha256_digests() {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(b"kg-hashed-key"));
    let agent = Agent::start_with_env(
        AgentConfig::default(),
        &[("GPU_AGENT_AUTH__API_KEY_SHA256", &format!("[\"{digest}\"]"))],
    );
    let reply = agent.request(
        "GET",
        "/v1/deployments",
        &[("x-api-key", "kg-hashed-key")],
        None,
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    let plain = agent.request("GET", "/v1/deployments", &[("x-api-key", API_KEY)], None);
    assert_eq!(plain.status, 200, "plain keys still work: {}", plain.text);
}

#[test]
fn lucidworks_routes_need_a_bearer_token_with_the_right_scope() {
    let agent = Agent::start(AgentConfig::default());
    let manage = "/customers/acme/ai/deployments";
    let missing = agent.request("GET", manage, &[], None);
    assert_eq!(missing.status, 401, "{}", missing.text);
    let unknown = agent.request(
        "GET",
        manage,
        &[("authorization", "Bearer not-a-token")],
        None,
    );
    assert_eq!(unknown.status, 401, "{}", unknown.text);
    let api_key_is_not_enough = agent.request("GET", manage, &[("x-api-key", API_KEY)], None);
    assert_eq!(api_key_is_not_enough.status, 401);
    let predict_only = format!("Bearer {LW_PREDICT_ONLY}");
    let wrong_scope = agent.request(
        "GET",
        manage,
        &[("authorization", predict_only.as_str())],
        None,
    );
    assert_eq!(wrong_scope.status, 403, "{}", wrong_scope.text);
    assert_eq!(wrong_scope.error_code(), "INSUFFICIENT_SCOPE");
    let full = format!("Bearer {LW_TOKEN}");
    assert_eq!(
        agent
            .request("GET", manage, &[("authorization", full.as_str())], None)
            .status,
        200
    );
    let predict = "/ai/prediction/passthrough/x";
    let body = json!({"batch": [{"text": "hi"}]});
    assert_eq!(agent.request("POST", predict, &[], Some(&body)).status, 401);
    let predicted = agent.request(
        "POST",
        predict,
        &[("authorization", predict_only.as_str())],
        Some(&body),
    );
    assert_eq!(
        predicted.status, 404,
        "the predict scope suffices; the deployment is unknown: {}",
        predicted.text
    );
}

#[test]
fn health_routes_are_open_and_metrics_are_open_on_loopback() {
    let agent = Agent::start(AgentConfig::default());
    assert_eq!(agent.get("/healthz").status, 200);
    assert_eq!(agent.get("/readyz").status, 200);
    let metrics = agent.get("/metrics");
    assert_eq!(metrics.status, 200, "{}", metrics.text);
    assert!(metrics
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
}

/// An RS256 token signed with the committed test-only key (`tests/fixtures/jwt/`).
fn jwt(private_pem: &str, claims: &serde_json::Value) -> String {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let pem = std::fs::read(crate::support::fixtures().join("jwt").join(private_pem))
        .expect("test key is committed");
    let key = EncodingKey::from_rsa_pem(&pem).expect("test key parses");
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &key).expect("token signs")
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[test]
fn lucidworks_jwts_are_checked_for_signature_expiry_and_scope() {
    let public = crate::support::fixtures().join("jwt/test-rsa-public.pem");
    let agent = Agent::start(AgentConfig::default().jwt_public_key(&public));
    let manage = "/customers/acme/ai/deployments";
    let get = |token: &str| {
        let header = format!("Bearer {token}");
        agent.request("GET", manage, &[("authorization", header.as_str())], None)
    };
    let fresh = jwt(
        "test-rsa-private.pem",
        &json!({"sub": "lw-indexer", "exp": unix_now() + 600, "scope": "machinelearning.model machinelearning.predict"}),
    );
    let ok = get(&fresh);
    assert_eq!(ok.status, 200, "{}", ok.text);

    // Past exp by more than the 60 s leeway.
    let expired = jwt(
        "test-rsa-private.pem",
        &json!({"exp": unix_now() - 3600, "scope": "machinelearning.model"}),
    );
    let reply = get(&expired);
    assert_eq!(reply.status, 401, "{}", reply.text);
    assert_eq!(reply.error_code(), "TOKEN_EXPIRED");

    let predict_only = jwt(
        "test-rsa-private.pem",
        &json!({"exp": unix_now() + 600, "scope": "machinelearning.predict"}),
    );
    let reply = get(&predict_only);
    assert_eq!(reply.status, 403, "{}", reply.text);
    assert_eq!(reply.error_code(), "INSUFFICIENT_SCOPE");

    let forged = jwt(
        "test-rsa-other-private.pem",
        &json!({"exp": unix_now() + 600, "scope": "machinelearning.model"}),
    );
    let reply = get(&forged);
    assert_eq!(reply.status, 401, "{}", reply.text);
    assert_eq!(reply.error_code(), "INVALID_CREDENTIALS");
}

#[test]
fn a_jwt_names_who_created_a_lucidworks_deployment() {
    let public = crate::support::fixtures().join("jwt/test-rsa-public.pem");
    let agent = Agent::start(AgentConfig::default().jwt_public_key(&public));
    let token = jwt(
        "test-rsa-private.pem",
        &json!({"sub": "lw-indexer", "exp": unix_now() + 600, "scope": "machinelearning.model"}),
    );
    let header = format!("Bearer {token}");
    let body = json!({"modelId": "m", "region": "r", "config": {"deviceType": "cpu"}});
    let created = agent.request(
        "POST",
        "/customers/acme/ai/deployments",
        &[("authorization", header.as_str())],
        Some(&body),
    );
    assert_eq!(created.status, 200, "{}", created.text);
    assert_eq!(created.json["createdBy"], "lw-indexer");
}
