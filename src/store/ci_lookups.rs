//! CI asked of GitHub's API for landed commits that have none before they vest.

use super::{Named, Result, Store};

impl Store {
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
        .await.named("ci_lookups::commits_needing_ci_lookup")
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
        .named("ci_lookups::record_ci_lookup")?;
        Ok(())
    }
}
