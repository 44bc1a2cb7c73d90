//! What the worker does with each kind of event. Later features hang their work here.
//!
//! Every handler is idempotent: a delivery processed twice (a lease that ran out
//! mid-way, a redelivery with a new id) leaves the same state as once.

use crate::clock::now_ms;
use crate::github::events::{GithubEvent, InstallationEvent};
use crate::store::Store;
use crate::store::repositories::RepositoryUpdate;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// A handler acted on the event.
    Processed,
    /// No handler wants this event.
    Ignored,
}

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Retrying cannot help (the payload does not parse): the delivery fails at once.
    #[error("{0}")]
    Permanent(String),
    /// May work next time (database down, remote unreachable): retried with back-off.
    #[error(transparent)]
    Transient(#[from] anyhow::Error),
}

impl From<crate::store::StoreError> for HandlerError {
    fn from(err: crate::store::StoreError) -> Self {
        HandlerError::Transient(err.into())
    }
}

pub async fn handle(store: &Store, event: &GithubEvent) -> Result<Handled, HandlerError> {
    if let GithubEvent::Unhandled(_) = event {
        return Ok(Handled::Ignored);
    }
    let now = now_ms();
    if let Some(repo) = event.repository() {
        store
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
    }
    if let GithubEvent::Installation(installation) = event {
        record_installation(store, installation, now).await?;
    }
    Ok(Handled::Processed)
}

async fn record_installation(
    store: &Store,
    event: &InstallationEvent,
    now: i64,
) -> Result<(), HandlerError> {
    let id = event.installation.id;
    let removed_all = matches!(event.action.as_str(), "deleted");
    let listed = event.repositories.iter().flatten();
    for repo in listed.chain(&event.repositories_added) {
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
