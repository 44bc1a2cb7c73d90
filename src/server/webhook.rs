//! `POST /webhooks/github`: verify, store durably, answer. Processing happens in the worker.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::error::ApiError;
use crate::clock::now_ms;
use crate::github::signature;
use crate::metrics::DeliveryResult;
use crate::store::deliveries::{Inserted, NewDelivery};

/// GitHub caps payloads at 25 MiB; anything larger is not a GitHub delivery.
pub const MAX_WEBHOOK_BODY: usize = 25 * 1024 * 1024;

/// GitHub's delivery ids are GUIDs (36 characters); this leaves room for other senders.
pub const MAX_DELIVERY_ID: usize = 200;

/// The part of every payload ingress reads: enough to check it is a JSON object.
#[derive(Deserialize)]
struct Envelope {
    action: Option<String>,
}

pub async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let outcome = accept(&state, &headers, body).await;
    let result = match &outcome {
        Ok((StatusCode::ACCEPTED, body)) if body["status"] == "requeued" => {
            DeliveryResult::Requeued
        }
        Ok((StatusCode::ACCEPTED, _)) => DeliveryResult::Stored,
        Ok((_, body)) if body["status"] == "pong" => DeliveryResult::Ping,
        Ok(_) => DeliveryResult::Duplicate,
        Err(_) => DeliveryResult::Rejected,
    };
    state.metrics.delivery(result);
    match outcome {
        Ok((status, body)) => (status, Json(body)).into_response(),
        Err(err) => err.into_response(),
    }
}

async fn accept(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(StatusCode, serde_json::Value), ApiError> {
    // An unsigned request is refused before its body is read: it costs no memory.
    signature::precheck(header_str(headers, "x-hub-signature-256"))
        .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, "bad_signature", e.to_string()))?;
    let mut read = state
        .body_limits
        .read(headers, body, MAX_WEBHOOK_BODY)
        .await?;
    // Taken out of `read` (which keeps holding its large-body permit) so the
    // payload becomes the stored String without a copy.
    let bytes = std::mem::take(&mut read.bytes);
    let body = bytes.as_slice();

    signature::verify(
        header_str(headers, "x-hub-signature-256"),
        body,
        &state.config.github.webhook_secrets,
    )
    .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, "bad_signature", e.to_string()))?;

    let event = header_str(headers, "x-github-event")
        .filter(|e| !e.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request("missing_event", "the X-GitHub-Event header is missing")
        })?;
    if event == "ping" {
        // GitHub's check that the hook works: nothing to store or process.
        return Ok((StatusCode::OK, json!({ "status": "pong" })));
    }
    let delivery_id = header_str(headers, "x-github-delivery")
        .filter(|d| !d.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(
                "missing_delivery",
                "the X-GitHub-Delivery header is missing",
            )
        })?;
    if delivery_id.len() > MAX_DELIVERY_ID || delivery_id.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_delivery",
            format!(
                "the X-GitHub-Delivery header must be at most {MAX_DELIVERY_ID} printable characters"
            ),
        ));
    }
    let event_ok = event.len() <= 100
        && event
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    if !event_ok {
        return Err(ApiError::bad_request(
            "invalid_event",
            "the X-GitHub-Event header must be an event name such as push or pull_request",
        ));
    }
    let owned_payload = String::from_utf8(bytes)
        .map_err(|_| ApiError::bad_request("invalid_json", "the body is not UTF-8 JSON"))?;
    let payload = owned_payload.as_str();
    // serde would read a JSON array into a struct; GitHub only ever sends objects.
    if !payload.trim_start().starts_with('{') {
        return Err(ApiError::bad_request(
            "invalid_json",
            "the body is not a JSON object (GitHub sends an object: {\"action\": …})",
        ));
    }
    let envelope: Envelope = serde_json::from_str(payload).map_err(|e| {
        let hint = if is_form_encoded(headers) {
            " (the webhook's content type is application/x-www-form-urlencoded; set it to application/json)"
        } else {
            ""
        };
        ApiError::bad_request(
            "invalid_json",
            format!("the body is not a JSON object: {e}{hint}"),
        )
    })?;

    let inserted = state
        .inbox
        .submit(NewDelivery::live(
            delivery_id.to_string(),
            event.to_string(),
            envelope.action,
            header_str(headers, "x-github-hook-id")
                .map(|h| h.chars().filter(|c| !c.is_control()).take(100).collect()),
            owned_payload,
            now_ms(),
        ))
        .await
        .map_err(ApiError::database)?;
    Ok(match inserted {
        Inserted::Stored => (
            StatusCode::ACCEPTED,
            json!({ "status": "stored", "delivery": delivery_id }),
        ),
        Inserted::Duplicate => (
            StatusCode::OK,
            json!({ "status": "duplicate", "delivery": delivery_id }),
        ),
        Inserted::Requeued => (
            StatusCode::ACCEPTED,
            json!({ "status": "requeued", "delivery": delivery_id }),
        ),
    })
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn is_form_encoded(headers: &HeaderMap) -> bool {
    header_str(headers, header::CONTENT_TYPE.as_str())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"))
}
