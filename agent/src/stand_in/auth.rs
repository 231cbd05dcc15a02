//! Stand-in for `auth.rs`: x-api-key (plain or SHA-256, constant-time) and static Bearer
//! tokens with scopes. RS256 JWTs arrive with the real module.

use std::path::PathBuf;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use thiserror::Error;

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    pub api_keys: Vec<String>,
    pub api_key_sha256: Vec<String>,
    pub bearer_tokens: Vec<BearerToken>,
    pub jwt_public_key_pem: Option<PathBuf>,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BearerToken {
    pub token: String,
    #[serde(default)]
    pub scopes: Vec<String>,
}

#[derive(Debug, Error)]
pub enum AuthConfigError {
    #[error("[auth] api_key_sha256 entry {index} is not 64 hex digits")]
    BadDigest { index: usize },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub subject: String,
    pub scopes: Vec<String>,
}

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("credentials are missing")]
    Missing,
    #[error("credentials are not valid")]
    Invalid,
    #[error("credentials have expired")]
    Expired,
    #[error("the token lacks the scope {required}")]
    MissingScope { required: String },
}

impl AuthError {
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "UNAUTHENTICATED",
            AuthError::Invalid => "INVALID_CREDENTIALS",
            AuthError::Expired => "CREDENTIALS_EXPIRED",
            AuthError::MissingScope { .. } => "MISSING_SCOPE",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            AuthError::MissingScope { .. } => 403,
            _ => 401,
        }
    }
}

pub struct Authenticator {
    /// SHA-256 of every accepted key, so plain and hashed keys compare the same way.
    key_digests: Vec<[u8; 32]>,
    bearer: Vec<([u8; 32], Vec<String>)>,
}

fn digest(value: &[u8]) -> [u8; 32] {
    Sha256::digest(value).into()
}

impl Authenticator {
    pub fn new(cfg: &AuthConfig) -> Result<Self, AuthConfigError> {
        let mut key_digests: Vec<[u8; 32]> =
            cfg.api_keys.iter().map(|k| digest(k.as_bytes())).collect();
        for (index, hexed) in cfg.api_key_sha256.iter().enumerate() {
            let bytes =
                hex::decode(hexed.trim()).map_err(|_| AuthConfigError::BadDigest { index })?;
            let array: [u8; 32] = bytes
                .try_into()
                .map_err(|_| AuthConfigError::BadDigest { index })?;
            key_digests.push(array);
        }
        let bearer = cfg
            .bearer_tokens
            .iter()
            .map(|t| (digest(t.token.as_bytes()), t.scopes.clone()))
            .collect();
        Ok(Authenticator {
            key_digests,
            bearer,
        })
    }

    pub fn check_api_key(&self, presented: Option<&str>) -> Result<(), AuthError> {
        let presented = presented.ok_or(AuthError::Missing)?;
        let given = digest(presented.as_bytes());
        let mut found = subtle::Choice::from(0);
        for key in &self.key_digests {
            found |= key.ct_eq(&given);
        }
        if bool::from(found) {
            Ok(())
        } else {
            Err(AuthError::Invalid)
        }
    }

    pub fn check_bearer(
        &self,
        authorization_header: Option<&str>,
        required_scope: &str,
    ) -> Result<Principal, AuthError> {
        let header = authorization_header.ok_or(AuthError::Missing)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or(AuthError::Invalid)?
            .trim();
        let given = digest(token.as_bytes());
        let scopes = self
            .bearer
            .iter()
            .find(|(d, _)| bool::from(d.ct_eq(&given)))
            .map(|(_, scopes)| scopes.clone())
            .ok_or(AuthError::Invalid)?;
        if !scopes.iter().any(|s| s == required_scope) {
            return Err(AuthError::MissingScope {
                required: required_scope.to_owned(),
            });
        }
        Ok(Principal {
            subject: "static-token".to_owned(),
            scopes,
        })
    }
}
