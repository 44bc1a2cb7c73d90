//! What the dashboard's person and repository pages read beyond the ledger.

use super::{Named, Result, Store};

/// A hygiene event of a person's commit: (repository, sha, subject, event, time).
pub type HygieneEventRow = (String, String, String, String, i64);

/// A landed commit of a repository: (sha, ai, landed_at, reverted).
pub type LandingCommitRow = (String, i64, i64, i64);

/// A CI observation: (sha, source, context, attempt, status, occurred_at).
pub type CiRow = (
    String,
    String,
    Option<String>,
    Option<i64>,
    crate::scoring::signal::SignalStatus,
    i64,
);

impl Store {
    /// A person's earned milli-tokens by landing time of their commits in `[from, to)`.
    pub async fn person_earned_by_landing(
        &self,
        person: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, i64)>> {
        sqlx::query_as(
            "SELECT landed_at, CAST(SUM(amount) AS BIGINT) FROM ledger_entries
             WHERE person = $1 AND landed_at >= $2 AND landed_at < $3
               AND kind IN ('accrual', 'adjustment')
             GROUP BY landed_at",
        )
        .bind(person)
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await
        .named("dashboard::person_earned_by_landing")
    }

    /// Reverts and follow-up fixes of a person's AI commits, in `[from, to)`, newest first.
    pub async fn person_hygiene_events(
        &self,
        person: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<HygieneEventRow>> {
        sqlx::query_as(
            "SELECT r.full_name, c.sha, c.subject, s.name, s.occurred_at
             FROM signals s
             JOIN commits c ON c.repository_id = s.repository_id AND c.sha = s.sha
             JOIN repositories r ON r.id = c.repository_id
             WHERE c.person = $1 AND c.ai = 1 AND s.name IN ('reverted', 'fixed_later')
               AND s.occurred_at >= $2 AND s.occurred_at < $3
             ORDER BY s.occurred_at DESC LIMIT 200",
        )
        .bind(person)
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await
        .named("dashboard::person_hygiene_events")
    }

    /// A repository's landed commits (merge commits left out) in `[from, to)`.
    pub async fn repository_landings(
        &self,
        repository_id: i64,
        from: i64,
        to: i64,
    ) -> Result<Vec<LandingCommitRow>> {
        sqlx::query_as(
            "SELECT c.sha, c.ai, c.landed_at,
                    COALESCE((SELECT 1 FROM signals s WHERE s.repository_id = c.repository_id
                              AND s.sha = c.sha AND s.name = 'reverted' LIMIT 1), 0)
             FROM commits c
             WHERE c.repository_id = $1 AND c.landed = 1 AND c.merge = 0
               AND c.landed_at >= $2 AND c.landed_at < $3",
        )
        .bind(repository_id)
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await
        .named("dashboard::repository_landings")
    }

    /// The CI observations of a repository's commits landed in `[from, to)`.
    pub async fn repository_ci(
        &self,
        repository_id: i64,
        from: i64,
        to: i64,
    ) -> Result<Vec<CiRow>> {
        sqlx::query_as(
            "SELECT s.sha, s.source, s.context, s.attempt, s.status, s.occurred_at
             FROM signals s JOIN commits c ON c.repository_id = s.repository_id AND c.sha = s.sha
             WHERE s.repository_id = $1 AND s.name = 'ci' AND c.landed = 1
               AND c.landed_at >= $2 AND c.landed_at < $3",
        )
        .bind(repository_id)
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await
        .named("dashboard::repository_ci")
    }
}
