//! What an event says about its repository, and whether it is taken at all:
//! a repository outside `github.repositories` is not, an unknown one only when
//! the policy admits it, and branch names must be names git accepts.

use super::{HandlerContext, HandlerError};
use crate::github::events::GithubEvent;
use crate::store::repositories::RepositoryUpdate;

/// Whether an event for `full_name` is taken: a repository outside the list is
/// not; one the service knows already is; an unknown one only when the policy
/// admits it (a signed event alone does not make a repository known).
async fn admitted(
    ctx: &HandlerContext,
    full_name: &str,
    installation: Option<i64>,
) -> Result<bool, HandlerError> {
    if !ctx.repositories.listed(full_name) {
        return Ok(false);
    }
    if ctx.repositories.admits(full_name, installation) {
        return Ok(true);
    }
    Ok(ctx.store.repository(full_name).await?.is_some())
}

/// Branch names from the payload (the repository's default branch, a pull
/// request's head and base) must be names git accepts: they end up in fetch
/// refspecs, where `*` or `a:b` would change what is fetched. A delivery that
/// carries another fails for good, saying which and why.
pub(super) fn check_branch_names(event: &GithubEvent) -> Result<(), HandlerError> {
    let mut names = Vec::new();
    if let Some(branch) = event.repository().and_then(|r| r.default_branch.as_deref()) {
        names.push(("repository.default_branch", branch));
    }
    if let GithubEvent::PullRequest(e) = event {
        names.push((
            "pull_request.head.ref",
            e.pull_request.head.git_ref.as_str(),
        ));
        names.push((
            "pull_request.base.ref",
            e.pull_request.base.git_ref.as_str(),
        ));
    }
    for (field, name) in names {
        if let Some(why) = crate::git::invalid_branch_name(name) {
            let shown: String = name.chars().filter(|c| !c.is_control()).take(100).collect();
            return Err(HandlerError::Permanent(format!(
                "`{field}` {shown:?} is not a valid branch name ({why})"
            )));
        }
    }
    Ok(())
}

/// Records what `event` says about its repository (its id, default branch,
/// clone URL, the installation that reaches it). False when the event is for a
/// repository the service does not take.
pub(super) async fn record(
    ctx: &HandlerContext,
    event: &GithubEvent,
    now: i64,
) -> Result<bool, HandlerError> {
    let Some(repo) = event.repository() else {
        return Ok(true);
    };
    if !admitted(ctx, &repo.full_name, event.installation_id()).await? {
        tracing::info!(
            repository = %repo.full_name,
            "event for a repository that is not allowed (`github.repositories`); ignored"
        );
        return Ok(false);
    }
    ctx.store
        .upsert_repository(
            &RepositoryUpdate {
                full_name: &repo.full_name,
                github_id: repo.id,
                default_branch: repo.default_branch.as_deref(),
                clone_url: repo.clone_url.as_deref(),
            },
            now,
        )
        .await?;
    // An App's event says which installation reaches the repository.
    if let Some(installation) = event.installation_id() {
        ctx.store
            .set_repository_installation(&repo.full_name, repo.id, Some(installation), now)
            .await?;
    }
    Ok(true)
}
