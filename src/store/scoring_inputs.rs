//! What the ledger plans from, read in bulk: landed commits, their signals,
//! and the pull requests whose head CI a squash or merge commit takes.

use super::{Named, Result, Store};
use crate::scoring::signal::{SignalName, SignalStatus};

/// A commit as scoring reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScoringCommit {
    pub id: i64,
    pub repository_id: i64,
    pub sha: String,
    pub person: String,
    pub ai: i64,
    pub kind: String,
    pub changed_lines: i64,
    pub usage_tokens: Option<i64>,
    pub patch_id: Option<String>,
    pub landed_at: Option<i64>,
    pub unlanded_at: Option<i64>,
    pub pull_request: Option<i64>,
    /// How its pull request is known: `branch`, `merge:SHA` or `subject`.
    pub pull_request_via: Option<String>,
    /// When the repository was first seen (the default `pay_from`).
    pub repository_first_seen: i64,
    pub detected_kind: Option<String>,
    pub formatting_only: i64,
    /// MinHash signature of the added lines (hex).
    pub minhash: Option<String>,
    /// Changed paths (JSON array).
    pub files: Option<String>,
    pub committed_at: Option<i64>,
    /// The repository's `owner/name` (per-repository rules).
    pub repository: String,
    /// The agents its trailers named (JSON array of slugs).
    pub agents: String,
}

/// A signal as scoring reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScoringSignal {
    pub repository_id: i64,
    pub sha: String,
    pub name: SignalName,
    pub status: SignalStatus,
    pub source: String,
    pub context: Option<String>,
    pub attempt: Option<i64>,
    pub occurred_at: i64,
    pub value: Option<f64>,
}

impl Store {
    /// Every commit that has landed (or landed and was taken off again).
    pub async fn scoring_commits(&self) -> Result<Vec<ScoringCommit>> {
        sqlx::query_as(
            "SELECT c.id, c.repository_id, c.sha, c.person, c.ai, c.kind,
                    c.changed_lines, c.usage_tokens, c.patch_id, c.landed_at, c.unlanded_at,
                    c.pull_request, c.pull_request_via, r.created_at AS repository_first_seen,
                    c.detected_kind, c.formatting_only, c.minhash, c.files, c.committed_at,
                    r.full_name AS repository, c.agents
             FROM commits c JOIN repositories r ON r.id = c.repository_id
             WHERE c.landed_at IS NOT NULL
             ORDER BY c.id",
        )
        .fetch_all(self.pool())
        .await
        .named("scoring_inputs::scoring_commits")
    }

    /// Every signal, handed to `each` as it is read (scoring matches
    /// abbreviated ids to commits itself); never all rows in memory at once.
    pub async fn each_scoring_signal(&self, mut each: impl FnMut(ScoringSignal)) -> Result<()> {
        use futures_util::TryStreamExt;
        let mut rows = sqlx::query_as::<_, ScoringSignal>(
            "SELECT repository_id, sha, name, status, source, context, attempt, occurred_at, value
             FROM signals ORDER BY id",
        )
        .fetch(self.pool());
        while let Some(row) = rows
            .try_next()
            .await
            .named("scoring_inputs::each_scoring_signal")?
        {
            each(row);
        }
        Ok(())
    }

    /// (repository id, number, head sha, merged at, merge sha) of merged pull requests.
    pub async fn merged_pull_request_heads(
        &self,
    ) -> Result<Vec<(i64, i64, String, i64, Option<String>)>> {
        sqlx::query_as(
            "SELECT repository_id, number, head_sha, merged_at, merge_sha FROM pull_requests
             WHERE merged_at IS NOT NULL",
        )
        .fetch_all(self.pool())
        .await
        .named("scoring_inputs::merged_pull_request_heads")
    }

    /// Records a pull request's head (and merge, once merged). A later event
    /// never moves a merged pull request's head.
    pub async fn record_pull_request(
        &self,
        repository_id: i64,
        number: i64,
        head_sha: &str,
        merge: Option<(&str, i64)>,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO pull_requests (repository_id, number, head_sha, merge_sha, merged_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (repository_id, number) DO UPDATE SET
                 head_sha = CASE WHEN pull_requests.merged_at IS NULL THEN excluded.head_sha
                                 ELSE pull_requests.head_sha END,
                 merge_sha = COALESCE(pull_requests.merge_sha, excluded.merge_sha),
                 merged_at = COALESCE(pull_requests.merged_at, excluded.merged_at),
                 updated_at = excluded.updated_at",
        )
        .bind(repository_id)
        .bind(number)
        .bind(head_sha)
        .bind(merge.map(|m| m.0))
        .bind(merge.map(|m| m.1))
        .bind(now)
        .execute(self.pool())
        .await.named("scoring_inputs::record_pull_request")?;
        Ok(())
    }
}
