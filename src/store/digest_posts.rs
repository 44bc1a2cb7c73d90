//! The digest outbox: one post per (week, destination), claimed under a lease
//! before it is sent; and the Discord destinations disabled for their URL.

use super::{Named, Result, Store};

/// A digest post row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DigestPost {
    pub week: String,
    pub destination: String,
    pub state: PostState,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub message_id: Option<String>,
    pub error: Option<String>,
}

/// Where a digest post is: waiting to be sent (again), sent, or given up
/// (failed after its attempts, or its destination disabled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostState {
    Pending,
    Sent,
    Failed,
    Disabled,
}

impl PostState {
    pub fn as_str(self) -> &'static str {
        match self {
            PostState::Pending => "pending",
            PostState::Sent => "sent",
            PostState::Failed => "failed",
            PostState::Disabled => "disabled",
        }
    }
}

impl std::str::FromStr for PostState {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        [
            PostState::Pending,
            PostState::Sent,
            PostState::Failed,
            PostState::Disabled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
        .ok_or_else(|| format!("{text:?} is not a digest post state"))
    }
}

impl std::fmt::Display for PostState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for PostState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
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
        .named("digest_posts::enqueue_digest")?;
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
        .named("digest_posts::claim_digest")
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
        .named("digest_posts::digest_sent")?;
        Ok(())
    }

    /// Ends `owner`'s claim without a message: `pending` again from
    /// `next_attempt_at`, or for good (`failed`, `disabled`).
    pub async fn digest_not_sent(
        &self,
        week: &str,
        destination: &str,
        owner: &str,
        state: PostState,
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
        .named("digest_posts::digest_not_sent")?;
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
        .await.named("digest_posts::digest_forced")?;
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
        .named("digest_posts::digest_post")
    }

    pub async fn digest_posts(&self) -> Result<Vec<DigestPost>> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {POST_COLUMNS} FROM digest_posts ORDER BY week, destination"
        )))
        .fetch_all(self.pool())
        .await
        .named("digest_posts::digest_posts")
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
        .await.named("digest_posts::disable_destination")?;
        Ok(())
    }

    /// Disabled destinations: name, URL hash, reason.
    pub async fn disabled_destinations(&self) -> Result<Vec<(String, String, String)>> {
        sqlx::query_as("SELECT name, url_hash, reason FROM discord_destinations ORDER BY name")
            .fetch_all(self.pool())
            .await
            .named("digest_posts::disabled_destinations")
    }
}
