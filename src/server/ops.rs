//! Operational endpoints: liveness, readiness and Prometheus metrics.

use std::time::Instant;

use axum::Json;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::error::{ApiError, RejectedStatement};

/// The process is up and serving requests.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// The process can reach its database (within a second: a database that is down
/// answers 503 `database_unreachable`, never a hang) and its background tasks are alive.
pub async fn readyz(State(state): State<AppState>) -> Response {
    if !state.store.ping().await {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unreachable",
            "the database does not answer",
        )
        .into_response();
    }
    let problems = state.health.problems();
    if let Some(fatal) = state.health.fatal_reason() {
        let body = json!({
            "error": "not_ready",
            "message": format!("a background task failed for good: {fatal}"),
            "problems": problems,
        });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    // Still 200: the replica serves; what it reports needs a person's eyes.
    let status = if problems.is_empty() {
        "ready"
    } else {
        "degraded"
    };
    Json(json!({ "status": status, "problems": problems })).into_response()
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    // The gauge covers every replica, so it is read from the database at scrape time.
    let pending = match state.store.count_unfinished_deliveries().await {
        Ok(n) => n,
        Err(err) => return ApiError::database(err).into_response(),
    };
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(pending),
    )
        .into_response()
}

/// Records each request's latency under its route pattern (not the raw path, which
/// would make one time series per URL).
pub async fn record_latency(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let response = next.run(request).await;
    if let Some(rejected) = response.extensions().get::<RejectedStatement>() {
        state.health.set_recent_problem(
            &format!("database statement {}", rejected.statement),
            format!("refused: {}", rejected.message),
        );
    }
    state.metrics.request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// No route (for API clients; `app.rs` shows a browser the dashboard's 404 page).
pub async fn not_found(request: Request) -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {} {}", request.method(), request.uri().path()),
    )
    .into_response()
}
