//! Scheduled jobs — vesting, closing weeks, calibration, hygiene — on `cron` expressions in
//! the configured time zone. Each runs on start (for its latest scheduled time)
//! and at every scheduled time after; a run is claimed by inserting a
//! (job, scheduled time) row, so among replicas sharing a database only one
//! runs it, and running a job twice changes nothing.

use std::sync::Arc;

use chrono::TimeZone;
use chrono_tz::Tz;
use cron::Schedule;

use crate::clock::Clock;
use crate::config::parse_cron;
use crate::jobs::reconcile::Reconciler;
use crate::ledger::Ledger;
use crate::notify::digests::DigestPoster;
use crate::scoring::week::Week;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// Settles the ledger: vests what is due (and anything a lost wake-up missed).
    Vesting,
    /// Closes the weeks that are due into statements (and pays them).
    Close,
    /// Keeps the new week's calibration table.
    Calibration,
    /// Keeps last week's hygiene per person.
    Hygiene,
    /// Queues the last complete week's digest for every Discord destination
    /// (idempotent, so it runs on every tick without a claim) and sends what is due.
    Digest,
}

impl Job {
    pub fn name(self) -> &'static str {
        match self {
            Job::Vesting => "vesting",
            Job::Close => "close",
            Job::Calibration => "calibration",
            Job::Hygiene => "hygiene",
            Job::Digest => "digest",
        }
    }
}

pub struct Scheduler {
    jobs: Vec<(Job, Schedule)>,
    poster: Option<DigestPoster>,
    reconciler: Option<Reconciler>,
    tz: Tz,
    ledger: Ledger,
    clock: Arc<dyn Clock>,
    owner: String,
    /// Sends DMs after the passes it runs (none: no DMs).
    chat: Option<crate::chat::Chat>,
}

impl Scheduler {
    /// DMs people after each vesting pass and close (`discord.dm`).
    pub fn with_dms(mut self, chat: crate::chat::Chat) -> Scheduler {
        self.chat = Some(chat);
        self
    }

    async fn deliver_dms(&self) {
        if let Some(chat) = &self.chat {
            crate::chat::dm::deliver(chat, &self.owner).await;
        }
    }

    /// `poster` sends digests (none: no digest job); `reconciler` asks GitHub
    /// for missing CI before the vesting job settles.
    pub fn new(
        config: &crate::config::Config,
        ledger: Ledger,
        clock: Arc<dyn Clock>,
        poster: Option<DigestPoster>,
        reconciler: Option<Reconciler>,
        owner: String,
    ) -> Scheduler {
        let parse = |e: &str| parse_cron(e).expect("schedules are checked when config loads");
        let mut jobs = vec![
            (Job::Vesting, parse(&config.schedules.vesting)),
            (Job::Close, parse(&config.schedules.close)),
            (Job::Calibration, parse(&config.schedules.calibration)),
            (Job::Hygiene, parse(&config.schedules.hygiene)),
        ];
        if poster.is_some() {
            jobs.push((Job::Digest, parse(&config.digest.schedule)));
        }
        Scheduler {
            jobs,
            poster,
            reconciler,
            tz: config
                .tz()
                .expect("the time zone is checked when config loads"),
            ledger,
            clock,
            owner,
            chat: None,
        }
    }

    /// The latest scheduled time of `schedule` at or before `now` (epoch ms).
    fn latest(&self, schedule: &Schedule, now: i64) -> Option<i64> {
        let after = self.tz.timestamp_millis_opt(now + 1).single()?;
        schedule
            .after(&after)
            .next_back()
            .map(|t| t.timestamp_millis())
    }

    fn next(&self, schedule: &Schedule, now: i64) -> Option<i64> {
        let after = self.tz.timestamp_millis_opt(now).single()?;
        schedule.after(&after).next().map(|t| t.timestamp_millis())
    }

    /// Runs every job whose latest scheduled time has not run yet (here or in
    /// another replica). Returns the jobs run.
    pub async fn run_due(&self) -> anyhow::Result<Vec<Job>> {
        let now = self.clock.now_ms();
        let mut ran = Vec::new();
        for (job, schedule) in &self.jobs {
            let at = self.latest(schedule, now).unwrap_or(now);
            if *job == Job::Digest {
                if let Some(poster) = &self.poster {
                    poster.enqueue(at).await?;
                }
                continue;
            }
            let store = self.ledger.store();
            if !store
                .claim_job_run(job.name(), at, &self.owner, now)
                .await?
            {
                continue;
            }
            let outcome = self.run(*job, now).await;
            let text = match &outcome {
                Ok(()) => "ok".to_string(),
                Err(e) => format!("error: {e}"),
            };
            store
                .finish_job_run(job.name(), at, &text, self.clock.now_ms())
                .await?;
            outcome?;
            ran.push(*job);
        }
        if let Some(poster) = &self.poster {
            poster.send_due_when_synced().await?;
        }
        Ok(ran)
    }

    async fn run(&self, job: Job, now: i64) -> anyhow::Result<()> {
        let version = self.ledger.version().to_string();
        match job {
            Job::Vesting => {
                if let Some(reconciler) = &self.reconciler
                    && let Err(e) = reconciler.look_up_ci().await
                {
                    // Vesting goes on: what GitHub could not say counts as no CI.
                    tracing::warn!(error = %e, "CI could not be asked of GitHub");
                }
                self.ledger.settle(now).await?;
                self.deliver_dms().await;
            }
            Job::Digest => {}
            Job::Close => {
                self.ledger.close_due(now).await?;
                self.deliver_dms().await;
            }
            Job::Calibration => {
                let week = Week::of(now, self.tz);
                let table = self.ledger.calibration_of(week).await?;
                let json = serde_json::to_string(&table)?;
                self.ledger
                    .store()
                    .save_calibration(&week.label(), &version, &json, now)
                    .await?;
                tracing::info!(week = %week.label(), factors = %json, "calibration kept");
            }
            Job::Hygiene => {
                let week = Week::of(now, self.tz).previous(self.tz);
                let board = self
                    .ledger
                    .leaderboard(week, crate::scoring::leaderboard::RankBy::Value)
                    .await?;
                let rows: Vec<(String, u32, String)> = board
                    .entries
                    .iter()
                    .chain(&board.unranked)
                    .map(|l| {
                        (
                            l.person.clone(),
                            l.hygiene,
                            serde_json::to_string(&l.hygiene_events).expect("counts serialise"),
                        )
                    })
                    .collect();
                self.ledger
                    .store()
                    .save_hygiene(&rows, &week.label(), &version, now)
                    .await?;
            }
        }
        Ok(())
    }

    /// Runs due jobs now and then at each next scheduled time, until `stop`.
    pub async fn run_forever(self, stop: tokio_util::sync::CancellationToken) {
        loop {
            if let Err(e) = self.run_due().await {
                tracing::error!(error = %e, "a scheduled job failed; it runs again at its next time");
            }
            let now = self.clock.now_ms();
            let next = self
                .jobs
                .iter()
                .filter_map(|(_, s)| self.next(s, now))
                .min()
                .unwrap_or(now + 3_600_000);
            // Wake at least every minute: the wall clock may jump.
            let wait = (next - now).clamp(1_000, 60_000) as u64;
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(std::time::Duration::from_millis(wait)) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The latest scheduled time at or before `now`, in `tz`.
    fn latest_in(expression: &str, tz: &str, now: &str) -> String {
        let tz: Tz = tz.parse().unwrap();
        let schedule = parse_cron(expression).unwrap();
        let now = chrono::DateTime::parse_from_rfc3339(now)
            .unwrap()
            .timestamp_millis();
        let after = tz.timestamp_millis_opt(now + 1).single().unwrap();
        let t = schedule.after(&after).next_back().unwrap();
        t.with_timezone(&chrono::Utc).to_rfc3339()
    }

    #[test]
    fn schedules_fire_in_the_configured_time_zone() {
        // Mondays at midnight in New York (EDT, UTC−4): 04:00 UTC.
        assert_eq!(
            latest_in("0 0 0 * * Mon", "America/New_York", "2026-10-07T12:00:00Z"),
            "2026-10-05T04:00:00+00:00"
        );
        assert_eq!(
            latest_in("0 0 0 * * Mon", "UTC", "2026-10-07T12:00:00Z"),
            "2026-10-05T00:00:00+00:00"
        );
        // At the scheduled instant itself, that instant is the latest.
        assert_eq!(
            latest_in("0 0 * * * *", "UTC", "2026-10-07T12:00:00Z"),
            "2026-10-07T12:00:00+00:00"
        );
    }

    /// The next `n` scheduled times after `from`, in UTC.
    fn next_in(expression: &str, tz: &str, from: &str, n: usize) -> Vec<String> {
        let tz: Tz = tz.parse().unwrap();
        let schedule = parse_cron(expression).unwrap();
        let from = chrono::DateTime::parse_from_rfc3339(from).unwrap();
        schedule
            .after(&from.with_timezone(&tz))
            .take(n)
            .map(|t| t.with_timezone(&chrono::Utc).to_rfc3339())
            .collect()
    }

    #[test]
    fn the_digest_keeps_its_local_hour_across_daylight_saving_changes() {
        let digest = "0 0 9 * * Mon *";
        // Berlin: summer time ends 2026-10-25 (UTC+2 → +1), starts 2026-03-29.
        assert_eq!(
            next_in(digest, "Europe/Berlin", "2026-10-13T00:00:00Z", 2),
            ["2026-10-19T07:00:00+00:00", "2026-10-26T08:00:00+00:00"]
        );
        assert_eq!(
            next_in(digest, "Europe/Berlin", "2026-03-17T00:00:00Z", 2),
            ["2026-03-23T08:00:00+00:00", "2026-03-30T07:00:00+00:00"]
        );
        // New York: daylight time starts 2026-03-08 (UTC−5 → −4), ends 2026-11-01.
        assert_eq!(
            next_in(digest, "America/New_York", "2026-02-24T00:00:00Z", 2),
            ["2026-03-02T14:00:00+00:00", "2026-03-09T13:00:00+00:00"]
        );
        assert_eq!(
            next_in(digest, "America/New_York", "2026-10-20T00:00:00Z", 2),
            ["2026-10-26T13:00:00+00:00", "2026-11-02T14:00:00+00:00"]
        );
        // The night 01:30 happens twice in New York, a daily 01:30 fires at
        // both (the cron crate's choice): every job is idempotent and a digest
        // is keyed by its week, so the second changes nothing.
        let nightly = next_in(
            "0 30 1 * * *",
            "America/New_York",
            "2026-10-31T12:00:00Z",
            3,
        );
        assert_eq!(
            nightly,
            [
                "2026-11-01T05:30:00+00:00",
                "2026-11-01T06:30:00+00:00",
                "2026-11-02T06:30:00+00:00"
            ]
        );
        // The night 02:30 does not exist (spring forward, 2026-03-08), it does not run.
        let nightly = next_in(
            "0 30 2 * * *",
            "America/New_York",
            "2026-03-07T12:00:00Z",
            2,
        );
        assert_eq!(
            nightly,
            ["2026-03-09T06:30:00+00:00", "2026-03-10T06:30:00+00:00"]
        );
    }

    #[test]
    fn cron_expressions_are_checked() {
        assert!(parse_cron("0 0 * * * *").is_ok());
        assert!(parse_cron("0 0 9 * * Mon").is_ok());
        let err = parse_cron("0 9 * * 1").unwrap_err();
        assert!(err.contains("seconds first"), "{err}");
    }
}
