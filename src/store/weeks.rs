//! What a week looks like beyond the leaderboard: its landed commits, the
//! ledger's movement in it, and what its landed work earned.

use super::{Named, Result, Store};

/// A commit that landed in a week and is in the ledger, for the leaderboard:
/// its entry sums and what its latest score said.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WeekCommit {
    pub id: i64,
    pub repository_id: i64,
    pub person: String,
    pub changed_lines: i64,
    pub usage_tokens: Option<i64>,
    pub reverted: i64,
    pub earned: i64,
    pub vested: i64,
    /// Vested tokens clawed back.
    pub clawed: i64,
    /// Pending tokens cancelled (a revert before vesting).
    pub cancelled: i64,
    /// What the latest score said: 1 = CI red, 2 = a duplicate, 4 = noise (bits).
    pub flags: i64,
    pub landed_at: Option<i64>,
}

impl WeekCommit {
    pub fn red(&self) -> bool {
        self.flags & 1 != 0
    }

    pub fn duplicate(&self) -> bool {
        self.flags & 2 != 0
    }

    /// Formatting-only or too small (as its latest score said).
    pub fn noise(&self) -> bool {
        self.flags & 4 != 0
    }
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

impl Store {
    /// AI commits in the ledger that landed in `[from, to)`, one row each with
    /// its entry sums and what its latest score said, read from
    /// `commit_balances` (kept as entries are appended): one index range over
    /// one row per commit.
    pub async fn week_commits(&self, from: i64, to: i64) -> Result<Vec<WeekCommit>> {
        sqlx::query_as(
            // Scalar subqueries make both databases look rows up by key (a
            // join let PostgreSQL's planner scan the whole commits table, an
            // EXISTS all reverted signals).
            // Only AI commits have entries.
            "SELECT g.commit_id AS id, g.repository_id, g.person,
                    (SELECT c.changed_lines FROM commits c WHERE c.id = g.commit_id) AS changed_lines,
                    (SELECT c.usage_tokens FROM commits c WHERE c.id = g.commit_id) AS usage_tokens,
                    COALESCE((SELECT 1 FROM signals s WHERE s.repository_id = g.repository_id
                              AND s.sha = g.sha AND s.name = 'reverted' LIMIT 1), 0) AS reverted,
                    g.earned, g.vested, g.clawed, g.cancelled,
                    g.flags,
                    g.landed_at
             FROM (SELECT commit_id, MAX(person) AS person, MAX(repository_id) AS repository_id,
                          MAX(sha) AS sha,
                          CAST(SUM(earned) AS BIGINT) AS earned,
                          CAST(SUM(vested) AS BIGINT) AS vested,
                          CAST(SUM(clawed) AS BIGINT) AS clawed,
                          CAST(SUM(cancelled) AS BIGINT) AS cancelled,
                          -- The flags (< 8) of the row with the latest score.
                          COALESCE(MAX(latest * 8 + COALESCE(flags, 0)) % 8, 0) AS flags,
                          MAX(landed_at) AS landed_at
                   FROM commit_balances
                   WHERE landed_at >= $1 AND landed_at < $2
                   GROUP BY commit_id) g
             ORDER BY g.commit_id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await.named("weeks::week_commits")
    }

    /// Per person and repository: commits in the ledger reverted / fixed later
    /// by events in `[from, to)`.
    pub async fn hygiene_events_between(
        &self,
        from: i64,
        to: i64,
    ) -> Result<Vec<(String, i64, String, i64, f64)>> {
        // Per commit: a follow-up fix weighs the share of lines it touched
        // (`value`; none: all), a commit's shares capped at 1; a fix that
        // landed with the commit (inside its pull request) weighs nothing.
        sqlx::query_as(
            "SELECT person, repository_id, name, CAST(COUNT(*) AS BIGINT),
                    CAST(SUM(weight) AS DOUBLE PRECISION)
             FROM (SELECT c.person, c.repository_id, s.name, c.id,
                          CASE WHEN SUM(COALESCE(s.value, 1.0)) > 1.0 THEN 1.0
                               ELSE SUM(COALESCE(s.value, 1.0)) END AS weight
                   FROM signals s JOIN commits c ON c.repository_id = s.repository_id AND c.sha = s.sha
                   WHERE s.name IN ('reverted', 'fixed_later') AND s.occurred_at >= $1 AND s.occurred_at < $2
                     AND (s.name = 'reverted' OR s.occurred_at > c.landed_at)
                     AND c.ai = 1 AND EXISTS (SELECT 1 FROM ledger_entries e WHERE e.commit_id = c.id)
                   GROUP BY c.person, c.repository_id, s.name, c.id) g
             GROUP BY person, repository_id, name",
        )
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await.named("weeks::hygiene_events_between")
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
        .await.named("weeks::week_landings")
    }

    /// Per person, repository and kind: sums of vest, cancel and clawback
    /// entries effective in `[from, to)` (what vested and what was taken back).
    pub async fn movement_between(
        &self,
        from: i64,
        to: i64,
    ) -> Result<Vec<(String, Option<i64>, String, i64)>> {
        sqlx::query_as(
            "SELECT person, repository_id, kind, CAST(SUM(amount) AS BIGINT) FROM ledger_entries
             WHERE at >= $1 AND at < $2 AND kind IN ('vest', 'cancel', 'clawback')
             GROUP BY person, repository_id, kind",
        )
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await
        .named("weeks::movement_between")
    }

    /// Earned milli-tokens (accruals and adjustments) by the landing time of their commits in `[from, to)`.
    /// (landing time, net tokens: earned less what was cancelled or clawed
    /// back) of the entries of work landed in `[from, to)`.
    pub async fn earned_by_landing(&self, from: i64, to: i64) -> Result<Vec<(i64, i64)>> {
        sqlx::query_as(
            // The kind is summed over, not filtered on: a filter on it lets
            // SQLite pick the (kind, at) index and scan every accrual.
            "SELECT landed_at,
                    CAST(SUM(CASE WHEN kind IN ('accrual', 'adjustment', 'cancel', 'clawback')
                                  THEN amount ELSE 0 END) AS BIGINT)
             FROM ledger_entries WHERE landed_at >= $1 AND landed_at < $2
             GROUP BY landed_at",
        )
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await
        .named("weeks::earned_by_landing")
    }

    /// The week's cancels and clawbacks (tokens taken back), each with its
    /// commit: (repository id, repository, sha, subject, person, amount,
    /// explanation), largest first.
    pub async fn taken_back_between(&self, from: i64, to: i64) -> Result<Vec<TakenBackRow>> {
        sqlx::query_as(
            "SELECT e.repository_id, r.full_name, e.sha, c.subject, e.person, e.amount, e.explanation
             FROM ledger_entries e
             JOIN commits c ON c.id = e.commit_id
             JOIN repositories r ON r.id = e.repository_id
             WHERE e.kind IN ('cancel', 'clawback') AND e.amount < 0 AND e.at >= $1 AND e.at < $2
             ORDER BY e.amount, e.id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await
        .named("weeks::taken_back_between")
    }
}

/// See [`Store::taken_back_between`].
pub type TakenBackRow = (i64, String, String, String, String, i64, String);

impl Store {
    /// A person's entries of commits that landed in `[from, to)`, with their
    /// commits: (repository, sha, subject, landed at, kind, amount, at,
    /// explanation), newest landing first, entries in order.
    pub async fn person_commit_entries(
        &self,
        person: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<PersonCommitEntryRow>> {
        sqlx::query_as(
            "SELECT r.full_name, c.sha, c.subject, e.landed_at, e.kind, e.amount, e.at, e.explanation
             FROM ledger_entries e
             JOIN commits c ON c.id = e.commit_id
             JOIN repositories r ON r.id = e.repository_id
             WHERE e.person = $1 AND e.landed_at >= $2 AND e.landed_at < $3
             ORDER BY e.landed_at DESC, c.id, e.id",
        )
        .bind(person)
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await
        .named("weeks::person_commit_entries")
    }
}

/// See [`Store::person_commit_entries`].
pub type PersonCommitEntryRow = (String, String, String, i64, String, i64, i64, String);
