//! Pull requests: their heads (whose CI a squash or merge commit takes), their
//! merges, and who merged them.

use super::{HandlerContext, HandlerError};
use crate::github::events::PullRequestEvent;

/// Keeps a pull request's head, and its merge once merged: a squash or merge
/// commit without CI of its own takes its head's CI at merge time.
pub(super) async fn record(
    ctx: &HandlerContext,
    pr: &PullRequestEvent,
    merged_at: Option<i64>,
    now: i64,
) -> Result<(), HandlerError> {
    let head = pr.pull_request.head.sha.to_ascii_lowercase();
    if !(head.len() == 40 && head.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Err(HandlerError::Permanent(format!(
            "`pull_request.head.sha` is not a commit id: {head:?}"
        )));
    }
    let repository_id = ctx
        .store
        .ensure_repository(&pr.repository.full_name, now)
        .await?;
    let merge = match (merged_at, pr.pull_request.merge_commit_sha.as_deref()) {
        (Some(at), Some(sha)) => Some((sha, at)),
        _ => None,
    };
    ctx.store
        .record_pull_request(repository_id, pr.number, &head, merge, now)
        .await?;
    Ok(())
}

/// When a merged pull request was merged, from its payload.
pub(super) fn merged_at(pr: &PullRequestEvent) -> Result<Option<i64>, HandlerError> {
    match (&pr.pull_request.merged_at, pr.pull_request.merged) {
        (Some(text), true) => crate::github::events::parse_time(text)
            .map(Some)
            .map_err(|e| HandlerError::Permanent(format!("`pull_request.merged_at`: {e}"))),
        _ => Ok(None),
    }
}

/// A merged pull request: who merged it is credited for its agent-only commits.
pub(super) async fn record_merge(
    ctx: &HandlerContext,
    pr: &crate::github::events::PullRequestEvent,
    now: i64,
) -> Result<(), HandlerError> {
    let Some(merger) = &pr.pull_request.merged_by else {
        return Ok(());
    };
    let repository_id = ctx
        .store
        .ensure_repository(&pr.repository.full_name, now)
        .await?;
    let person = ctx.attributor.directory.person_for_login(&merger.login);
    ctx.store
        .ensure_person(&person, &merger.login, "", now)
        .await?;
    ctx.store
        .record_merge(
            repository_id,
            pr.number,
            pr.pull_request.merge_commit_sha.as_deref(),
            &merger.login,
            &person,
        )
        .await?;
    Ok(())
}
