//! Verified usage: the OTLP/HTTP metrics receiver the coding agents export to
//! (`POST /v1/metrics`, protobuf or JSON, gzip or not), and the usage API.

use std::collections::BTreeMap;
use std::io::Read;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use prost::Message;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::access::{READ, authorize};
use super::error::ApiError;
use super::extract::Query;
use crate::scoring::usage::{UsageKind, check};
use crate::store::tokens::Role;

/// A batch's largest body, compressed or not (as webhooks').
pub const MAX_OTLP_BODY: usize = 25 * 1024 * 1024;

/// Roles that may export usage.
const TELEMETRY: &[Role] = &[Role::Telemetry, Role::Admin];

/// The body's encoding, by its content type.
#[derive(Clone, Copy, PartialEq)]
enum Encoding {
    Protobuf,
    Json,
}

/// `POST /v1/metrics` (the path `OTEL_EXPORTER_OTLP_ENDPOINT` appends): the
/// OTLP/HTTP protocol, not part of the `/api/v1` document.
pub async fn receive_metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match receive(&state, &headers, body).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn receive(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Response, ApiError> {
    authorize(state, headers, TELEMETRY).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let encoding = if content_type.starts_with("application/x-protobuf") {
        Encoding::Protobuf
    } else if content_type.starts_with("application/json") {
        Encoding::Json
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send OTLP metrics as application/x-protobuf or application/json",
        ));
    };
    let read = state.body_limits.read(headers, body, MAX_OTLP_BODY).await?;
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let bytes = if gzip {
        gunzip(&read.bytes)?
    } else {
        read.bytes.clone()
    };
    let request = match encoding {
        Encoding::Protobuf => {
            ExportMetricsServiceRequest::decode(bytes.as_slice()).map_err(|e| {
                ApiError::bad_request("invalid_otlp", format!("not an OTLP metrics request: {e}"))
            })?
        }
        Encoding::Json => serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::bad_request("invalid_otlp", format!("not an OTLP metrics request: {e}"))
        })?,
    };
    // What is accepted and refused; the points are built when counted.
    let decoded = check(&request, &state.config.usage.agents);
    if decoded.accepted > 0 {
        // Acknowledged = stored: the batch is in the database before the
        // answer; the counter adds it to usage about a second later (each batch once).
        let body = match encoding {
            Encoding::Protobuf => bytes,
            Encoding::Json => request.encode_to_vec(),
        };
        state
            .store
            .store_usage_batch(&body, state.clock.now_ms())
            .await
            .map_err(ApiError::database)?;
        state.usage_wake.notify_one();
    }
    tracing::debug!(
        points = decoded.accepted,
        rejected = decoded.rejected,
        "usage received"
    );
    let response = ExportMetricsServiceResponse {
        partial_success: (decoded.rejected > 0).then(|| ExportMetricsPartialSuccess {
            rejected_data_points: decoded.rejected,
            error_message: decoded.message.clone(),
        }),
    };
    Ok(match encoding {
        Encoding::Protobuf => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            response.encode_to_vec(),
        )
            .into_response(),
        Encoding::Json => (
            StatusCode::OK,
            Json(serde_json::to_value(&response).unwrap_or(json!({}))),
        )
            .into_response(),
    })
}

/// A gzip body inflated, never beyond the body limit (a small bomb stays small).
fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(MAX_OTLP_BODY as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::bad_request("invalid_gzip", format!("the gzip body: {e}")))?;
    if out.len() > MAX_OTLP_BODY {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the inflated body exceeds {MAX_OTLP_BODY} bytes"),
        ));
    }
    Ok(out)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    /// ISO week such as 2026-W47, or `current` (default: the last complete week).
    week: Option<String>,
    /// One person's usage only.
    person: Option<String>,
}

/// `GET /api/v1/usage?week=W[&person=P]`
#[utoipa::path(
    get,
    path = "/api/v1/usage",
    tag = "usage",
    params(UsageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "per person (and agent): input, output, cache_read, cache_creation, cost_usd, sessions, commits, active_seconds", body = serde_json::Value),
        (status = 400, description = "bad request (the error says which parameter)", body = crate::server::error::ErrorBody),
        (status = 401, description = "no or unknown API token", body = crate::server::error::ErrorBody),
        (status = 403, description = "the token's role does not allow this", body = crate::server::error::ErrorBody),
        (status = 429, description = "rate limited (see Retry-After)", body = crate::server::error::ErrorBody)
    )
)]
pub async fn usage(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<UsageQuery>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, READ).await?;
    let tz = state.ledger.tz();
    let week = crate::scoring::week::Week::chosen(query.week.as_deref(), state.clock.now_ms(), tz)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_week",
                "week is not an ISO week such as 2026-W41 (or `current`)",
            )
        })?;
    let (first_day, last_day) = week.days();
    let rows = state
        .store
        .usage_between(&first_day, &last_day, query.person.as_deref())
        .await
        .map_err(ApiError::database)?;
    // person → (totals, agent → totals)
    type Totals = BTreeMap<UsageKind, i64>;
    let mut people: BTreeMap<String, (Totals, BTreeMap<String, Totals>)> = BTreeMap::new();
    for (person, agent, _model, _day, kind, amount) in rows {
        let Some(kind) = UsageKind::parse(&kind) else {
            continue;
        };
        let entry = people.entry(person).or_default();
        *entry.0.entry(kind).or_default() += amount;
        *entry.1.entry(agent).or_default().entry(kind).or_default() += amount;
    }
    let fields = |t: &Totals| {
        let get = |k: UsageKind| t.get(&k).copied().unwrap_or(0);
        json!({
            "input": get(UsageKind::Input),
            "output": get(UsageKind::Output),
            "cache_read": get(UsageKind::CacheRead),
            "cache_creation": get(UsageKind::CacheCreation),
            "cost_usd": get(UsageKind::CostMicroUsd) as f64 / 1_000_000.0,
            "sessions": get(UsageKind::Sessions),
            "commits": get(UsageKind::Commits),
            "active_seconds": get(UsageKind::ActiveSeconds),
        })
    };
    let people: Vec<Value> = people
        .iter()
        .map(|(person, (totals, agents))| {
            let mut line = fields(totals);
            line["person"] = json!(person);
            line["agents"] = agents
                .iter()
                .map(|(agent, t)| (agent.clone(), fields(t)))
                .collect::<serde_json::Map<String, Value>>()
                .into();
            line
        })
        .collect();
    Ok(Json(json!({"week": week.label(), "people": people})))
}
