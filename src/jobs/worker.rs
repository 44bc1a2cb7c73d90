//! The inbox worker: claims stored deliveries under a lease, turns them into
//! events, runs the handlers and records the outcome, retrying failures with
//! exponential back-off. Several workers (tasks or replicas) may share one
//! database: the claim is a single conditional `UPDATE … RETURNING`.
//!
//! Nothing a delivery does can take the worker down or hang it: the handler runs
//! in a task of its own (a panic is a failed attempt), under a deadline, and is
//! stopped when its lease is lost. A delivery claimed more than `max_attempts`
//! times (the process crashed while handling it, again and again) is failed at
//! claim time. The loops are supervised and restarted; if they keep dying the
//! process is marked fatal (see [`crate::health`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::context::{DeliveryContext, Handled, HandlerContext, HandlerError};
use super::handlers;
use crate::clock::Clock;
use crate::config::WorkerConfig;
use crate::github::events;
use crate::health::Health;
use crate::metrics::Metrics;
use crate::store::deliveries::{ClaimedDelivery, Finished};

/// The longest wait between two attempts at one delivery.
const MAX_BACKOFF_MS: u64 = 60 * 60 * 1000;
/// A worker loop that dies this many times within [`RESTART_WINDOW`] is given up on.
const MAX_RESTARTS: usize = 5;
const RESTART_WINDOW: Duration = Duration::from_secs(60);
/// Pause before a restart, so a task that dies at once does not spin.
const RESTART_DELAY: Duration = Duration::from_millis(100);

#[derive(Clone)]
pub struct Worker {
    ctx: Arc<HandlerContext>,
    metrics: Arc<Metrics>,
    config: WorkerConfig,
    /// Unique per worker, so a lease can tell its holder apart from a later one.
    owner: String,
    wake: Arc<Notify>,
    clock: Arc<dyn Clock>,
    health: Arc<Health>,
    /// Deliveries in flight for longer than [`SLOW_DELIVERY`] (a long clone).
    slow: Arc<AtomicUsize>,
    /// Wakes the spare loops when a delivery turns slow.
    spare_wake: Arc<Notify>,
}

/// A delivery running longer than this lets one more loop start claiming, so
/// what is quick (CI signals) never waits behind what is slow (a first clone),
/// while a backlog of quick deliveries is worked by one loop and leaves the CPU
/// to ingress.
const SLOW_DELIVERY: Duration = Duration::from_secs(1);

/// What one step of the worker did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Idle,
    Finished(&'static str),
    Retrying,
    /// The lease ran out or was taken over before the outcome could be written;
    /// the work was stopped and another worker owns the delivery.
    LostLease,
}

impl Worker {
    pub fn new(
        ctx: Arc<HandlerContext>,
        metrics: Arc<Metrics>,
        config: WorkerConfig,
        wake: Arc<Notify>,
        clock: Arc<dyn Clock>,
        health: Arc<Health>,
        owner: String,
    ) -> Self {
        Worker {
            ctx,
            metrics,
            config,
            owner,
            wake,
            clock,
            health,
            slow: Arc::new(AtomicUsize::new(0)),
            spare_wake: Arc::new(Notify::new()),
        }
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Runs `worker.concurrency` supervised loops until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!(worker = %self.owner, concurrency = self.config.concurrency, "inbox worker started");
        let mut loops = tokio::task::JoinSet::new();
        for slot in 0..self.config.concurrency {
            loops.spawn(self.clone().supervised(slot, shutdown.clone()));
        }
        while loops.join_next().await.is_some() {}
        tracing::info!(worker = %self.owner, "inbox worker stopped");
    }

    /// One loop, restarted when it panics; given up on (fatal) when it keeps dying.
    async fn supervised(self, slot: usize, shutdown: CancellationToken) {
        let (health, metrics) = (self.health.clone(), self.metrics.clone());
        let name = format!("worker loop {slot}");
        supervise(&name, &health, &metrics, &shutdown, || {
            self.clone().run_loop(slot, shutdown.clone())
        })
        .await;
    }

    /// Loop 0 always works; loop N works while N deliveries are slow.
    fn may_claim(&self, slot: usize) -> bool {
        slot == 0 || self.slow.load(Ordering::SeqCst) >= slot
    }

    async fn run_loop(self, slot: usize, shutdown: CancellationToken) {
        let poll = Duration::from_millis(self.config.poll_interval_ms);
        while !shutdown.is_cancelled() {
            if !self.may_claim(slot) {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = self.spare_wake.notified() => {}
                    _ = tokio::time::sleep(poll) => {}
                }
                continue;
            }
            match self.step_until(&shutdown).await {
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
        self.step_until(&CancellationToken::new()).await
    }

    /// [`Worker::step`], stopping the work (to be retried) when `shutdown` is cancelled.
    pub async fn step_until(&self, shutdown: &CancellationToken) -> crate::store::Result<Step> {
        let now = self.clock.now_ms();
        let lease_until = now + self.lease_ms() as i64;
        let Some(delivery) = self
            .ctx
            .store
            .claim_delivery(&self.owner, now, lease_until)
            .await?
        else {
            return Ok(Step::Idle);
        };
        if delivery.attempts > i64::from(self.config.max_attempts) {
            // Claimed again and again without an outcome: the process died while
            // handling it each time. Stop before it takes the process down again.
            let message = format!(
                "gave up after {} attempts without an outcome (the process stopped or \
                 lost the lease while handling it each time)",
                delivery.attempts - 1
            );
            let outcome = Err(HandlerError::Permanent(message));
            return self.record(&delivery, outcome).await;
        }
        let started = std::time::Instant::now();
        let outcome = match self.process_keeping_lease(&delivery, shutdown).await {
            Some(outcome) => outcome,
            None => return Ok(Step::LostLease),
        };
        let step = self.record(&delivery, outcome).await?;
        if let Step::Finished(state) = step {
            tracing::info!(
                delivery = %delivery.delivery_id, event = %delivery.event,
                action = delivery.action.as_deref().unwrap_or(""), outcome = state,
                attempt = delivery.attempts, duration_ms = started.elapsed().as_millis() as u64,
                "delivery finished"
            );
        }
        Ok(step)
    }

    fn lease_ms(&self) -> u64 {
        self.config.lease_seconds * 1000
    }

    /// Processes the delivery in a task of its own, renewing the lease every third
    /// of its length. `None` when the lease was lost (the work is stopped, nothing
    /// is recorded: the new holder decides).
    async fn process_keeping_lease(
        &self,
        delivery: &ClaimedDelivery,
        shutdown: &CancellationToken,
    ) -> Option<Result<Handled, HandlerError>> {
        let lease_ms = self.lease_ms();
        let context = DeliveryContext::new(delivery.received_at);
        let cancel = context.cancel.clone();
        let mut work = tokio::spawn(process(self.ctx.clone(), delivery.clone(), context));
        let stop = |work: &tokio::task::JoinHandle<_>| {
            // git2 checks the flag between objects; the task is aborted at its next await.
            cancel.store(true, Ordering::Relaxed);
            work.abort();
        };
        let mut renew = tokio::time::interval(Duration::from_millis((lease_ms / 3).max(1)));
        renew.tick().await; // the first tick is immediate
        let deadline =
            tokio::time::sleep(Duration::from_secs(self.config.delivery_timeout_seconds));
        tokio::pin!(deadline);
        let turns_slow = tokio::time::sleep(SLOW_DELIVERY);
        tokio::pin!(turns_slow);
        let mut slow = SlowMark::default();
        loop {
            tokio::select! {
                _ = &mut turns_slow, if slow.0.is_none() => {
                    self.slow.fetch_add(1, Ordering::SeqCst);
                    slow.0 = Some(self.slow.clone());
                    self.spare_wake.notify_waiters();
                }
                joined = &mut work => {
                    return Some(match joined {
                        Ok(outcome) => outcome,
                        Err(err) if err.is_panic() => Err(HandlerError::Transient(anyhow::anyhow!(
                            "the handler panicked: {}", panic_message(err)
                        ))),
                        Err(err) => Err(HandlerError::Transient(anyhow::anyhow!("the handler was stopped: {err}"))),
                    });
                }
                _ = renew.tick() => {
                    let until = self.clock.now_ms() + lease_ms as i64;
                    match self.ctx.store.extend_lease(delivery.id, &self.owner, until).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(delivery = %delivery.delivery_id, "lease lost while processing; stopping the work");
                            stop(&work);
                            return None;
                        }
                        Err(err) => tracing::warn!(delivery = %delivery.delivery_id, error = %err, "cannot extend the lease"),
                    }
                }
                _ = &mut deadline => {
                    stop(&work);
                    return Some(Err(HandlerError::Transient(anyhow::anyhow!(
                        "the delivery took longer than worker.delivery_timeout_seconds ({} s) and was stopped",
                        self.config.delivery_timeout_seconds
                    ))));
                }
                _ = shutdown.cancelled() => {
                    stop(&work);
                    return Some(Err(HandlerError::Transient(anyhow::anyhow!(
                        "stopped by a shutdown; it will be retried"
                    ))));
                }
            }
        }
    }

    async fn record(
        &self,
        delivery: &ClaimedDelivery,
        outcome: Result<Handled, HandlerError>,
    ) -> crate::store::Result<Step> {
        let now = self.clock.now_ms();
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
    ctx: Arc<HandlerContext>,
    delivery: ClaimedDelivery,
    context: DeliveryContext,
) -> Result<Handled, HandlerError> {
    let event = events::parse(&delivery.event, &delivery.payload)
        .map_err(|e| HandlerError::Permanent(e.to_string()))?;
    handlers::handle(&ctx, &event, &context).await
}

/// Counts a delivery as slow until it is dropped (whichever way the work ends).
#[derive(Default)]
struct SlowMark(Option<Arc<AtomicUsize>>);

impl Drop for SlowMark {
    fn drop(&mut self) {
        if let Some(count) = &self.0 {
            count.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn panic_message(err: tokio::task::JoinError) -> String {
    let payload = err.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_string())
}

/// Runs the task `start` makes until it returns; restarts it when it panics. A
/// task that dies [`MAX_RESTARTS`] times within [`RESTART_WINDOW`] is given up on
/// and the process is marked fatal (`/readyz` fails, `serve` exits non-zero).
pub async fn supervise<F, Fut>(
    name: &str,
    health: &Health,
    metrics: &Metrics,
    shutdown: &CancellationToken,
    start: F,
) where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut deaths: Vec<std::time::Instant> = Vec::new();
    loop {
        match tokio::spawn(start()).await {
            Ok(()) => return,
            Err(err) => {
                let now = std::time::Instant::now();
                deaths.retain(|t| now.duration_since(*t) < RESTART_WINDOW);
                deaths.push(now);
                metrics.worker_restart();
                tracing::error!(task = name, error = %err, "task died; restarting");
                if deaths.len() >= MAX_RESTARTS {
                    health.fail(
                        "worker",
                        format!("{name} died {MAX_RESTARTS} times within a minute: {err}"),
                    );
                    return;
                }
                health.set_problem("worker", format!("{name} restarted after: {err}"));
            }
        }
        if shutdown.is_cancelled() {
            return;
        }
        tokio::time::sleep(RESTART_DELAY).await;
    }
}

/// `base × 2^(attempt-1)`, capped at one hour.
fn backoff_ms(base_ms: u64, attempt: i64) -> u64 {
    let exponent = attempt.clamp(1, 32) as u32 - 1;
    base_ms.saturating_mul(1u64 << exponent).min(MAX_BACKOFF_MS)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_task_that_panics_is_restarted_and_reported() {
        let (health, metrics) = (Health::new(), Metrics::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = runs.clone();
        supervise(
            "test task",
            &health,
            &metrics,
            &CancellationToken::new(),
            move || {
                let counter = counter.clone();
                async move {
                    if counter.fetch_add(1, Ordering::SeqCst) < 2 {
                        panic!("boom");
                    }
                }
            },
        )
        .await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            3,
            "restarted until it returned"
        );
        assert!(health.problems()["worker"].contains("boom"));
        assert_eq!(health.fatal_reason(), None);
        assert!(
            metrics
                .render(0)
                .contains("tokentally_worker_restarts_total 2")
        );
    }

    #[tokio::test]
    async fn a_task_that_keeps_dying_is_fatal() {
        let (health, metrics) = (Health::new(), Metrics::new());
        supervise(
            "test task",
            &health,
            &metrics,
            &CancellationToken::new(),
            || async { panic!("always") },
        )
        .await;
        let reason = health.fatal_reason().unwrap();
        assert!(reason.contains("died 5 times"), "{reason}");
        assert!(
            tokio::time::timeout(Duration::from_secs(1), health.fatal())
                .await
                .is_ok(),
            "serve's watcher is woken"
        );
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff_ms(5_000, 1), 5_000);
        assert_eq!(backoff_ms(5_000, 2), 10_000);
        assert_eq!(backoff_ms(5_000, 4), 40_000);
        assert_eq!(backoff_ms(5_000, 30), 3_600_000);
        assert_eq!(backoff_ms(u64::MAX, 3), 3_600_000);
    }
}
