//! Credentials per surface: `x-api-key` for Kore and native routes, `Authorization:
//! Bearer` with a scope for Lucidworks routes. The checks themselves live in
//! [`crate::auth`]; this module picks the header and shapes the refusal.

use axum::http::{HeaderMap, StatusCode};

use crate::auth::{AuthError, Authenticator, Principal};
pub use crate::auth::{SCOPE_MANAGE, SCOPE_PREDICT};
use crate::error::ApiError;

/// The request must carry an accepted `x-api-key` (header names are case-insensitive).
pub fn require_api_key(auth: &Authenticator, headers: &HeaderMap) -> Result<(), ApiError> {
    let presented = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    auth.check_api_key(presented).map_err(denied)
}

/// The request must carry a Bearer token (static or JWT) holding `scope`.
pub fn require_scope(
    auth: &Authenticator,
    headers: &HeaderMap,
    scope: &str,
) -> Result<Principal, ApiError> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    auth.check_bearer(header, scope).map_err(denied)
}

fn denied(error: AuthError) -> ApiError {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    ApiError::new(status, error.code(), error.to_string())
}
