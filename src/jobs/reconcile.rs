//! Reconciling with GitHub, which sends each delivery once and never retries
//! by itself:
//!
//! - On start and every `github.reconcile_interval_seconds`, every repository
//!   with a clone URL gets a fetch of its mirror, queued as a synthetic inbox
//!   delivery (`tokentally_reconcile`, id `reconcile:{repo}:{slot}`), so the
//!   worker's retries apply and replicas queue it once per interval. Pushes
//!   and merges whose webhooks were lost are attributed by it, landing at the
//!   time of the fetch.
//! - A landed AI commit still without a CI result a day before it vests asks
//!   GitHub's API for its check runs and statuses (once). They are read as
//!   the webhook events would have been, so the same CI rules and the same
//!   idempotency keys apply: a webhook arriving later stores nothing twice.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::clock::Clock;
use crate::github::client::GithubClient;
use crate::github::events::{GithubEvent, RECONCILE_EVENT};
use crate::github::outcomes::{CiRules, outcome};
use crate::store::Store;
use crate::store::deliveries::NewDelivery;

const DAY_MS: i64 = 24 * 3_600_000;

pub struct Reconciler {
    store: Store,
    github: Option<GithubClient>,
    ci_rules: CiRules,
    clock: Arc<dyn Clock>,
    interval_ms: i64,
    vesting_days: i64,
}

/// Where in the interval a repository's fetch falls: the same offset every
/// interval (a hash of its name), so thousands of repositories are fetched a
/// few at a time instead of all at once on start.
fn spread(full_name: &str, interval_ms: i64) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(full_name.as_bytes());
    let n = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    (n % interval_ms.max(1) as u64) as i64
}

impl Reconciler {
    pub fn new(
        config: &crate::config::Config,
        store: Store,
        github: Option<GithubClient>,
        clock: Arc<dyn Clock>,
    ) -> Reconciler {
        Reconciler {
            store,
            github,
            ci_rules: CiRules::new(&config.signals.ci)
                .expect("CI globs are checked when the configuration loads"),
            clock,
            interval_ms: config.github.reconcile_interval_seconds as i64 * 1000,
            vesting_days: i64::from(config.scoring.vesting_days),
        }
    }

    /// Queues a mirror fetch of every repository for this interval, each at its
    /// own moment within it, as background work (live deliveries go first).
    /// Returns how many were new.
    pub async fn queue_fetches(&self) -> anyhow::Result<usize> {
        let now = self.clock.now_ms();
        let slot = now / self.interval_ms.max(1);
        let batch: Vec<NewDelivery> = self
            .store
            .repositories()
            .await?
            .into_iter()
            .filter(|r| r.clone_url.is_some())
            .map(|r| NewDelivery {
                delivery_id: format!("reconcile:{}:{slot}", r.full_name),
                event: RECONCILE_EVENT.to_string(),
                action: None,
                hook_id: None,
                payload: json!({
                    "repository": {
                        "id": r.github_id,
                        "full_name": r.full_name,
                        "default_branch": r.default_branch,
                        "clone_url": r.clone_url,
                    }
                })
                .to_string(),
                received_at: now,
                not_before: now + spread(&r.full_name, self.interval_ms),
                background: true,
            })
            .collect();
        let inserted = self.store.insert_deliveries(&batch).await?;
        Ok(inserted
            .iter()
            .filter(|i| matches!(i, crate::store::deliveries::Inserted::Stored))
            .count())
    }

    /// Queues fetches now and then every interval, until `stop`.
    pub async fn run_forever(self, stop: tokio_util::sync::CancellationToken) {
        loop {
            if let Err(e) = self.queue_fetches().await {
                tracing::error!(error = %e, "mirror fetches could not be queued; tried again next interval");
            }
            let wait = std::time::Duration::from_millis(self.interval_ms.max(1_000) as u64);
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Asks GitHub for the CI of landed AI commits that vest within a day and
    /// have none. Returns the commits asked about.
    pub async fn look_up_ci(&self) -> anyhow::Result<usize> {
        let Some(github) = &self.github else {
            return Ok(0);
        };
        let now = self.clock.now_ms();
        let vesting = self.vesting_days * DAY_MS;
        // Landed between a week before the vesting window and a day before it vests.
        let (from, to) = (now - vesting - 7 * DAY_MS, now - vesting + DAY_MS + 1);
        let due = self.store.commits_needing_ci_lookup(from, to).await?;
        let mut asked = 0;
        for (repo, installation, sha) in due {
            match self.look_up(github, &repo, installation, &sha).await {
                Ok(found) => {
                    self.store
                        .record_ci_lookup(&repo, &sha, found as i64, self.clock.now_ms())
                        .await?;
                    tracing::info!(repository = %repo, %sha, found, "CI asked of GitHub before vesting");
                    asked += 1;
                }
                Err(e) => {
                    // Asked again at the next run, while it has not vested.
                    tracing::warn!(repository = %repo, %sha, error = %e, "CI could not be asked of GitHub");
                }
            }
        }
        Ok(asked)
    }

    /// Stores what GitHub knows of one commit's check runs and statuses.
    async fn look_up(
        &self,
        github: &GithubClient,
        repo: &str,
        installation: Option<i64>,
        sha: &str,
    ) -> anyhow::Result<usize> {
        let repository = json!({ "full_name": repo });
        let mut events = Vec::new();
        let runs = github
            .get(
                installation,
                &format!("/repos/{repo}/commits/{sha}/check-runs?per_page=100"),
            )
            .await?;
        for run in runs["check_runs"].as_array().into_iter().flatten() {
            events.push((
                "check_run",
                json!({ "action": "completed", "check_run": run, "repository": repository }),
            ));
        }
        let statuses = github
            .get(
                installation,
                &format!("/repos/{repo}/commits/{sha}/statuses?per_page=100"),
            )
            .await?;
        for status in statuses.as_array().into_iter().flatten() {
            let mut event: Value = status.clone();
            event["sha"] = sha.into();
            event["repository"] = repository.clone();
            events.push(("status", event));
        }
        let mut found = 0;
        for (name, payload) in events {
            // Read as the webhook would have been; what does not parse is skipped.
            let Ok(event) = crate::github::events::parse(name, &payload.to_string()) else {
                continue;
            };
            if !matches!(event, GithubEvent::CheckRun(_) | GithubEvent::Status(_)) {
                continue;
            }
            let Ok(Some(o)) = outcome(&event, &self.ci_rules) else {
                continue;
            };
            let now = self.clock.now_ms();
            super::outcome::record_outcome(&self.store, &o, o.occurred_at.unwrap_or(now), now)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            found += 1;
        }
        Ok(found)
    }
}
