//! What can go wrong when a request presents credentials, and when the `[auth]` section is
//! loaded.

use std::path::PathBuf;

/// Why a request's credentials were refused. Each variant maps to one status and one error
/// code of `docs/api.md` (Authentication), and its message tells the caller what to send instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(
        "credentials are missing: send the API key in the `x-api-key` header, or a bearer \
         token as `Authorization: Bearer <token>` on the Lucidworks-style routes"
    )]
    Missing,
    #[error(
        "credentials were not recognised: check the API key or bearer token you sent \
         (bearer tokens go in `Authorization: Bearer <token>`)"
    )]
    Invalid,
    #[error("the bearer token has expired: obtain a fresh token and send it as `Authorization: Bearer <token>`")]
    Expired,
    #[error("the bearer token lacks the scope `{required}` this route requires: use a token granted `{required}`")]
    MissingScope { required: String },
    #[error("this credential is not bound to the customer in the path")]
    OtherCustomer,
}

impl AuthError {
    /// The `error.code` of the error body (`docs/api.md`, Common rules).
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "UNAUTHENTICATED",
            AuthError::Invalid => "INVALID_CREDENTIALS",
            AuthError::Expired => "TOKEN_EXPIRED",
            AuthError::MissingScope { .. } | AuthError::OtherCustomer => "INSUFFICIENT_SCOPE",
        }
    }

    /// The HTTP status: 401 for absent or unusable credentials, 403 for a valid token
    /// without the route's scope or bound to other customers.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::Missing | AuthError::Invalid | AuthError::Expired => 401,
            AuthError::MissingScope { .. } | AuthError::OtherCustomer => 403,
        }
    }
}

/// Why the `[auth]` section of the config cannot be used. The agent refuses to start rather
/// than run with credentials it cannot check.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error("auth.api_keys[{index}] is empty: remove it or give a non-empty key")]
    EmptyApiKey { index: usize },
    #[error(
        "auth.api_key_sha256[{index}] must be 64 hexadecimal characters (the SHA-256 of the \
         key, e.g. from `printf %s KEY | sha256sum`); given {given:?}"
    )]
    InvalidKeyHash { index: usize, given: String },
    #[error("auth.bearer_tokens[{index}].token is empty: remove the entry or give a token")]
    EmptyBearerToken { index: usize },
    #[error("cannot read auth.jwt_public_key_pem {path}: {source}")]
    ReadPublicKey {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("auth.jwt_public_key_pem {path} is not an RSA public key in PEM form: {reason}")]
    InvalidPublicKey { path: PathBuf, reason: String },
    #[error("auth.{key} is set but auth.jwt_public_key_pem is not: JWTs cannot be checked without the key")]
    JwtClaimWithoutKey { key: &'static str },
}
