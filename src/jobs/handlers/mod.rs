//! What the worker does with each kind of event: one module per event family.
//!
//! - [`repository`]: which repositories events are taken for, and what an
//!   event says about its repository;
//! - [`installation`]: a GitHub App's installations and their repositories;
//! - [`pull_request`]: heads, merges and who merged;
//! - pushes and the reconcile loop's fetches go to the mirror sync (`jobs::sync`),
//!   CI and deploy results to `jobs::outcome`.
//!
//! Every handler is idempotent: a delivery processed twice (a lease that ran out
//! mid-way, a redelivery with a new id) leaves the same state as once.

mod installation;
mod pull_request;
mod repository;

use super::context::{DeliveryContext, Handled, HandlerContext, HandlerError};
use super::outcome::record_outcome;
use super::sync;
use crate::clock::now_ms;
use crate::github::events::{GithubEvent, PullRequestAction};
use crate::github::outcomes;

pub async fn handle(
    ctx: &HandlerContext,
    event: &GithubEvent,
    delivery: &DeliveryContext,
) -> Result<Handled, HandlerError> {
    if let GithubEvent::Unhandled(_) = event {
        return Ok(Handled::Ignored);
    }
    let now = now_ms();
    repository::check_branch_names(event)?;
    if !repository::record(ctx, event, now).await? {
        return Ok(Handled::Ignored);
    }
    let outcome = outcomes::outcome(event, &ctx.ci_rules)
        .map_err(|e| HandlerError::Permanent(e.to_string()))?;
    if let Some(outcome) = &outcome {
        let occurred_at = outcome.occurred_at.unwrap_or(delivery.received_at);
        let stored = record_outcome(&ctx.store, outcome, occurred_at, now).await?;
        ctx.metrics.signal("github", stored.as_str());
    }
    match event {
        GithubEvent::Installation(installation) => {
            installation::record(&ctx.store, &ctx.repositories, installation, now).await?
        }
        GithubEvent::Push(push) => {
            // Commits land when the push happened, not when the sync ran (a retry
            // can come an hour later, in another week).
            let pushed_at = match &push.repository.pushed_at {
                Some(t) => t
                    .to_ms()
                    .map_err(|e| HandlerError::Permanent(format!("`repository.pushed_at`: {e}")))?,
                None => delivery.received_at,
            };
            sync::sync(ctx, &push.repository, Vec::new(), pushed_at, delivery).await?
        }
        // What a lost push would have landed lands when the fetch finds it.
        GithubEvent::Reconcile(r) => {
            sync::sync(
                ctx,
                &r.repository,
                Vec::new(),
                delivery.received_at,
                delivery,
            )
            .await?
        }
        GithubEvent::PullRequest(pr) if pr.action.brings_commits() => {
            let merged = pull_request::merged_at(pr)?;
            let landed_at = merged.unwrap_or(delivery.received_at);
            pull_request::record(ctx, pr, merged, now).await?;
            let head = vec![(pr.number, pr.pull_request.head.sha.clone())];
            sync::sync(ctx, &pr.repository, head, landed_at, delivery).await?;
            if pr.action == PullRequestAction::Closed && pr.pull_request.merged {
                pull_request::record_merge(ctx, pr, now).await?;
            } else if let Some(comments) = &ctx.pr_comments {
                log_comment(comments.refresh(&pr.repository.full_name, pr.number).await);
            }
        }
        _ => {}
    }
    if let (Some(outcome), Some(comments)) = (&outcome, &ctx.pr_comments) {
        log_comment(comments.refresh_for_sha(&outcome.repo, &outcome.sha).await);
    }
    ctx.ledger_wake.notify_one();
    Ok(Handled::Processed)
}

/// A pull request comment is a courtesy: GitHub's errors are logged, never
/// fatal to the delivery.
fn log_comment<T: std::fmt::Debug>(result: Result<T, crate::notify::pr_comment::CommentError>) {
    match result {
        Ok(done) => tracing::debug!(?done, "pull request comment"),
        Err(e) => tracing::warn!(error = %e, "pull request comment not refreshed"),
    }
}
