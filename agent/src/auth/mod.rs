//! Request authentication (`docs/api.md`, Authentication): `x-api-key` for the Kore-style
//! and native routes, `Authorization: Bearer` with scopes for the Lucidworks-style routes.
//!
//! Configured secrets are held only as SHA-256 digests and matched in constant time.
//! Bearer tokens are either static (from config, with their scopes) or RS256 JWTs verified
//! against the configured public key. With no keys configured every request is refused:
//! the agent fails closed.

mod digest;
mod error;
mod jwt;

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

pub use digest::sha256;
pub use error::{AuthConfigError, AuthError};
pub use jwt::EXP_LEEWAY_SECS;

use digest::SecretDigest;
use jwt::JwtVerifier;

/// Scope that allows managing Lucidworks-style deployments.
pub const SCOPE_MANAGE: &str = "machinelearning.model";
/// Scope that allows Lucidworks-style predictions.
pub const SCOPE_PREDICT: &str = "machinelearning.predict";

/// The `[auth]` section of `agent.toml`.
#[derive(Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Plain `x-api-key` values; hashed at load and never kept in memory as given.
    pub api_keys: Vec<String>,
    /// `x-api-key` values given as hex SHA-256 digests, so the config file holds no secret.
    pub api_key_sha256: Vec<String>,
    /// Static bearer tokens and the scopes each grants.
    pub bearer_tokens: Vec<BearerToken>,
    /// PEM file holding the RSA public key that signs accepted JWTs (RS256).
    pub jwt_public_key_pem: Option<PathBuf>,
    /// Required `iss` of JWTs, when set.
    pub jwt_issuer: Option<String>,
    /// Required `aud` of JWTs, when set. A token carrying `aud` is refused unless this is
    /// set and matches.
    pub jwt_audience: Option<String>,
}

/// One static bearer token from config.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BearerToken {
    pub token: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The Lucidworks customers this token acts for; absent, every customer (an
    /// operator's token). docs/api.md § Customers.
    #[serde(default)]
    pub customers: Option<Vec<String>>,
}

// Secrets must not reach logs through `{:?}` of the config.
impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field(
                "api_keys",
                &format_args!("[{} redacted]", self.api_keys.len()),
            )
            .field("api_key_sha256", &self.api_key_sha256.len())
            .field("bearer_tokens", &self.bearer_tokens)
            .field("jwt_public_key_pem", &self.jwt_public_key_pem)
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audience", &self.jwt_audience)
            .finish()
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerToken")
            .field("token", &"<redacted>")
            .field("scopes", &self.scopes)
            .field("customers", &self.customers)
            .finish()
    }
}

/// Who a bearer credential belongs to and what it may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// For a static token, `bearer_tokens[i]`; for a JWT, its `sub` claim (or `jwt`).
    pub subject: String,
    pub scopes: Vec<String>,
    pub kind: CredentialKind,
    /// The customers the credential is bound to; `None`: every customer.
    pub customers: Option<Vec<String>>,
}

impl Principal {
    /// Whether the credential may act for `customer`.
    pub(crate) fn acts_for(&self, customer: &str) -> bool {
        self.customers
            .as_ref()
            .is_none_or(|bound| bound.iter().any(|c| c == customer))
    }
}

/// Which kind of bearer credential matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialKind {
    StaticToken,
    Jwt,
}

/// Checks presented credentials against the configured ones.
pub struct Authenticator {
    api_keys: Vec<SecretDigest>,
    bearer_digests: Vec<SecretDigest>,
    bearer_scopes: Vec<Vec<String>>,
    bearer_customers: Vec<Option<Vec<String>>>,
    jwt: Option<JwtVerifier>,
}

impl Authenticator {
    /// Hashes the configured secrets and loads the JWT key; fails on any entry it could not
    /// use, naming it.
    pub fn new(cfg: &AuthConfig) -> Result<Self, AuthConfigError> {
        let mut api_keys = Vec::with_capacity(cfg.api_keys.len() + cfg.api_key_sha256.len());
        for (index, key) in cfg.api_keys.iter().enumerate() {
            if key.is_empty() {
                return Err(AuthConfigError::EmptyApiKey { index });
            }
            api_keys.push(digest::sha256(key));
        }
        for (index, hex_digest) in cfg.api_key_sha256.iter().enumerate() {
            let parsed = digest::parse_hex_digest(hex_digest).ok_or_else(|| {
                AuthConfigError::InvalidKeyHash {
                    index,
                    given: hex_digest.clone(),
                }
            })?;
            api_keys.push(parsed);
        }
        let mut bearer_digests = Vec::with_capacity(cfg.bearer_tokens.len());
        let mut bearer_scopes = Vec::with_capacity(cfg.bearer_tokens.len());
        let mut bearer_customers = Vec::with_capacity(cfg.bearer_tokens.len());
        for (index, entry) in cfg.bearer_tokens.iter().enumerate() {
            if entry.token.is_empty() {
                return Err(AuthConfigError::EmptyBearerToken { index });
            }
            bearer_digests.push(digest::sha256(&entry.token));
            bearer_scopes.push(entry.scopes.clone());
            bearer_customers.push(entry.customers.clone());
        }
        let jwt = match &cfg.jwt_public_key_pem {
            Some(path) => Some(JwtVerifier::load(
                path,
                cfg.jwt_issuer.as_deref(),
                cfg.jwt_audience.as_deref(),
            )?),
            None => {
                if cfg.jwt_issuer.is_some() {
                    return Err(AuthConfigError::JwtClaimWithoutKey { key: "jwt_issuer" });
                }
                if cfg.jwt_audience.is_some() {
                    return Err(AuthConfigError::JwtClaimWithoutKey {
                        key: "jwt_audience",
                    });
                }
                None
            }
        };
        Ok(Authenticator {
            api_keys,
            bearer_digests,
            bearer_scopes,
            bearer_customers,
            jwt,
        })
    }

    /// Checks the value of the `x-api-key` header (`None` when the header is absent).
    pub(crate) fn check_api_key(&self, presented: Option<&str>) -> Result<(), AuthError> {
        let presented = presented.map(str::trim).filter(|key| !key.is_empty());
        let presented = presented.ok_or(AuthError::Missing)?;
        match digest::find(&self.api_keys, presented) {
            Some(_) => Ok(()),
            None => Err(AuthError::Invalid),
        }
    }

    /// Checks an API key sent as `Authorization: Bearer <key>`, as OpenAI's clients send it
    /// (the OpenAI routes only: there a bearer value is an API key, never a scoped token).
    pub(crate) fn check_api_key_as_bearer(
        &self,
        authorization_header: Option<&str>,
    ) -> Result<(), AuthError> {
        let key = bearer_token(authorization_header)?;
        self.check_api_key(Some(key))
    }

    /// Checks an `Authorization` header value and that the credential grants
    /// `required_scope`.
    pub fn check_bearer(
        &self,
        authorization_header: Option<&str>,
        required_scope: &str,
    ) -> Result<Principal, AuthError> {
        let token = bearer_token(authorization_header)?;
        let principal = self.identify(token)?;
        if principal.scopes.iter().any(|scope| scope == required_scope) {
            Ok(principal)
        } else {
            Err(AuthError::MissingScope {
                required: required_scope.to_owned(),
            })
        }
    }

    fn identify(&self, token: &str) -> Result<Principal, AuthError> {
        if let Some(index) = digest::find(&self.bearer_digests, token) {
            return Ok(Principal {
                subject: format!("bearer_tokens[{index}]"),
                scopes: self.bearer_scopes.get(index).cloned().unwrap_or_default(),
                kind: CredentialKind::StaticToken,
                customers: self.bearer_customers.get(index).cloned().flatten(),
            });
        }
        match &self.jwt {
            Some(verifier) if jwt::looks_like_jwt(token) => {
                let verified = verifier.verify(token)?;
                Ok(Principal {
                    subject: verified
                        .subject
                        .map_or_else(|| "jwt".to_owned(), bounded_subject),
                    scopes: verified.scopes,
                    kind: CredentialKind::Jwt,
                    customers: verified.customers,
                })
            }
            _ => Err(AuthError::Invalid),
        }
    }
}

/// Longest JWT `sub` kept as a principal's subject (bytes). It is stored as the Lucidworks
/// `createdBy` and logged, so a token cannot make every record and log line carry an
/// arbitrarily long claim (docs/api.md, limits).
pub(crate) const SUBJECT_MAX_BYTES: usize = 128;

/// `subject` cut to [`SUBJECT_MAX_BYTES`] on a character boundary.
fn bounded_subject(mut subject: String) -> String {
    let kept = crate::validation::prefix_within(&subject, SUBJECT_MAX_BYTES).len();
    subject.truncate(kept);
    subject
}

/// Extracts the token from `Bearer <token>` (scheme case-insensitive, RFC 7235). An absent
/// or blank header is `Missing`; another scheme or an empty token is `Invalid`.
fn bearer_token(header: Option<&str>) -> Result<&str, AuthError> {
    let header = header.map(str::trim).filter(|value| !value.is_empty());
    let header = header.ok_or(AuthError::Missing)?;
    let (scheme, token) = header.split_once(' ').ok_or(AuthError::Invalid)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(AuthError::Invalid);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authenticator() -> Authenticator {
        Authenticator::new(&AuthConfig {
            api_keys: vec!["kg-plain".into()],
            api_key_sha256: vec![hex::encode(sha256("kg-hashed"))],
            bearer_tokens: vec![
                BearerToken {
                    token: "manage-token".into(),
                    scopes: vec![SCOPE_MANAGE.into()],
                    customers: None,
                },
                BearerToken {
                    token: "predict-token".into(),
                    scopes: vec![SCOPE_PREDICT.into()],
                    customers: None,
                },
            ],
            ..AuthConfig::default()
        })
        .expect("valid auth config")
    }

    #[test]
    fn plain_and_hashed_api_keys_are_accepted() {
        let auth = authenticator();
        assert_eq!(auth.check_api_key(Some("kg-plain")), Ok(()));
        assert_eq!(auth.check_api_key(Some("kg-hashed")), Ok(()));
    }

    #[test]
    fn absent_or_blank_api_key_is_missing_and_unknown_is_invalid() {
        let auth = authenticator();
        assert_eq!(auth.check_api_key(None), Err(AuthError::Missing));
        assert_eq!(auth.check_api_key(Some("  ")), Err(AuthError::Missing));
        assert_eq!(
            auth.check_api_key(Some("kg-other")),
            Err(AuthError::Invalid)
        );
        // The digest itself is not a key.
        let digest = hex::encode(sha256("kg-hashed"));
        assert_eq!(auth.check_api_key(Some(&digest)), Err(AuthError::Invalid));
    }

    #[test]
    fn with_no_keys_configured_every_api_key_is_refused() {
        let auth = Authenticator::new(&AuthConfig::default()).expect("empty config is valid");
        assert_eq!(
            auth.check_api_key(Some("anything")),
            Err(AuthError::Invalid)
        );
    }

    #[test]
    fn an_api_key_is_accepted_as_a_bearer_value_and_a_scoped_token_is_not() {
        let auth = authenticator();
        assert_eq!(
            auth.check_api_key_as_bearer(Some("Bearer kg-plain")),
            Ok(())
        );
        assert_eq!(
            auth.check_api_key_as_bearer(Some("bearer kg-hashed")),
            Ok(())
        );
        assert_eq!(
            auth.check_api_key_as_bearer(Some("Bearer predict-token")),
            Err(AuthError::Invalid)
        );
        assert_eq!(auth.check_api_key_as_bearer(None), Err(AuthError::Missing));
        assert_eq!(
            auth.check_api_key_as_bearer(Some("kg-plain")),
            Err(AuthError::Invalid)
        );
    }

    #[test]
    fn static_bearer_token_grants_only_its_scopes() {
        let auth = authenticator();
        let principal = auth
            .check_bearer(Some("Bearer manage-token"), SCOPE_MANAGE)
            .expect("manage token may manage");
        assert_eq!(principal.kind, CredentialKind::StaticToken);
        assert_eq!(principal.subject, "bearer_tokens[0]");
        assert_eq!(
            auth.check_bearer(Some("Bearer manage-token"), SCOPE_PREDICT),
            Err(AuthError::MissingScope {
                required: SCOPE_PREDICT.into()
            })
        );
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_other_schemes_are_invalid() {
        let auth = authenticator();
        assert!(auth
            .check_bearer(Some("bearer predict-token"), SCOPE_PREDICT)
            .is_ok());
        assert!(auth
            .check_bearer(Some("BEARER  predict-token "), SCOPE_PREDICT)
            .is_ok());
        assert_eq!(
            auth.check_bearer(Some("Basic predict-token"), SCOPE_PREDICT),
            Err(AuthError::Invalid)
        );
        assert_eq!(
            auth.check_bearer(Some("predict-token"), SCOPE_PREDICT),
            Err(AuthError::Invalid)
        );
        assert_eq!(
            auth.check_bearer(Some("Bearer "), SCOPE_PREDICT),
            Err(AuthError::Invalid)
        );
        assert_eq!(
            auth.check_bearer(None, SCOPE_PREDICT),
            Err(AuthError::Missing)
        );
        assert_eq!(
            auth.check_bearer(Some("Bearer unknown"), SCOPE_PREDICT),
            Err(AuthError::Invalid)
        );
    }

    #[test]
    fn statuses_and_codes_follow_the_spec() {
        assert_eq!(AuthError::Missing.status(), 401);
        assert_eq!(AuthError::Invalid.status(), 401);
        assert_eq!(AuthError::Expired.status(), 401);
        let scope = AuthError::MissingScope {
            required: SCOPE_MANAGE.into(),
        };
        assert_eq!(scope.status(), 403);
        assert_eq!(scope.code(), "INSUFFICIENT_SCOPE");
        assert!(scope.to_string().contains(SCOPE_MANAGE));
        assert_eq!(AuthError::Missing.code(), "UNAUTHENTICATED");
    }

    #[test]
    fn config_errors_name_the_entry() {
        let bad_hash = AuthConfig {
            api_key_sha256: vec!["nothex".into()],
            ..AuthConfig::default()
        };
        let message = Authenticator::new(&bad_hash).err().map(|e| e.to_string());
        assert!(message.is_some_and(|m| m.contains("api_key_sha256[0]") && m.contains("nothex")));
        let empty = AuthConfig {
            api_keys: vec!["ok".into(), String::new()],
            ..AuthConfig::default()
        };
        let message = Authenticator::new(&empty).err().map(|e| e.to_string());
        assert!(message.is_some_and(|m| m.contains("api_keys[1]")));
        let issuer_only = AuthConfig {
            jwt_issuer: Some("https://issuer".into()),
            ..AuthConfig::default()
        };
        assert!(matches!(
            Authenticator::new(&issuer_only),
            Err(AuthConfigError::JwtClaimWithoutKey { key: "jwt_issuer" })
        ));
    }

    #[test]
    fn debug_output_of_the_config_holds_no_secret() {
        let shown = format!(
            "{:?}",
            AuthConfig {
                api_keys: vec!["kg-secret-value".into()],
                bearer_tokens: vec![BearerToken {
                    token: "tok-secret-value".into(),
                    scopes: vec![],
                    customers: None,
                }],
                ..AuthConfig::default()
            }
        );
        assert!(!shown.contains("secret-value"), "{shown}");
    }
}
