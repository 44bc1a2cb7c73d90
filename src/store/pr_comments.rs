//! The one comment tokentally keeps on each pull request: its id and body
//! hash, claimed before it is created so replicas create it once.

use super::{Named, Result, Store};

impl Store {
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
        .await.named("pr_comments::pr_comment")
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
        .await.named("pr_comments::save_pr_comment")?;
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
        .named("pr_comments::claim_pr_comment")?;
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
        .named("pr_comments::claim_pr_comment")?;
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
        .named("pr_comments::release_pr_comment")?;
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
        .await.named("pr_comments::open_pull_requests_at")?;
        Ok(rows.into_iter().map(|(n,)| n).collect())
    }

    /// The head commit of a pull request as its events last said.
    pub async fn pull_request_head(
        &self,
        repository_id: i64,
        number: i64,
    ) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT head_sha FROM pull_requests WHERE repository_id = $1 AND number = $2",
        )
        .bind(repository_id)
        .bind(number)
        .fetch_optional(self.pool())
        .await
        .named("pr_comments::pull_request_head")?;
        Ok(row.map(|(sha,)| sha))
    }
}
