//! The read API for attributed commits: `GET /api/v1/repos/{repo…}/commits`
//! (filtered, paginated) and `GET /api/v1/commits/{repo…}/{sha}` (the whole
//! attribution record: evidence, kind and its source, diff facts, links,
//! warnings, landing state). Repositories may have more than two segments
//! (GitLab's nested groups), so both routes take the rest of the path.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::access::{READ, authorize, commit_for, repository_for};
use super::error::ApiError;
use super::extract::{Path, Query};
use super::signals::commit_signals;
use crate::store::commits::{CommitFilter, CommitRow};

/// Most commits one page returns.
const MAX_PAGE: i64 = 500;

/// `/api/v1/commits/{repo…}/{sha}`, `…/{sha}/signals` and `…/{sha}/tokens`.
pub async fn commits_route(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(path): Path<String>,
) -> Response {
    if let Some(rest) = path.strip_suffix("/tokens") {
        return super::ledger::commit_tokens(&state, &headers, rest)
            .await
            .into_response();
    }
    let answer = match path.strip_suffix("/signals") {
        Some(rest) => commit_signals(&state, &headers, rest)
            .await
            .map(IntoResponse::into_response),
        None => commit_record(&state, &headers, &path)
            .await
            .map(IntoResponse::into_response),
    };
    answer.unwrap_or_else(IntoResponse::into_response)
}

#[utoipa::path(
    get,
    path = "/api/v1/commits/{repo}/{sha}",
    tag = "commits",
    params(("repo" = String, Path, description = "the repository, `owner/name` (GitLab groups nest: `group/sub/name`); its slashes stay in the path"), ("sha" = String, Path, description = "the commit id, 7 to 40 hexadecimal digits")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the commit's attribution record", body = serde_json::Value),
        (status = 401, description = "no or unknown API token", body = crate::server::error::ErrorBody),
        (status = 403, description = "the token's role or repositories do not allow this", body = crate::server::error::ErrorBody),
        (status = 404, description = "not found (the error says what)", body = crate::server::error::ErrorBody),
        (status = 422, description = "a field is invalid", body = crate::server::error::ErrorBody),
        (status = 429, description = "rate limited (see Retry-After)", body = crate::server::error::ErrorBody)
    )
)]
pub async fn commit_record(
    state: &AppState,
    headers: &HeaderMap,
    rest: &str,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (repository, commit) = commit_for(state, headers, rest).await?;
    let repo = repository.full_name.clone();
    let commit = &commit;
    let links = state
        .store
        .commits_linking_to(repository.id, &commit.sha)
        .await
        .map_err(ApiError::database)?;
    let by = |name: &str| -> Vec<&String> {
        links
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, sha)| sha)
            .collect()
    };
    let record: serde_json::Value =
        serde_json::from_str(&commit.record).unwrap_or(serde_json::Value::Null);
    let mut body = summary(commit);
    body["repo"] = repo.into();
    body["record"] = record;
    body["reverted_by"] = json!(by("reverted"));
    body["fixed_by"] = json!(by("fixed_later"));
    Ok(Json(body))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    ai: Option<bool>,
    landed: Option<bool>,
    since: Option<String>,
    until: Option<String>,
    person: Option<String>,
    agent: Option<String>,
    limit: Option<i64>,
    after: Option<i64>,
}

/// `/api/v1/repos/{repo…}/commits?ai=&landed=&since=&until=&person=&agent=&limit=&after=`
pub async fn repos_route(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(path): Path<String>,
    Query(query): Query<ListQuery>,
) -> Response {
    list_commits(&state, &headers, &path, query)
        .await
        .map(IntoResponse::into_response)
        .unwrap_or_else(IntoResponse::into_response)
}

#[utoipa::path(
    get,
    path = "/api/v1/repos/{repo}/commits",
    tag = "commits",
    params(("repo" = String, Path, description = "the repository, `owner/name` (GitLab groups nest: `group/sub/name`); its slashes stay in the path"), ListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`{\"commits\": [...], \"next\": cursor}`, newest first", body = serde_json::Value),
        (status = 400, description = "bad request (the error says which field or parameter)", body = crate::server::error::ErrorBody),
        (status = 401, description = "no or unknown API token", body = crate::server::error::ErrorBody),
        (status = 403, description = "the token's role or repositories do not allow this", body = crate::server::error::ErrorBody),
        (status = 404, description = "not found (the error says what)", body = crate::server::error::ErrorBody),
        (status = 422, description = "a field is invalid", body = crate::server::error::ErrorBody),
        (status = 429, description = "rate limited (see Retry-After)", body = crate::server::error::ErrorBody)
    )
)]
pub async fn list_commits(
    state: &AppState,
    headers: &HeaderMap,
    path: &str,
    q: ListQuery,
) -> Result<Json<serde_json::Value>, ApiError> {
    let token = authorize(state, headers, READ).await?;
    if q.after.is_some_and(|a| a < 0) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "`after` must be a cursor from `next_after` (≥ 0)",
        ));
    }
    let repo = path.strip_suffix("/commits").ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route for /api/v1/repos/{path} (try /api/v1/repos/OWNER/NAME/commits)"),
        )
    })?;
    let repo = repo.to_ascii_lowercase();
    let repository = repository_for(state, &token, &repo).await?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("`limit` must be 1 to {MAX_PAGE}"),
        ));
    }
    let since = q
        .since
        .as_deref()
        .map(|d| parse_day_or_time("since", d, false))
        .transpose()?;
    let until = q
        .until
        .as_deref()
        .map(|d| parse_day_or_time("until", d, true))
        .transpose()?;
    if let (Some(since), Some(until)) = (since, until)
        && since > until
    {
        return Err(ApiError::bad_request(
            "invalid_query",
            "`since` is after `until`",
        ));
    }
    let filter = CommitFilter {
        ai: q.ai,
        landed: q.landed,
        since,
        until,
        person: q.person,
        agent: q.agent,
        after: q.after,
        limit: limit + 1, // one more tells whether there is a next page
    };
    let mut rows = state
        .store
        .list_commits(repository.id, &filter)
        .await
        .map_err(ApiError::database)?;
    let next = (rows.len() as i64 > limit).then(|| {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.id)
    });
    let commits: Vec<serde_json::Value> = rows.iter().map(summary).collect();
    Ok(Json(
        json!({ "repo": repo, "commits": commits, "next_after": next.flatten() }),
    ))
}

/// A commit's facts as the list shows them.
fn summary(c: &CommitRow) -> serde_json::Value {
    let time = |ms: Option<i64>| {
        ms.and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.to_rfc3339())
    };
    let agents: serde_json::Value = serde_json::from_str(&c.agents).unwrap_or(json!([]));
    json!({
        "sha": c.sha,
        "subject": c.subject,
        "person": c.person,
        "credit": c.credit,
        "merged_by": c.merged_by,
        "ai": c.ai == 1,
        "agents": agents,
        "model": c.model,
        "kind": c.kind,
        "kind_source": c.kind_source,
        "changed_lines": c.changed_lines,
        "authored_at": time(Some(c.authored_at)),
        "landed": c.landed == 1,
        "landed_at": time(c.landed_at),
        "unlanded_at": time(c.unlanded_at),
        "unlanded_reason": c.unlanded_reason,
        "pull_request": c.pull_request,
    })
}

/// `2026-11-20` (start or end of that day, UTC) or an RFC 3339 time → epoch ms.
fn parse_day_or_time(field: &str, text: &str, end_of_day: bool) -> Result<i64, ApiError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    let day = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        ApiError::bad_request(
            "invalid_query",
            format!("`{field}`: {text:?} is not a date (2026-11-20) or an RFC 3339 time"),
        )
    })?;
    let time = if end_of_day {
        day.and_hms_milli_opt(23, 59, 59, 999)
    } else {
        day.and_hms_opt(0, 0, 0)
    }
    .expect("a valid time of day");
    Ok(time.and_utc().timestamp_millis())
}
