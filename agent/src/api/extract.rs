//! Extractors whose refusal is our error JSON (`docs/api.md`, Common rules), so a handler's
//! signature says what it needs: [`AcceptingWork`] (503 while draining), [`UrlPath`] and
//! [`UrlQuery`] (400 on a bad encoding) and [`Body`] (413 past the body limit).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::api::accepting_work;
use crate::app_state::SharedState;
use crate::error::ApiError;

/// The agent takes new work: not draining for shutdown, persisted deployments restored.
pub struct AcceptingWork;

impl FromRequestParts<SharedState> for AcceptingWork {
    type Rejection = ApiError;

    async fn from_request_parts(_: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        accepting_work(state).map(|()| AcceptingWork)
    }
}

/// The route's path parameters (`String` for one, a tuple for several), percent-decoded.
pub struct UrlPath<T>(pub T);

impl<T, S> FromRequestParts<S> for UrlPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| UrlPath(value))
            .map_err(|e| ApiError::malformed(format!("the URL path is not valid: {e}")))
    }
}

/// The query string's parameters.
pub struct UrlQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for UrlQuery<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| UrlQuery(value))
            .map_err(|e| ApiError::malformed(format!("the query string is not valid: {e}")))
    }
}

/// The request body, read whole; 413 past `body_limit_bytes`.
pub struct Body(pub Bytes);

impl FromRequest<SharedState> for Body {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &SharedState) -> Result<Self, ApiError> {
        let body = Bytes::from_request(request, state).await;
        body_bytes(body, state.config.body_limit_bytes).map(Body)
    }
}

fn body_bytes(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::payload_too_large(limit)
        } else {
            ApiError::malformed(format!("the request body could not be read: {rejection}"))
        }
    })
}
