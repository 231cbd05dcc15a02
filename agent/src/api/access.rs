//! Credentials per surface, as extractors: a handler that takes [`ApiKey`] runs only for a
//! request with an accepted `x-api-key` (Kore and native routes), [`OpenAiKey`] for the
//! same key in `x-api-key` or `Authorization: Bearer` (OpenAI routes); one that takes
//! [`Bearer<Manage>`] or [`Bearer<Predict>`] only for a Bearer token holding that scope
//! (Lucidworks routes). The checks themselves (digests compared in constant time, JWTs)
//! live in [`crate::auth`]; this module picks the header and shapes the refusal
//! (`docs/api.md`, Authentication).

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};

use crate::app_state::SharedState;
use crate::auth::{AuthError, Authenticator, Principal, SCOPE_MANAGE, SCOPE_PREDICT};
use crate::error::ApiError;

/// The request carried an accepted `x-api-key`.
pub struct ApiKey;

impl FromRequestParts<SharedState> for ApiKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        require_api_key(&state.auth, &parts.headers).map(|()| ApiKey)
    }
}

/// The request must carry an accepted `x-api-key` (header names are case-insensitive).
/// For routes whose need of a key depends on the request (`/metrics`); the others take
/// [`ApiKey`].
pub(crate) fn require_api_key(auth: &Authenticator, headers: &HeaderMap) -> Result<(), ApiError> {
    let presented = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    auth.check_api_key(presented).map_err(ApiError::from)
}

/// The request carried an accepted API key, in `x-api-key` or, as OpenAI's clients send
/// it, in `Authorization: Bearer <key>` (OpenAI routes). When `x-api-key` is present it
/// alone is checked, so one request never has two answers.
pub(crate) struct OpenAiKey;

impl FromRequestParts<SharedState> for OpenAiKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        let headers = &parts.headers;
        let checked = match headers.get("x-api-key") {
            Some(key) => state.auth.check_api_key(key.to_str().ok()),
            None => state.auth.check_api_key_as_bearer(
                headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok()),
            ),
        };
        checked.map(|()| OpenAiKey).map_err(|error| {
            let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::UNAUTHORIZED);
            let message = match error {
                AuthError::Missing => {
                    "no API key was sent: send it as `Authorization: Bearer <key>` (the \
                     OpenAI clients' `api_key`) or in the `x-api-key` header"
                }
                _ => "the API key was not recognised: check the key you configured the client with",
            };
            ApiError::new(status, error.code(), message)
        })
    }
}

/// A scope a Bearer token may grant.
pub(crate) trait Scope {
    const NAME: &'static str;
}

/// Managing Lucidworks-style deployments.
pub struct Manage;

impl Scope for Manage {
    const NAME: &'static str = SCOPE_MANAGE;
}

/// Lucidworks-style predictions.
pub struct Predict;

impl Scope for Predict {
    const NAME: &'static str = SCOPE_PREDICT;
}

/// The request carried a Bearer token (static or JWT) holding scope `S`.
pub struct Bearer<S> {
    /// Whose token it is (the Lucidworks `createdBy`).
    pub principal: Principal,
    scope: PhantomData<S>,
}

impl<S: Scope> FromRequestParts<SharedState> for Bearer<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let principal = state
            .auth
            .check_bearer(header, S::NAME)
            .map_err(ApiError::from)?;
        Ok(Bearer {
            principal,
            scope: PhantomData,
        })
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::UNAUTHORIZED);
        ApiError::new(status, error.code(), error.to_string())
    }
}
