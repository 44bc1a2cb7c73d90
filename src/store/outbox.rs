//! What the service sends out, and what the weekly digest reads beyond the
//! leaderboard: digest posts (claimed before sending, one per week and
//! destination), disabled Discord destinations, pull-request comments, and the
//! week's landing statistics.

use super::{Named, Result, Store};

/// A digest post row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DigestPost {
    pub week: String,
    pub destination: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub message_id: Option<String>,
    pub error: Option<String>,
}

/// Landed commits of a week, per repository, AI flag and agents.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LandingRow {
    pub repository_id: i64,
    pub ai: i64,
    /// JSON array of agent slugs.
    pub agents: String,
    pub landed: i64,
    pub reverted: i64,
}

const POST_COLUMNS: &str = "week, destination, state, attempts, next_attempt_at, message_id, error";

impl Store {
    /// Adds a digest to send for (week, destination); nothing if it exists
    /// (sent, pending or failed): a schedule that fires twice posts once.
    pub async fn enqueue_digest(&self, week: &str, destination: &str, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO digest_posts (week, destination, state, next_attempt_at, created_at)
             VALUES ($1, $2, 'pending', $3, $3)
             ON CONFLICT (week, destination) DO NOTHING",
        )
        .bind(week)
        .bind(destination)
        .bind(now)
        .execute(self.pool())
        .await
        .named("outbox::enqueue_digest")?;
        Ok(done.rows_affected() == 1)
    }

    /// Claims the oldest due digest for `owner` until `lease_until`: one
    /// conditional UPDATE, so of two replicas only one gets it. A claim whose
    /// lease ran out (its sender died between claim and send) is taken over.
    pub async fn claim_digest(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
    ) -> Result<Option<DigestPost>> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE digest_posts SET lease_owner = $1, lease_until = $2, attempts = attempts + 1
             WHERE (week, destination) = (
                 SELECT week, destination FROM digest_posts
                 WHERE state = 'pending' AND next_attempt_at <= $3
                   AND (lease_until IS NULL OR lease_until < $3)
                 ORDER BY created_at, week, destination LIMIT 1)
               AND state = 'pending' AND (lease_until IS NULL OR lease_until < $3)
             RETURNING {POST_COLUMNS}"
        )))
        .bind(owner)
        .bind(lease_until)
        .bind(now)
        .fetch_optional(self.pool())
        .await
        .named("outbox::claim_digest")
    }

    /// Ends `owner`'s claim: `sent` with Discord's message id.
    pub async fn digest_sent(
        &self,
        week: &str,
        destination: &str,
        owner: &str,
        message_id: &str,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE digest_posts SET state = 'sent', message_id = $1, sent_at = $2, error = NULL,
                    lease_owner = NULL, lease_until = NULL
             WHERE week = $3 AND destination = $4 AND lease_owner = $5",
        )
        .bind(message_id)
        .bind(now)
        .bind(week)
        .bind(destination)
        .bind(owner)
        .execute(self.pool())
        .await
        .named("outbox::digest_sent")?;
        Ok(())
    }

    /// Ends `owner`'s claim without a message: `pending` again from
    /// `next_attempt_at`, or for good (`failed`, `disabled`).
    pub async fn digest_not_sent(
        &self,
        week: &str,
        destination: &str,
        owner: &str,
        state: &str,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE digest_posts SET state = $1, next_attempt_at = $2, error = $3,
                    lease_owner = NULL, lease_until = NULL
             WHERE week = $4 AND destination = $5 AND lease_owner = $6",
        )
        .bind(state)
        .bind(next_attempt_at)
        .bind(error)
        .bind(week)
        .bind(destination)
        .bind(owner)
        .execute(self.pool())
        .await
        .named("outbox::digest_not_sent")?;
        Ok(())
    }

    /// Records a digest posted by `tokentally digest --post --force`.
    pub async fn digest_forced(
        &self,
        week: &str,
        destination: &str,
        message_id: &str,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO digest_posts (week, destination, state, attempts, next_attempt_at, message_id, created_at, sent_at)
             VALUES ($1, $2, 'sent', 1, $3, $4, $3, $3)
             ON CONFLICT (week, destination) DO UPDATE SET state = 'sent', message_id = $4,
                 sent_at = $3, error = NULL, attempts = digest_posts.attempts + 1",
        )
        .bind(week)
        .bind(destination)
        .bind(now)
        .bind(message_id)
        .execute(self.pool())
        .await.named("outbox::digest_forced")?;
        Ok(())
    }

    pub async fn digest_post(&self, week: &str, destination: &str) -> Result<Option<DigestPost>> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {POST_COLUMNS} FROM digest_posts WHERE week = $1 AND destination = $2"
        )))
        .bind(week)
        .bind(destination)
        .fetch_optional(self.pool())
        .await
        .named("outbox::digest_post")
    }

    pub async fn digest_posts(&self) -> Result<Vec<DigestPost>> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {POST_COLUMNS} FROM digest_posts ORDER BY week, destination"
        )))
        .fetch_all(self.pool())
        .await
        .named("outbox::digest_posts")
    }

    /// Marks a destination disabled for the webhook whose URL hashes to `url_hash`.
    pub async fn disable_destination(
        &self,
        name: &str,
        url_hash: &str,
        reason: &str,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO discord_destinations (name, url_hash, disabled_at, reason) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO UPDATE SET url_hash = $2, disabled_at = $3, reason = $4",
        )
        .bind(name)
        .bind(url_hash)
        .bind(now)
        .bind(reason)
        .execute(self.pool())
        .await.named("outbox::disable_destination")?;
        Ok(())
    }

    /// Disabled destinations: name, URL hash, reason.
    pub async fn disabled_destinations(&self) -> Result<Vec<(String, String, String)>> {
        sqlx::query_as("SELECT name, url_hash, reason FROM discord_destinations ORDER BY name")
            .fetch_all(self.pool())
            .await
            .named("outbox::disabled_destinations")
    }

    /// Landed commits (merge commits left out) of `[from, to)`, grouped by
    /// repository, AI flag and agents, with how many of them were reverted.
    pub async fn week_landings(&self, from: i64, to: i64) -> Result<Vec<LandingRow>> {
        sqlx::query_as(
            "SELECT c.repository_id, c.ai, c.agents, CAST(COUNT(*) AS BIGINT) AS landed,
                    CAST(SUM(CASE WHEN EXISTS (SELECT 1 FROM signals s WHERE s.repository_id = c.repository_id
                                                AND s.sha = c.sha AND s.name = 'reverted')
                             THEN 1 ELSE 0 END) AS BIGINT) AS reverted
             FROM commits c
             WHERE c.landed = 1 AND c.landed_at >= $1 AND c.landed_at < $2 AND c.merge = 0
             GROUP BY c.repository_id, c.ai, c.agents",
        )
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await.named("outbox::week_landings")
    }

    /// Per person, repository and kind: sums of vest and clawback entries effective in `[from, to)`.
    pub async fn movement_between(
        &self,
        from: i64,
        to: i64,
    ) -> Result<Vec<(String, Option<i64>, String, i64)>> {
        sqlx::query_as(
            "SELECT person, repository_id, kind, CAST(SUM(amount) AS BIGINT) FROM ledger_entries
             WHERE at >= $1 AND at < $2 AND kind IN ('vest', 'clawback')
             GROUP BY person, repository_id, kind",
        )
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await
        .named("outbox::movement_between")
    }

    /// Earned milli-tokens (accruals and adjustments) by the landing time of their commits in `[from, to)`.
    pub async fn earned_by_landing(&self, from: i64, to: i64) -> Result<Vec<(i64, i64)>> {
        sqlx::query_as(
            // The kind is summed over, not filtered on: a filter on it lets
            // SQLite pick the (kind, at) index and scan every accrual.
            "SELECT landed_at,
                    CAST(SUM(CASE WHEN kind IN ('accrual', 'adjustment') THEN amount ELSE 0 END) AS BIGINT)
             FROM ledger_entries WHERE landed_at >= $1 AND landed_at < $2
             GROUP BY landed_at",
        )
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await.named("outbox::earned_by_landing")
    }

    /// The comment id kept for a pull request.
    pub async fn pr_comment(
        &self,
        repository_id: i64,
        number: i64,
    ) -> Result<Option<(i64, String)>> {
        sqlx::query_as(
            "SELECT comment_id, body_hash FROM pr_comments WHERE repository_id = $1 AND number = $2",
        )
        .bind(repository_id)
        .bind(number)
        .fetch_optional(self.pool())
        .await.named("outbox::pr_comment")
    }

    pub async fn save_pr_comment(
        &self,
        repository_id: i64,
        number: i64,
        comment_id: i64,
        body_hash: &str,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO pr_comments (repository_id, number, comment_id, body_hash, updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (repository_id, number) DO UPDATE SET comment_id = $3, body_hash = $4, updated_at = $5",
        )
        .bind(repository_id)
        .bind(number)
        .bind(comment_id)
        .bind(body_hash)
        .bind(now)
        .execute(self.pool())
        .await.named("outbox::save_pr_comment")?;
        Ok(())
    }

    /// Claims the creation of a pull request's comment: true for the one
    /// caller that inserts the placeholder row (comment id 0), or that takes
    /// over a placeholder older than `stale_before` (its creator died).
    pub async fn claim_pr_comment(
        &self,
        repository_id: i64,
        number: i64,
        now: i64,
        stale_before: i64,
    ) -> Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO pr_comments (repository_id, number, comment_id, body_hash, updated_at)
             VALUES ($1, $2, 0, '', $3)
             ON CONFLICT (repository_id, number) DO NOTHING",
        )
        .bind(repository_id)
        .bind(number)
        .bind(now)
        .execute(self.pool())
        .await
        .named("outbox::claim_pr_comment")?;
        if inserted.rows_affected() == 1 {
            return Ok(true);
        }
        let taken = sqlx::query(
            "UPDATE pr_comments SET updated_at = $3
             WHERE repository_id = $1 AND number = $2 AND comment_id = 0 AND updated_at < $4",
        )
        .bind(repository_id)
        .bind(number)
        .bind(now)
        .bind(stale_before)
        .execute(self.pool())
        .await
        .named("outbox::claim_pr_comment")?;
        Ok(taken.rows_affected() == 1)
    }

    /// Gives up a creation claim (the comment was not created).
    pub async fn release_pr_comment(&self, repository_id: i64, number: i64) -> Result<()> {
        sqlx::query(
            "DELETE FROM pr_comments WHERE repository_id = $1 AND number = $2 AND comment_id = 0",
        )
        .bind(repository_id)
        .bind(number)
        .execute(self.pool())
        .await
        .named("outbox::release_pr_comment")?;
        Ok(())
    }

    /// The pull requests of a repository whose head is `sha` and that are not merged.
    pub async fn open_pull_requests_at(&self, repository_id: i64, sha: &str) -> Result<Vec<i64>> {
        let rows: Vec<(i64,)> = sqlx::query_as(
            "SELECT number FROM pull_requests WHERE repository_id = $1 AND head_sha = $2 AND merged_at IS NULL
             ORDER BY number",
        )
        .bind(repository_id)
        .bind(sha)
        .fetch_all(self.pool())
        .await.named("outbox::open_pull_requests_at")?;
        Ok(rows.into_iter().map(|(n,)| n).collect())
    }

    /// The latest calibration factors kept by the weekly job (JSON), if any.
    pub async fn latest_calibration(&self, rules_version: &str) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT factors FROM calibrations WHERE rules_version = $1 ORDER BY week DESC LIMIT 1",
        )
        .bind(rules_version)
        .fetch_optional(self.pool())
        .await
        .named("outbox::latest_calibration")?;
        Ok(row.map(|(f,)| f))
    }

    /// AI commits in the ledger that landed in `[from, to)`, have neither vested
    /// nor been clawed back, have no CI result and were never looked up:
    /// (repository, installation, sha).
    pub async fn commits_needing_ci_lookup(
        &self,
        from: i64,
        to: i64,
    ) -> Result<Vec<(String, Option<i64>, String)>> {
        sqlx::query_as(
            "SELECT r.full_name, r.installation_id, c.sha
             FROM commits c JOIN repositories r ON r.id = c.repository_id
             WHERE c.ai = 1 AND c.landed = 1 AND c.landed_at >= $1 AND c.landed_at < $2
               AND EXISTS (SELECT 1 FROM ledger_entries e WHERE e.commit_id = c.id AND e.kind = 'accrual')
               AND NOT EXISTS (SELECT 1 FROM ledger_entries e WHERE e.commit_id = c.id
                               AND e.kind IN ('vest', 'clawback'))
               AND NOT EXISTS (SELECT 1 FROM signals s WHERE s.repository_id = c.repository_id
                               AND s.sha = c.sha AND s.name = 'ci')
               AND NOT EXISTS (SELECT 1 FROM ci_lookups l WHERE l.repository_id = c.repository_id
                               AND l.sha = c.sha)
             ORDER BY c.landed_at LIMIT 500",
        )
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await.named("outbox::commits_needing_ci_lookup")
    }

    pub async fn record_ci_lookup(
        &self,
        full_name: &str,
        sha: &str,
        found: i64,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO ci_lookups (repository_id, sha, asked_at, found)
             SELECT id, $2, $3, $4 FROM repositories WHERE full_name = $1
             ON CONFLICT (repository_id, sha) DO NOTHING",
        )
        .bind(full_name)
        .bind(sha)
        .bind(now)
        .bind(found)
        .execute(self.pool())
        .await
        .named("outbox::record_ci_lookup")?;
        Ok(())
    }
}
