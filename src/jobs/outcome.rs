//! Outcome signals from GitHub's events (CI, deploys) stored for their commit:
//! by the handlers for webhooks, and by the reconcile loop for what it asks
//! GitHub's API.

use super::context::HandlerError;
use crate::github::outcomes::Outcome;
use crate::store::Store;
use crate::store::signals::{NewSignal, SignalInsert};

/// Stores a CI or deploy result. Re-runs are told apart by the run's own
/// attempt number (workflow runs) or, for check suites, check runs and
/// statuses, by their payload times — never by the order webhooks arrive in.
pub async fn record_outcome(
    store: &Store,
    o: &Outcome,
    occurred_at: i64,
    now: i64,
) -> Result<SignalInsert, HandlerError> {
    let repository_id = store.ensure_repository(&o.repo, now).await?;
    let sha = o.sha.clone();
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
            attempt: o.attempt,
            idempotency_key: Some(o.key.clone()),
            body_hash: None,
            occurred_at,
            received_at: now,
            token_id: None,
        })
        .await?;
    Ok(stored)
}
