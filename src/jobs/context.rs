//! What every handler works with: the service's parts ([`HandlerContext`]),
//! the delivery being handled ([`DeliveryContext`]) and how handling ends.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::attribution::commit::Attributor;
use crate::git::mirrors::Mirrors;
use crate::github::outcomes::CiRules;
use crate::github::repositories::RepositoryPolicy;
use crate::metrics::Metrics;
use crate::store::Store;

/// What handlers work with.
pub struct HandlerContext {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub ci_rules: CiRules,
    /// `None` when mirrors are disabled (`mirrors.enabled = false`).
    pub mirrors: Option<Arc<Mirrors>>,
    pub attributor: Arc<Attributor>,
    /// `github.api_url`: its web host is the only place the token is sent.
    pub github_api_url: String,
    /// Woken after a delivery was processed: the ledger settles what changed.
    pub ledger_wake: Arc<tokio::sync::Notify>,
    /// Keeps pull requests' comments (none without GitHub credentials or with them off).
    pub pr_comments: Option<Arc<crate::notify::pr_comment::PrCommenter>>,
    /// Which repositories events are taken for (`github.repositories`).
    pub repositories: RepositoryPolicy,
}

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

/// What a handler knows about the delivery besides its event.
#[derive(Clone)]
pub struct DeliveryContext {
    /// When the delivery arrived (epoch ms): the event's time when its payload
    /// carries none.
    pub received_at: i64,
    /// Set when the work must stop (deadline passed, lease lost, shutdown).
    pub cancel: Arc<AtomicBool>,
}

impl DeliveryContext {
    pub fn new(received_at: i64) -> DeliveryContext {
        DeliveryContext {
            received_at,
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }
}
