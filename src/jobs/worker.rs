//! The inbox worker: claims stored deliveries under a lease, turns them into
//! events, runs the handlers and records the outcome, retrying failures with
//! exponential back-off. Several workers (threads or replicas) may share one
//! database: the claim is a single conditional `UPDATE … RETURNING`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::handlers::{self, Handled, HandlerContext, HandlerError};
use crate::clock::now_ms;
use crate::config::{WorkerConfig, random_hex};
use crate::github::events;
use crate::metrics::Metrics;
use crate::store::deliveries::{ClaimedDelivery, Finished};

/// The longest wait between two attempts at one delivery.
const MAX_BACKOFF_MS: u64 = 60 * 60 * 1000;

#[derive(Clone)]
pub struct Worker {
    ctx: Arc<HandlerContext>,
    metrics: Arc<Metrics>,
    config: WorkerConfig,
    /// Unique per worker, so a lease can tell its holder apart from a later one.
    owner: String,
    wake: Arc<Notify>,
}

/// What one step of the worker did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Idle,
    Finished(&'static str),
    Retrying,
    /// The lease ran out before the outcome could be written; another worker owns it.
    LostLease,
}

impl Worker {
    pub fn new(
        ctx: Arc<HandlerContext>,
        metrics: Arc<Metrics>,
        config: WorkerConfig,
        wake: Arc<Notify>,
    ) -> Self {
        let owner = format!("{}-{}", std::process::id(), random_hex(4));
        Worker {
            ctx,
            metrics,
            config,
            owner,
            wake,
        }
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Runs until `shutdown` is cancelled; a delivery being processed is finished first.
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!(worker = %self.owner, "inbox worker started");
        let poll = Duration::from_millis(self.config.poll_interval_ms);
        while !shutdown.is_cancelled() {
            match self.step().await {
                Ok(Step::Idle) => {
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(poll) => {}
                    }
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "inbox worker cannot reach the database; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(poll) => {}
                    }
                }
            }
        }
        tracing::info!(worker = %self.owner, "inbox worker stopped");
    }

    /// Processes deliveries until none is ready; returns how many steps did work.
    pub async fn drain(&self) -> crate::store::Result<usize> {
        let mut steps = 0;
        while self.step().await? != Step::Idle {
            steps += 1;
        }
        Ok(steps)
    }

    /// Claims and processes at most one delivery.
    pub async fn step(&self) -> crate::store::Result<Step> {
        let now = now_ms();
        let lease_until = now + (self.config.lease_seconds * 1000) as i64;
        let Some(delivery) = self
            .ctx
            .store
            .claim_delivery(&self.owner, now, lease_until)
            .await?
        else {
            return Ok(Step::Idle);
        };
        let outcome = self.process_keeping_lease(&delivery).await;
        self.record(&delivery, outcome).await
    }

    /// Processes the delivery, extending the lease every third of its length so a
    /// slow handler (a first clone of a large repository) is not taken over by
    /// another worker while it still runs.
    async fn process_keeping_lease(
        &self,
        delivery: &ClaimedDelivery,
    ) -> Result<Handled, HandlerError> {
        let lease_ms = self.config.lease_seconds * 1000;
        let mut renew = tokio::time::interval(Duration::from_millis((lease_ms / 3).max(1)));
        renew.tick().await; // the first tick is immediate
        let work = process(&self.ctx, delivery);
        tokio::pin!(work);
        loop {
            tokio::select! {
                outcome = &mut work => return outcome,
                _ = renew.tick() => {
                    let until = now_ms() + lease_ms as i64;
                    match self.ctx.store.extend_lease(delivery.id, &self.owner, until).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(delivery = %delivery.delivery_id, "lease lost while processing"),
                        Err(err) => tracing::warn!(delivery = %delivery.delivery_id, error = %err, "cannot extend the lease"),
                    }
                }
            }
        }
    }

    async fn record(
        &self,
        delivery: &ClaimedDelivery,
        outcome: Result<Handled, HandlerError>,
    ) -> crate::store::Result<Step> {
        let now = now_ms();
        let (state, error) = match outcome {
            Ok(Handled::Processed) => (Finished::Processed, None),
            Ok(Handled::Ignored) => (Finished::Ignored, None),
            Err(HandlerError::Permanent(message)) => (Finished::Failed, Some(message)),
            Err(HandlerError::Transient(err)) => {
                let message = format!("{err:#}");
                if delivery.attempts < i64::from(self.config.max_attempts) {
                    let delay = backoff_ms(self.config.retry_base_ms, delivery.attempts);
                    tracing::warn!(
                        delivery = %delivery.delivery_id, event = %delivery.event,
                        attempt = delivery.attempts, retry_in_ms = delay, error = %message,
                        "delivery failed; will retry"
                    );
                    let kept = self
                        .ctx
                        .store
                        .retry_delivery_later(
                            delivery.id,
                            &self.owner,
                            &message,
                            now + delay as i64,
                        )
                        .await?;
                    return Ok(if kept {
                        Step::Retrying
                    } else {
                        Step::LostLease
                    });
                }
                (Finished::Failed, Some(message))
            }
        };
        if let Some(message) = &error {
            tracing::error!(
                delivery = %delivery.delivery_id, event = %delivery.event,
                attempts = delivery.attempts, error = %message, "delivery failed for good"
            );
        }
        let kept = self
            .ctx
            .store
            .finish_delivery(delivery.id, &self.owner, state, error.as_deref(), now)
            .await?;
        if !kept {
            return Ok(Step::LostLease);
        }
        self.metrics.inbox_processed(state.as_str());
        Ok(Step::Finished(state.as_str()))
    }
}

async fn process(
    ctx: &HandlerContext,
    delivery: &ClaimedDelivery,
) -> Result<Handled, HandlerError> {
    let event = events::parse(&delivery.event, &delivery.payload)
        .map_err(|e| HandlerError::Permanent(e.to_string()))?;
    handlers::handle(ctx, &event).await
}

/// `base × 2^(attempt-1)`, capped at one hour.
fn backoff_ms(base_ms: u64, attempt: i64) -> u64 {
    let exponent = attempt.clamp(1, 32) as u32 - 1;
    base_ms.saturating_mul(1u64 << exponent).min(MAX_BACKOFF_MS)
}

#[cfg(test)]
mod tests {
    use super::backoff_ms;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff_ms(5_000, 1), 5_000);
        assert_eq!(backoff_ms(5_000, 2), 10_000);
        assert_eq!(backoff_ms(5_000, 4), 40_000);
        assert_eq!(backoff_ms(5_000, 30), 3_600_000);
        assert_eq!(backoff_ms(u64::MAX, 3), 3_600_000);
    }
}
