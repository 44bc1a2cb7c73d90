//! Who may do what: the API token a request carries (authenticated, rate
//! limited, its role checked), the repositories and commits it may read, and
//! the shape of the request bodies the API takes.

use axum::http::{HeaderMap, StatusCode, header};

use super::AppState;
use super::error::{ApiError, unprocessable};
use crate::api_token;
use crate::github::repositories::valid_repo;
use crate::store::commits::CommitRow;
use crate::store::repositories::Repository;
use crate::store::tokens::{Role, TokenRow};

/// The live token the request carries, after the rate limit; 401/429 otherwise.
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<TokenRow, ApiError> {
    let unauthorized =
        |message: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message);
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| unauthorized("send the API token as Authorization: Bearer <token>"))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .ok_or_else(|| unauthorized("the Authorization header must be Bearer <token>"))?;
    let row = state
        .store
        .token_by_hash(&api_token::hash(token))
        .await
        .map_err(ApiError::database)?
        .ok_or_else(|| unauthorized("unknown or revoked API token"))?;
    // A telemetry token sends one request per export of every agent it
    // serves: it has its own, larger budget.
    let (limiter, per_minute) = match row.role {
        Role::Telemetry => (
            &state.telemetry_rate_limiter,
            state.config.usage.rate_limit_per_minute,
        ),
        _ => (&state.rate_limiter, state.config.api.rate_limit_per_minute),
    };
    limiter.check(&row.name).map_err(|retry_after| ApiError {
        status: StatusCode::TOO_MANY_REQUESTS,
        code: "rate_limited",
        message: format!(
            "token {:?} is limited to {per_minute} requests per minute; retry in {retry_after} s",
            row.name
        ),
        retry_after: Some(retry_after),
        rejected: None,
    })?;
    Ok(row)
}

/// Roles that may write signals.
pub const WRITE_SIGNALS: &[Role] = &[Role::Report, Role::Admin];
/// Roles that may use the read API.
pub const READ: &[Role] = &[Role::Read, Role::Admin];
/// Roles that may redeem tokens.
pub const ADMIN: &[Role] = &[Role::Admin];

/// [`authenticate`], then 403 unless the token has one of `roles`.
pub async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    roles: &[Role],
) -> Result<TokenRow, ApiError> {
    let token = authenticate(state, headers).await?;
    if roles.contains(&token.role) {
        return Ok(token);
    }
    let wanted: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!(
            "token {:?} has the role {}; this needs {}",
            token.name,
            token.role.as_str(),
            wanted.join(" or ")
        ),
    ))
}

/// 403: the token is not scoped to `repo`.
pub fn forbidden(token: &TokenRow, repo: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!("token {:?} is not scoped to {repo}", token.name),
    )
}

/// 415 unless the request says its body is JSON (`application/json`, with or
/// without parameters): a form or text body is a client mistake, not JSON by luck.
pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "send the body as JSON with Content-Type: application/json (got {:?})",
                content_type.chars().take(100).collect::<String>()
            ),
        ))
    }
}

/// `{repo…}/{sha}` → (repository in lower case, sha in lower case), checked.
pub fn split_repo_and_sha(rest: &str) -> Result<(String, String), ApiError> {
    let (repo, sha) = rest.rsplit_once('/').ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("expected /api/v1/commits/OWNER/NAME/SHA, got …/{rest}"),
        )
    })?;
    if !crate::store::is_commit_prefix(sha) {
        return Err(unprocessable("sha", "expected 7 to 40 hexadecimal digits"));
    }
    Ok((repo.to_ascii_lowercase(), sha.to_ascii_lowercase()))
}

/// The repository `repo` names, if the token may read it; 422/403/404 otherwise.
pub async fn repository_for(
    state: &AppState,
    token: &TokenRow,
    repo: &str,
) -> Result<Repository, ApiError> {
    if !valid_repo(repo) {
        return Err(unprocessable(
            "repo",
            "expected owner/name (or group/subgroup/name for GitLab)",
        ));
    }
    if !token.allows(repo) {
        return Err(forbidden(token, repo));
    }
    state
        .store
        .repository(repo)
        .await
        .map_err(ApiError::database)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no repository {repo} is known"),
            )
        })
}

/// The repository and the one commit `rest` (`{repo…}/{sha}`) names, for a
/// read token scoped to it: 422 for a bad or ambiguous sha, 404 for none.
pub async fn commit_for(
    state: &AppState,
    headers: &HeaderMap,
    rest: &str,
) -> Result<(Repository, CommitRow), ApiError> {
    let token = authorize(state, headers, READ).await?;
    let (repo, sha) = split_repo_and_sha(rest)?;
    let repository = repository_for(state, &token, &repo).await?;
    let mut found = state
        .store
        .commits_by_prefix(repository.id, &sha)
        .await
        .map_err(ApiError::database)?;
    match found.len() {
        1 => Ok((repository, found.remove(0))),
        0 => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no commit {sha} is known in {repo}"),
        )),
        _ => Err(unprocessable(
            "sha",
            format!("{sha} is ambiguous in {repo}; give more digits"),
        )),
    }
}
