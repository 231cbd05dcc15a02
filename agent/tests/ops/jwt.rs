//! RS256 bearer tokens signed with the committed test-only key pair
//! (`tests/fixtures/jwt/`), verified by `Authenticator` against the public half.

use std::time::{SystemTime, UNIX_EPOCH};

use gpu_agent::auth::{
    AuthConfig, AuthConfigError, AuthError, Authenticator, CredentialKind, SCOPE_MANAGE,
    SCOPE_PREDICT,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::common::fixture;

const ISSUER: &str = "https://issuer.test";
const AUDIENCE: &str = "gpu-agent";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

fn sign_with(private_pem: &str, claims: &Value) -> String {
    let pem = std::fs::read(fixture(private_pem)).expect("test private key is committed");
    let key = EncodingKey::from_rsa_pem(&pem).expect("test private key parses");
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &key).expect("token signs")
}

fn sign(claims: &Value) -> String {
    sign_with("jwt/test-rsa-private.pem", claims)
}

fn config(issuer: Option<&str>, audience: Option<&str>) -> AuthConfig {
    AuthConfig {
        jwt_public_key_pem: Some(fixture("jwt/test-rsa-public.pem")),
        jwt_issuer: issuer.map(str::to_owned),
        jwt_audience: audience.map(str::to_owned),
        ..AuthConfig::default()
    }
}

fn authenticator() -> Authenticator {
    Authenticator::new(&config(None, None)).expect("public key loads")
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[test]
fn valid_jwt_with_space_separated_scopes_is_accepted() {
    let token = sign(&json!({
        "sub": "svc-indexer",
        "exp": now() + 600,
        "scope": format!("{SCOPE_MANAGE} {SCOPE_PREDICT}"),
    }));
    let principal = authenticator()
        .check_bearer(Some(&bearer(&token)), SCOPE_PREDICT)
        .expect("valid token");
    assert_eq!(principal.subject, "svc-indexer");
    assert_eq!(principal.kind, CredentialKind::Jwt);
    assert_eq!(principal.scopes, vec![SCOPE_MANAGE, SCOPE_PREDICT]);
}

#[test]
fn a_long_sub_claim_is_kept_to_its_first_128_bytes() {
    let sub = "é".repeat(5_000);
    let token = sign(&json!({"sub": sub, "exp": now() + 600, "scope": SCOPE_MANAGE}));
    let principal = authenticator()
        .check_bearer(Some(&bearer(&token)), SCOPE_MANAGE)
        .expect("valid token");
    assert_eq!(principal.subject.len(), 128);
    assert!(sub.starts_with(&principal.subject));
}

#[test]
fn scope_claim_given_as_an_array_is_accepted() {
    let token = sign(&json!({ "exp": now() + 600, "scope": [SCOPE_MANAGE] }));
    assert!(authenticator()
        .check_bearer(Some(&bearer(&token)), SCOPE_MANAGE)
        .is_ok());
}

#[test]
fn expired_jwt_is_expired() {
    let token = sign(&json!({ "exp": now() - 3600, "scope": SCOPE_PREDICT }));
    let refused = authenticator().check_bearer(Some(&bearer(&token)), SCOPE_PREDICT);
    assert_eq!(refused, Err(AuthError::Expired));
    assert_eq!(AuthError::Expired.status(), 401);
}

#[test]
fn jwt_without_exp_is_invalid() {
    let token = sign(&json!({ "scope": SCOPE_PREDICT }));
    let refused = authenticator().check_bearer(Some(&bearer(&token)), SCOPE_PREDICT);
    assert_eq!(refused, Err(AuthError::Invalid));
}

#[test]
fn jwt_signed_by_another_key_is_invalid_even_when_expired() {
    let other = "jwt/test-rsa-other-private.pem";
    let fresh = sign_with(
        other,
        &json!({ "exp": now() + 600, "scope": SCOPE_PREDICT }),
    );
    let stale = sign_with(
        other,
        &json!({ "exp": now() - 3600, "scope": SCOPE_PREDICT }),
    );
    let auth = authenticator();
    assert_eq!(
        auth.check_bearer(Some(&bearer(&fresh)), SCOPE_PREDICT),
        Err(AuthError::Invalid)
    );
    // Expiry is reported only for tokens whose signature checks out.
    assert_eq!(
        auth.check_bearer(Some(&bearer(&stale)), SCOPE_PREDICT),
        Err(AuthError::Invalid)
    );
}

#[test]
fn jwt_without_the_route_scope_is_forbidden() {
    let token = sign(&json!({ "exp": now() + 600, "scope": SCOPE_PREDICT }));
    let refused = authenticator().check_bearer(Some(&bearer(&token)), SCOPE_MANAGE);
    assert_eq!(
        refused,
        Err(AuthError::MissingScope {
            required: SCOPE_MANAGE.to_owned()
        })
    );
    let no_scope = sign(&json!({ "exp": now() + 600 }));
    let refused = authenticator().check_bearer(Some(&bearer(&no_scope)), SCOPE_MANAGE);
    assert_eq!(refused.map_err(|e| e.status()), Err(403));
}

#[test]
fn hs256_token_is_refused_even_when_keyed_with_the_public_key() {
    // The algorithm-confusion attack: an HMAC token keyed with the public PEM.
    let public = std::fs::read(fixture("jwt/test-rsa-public.pem")).expect("public key");
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({ "exp": now() + 600, "scope": SCOPE_PREDICT }),
        &EncodingKey::from_secret(&public),
    )
    .expect("token signs");
    let refused = authenticator().check_bearer(Some(&bearer(&token)), SCOPE_PREDICT);
    assert_eq!(refused, Err(AuthError::Invalid));
}

#[test]
fn malformed_tokens_and_headers_are_refused() {
    let auth = authenticator();
    let token = sign(&json!({ "exp": now() + 600, "scope": SCOPE_PREDICT }));
    let mut tampered = token.clone();
    tampered.push('x');
    for header in [
        bearer("a.b.c"),
        bearer("not-a-jwt"),
        bearer(&tampered),
        format!("Token {token}"),
        token.clone(),
    ] {
        assert_eq!(
            auth.check_bearer(Some(&header), SCOPE_PREDICT),
            Err(AuthError::Invalid),
            "{header}"
        );
    }
    assert_eq!(
        auth.check_bearer(None, SCOPE_PREDICT),
        Err(AuthError::Missing)
    );
}

#[test]
fn issuer_and_audience_are_enforced_when_configured() {
    let auth = Authenticator::new(&config(Some(ISSUER), Some(AUDIENCE))).expect("key loads");
    let check = |claims: Value| auth.check_bearer(Some(&bearer(&sign(&claims))), SCOPE_PREDICT);
    let exp = now() + 600;
    assert!(
        check(json!({ "exp": exp, "iss": ISSUER, "aud": AUDIENCE, "scope": SCOPE_PREDICT }))
            .is_ok()
    );
    assert_eq!(
        check(
            json!({ "exp": exp, "iss": "https://other", "aud": AUDIENCE, "scope": SCOPE_PREDICT })
        ),
        Err(AuthError::Invalid)
    );
    assert_eq!(
        check(json!({ "exp": exp, "iss": ISSUER, "aud": "other", "scope": SCOPE_PREDICT })),
        Err(AuthError::Invalid)
    );
    assert_eq!(
        check(json!({ "exp": exp, "scope": SCOPE_PREDICT })),
        Err(AuthError::Invalid),
        "iss and aud become required once configured"
    );
}

#[test]
fn unreadable_or_non_rsa_public_key_fails_at_load_naming_the_file() {
    let missing = AuthConfig {
        jwt_public_key_pem: Some(fixture("jwt/does-not-exist.pem")),
        ..AuthConfig::default()
    };
    let err = Authenticator::new(&missing).err();
    assert!(matches!(err, Some(AuthConfigError::ReadPublicKey { .. })));
    assert!(err.is_some_and(|e| e.to_string().contains("does-not-exist.pem")));

    let not_a_key = AuthConfig {
        jwt_public_key_pem: Some(fixture("golden.json")),
        ..AuthConfig::default()
    };
    let err = Authenticator::new(&not_a_key).err();
    assert!(matches!(
        err,
        Some(AuthConfigError::InvalidPublicKey { .. })
    ));
}
