//! The ledger's HTTP API: leaderboard, balances, a person's entries, a
//! commit's tokens, payouts (read or admin tokens) and redemptions (admin).
//!
//! Person-level figures span every repository, so they need a token for all
//! repositories (`--all-repos`) or an admin token; a commit's tokens need a
//! token scoped to its repository.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::access::{ADMIN, READ, authorize, commit_for, require_json};
use super::error::{ApiError, unprocessable};
use super::extract::{Path, Query};
use crate::ledger::read::{EntryView, tokens};
use crate::scoring::leaderboard::RankBy;
use crate::scoring::week::Week;
use crate::store::ledger::Redemption;

/// Largest redemption body.
const MAX_REDEMPTION_BODY: usize = 4 * 1024;

/// A read of people-level figures: a read or admin token, for all
/// repositories (those figures span every repository).
async fn authorize_people(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = authorize(state, headers, READ).await?;
    if token.repositories.iter().any(|r| r == "*")
        || token.role == crate::store::tokens::Role::Admin
    {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!(
            "token {:?} is scoped to some repositories; leaderboards and balances span all of \
             them and need a token for all repositories (--all-repos) or an admin token",
            token.name
        ),
    ))
}

/// `week=2026-W41` (or `current`), by default the last complete week.
fn week_param(state: &AppState, week: Option<&str>) -> Result<Week, ApiError> {
    Week::chosen(week, state.clock.now_ms(), state.ledger.tz()).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_week",
            format!(
                "week {:?} is not an ISO week such as 2026-W41 (or `current`)",
                week.unwrap_or_default()
            ),
        )
    })
}

async fn known_person(state: &AppState, person: &str) -> Result<(), ApiError> {
    if state
        .store
        .person_exists(person)
        .await
        .map_err(ApiError::database)?
    {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no person {person:?} is known"),
        ))
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LeaderboardQuery {
    /// ISO week such as 2026-W47 (default: this week).
    week: Option<String>,
    /// `value` (default), `efficiency` or `hygiene`.
    rank_by: Option<String>,
}

/// `GET /api/v1/leaderboard?week=W&rank_by=value|efficiency|hygiene`
#[utoipa::path(
    get,
    path = "/api/v1/leaderboard",
    tag = "ledger",
    params(LeaderboardQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`{\"week\", \"rules_version\", \"rank_by\", \"entries\": [...], \"unranked\": [...]}`", body = serde_json::Value),
        (status = 400, description = "bad request (the error says which field or parameter)", body = crate::server::error::ErrorBody),
        (status = 401, description = "no or unknown API token", body = crate::server::error::ErrorBody),
        (status = 403, description = "the token's role or repositories do not allow this", body = crate::server::error::ErrorBody),
        (status = 429, description = "rate limited (see Retry-After)", body = crate::server::error::ErrorBody)
    )
)]
pub async fn leaderboard(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LeaderboardQuery>,
) -> Result<Json<Value>, ApiError> {
    authorize_people(&state, &headers).await?;
    let week = week_param(&state, query.week.as_deref())?;
    let by = match query.rank_by.as_deref() {
        None => RankBy::Value,
        Some(text) => RankBy::parse(text).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_rank_by",
                format!("rank_by {text:?} is not one of value, efficiency, hygiene"),
            )
        })?,
    };
    let board = state
        .ledger
        .leaderboard(week, by)
        .await
        .map_err(ApiError::database)?;
    Ok(Json(board.to_json()))
}

/// `GET /api/v1/people/{person}/balance`
#[utoipa::path(
    get,
    path = "/api/v1/people/{person}/balance",
    tag = "ledger",
    params(("person" = String, Path, description = "a person key: a configured name, `@login` or an email")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "pending, vested, redeemed, clawed_back, available (tokens)", body = serde_json::Value),
        (status = 401, description = "no or unknown API token", body = crate::server::error::ErrorBody),
        (status = 403, description = "the token's role or repositories do not allow this", body = crate::server::error::ErrorBody),
        (status = 404, description = "not found (the error says what)", body = crate::server::error::ErrorBody),
        (status = 429, description = "rate limited (see Retry-After)", body = crate::server::error::ErrorBody)
    )
)]
pub async fn balance(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(person): Path<String>,
) -> Result<Json<Value>, ApiError> {
    authorize_people(&state, &headers).await?;
    known_person(&state, &person).await?;
    let b = state
        .ledger
        .balance(&person)
        .await
        .map_err(ApiError::database)?;
    Ok(Json(balance_json(&person, &b)))
}

fn balance_json(person: &str, b: &crate::scoring::balance::Balance) -> Value {
    json!({
        "person": person,
        "pending": tokens(b.pending),
        "vested": tokens(b.vested),
        "redeemed": tokens(b.redeemed),
        "clawed_back": tokens(b.clawed_back),
        "paid": tokens(b.paid),
        "available": tokens(b.available),
        "owed": tokens(b.owed),
    })
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WeekQuery {
    /// ISO week such as 2026-W47.
    week: Option<String>,
}

/// `GET /api/v1/people/{person}/ledger?week=W`
#[utoipa::path(
    get,
    path = "/api/v1/people/{person}/ledger",
    tag = "ledger",
    params(("person" = String, Path, description = "a person key: a configured name, `@login` or an email"), WeekQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the person's entries effective in the week", body = serde_json::Value),
        (status = 400, description = "bad request (the error says which field or parameter)", body = crate::server::error::ErrorBody),
        (status = 401, description = "no or unknown API token", body = crate::server::error::ErrorBody),
        (status = 403, description = "the token's role or repositories do not allow this", body = crate::server::error::ErrorBody),
        (status = 404, description = "not found (the error says what)", body = crate::server::error::ErrorBody),
        (status = 429, description = "rate limited (see Retry-After)", body = crate::server::error::ErrorBody)
    )
)]
pub async fn person_ledger(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(person): Path<String>,
    Query(query): Query<WeekQuery>,
) -> Result<Json<Value>, ApiError> {
    authorize_people(&state, &headers).await?;
    let week = week_param(&state, query.week.as_deref())?;
    known_person(&state, &person).await?;
    let entries = state
        .ledger
        .person_entries(&person, week)
        .await
        .map_err(ApiError::database)?;
    Ok(Json(json!({
        "person": person,
        "week": week.label(),
        "entries": entries.iter().map(EntryView::from).collect::<Vec<_>>(),
    })))
}

/// `GET /api/v1/statements?week=W`: the week's statement (final once closed).
#[utoipa::path(
    get,
    path = "/api/v1/statements",
    tag = "ledger",
    params(WeekQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "week, closed, currency, total_minor, hash and one line per person (opening, vested, clawed_back, corrections, redeemed, paid, closing in tokens; amount_minor in minor units)", body = serde_json::Value),
        (status = 400, description = "bad request (the error says which field or parameter)", body = crate::server::error::ErrorBody),
        (status = 401, description = "no or unknown API token", body = crate::server::error::ErrorBody),
        (status = 403, description = "the token's role or repositories do not allow this", body = crate::server::error::ErrorBody),
        (status = 429, description = "rate limited (see Retry-After)", body = crate::server::error::ErrorBody)
    )
)]
pub async fn statements(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<WeekQuery>,
) -> Result<Json<Value>, ApiError> {
    authorize_people(&state, &headers).await?;
    let week = week_param(&state, query.week.as_deref())?;
    let statement = state
        .ledger
        .statement(week)
        .await
        .map_err(ApiError::database)?;
    let mut body = statement.to_json();
    if !statement.closed {
        body["closes_at"] = json!(crate::ledger::read::rfc3339(state.ledger.closes_at(week)));
    }
    Ok(Json(body))
}

/// `GET /api/v1/payouts?week=W`: what each person was paid at the week's close
/// (from its statement), or when the week closes.
#[utoipa::path(
    get,
    path = "/api/v1/payouts",
    tag = "ledger",
    params(WeekQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "per person: tokens paid at the close and their money in minor units; an open week says when it closes", body = serde_json::Value),
        (status = 400, description = "bad request (the error says which field or parameter)", body = crate::server::error::ErrorBody),
        (status = 401, description = "no or unknown API token", body = crate::server::error::ErrorBody),
        (status = 403, description = "the token's role or repositories do not allow this", body = crate::server::error::ErrorBody),
        (status = 429, description = "rate limited (see Retry-After)", body = crate::server::error::ErrorBody)
    )
)]
pub async fn payouts(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<WeekQuery>,
) -> Result<Json<Value>, ApiError> {
    authorize_people(&state, &headers).await?;
    let week = week_param(&state, query.week.as_deref())?;
    let statement = state
        .ledger
        .statement(week)
        .await
        .map_err(ApiError::database)?;
    Ok(Json(crate::ledger::periods::payouts_json(
        &statement,
        state.ledger.payout_config(),
        state.ledger.closes_at(week),
    )))
}

/// `GET /api/v1/commits/{repo…}/{sha}/tokens` (`rest` is `{repo…}/{sha}`).
#[utoipa::path(
    get,
    path = "/api/v1/commits/{repo}/{sha}/tokens",
    tag = "ledger",
    params(("repo" = String, Path, description = "the repository, `owner/name` (GitLab groups nest: `group/sub/name`); its slashes stay in the path"), ("sha" = String, Path, description = "the commit id, 7 to 40 hexadecimal digits")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "state, tokens, factors, formula, inputs, hygiene events, entries", body = serde_json::Value),
        (status = 401, description = "no or unknown API token", body = crate::server::error::ErrorBody),
        (status = 403, description = "the token's role or repositories do not allow this", body = crate::server::error::ErrorBody),
        (status = 404, description = "not found (the error says what)", body = crate::server::error::ErrorBody),
        (status = 422, description = "a field is invalid", body = crate::server::error::ErrorBody),
        (status = 429, description = "rate limited (see Retry-After)", body = crate::server::error::ErrorBody)
    )
)]
pub async fn commit_tokens(
    state: &AppState,
    headers: &HeaderMap,
    rest: &str,
) -> Result<Json<Value>, ApiError> {
    let (repository, commit) = commit_for(state, headers, rest).await?;
    let t = state
        .ledger
        .commit_tokens(&repository, &commit)
        .await
        .map_err(ApiError::database)?;
    Ok(Json(t.to_json()))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedemptionBody {
    person: String,
    tokens: f64,
    kind: String,
    key: String,
}

/// `POST /api/v1/redemptions` (admin): debits the person's available balance.
#[utoipa::path(
    post,
    path = "/api/v1/redemptions",
    tag = "ledger",
    request_body(content = RedemptionBody, description = "debit vested tokens (admin)"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "the redemption entry and the new balance", body = serde_json::Value),
        (status = 200, description = "the same key and body again: the same entry", body = serde_json::Value),
        (status = 400, description = "bad request (the error says which field or parameter)", body = crate::server::error::ErrorBody),
        (status = 401, description = "no or unknown API token", body = crate::server::error::ErrorBody),
        (status = 403, description = "the token's role or repositories do not allow this", body = crate::server::error::ErrorBody),
        (status = 404, description = "not found (the error says what)", body = crate::server::error::ErrorBody),
        (status = 409, description = "the idempotency key was used with another body", body = crate::server::error::ErrorBody),
        (status = 413, description = "body too large", body = crate::server::error::ErrorBody),
        (status = 415, description = "the body is not sent as application/json", body = crate::server::error::ErrorBody),
        (status = 422, description = "a field is invalid", body = crate::server::error::ErrorBody),
        (status = 429, description = "rate limited (see Retry-After)", body = crate::server::error::ErrorBody)
    )
)]
pub async fn redeem(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    match redemption(&state, &headers, body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn redemption(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let token = authorize(state, headers, ADMIN).await?;
    require_json(headers)?;
    let read = state
        .body_limits
        .read(headers, body, MAX_REDEMPTION_BODY)
        .await?;
    let body: RedemptionBody = serde_json::from_slice(&read.bytes).map_err(|e| {
        ApiError::bad_request("invalid_json", format!("the body is not a redemption: {e}"))
    })?;
    if body.key.is_empty() || body.key.len() > 200 {
        return Err(unprocessable(
            "key",
            "expected an idempotency key of 1 to 200 characters",
        ));
    }
    let now = state.clock.now_ms();
    let entry = crate::ledger::redemption::entry(
        &body.person,
        body.tokens,
        &body.kind,
        &format!("redemption:{}:{}", token.id, body.key),
        &format!("api:{}", token.name),
        state.ledger.version(),
        now,
    )
    .map_err(|(field, message)| unprocessable(field, message))?;
    let outcome = state
        .store
        .redeem(&entry, now)
        .await
        .map_err(ApiError::database)?;
    let (status, id) = match outcome {
        Redemption::Done { entry_id } => {
            tracing::info!(person = %entry.person, amount = entry.amount, "redemption recorded");
            (StatusCode::CREATED, entry_id)
        }
        Redemption::Replayed {
            entry_id,
            same: true,
        } => (StatusCode::OK, entry_id),
        Redemption::Replayed { same: false, .. } => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "key_conflict",
                format!(
                    "key {:?} was used for another redemption; nothing was changed",
                    body.key
                ),
            ));
        }
        Redemption::Insufficient { available } => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "insufficient_balance",
                format!(
                    "{} has {:.3} tokens available (vested, not yet redeemed); {:.3} were asked for",
                    entry.person,
                    tokens(available),
                    tokens(-entry.amount)
                ),
            ));
        }
        Redemption::UnknownPerson => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no person {:?} is known", entry.person),
            ));
        }
    };
    let stored = state
        .store
        .entry(id)
        .await
        .map_err(ApiError::database)?
        .ok_or_else(|| ApiError::internal("the redemption entry vanished after it was stored"))?;
    let balance = state
        .ledger
        .balance(&entry.person)
        .await
        .map_err(ApiError::database)?;
    Ok((
        status,
        Json(json!({
            "entry": EntryView::from(&stored),
            "balance": balance_json(&entry.person, &balance),
        })),
    )
        .into_response())
}
