//! A GitHub App's installations: which installation reaches which repository.

use super::HandlerError;
use crate::github::events::InstallationEvent;
use crate::github::repositories::RepositoryPolicy;
use crate::store::Store;

/// Which installation reaches which repository (the listed ones only).
pub(super) async fn record(
    store: &Store,
    repositories: &RepositoryPolicy,
    event: &InstallationEvent,
    now: i64,
) -> Result<(), HandlerError> {
    let id = event.installation.id;
    let removed_all = matches!(event.action.as_str(), "deleted");
    let listed = event.repositories.iter().flatten();
    for repo in listed
        .chain(&event.repositories_added)
        .filter(|r| repositories.listed(&r.full_name))
    {
        let installation = if removed_all { None } else { Some(id) };
        store
            .set_repository_installation(&repo.full_name, repo.id, installation, now)
            .await?;
    }
    for repo in &event.repositories_removed {
        store
            .set_repository_installation(&repo.full_name, repo.id, None, now)
            .await?;
    }
    Ok(())
}
