//! Posting the weekly digest: exactly one message per (week, destination).
//!
//! The schedule *enqueues* a `digest_posts` row per destination for the last
//! complete week (an insert that does nothing when the row exists, so a
//! schedule that fires twice, a restart or a second replica adds nothing).
//! Senders *claim* due rows with a lease (one conditional UPDATE), build the
//! digest, send it and store Discord's message id. A sender that dies between
//! claim and send leaves a lease that runs out; the row is then claimed again.
//! The one window left is a crash after Discord accepted the message and
//! before its id is stored: that digest is posted again (at least once there,
//! since Discord webhooks take no idempotency key).

use std::sync::Arc;
use std::time::Duration;

use super::discord::{DiscordClient, Sent};
use crate::clock::Clock;
use crate::config::{Config, DestinationConfig, parse_webhook_url};
use crate::digest;
use crate::health::Health;
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::scoring::week::Week;
use crate::store::digest_posts::{DigestPost, PostState};

/// How long a claim keeps others off a digest (longer than one send with its retries).
const LEASE_MS: i64 = 10 * 60 * 1000;

#[derive(Clone)]
pub struct DigestPoster {
    ledger: Ledger,
    config: Arc<Config>,
    client: DiscordClient,
    clock: Arc<dyn Clock>,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    owner: String,
}

/// What happened to one digest.
#[derive(Debug, Clone, PartialEq)]
pub struct Posted {
    pub week: String,
    pub destination: String,
    pub outcome: Sent,
}

impl DigestPoster {
    pub fn new(
        ledger: Ledger,
        config: Arc<Config>,
        clock: Arc<dyn Clock>,
        health: Arc<Health>,
        metrics: Arc<Metrics>,
        owner: String,
    ) -> DigestPoster {
        let client = DiscordClient::new(
            &config.discord.api_url,
            Duration::from_millis(config.discord.retry_base_ms),
            metrics.clone(),
        );
        DigestPoster {
            ledger,
            config,
            client,
            clock,
            health,
            metrics,
            owner,
        }
    }

    fn destinations(&self) -> Vec<DestinationConfig> {
        self.config.discord.all_destinations()
    }

    /// Destinations disabled for their current webhook URL (name → reason).
    async fn disabled(&self) -> anyhow::Result<Vec<(String, String)>> {
        let marks = self.ledger.store().disabled_destinations().await?;
        let disabled: Vec<(String, String)> = self
            .destinations()
            .into_iter()
            .filter_map(|d| {
                let hash = crate::secret::sha256_hex(d.webhook_url.expose());
                marks
                    .iter()
                    .find(|(name, h, _)| *name == d.name && *h == hash)
                    .map(|(_, _, reason)| (d.name.clone(), reason.clone()))
            })
            .collect();
        self.metrics.discord_disabled(disabled.len() as i64);
        for (name, reason) in &disabled {
            self.health.set_problem(
                &format!("discord destination {name}"),
                format!("disabled: {reason}"),
            );
        }
        Ok(disabled)
    }

    /// Enqueues the digest of the last complete week before `scheduled_at` for
    /// every enabled destination. Returns the week.
    pub async fn enqueue(&self, scheduled_at: i64) -> anyhow::Result<Week> {
        let tz = self.ledger.tz();
        let week = Week::of(scheduled_at, tz).previous(tz);
        let disabled = self.disabled().await?;
        for d in self.destinations() {
            if disabled.iter().any(|(name, _)| *name == d.name) {
                continue;
            }
            if self
                .ledger
                .store()
                .enqueue_digest(&week.label(), &d.name, self.clock.now_ms())
                .await?
            {
                tracing::info!(week = %week.label(), destination = %d.name, "digest queued");
            }
        }
        Ok(week)
    }

    /// The scheduled path: sends what is due, unless repositories are still
    /// bringing their history in (a first sync running, a configured
    /// repository never synced, or nothing synced at all) — a digest then
    /// would report a week whose work is not known yet. It stays queued.
    pub async fn send_due_when_synced(&self) -> anyhow::Result<Vec<Posted>> {
        if self.config.mirrors.enabled {
            let configured: Vec<String> = self
                .config
                .github
                .repositories
                .iter()
                .filter(|r| !r.contains('*'))
                .cloned()
                .collect();
            let waiting = self.ledger.store().awaiting_first_sync(&configured).await?;
            if !waiting.is_empty() {
                tracing::info!(waiting = %waiting.join(", "), "digest held until the first syncs finish");
                return Ok(Vec::new());
            }
        }
        self.send_due().await
    }

    /// Sends every digest that is due now (claimed one at a time).
    pub async fn send_due(&self) -> anyhow::Result<Vec<Posted>> {
        let mut done = Vec::new();
        loop {
            let now = self.clock.now_ms();
            let Some(post) = self
                .ledger
                .store()
                .claim_digest(&self.owner, now, now + LEASE_MS)
                .await?
            else {
                return Ok(done);
            };
            done.push(self.send_claimed(post).await?);
        }
    }

    async fn send_claimed(&self, post: DigestPost) -> anyhow::Result<Posted> {
        let store = self.ledger.store();
        let Some(destination) = self
            .destinations()
            .into_iter()
            .find(|d| d.name == post.destination)
        else {
            let error = "the destination is no longer configured";
            store
                .digest_not_sent(
                    &post.week,
                    &post.destination,
                    &self.owner,
                    PostState::Failed,
                    0,
                    error,
                )
                .await?;
            return Ok(Posted {
                week: post.week,
                destination: post.destination,
                outcome: Sent::Rejected(error.to_string()),
            });
        };
        let outcome = match Week::parse(&post.week) {
            Some(week) => self.deliver(week, &destination).await?,
            None => Sent::Rejected(format!("{:?} is not a week", post.week)),
        };
        let now = self.clock.now_ms();
        let (week, name) = (post.week.as_str(), post.destination.as_str());
        match &outcome {
            Sent::Message(id) => {
                store.digest_sent(week, name, &self.owner, id, now).await?;
                tracing::info!(week, destination = name, message = %id, "digest posted");
            }
            Sent::Retry { after, error } => {
                let attempts = post.attempts.max(1) as u32;
                let (state, next) = if attempts >= self.config.discord.max_attempts {
                    (PostState::Failed, now)
                } else {
                    // Back-off of the outbox: the longer of Discord's wait and base × 2^attempts.
                    let backoff =
                        self.config.discord.retry_base_ms as i64 * (1_i64 << attempts.min(16));
                    (
                        PostState::Pending,
                        now + backoff.max(after.as_millis() as i64),
                    )
                };
                store
                    .digest_not_sent(week, name, &self.owner, state, next, error)
                    .await?;
                tracing::warn!(week, destination = name, attempts, %error, %state, "digest not posted");
            }
            Sent::Disabled(reason) => {
                store
                    .disable_destination(
                        name,
                        &crate::secret::sha256_hex(destination.webhook_url.expose()),
                        reason,
                        now,
                    )
                    .await?;
                store
                    .digest_not_sent(week, name, &self.owner, PostState::Disabled, now, reason)
                    .await?;
                self.disabled().await?;
                tracing::error!(destination = name, %reason, "Discord destination disabled: fix its webhook_url in the configuration");
            }
            Sent::Rejected(error) => {
                store
                    .digest_not_sent(week, name, &self.owner, PostState::Failed, now, error)
                    .await?;
                tracing::error!(week, destination = name, %error, "Discord refused the digest");
            }
        }
        Ok(Posted {
            week: post.week,
            destination: post.destination,
            outcome,
        })
    }

    /// Builds and sends the digest of `week` to `destination` (no bookkeeping).
    pub async fn deliver(
        &self,
        week: Week,
        destination: &DestinationConfig,
    ) -> anyhow::Result<Sent> {
        let data = digest::build(&self.ledger, &self.config, week, Some(destination)).await?;
        let kind = self.config.digest.chart;
        let png = match digest::chart::png(&data, kind) {
            // An empty chart is not attached ("no one ranked" is in the text).
            Ok(_) if !digest::chart::has_data(&data, kind) => None,
            Ok(png) => Some(png),
            Err(e) => {
                // The digest still goes out, without its picture.
                tracing::error!(error = %e, "the digest chart could not be drawn");
                None
            }
        };
        let payload = digest::discord::message(&data, png.clone());
        let target = parse_webhook_url(destination.webhook_url.expose())
            .map_err(|e| anyhow::anyhow!("discord destination {}: {e}", destination.name))?;
        Ok(self.client.send(&target, &payload, png.as_deref()).await)
    }

    /// `tokentally digest --post`: sends `week` now to every destination, once
    /// per week and destination unless `force`.
    pub async fn post_now(&self, week: Week, force: bool) -> anyhow::Result<Vec<Posted>> {
        if !force {
            for d in self.destinations() {
                self.ledger
                    .store()
                    .enqueue_digest(&week.label(), &d.name, self.clock.now_ms())
                    .await?;
            }
            return self.send_due().await;
        }
        let mut done = Vec::new();
        for d in self.destinations() {
            let outcome = self.deliver(week, &d).await?;
            if let Sent::Message(id) = &outcome {
                self.ledger
                    .store()
                    .digest_forced(&week.label(), &d.name, id, self.clock.now_ms())
                    .await?;
            }
            done.push(Posted {
                week: week.label(),
                destination: d.name.clone(),
                outcome,
            });
        }
        Ok(done)
    }

    /// `tokentally digest --post --update`: rebuilds `week`'s digest and edits
    /// the message already posted to each destination in place. A
    /// destination it was never posted to answers `Rejected`.
    pub async fn update(&self, week: Week) -> anyhow::Result<Vec<Posted>> {
        let posts = self.posts().await?;
        let mut done = Vec::new();
        for d in self.destinations() {
            let sent = posts.iter().find(|p| {
                p.week == week.label() && p.destination == d.name && p.state == PostState::Sent
            });
            let outcome = match sent.and_then(|p| p.message_id.clone()) {
                Some(id) if !id.is_empty() => {
                    let data = digest::build(&self.ledger, &self.config, week, Some(&d)).await?;
                    let kind = self.config.digest.chart;
                    let png = digest::chart::png(&data, kind)
                        .ok()
                        .filter(|_| digest::chart::has_data(&data, kind));
                    let payload = digest::discord::message(&data, png.clone());
                    let target = parse_webhook_url(d.webhook_url.expose())
                        .map_err(|e| anyhow::anyhow!("discord destination {}: {e}", d.name))?;
                    match self
                        .client
                        .edit(&target, &payload, png.as_deref(), &id)
                        .await
                    {
                        // Discord answers with the edited message: the same id.
                        Sent::Message(_) => Sent::Message(id),
                        other => other,
                    }
                }
                _ => Sent::Rejected(format!(
                    "{} was not posted to {} yet: --post sends it",
                    week.label(),
                    d.name
                )),
            };
            done.push(Posted {
                week: week.label(),
                destination: d.name.clone(),
                outcome,
            });
        }
        Ok(done)
    }

    /// Every digest post row (for the CLI and tests).
    pub async fn posts(&self) -> anyhow::Result<Vec<DigestPost>> {
        Ok(self.ledger.store().digest_posts().await?)
    }
}
