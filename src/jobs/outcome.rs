//! Outcome signals from GitHub's events (CI, deploys) stored for their commit:
//! by the handlers for webhooks, and by the reconcile loop for what it asks
//! GitHub's API.

use super::context::HandlerError;
use crate::github::outcomes::Outcome;
use crate::store::Store;
use crate::store::signals::{NewSignal, SignalInsert};

/// Stores a CI or deploy result. Re-runs are numbered so "green on the first run"
/// and "green after a failure" can be told apart.
pub async fn record_outcome(
    store: &Store,
    o: &Outcome,
    occurred_at: i64,
    now: i64,
) -> Result<SignalInsert, HandlerError> {
    let repository_id = store.ensure_repository(&o.repo, now).await?;
    let sha = o.sha.clone();
    let attempt = match o.attempt {
        Some(attempt) => attempt,
        None => {
            1 + store
                .count_signals_for(repository_id, &sha, &o.name, &o.context)
                .await?
        }
    };
    let stored = store
        .insert_signal(&NewSignal {
            repository_id,
            sha,
            name: o.name.clone(),
            status: o.status,
            value: None,
            url: o.url.clone(),
            source: o.source.to_string(),
            context: Some(o.context.clone()),
            attempt: Some(attempt),
            idempotency_key: Some(o.key.clone()),
            body_hash: None,
            occurred_at,
            received_at: now,
        })
        .await?;
    Ok(stored)
}
