//! The framework's extractors with our error shape: a path, query or form the
//! framework cannot read is answered `{"error", "message"}` like every other
//! refusal, never with its own text/plain body.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::body::body_error;
use super::error::ApiError;

/// `axum::extract::Path`, refusing with 400 `invalid_path`.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Path(value))
            .map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))
    }
}

/// `axum::extract::Query`, refusing with 400 `invalid_query`.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Query(value))
            .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
    }
}

/// `axum::Form` (URL-encoded bodies): 415 for another content type, 413/408
/// past the route's body limits, 422 `invalid_form` for missing or bad fields.
pub struct Form<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Form<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        use axum::extract::rejection::FormRejection;
        match axum::Form::<T>::from_request(request, state).await {
            Ok(axum::Form(value)) => Ok(Form(value)),
            Err(FormRejection::BytesRejection(e)) => match body_error(&e) {
                Some(guard) => Err(guard.into()),
                None => Err(ApiError::bad_request("malformed_body", e.body_text())),
            },
            Err(FormRejection::InvalidFormContentType(_)) => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the form as application/x-www-form-urlencoded",
            )),
            Err(other) => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_form",
                other.body_text(),
            )),
        }
    }
}
