//! The JSON error body every failed request gets: `{"error": code, "message": text}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::store::DatabaseFailure;

/// Every error as the OpenAPI document describes it: `{"error": code, "message": text}`.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)] // describes the JSON `ApiError` writes
pub struct ErrorBody {
    /// A stable code such as `invalid_week`, `not_found`, `forbidden`.
    pub error: String,
    /// What was wrong, for a person.
    pub message: String,
}

/// Seconds a client is told to wait after a 503 for an unreachable database.
pub const UNAVAILABLE_RETRY_AFTER: u64 = 5;

/// Put on a response whose request failed because the database refused a
/// statement: the router's middleware reports it in `/readyz`.
#[derive(Debug, Clone)]
pub struct RejectedStatement {
    pub statement: &'static str,
    pub message: String,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header (rate limiting).
    pub retry_after: Option<u64>,
    /// The database refused a statement (see [`RejectedStatement`]).
    pub rejected: Option<RejectedStatement>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
            rejected: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// A database error, classified: a connection that could not be had is 503
    /// with `Retry-After` (nothing was stored, retrying later works); a statement
    /// the database refused is 500 (retrying will not help), logged with its name.
    pub fn database(err: impl DatabaseFailure) -> Self {
        if err.is_unavailable() {
            tracing::warn!(error = %err, "database unavailable while handling a request");
            let mut error = Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the database is unavailable; nothing was stored, retry later",
            );
            error.retry_after = Some(UNAVAILABLE_RETRY_AFTER);
            return error;
        }
        let statement = err.statement().unwrap_or("an unnamed statement");
        tracing::error!(statement, error = %err, "the database refused a statement");
        let mut error = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "database_error",
            format!(
                "the database refused the service's statement ({statement}); nothing was \
                 stored. This is a fault of the service, not of the request: retrying will \
                 not help until it is fixed"
            ),
        );
        error.rejected = Some(RejectedStatement {
            statement,
            message: err.to_string(),
        });
        error
    }

    /// A fault of the service itself (500), logged.
    pub fn internal(message: impl Into<String>) -> Self {
        let message = message.into();
        tracing::error!(%message, "internal error while handling a request");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl ApiError {
    /// This error's status and headers (`Retry-After`, the refused statement)
    /// around another body: the dashboard's HTML page.
    pub fn respond_with(self, body: impl IntoResponse) -> Response {
        let mut response = (self.status, body).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        if let Some(rejected) = self.rejected {
            response.extensions_mut().insert(rejected);
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({ "error": self.code, "message": self.message }));
        self.respond_with(body)
    }
}

/// 422: `field` of the request is invalid.
pub fn unprocessable(field: &str, message: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        format!("`{field}`: {message}"),
    )
}
