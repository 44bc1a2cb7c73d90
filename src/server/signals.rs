//! The CI signal API: `POST /api/v1/signals` and
//! `GET /api/v1/commits/{owner}/{name}/{sha}/signals`, behind bearer tokens.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::AppState;
use super::access::{
    READ, WRITE_SIGNALS, authorize, forbidden, repository_for, require_json, split_repo_and_sha,
};
use super::error::{ApiError, unprocessable};
use crate::scoring::signal::{SignalName, SignalStatus};
use crate::store::signals::{NewSignal, SignalInsert, SignalRow};
use crate::store::tokens::TokenRow;

/// Signal bodies are small; anything larger is a mistake.
pub const MAX_SIGNAL_BODY: usize = 64 * 1024;

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignalRequest {
    repo: String,
    sha: String,
    signal: String,
    status: String,
    value: Option<f64>,
    url: Option<String>,
    key: Option<String>,
    /// What tells this report apart from others of the same run (a matrix leg):
    /// each context counts its own attempts.
    context: Option<String>,
}

/// A signal as the API shows it.
#[derive(Debug, Serialize)]
pub struct SignalView {
    pub id: i64,
    pub sha: String,
    pub signal: SignalName,
    pub status: SignalStatus,
    pub value: Option<f64>,
    pub url: Option<String>,
    pub source: String,
    pub context: Option<String>,
    pub attempt: Option<i64>,
    pub key: Option<String>,
    pub occurred_at: String,
}

/// Signal names only tokentally itself records (from git history).
pub const RESERVED_SIGNALS: &[&str] = &["reverted", "fixed_later"];

/// How an API token's idempotency key is stored: keys belong to the token that
/// used them, so another token's key is never a replay.
fn stored_key(token: &TokenRow, key: &str) -> String {
    format!("api:{}:{key}", token.id)
}

/// The key as its token sent it (`api:<token id>:<key>` → `<key>`).
fn shown_key(stored: String) -> String {
    match stored
        .strip_prefix("api:")
        .and_then(|rest| rest.split_once(':'))
    {
        Some((id, key)) if id.bytes().all(|b| b.is_ascii_digit()) => key.to_string(),
        _ => stored,
    }
}

impl From<SignalRow> for SignalView {
    fn from(row: SignalRow) -> Self {
        SignalView {
            id: row.id,
            sha: row.sha,
            signal: row.name,
            status: row.status,
            value: row.value,
            url: row.url,
            source: row.source,
            context: row.context,
            attempt: row.attempt,
            key: row.idempotency_key.map(shown_key),
            occurred_at: chrono::DateTime::from_timestamp_millis(row.occurred_at)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default(),
        }
    }
}

/// An http(s) URL with a host, as written (the URL parser would read `http:///x`
/// as the host `x`).
fn valid_http_url(url: &str) -> bool {
    let written_host = url
        .split_once("://")
        .is_some_and(|(_, rest)| !rest.is_empty() && !rest.starts_with('/'));
    let parsed = url::Url::parse(url).ok();
    written_host
        && parsed
            .as_ref()
            .is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        && url.len() <= 2048
        && !url.chars().any(char::is_whitespace)
}

fn validate(req: &SignalRequest, value_range: [f64; 2]) -> Result<(), ApiError> {
    let strings = [
        ("repo", Some(&req.repo)),
        ("sha", Some(&req.sha)),
        ("signal", Some(&req.signal)),
        ("status", Some(&req.status)),
        ("url", req.url.as_ref()),
        ("key", req.key.as_ref()),
        ("context", req.context.as_ref()),
    ];
    for (field, value) in strings {
        if value.is_some_and(|v| v.chars().any(char::is_control)) {
            return Err(unprocessable(
                field,
                "control characters (NUL, newlines, …) are not allowed",
            ));
        }
    }
    if !crate::github::repositories::valid_repo(&req.repo) {
        return Err(unprocessable(
            "repo",
            "expected owner/name (or group/subgroup/name for GitLab)",
        ));
    }
    if !crate::store::is_commit_prefix(&req.sha) {
        return Err(unprocessable("sha", "expected 7 to 40 hexadecimal digits"));
    }
    let name_ok = !req.signal.is_empty()
        && req.signal.len() <= 64
        && req
            .signal
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.'));
    if !name_ok {
        return Err(unprocessable(
            "signal",
            "expected ci, deploy, incident or a custom name of up to 64 lower-case letters, digits, _ - .",
        ));
    }
    if RESERVED_SIGNALS.contains(&req.signal.as_str()) {
        return Err(unprocessable(
            "signal",
            format!(
                "{:?} is recorded by tokentally from git history and cannot be reported",
                req.signal
            ),
        ));
    }
    if req.status != "pass" && req.status != "fail" {
        return Err(unprocessable("status", "expected pass or fail"));
    }
    let [min, max] = value_range;
    if req
        .value
        .is_some_and(|v| !(v.is_finite() && min <= v && v <= max))
    {
        return Err(unprocessable(
            "value",
            format!("expected a number from {min} to {max} (`signals.value_range`)"),
        ));
    }
    if let Some(url) = &req.url
        && !valid_http_url(url)
    {
        return Err(unprocessable(
            "url",
            "expected an http(s) URL with a host, of at most 2048 characters",
        ));
    }
    if let Some(key) = &req.key
        && (key.is_empty() || key.len() > 200)
    {
        return Err(unprocessable("key", "expected 1 to 200 characters"));
    }
    if let Some(context) = &req.context
        && (context.is_empty() || context.len() > 200)
    {
        return Err(unprocessable("context", "expected 1 to 200 characters"));
    }
    Ok(())
}

#[utoipa::path(
    post,
    path = "/api/v1/signals",
    tag = "signals",
    request_body(content = SignalRequest, description = "one outcome signal (JSON, at most 64 KiB)"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "stored: `{\"signal\": …}`", body = serde_json::Value),
        (status = 200, description = "the same key and body again: the stored signal, `replayed: true`", body = serde_json::Value),
        (status = 400, description = "bad request (the error says which field or parameter)", body = crate::server::error::ErrorBody),
        (status = 401, description = "no or unknown API token", body = crate::server::error::ErrorBody),
        (status = 403, description = "the token's role or repositories do not allow this", body = crate::server::error::ErrorBody),
        (status = 409, description = "the idempotency key was used with another body", body = crate::server::error::ErrorBody),
        (status = 413, description = "body too large", body = crate::server::error::ErrorBody),
        (status = 415, description = "the body is not sent as application/json", body = crate::server::error::ErrorBody),
        (status = 422, description = "a field is invalid", body = crate::server::error::ErrorBody),
        (status = 429, description = "rate limited (see Retry-After)", body = crate::server::error::ErrorBody)
    )
)]
pub async fn post_signal(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match record_signal(&state, &headers, body).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn record_signal(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let token = authorize(state, headers, WRITE_SIGNALS).await?;
    require_json(headers)?;
    let read = state
        .body_limits
        .read(headers, body, MAX_SIGNAL_BODY)
        .await?;
    let body = read.bytes.as_slice();
    if !body.trim_ascii_start().starts_with(b"{") {
        return Err(ApiError::bad_request(
            "invalid_json",
            "the body must be a JSON object: {\"repo\": …, \"sha\": …, \"signal\": …, \"status\": …}",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    let req: SignalRequest = serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_data() {
            unprocessable(&path, inner)
        } else {
            ApiError::bad_request(
                "invalid_json",
                format!("the body is not valid JSON: {inner}"),
            )
        }
    })?;
    validate(&req, state.config.signals.value_range)?;
    let mut req = req;
    // Repository names are case-insensitive on GitHub; shas are hex.
    req.repo = req.repo.to_ascii_lowercase();
    req.sha = req.sha.to_ascii_lowercase();
    if !token.allows(&req.repo) {
        return Err(forbidden(&token, &req.repo));
    }
    // Signals are granted, not assumed: a CI token cannot post an incident
    // (or a failed deploy) on a rival's commit.
    if !token.may_post(&req.signal) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "signal_not_granted",
            format!(
                "token {:?} may post {} only; `{}` needs a token granted it (`tokentally token create --signals {}`)",
                token.name,
                token.signal_grants().join(", "),
                req.signal,
                req.signal
            ),
        ));
    }
    if !state.config.repository_policy().listed(&req.repo) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "repository_not_allowed",
            format!(
                "{} is not one of the repositories this service takes (`github.repositories`)",
                req.repo
            ),
        ));
    }

    // The signal's time: the service's clock (tests inject one).
    let now = state.clock.now_ms();
    let repo_name = req.repo.clone();
    let repository_id = state
        .store
        .repository_id(&req.repo, now)
        .await
        .map_err(ApiError::database)?;
    // The same key with the same request is a replay, however its JSON was
    // written (field order, spacing, sha case); with another request, a conflict.
    let body_hash =
        crate::secret::sha256_hex(serde_json::to_vec(&req).expect("a request serialises"));
    let outcome = state
        .signals
        .submit(NewSignal {
            repository_id,
            sha: req.sha,
            name: req.signal.parse().expect("any name parses"),
            status: req.status.parse().expect("checked: pass or fail"),
            value: req.value,
            url: req.url,
            source: format!("api:{}", token.name),
            context: req.context,
            attempt: None,
            idempotency_key: req.key.map(|k| stored_key(&token, &k)),
            body_hash: Some(body_hash),
            occurred_at: now,
            received_at: now,
            token_id: Some(token.id),
        })
        .await
        .map_err(ApiError::database)?;
    state.metrics.signal("api", outcome.as_str());
    let (SignalInsert::Created(row) | SignalInsert::Replayed(row) | SignalInsert::Conflict(row)) =
        &outcome;
    tracing::info!(
        repository = %repo_name, sha = %&row.sha[..row.sha.len().min(12)],
        signal = %row.name, status = %row.status, token = %token.name,
        result = outcome.as_str(), "signal received"
    );
    if let (SignalInsert::Created(row), Some(comments)) = (&outcome, &state.pr_comments) {
        // The pull request whose head this is shows the new estimate (off the
        // request path: GitHub may be slow, and errors only get logged).
        let (comments, repo, sha) = (comments.clone(), repo_name.clone(), row.sha.clone());
        tokio::spawn(async move {
            if let Err(e) = comments.refresh_for_sha(&repo, &sha).await {
                tracing::warn!(repository = %repo, error = %e, "pull request comment not refreshed");
            }
        });
    }
    Ok(match outcome {
        SignalInsert::Created(row) => (
            StatusCode::CREATED,
            Json(json!({ "signal": SignalView::from(row) })),
        )
            .into_response(),
        SignalInsert::Replayed(row) => (
            StatusCode::OK,
            Json(json!({ "signal": SignalView::from(row), "replayed": true })),
        )
            .into_response(),
        SignalInsert::Conflict(_) => ApiError::new(
            StatusCode::CONFLICT,
            "key_conflict",
            "this idempotency key was already used with a different body; use a new key",
        )
        .into_response(),
    })
}

/// `GET /api/v1/commits/{repo…}/{sha}/signals` (`rest` is `{repo…}/{sha}`).
#[utoipa::path(
    get,
    path = "/api/v1/commits/{repo}/{sha}/signals",
    tag = "commits",
    params(("repo" = String, Path, description = "the repository, `owner/name` (GitLab groups nest: `group/sub/name`); its slashes stay in the path"), ("sha" = String, Path, description = "the commit id, 7 to 40 hexadecimal digits")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`{\"repo\", \"sha\", \"signals\": [...]}`", body = serde_json::Value),
        (status = 401, description = "no or unknown API token", body = crate::server::error::ErrorBody),
        (status = 403, description = "the token's role or repositories do not allow this", body = crate::server::error::ErrorBody),
        (status = 404, description = "not found (the error says what)", body = crate::server::error::ErrorBody),
        (status = 422, description = "a field is invalid", body = crate::server::error::ErrorBody),
        (status = 429, description = "rate limited (see Retry-After)", body = crate::server::error::ErrorBody)
    )
)]
pub async fn commit_signals(
    state: &AppState,
    headers: &HeaderMap,
    rest: &str,
) -> Result<Json<serde_json::Value>, ApiError> {
    let token = authorize(state, headers, READ).await?;
    let (repo, sha) = split_repo_and_sha(rest)?;
    let repository = repository_for(state, &token, &repo).await?;
    let signals = state
        .store
        .signals_for_commit(repository.id, &sha)
        .await
        .map_err(ApiError::database)?;
    let signals: Vec<SignalView> = signals.into_iter().map(SignalView::from).collect();
    Ok(Json(
        json!({ "repo": repo, "sha": sha, "signals": signals }),
    ))
}
