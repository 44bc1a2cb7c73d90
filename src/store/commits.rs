//! Attributed commits, landed or not.

use sqlx::AnyConnection;

use super::{Named, Result, Store, StoreTx};
use crate::attribution::commit::{CommitRecord, PullRequestLink};

/// A stored commit, as tests and later stages read it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredCommit {
    pub sha: String,
    pub subject: String,
    pub person: String,
    pub merged_by: Option<String>,
    pub ai: i64,
    pub agents: String,
    pub kind: String,
    pub landed: i64,
    pub pull_request: Option<i64>,
    pub merge: i64,
    pub record: String,
    pub landed_at: Option<i64>,
    pub unlanded_at: Option<i64>,
    pub unlanded_reason: Option<String>,
}

impl Store {
    /// Stores a commit's attribution once per repository. A commit seen again keeps
    /// its first attribution; `landed_at` (when the push or merge that landed it
    /// happened) makes it landed. Only a force push ([`StoreTx::mark_unlanded`])
    /// un-lands a commit.
    pub async fn upsert_commit(
        &self,
        repository_id: i64,
        record: &CommitRecord,
        landed_at: Option<i64>,
        pull_request: Option<&PullRequestLink>,
        now: i64,
    ) -> Result<()> {
        let mut conn = self
            .pool()
            .acquire()
            .await
            .named("commits::upsert_commit")?;
        upsert_commit(
            &mut conn,
            repository_id,
            record,
            landed_at,
            pull_request,
            now,
        )
        .await
    }

    /// Records who merged pull request `number` (landed as `merge_sha`): its commits
    /// that had no human to credit (agent author, no human co-author) go to the
    /// merger (the person key `merger`, GitHub login `merger_login`).
    pub async fn record_merge(
        &self,
        repository_id: i64,
        number: i64,
        merge_sha: Option<&str>,
        merger_login: &str,
        merger: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE commits SET merged_by = $1,
                 person = CASE WHEN credit IN ('committer', 'agent') THEN $5 ELSE person END
             WHERE repository_id = $2 AND (pull_request = $3 OR sha = $4)",
        )
        .bind(merger_login)
        .bind(repository_id)
        .bind(number)
        .bind(merge_sha)
        .bind(merger)
        .execute(self.pool())
        .await
        .named("commits::record_merge")?;
        Ok(())
    }

    /// Marks commits already stored (from a pull request) as landed at `landed_at`.
    pub async fn mark_landed(&self, repository_id: i64, sha: &str, landed_at: i64) -> Result<()> {
        let mut conn = self.pool().acquire().await.named("commits::mark_landed")?;
        mark_landed(&mut conn, repository_id, sha, landed_at).await
    }

    /// sha → landed, for every commit stored for the repository.
    pub async fn known_commits(&self, repository_id: i64) -> Result<Vec<(String, bool)>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT sha, landed FROM commits WHERE repository_id = $1")
                .bind(repository_id)
                .fetch_all(self.pool())
                .await
                .named("commits::known_commits")?;
        Ok(rows
            .into_iter()
            .map(|(sha, landed)| (sha, landed == 1))
            .collect())
    }

    /// Subjects of landed commits, oldest first (reverts by subject resolve against them).
    pub async fn landed_subjects(&self, repository_id: i64) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query_as(
            "SELECT sha, subject FROM commits WHERE repository_id = $1 AND landed = 1
             ORDER BY authored_at, id",
        )
        .bind(repository_id)
        .fetch_all(self.pool())
        .await
        .named("commits::landed_subjects")?;
        Ok(rows)
    }

    pub async fn set_landed_tip(&self, repository_id: i64, tip: &str) -> Result<()> {
        sqlx::query("UPDATE repositories SET landed_tip = $1 WHERE id = $2")
            .bind(tip)
            .bind(repository_id)
            .execute(self.pool())
            .await
            .named("commits::set_landed_tip")?;
        Ok(())
    }

    pub async fn landed_tip(&self, repository_id: i64) -> Result<Option<String>> {
        let row: Option<(Option<String>,)> =
            sqlx::query_as("SELECT landed_tip FROM repositories WHERE id = $1")
                .bind(repository_id)
                .fetch_optional(self.pool())
                .await
                .named("commits::landed_tip")?;
        Ok(row.and_then(|(tip,)| tip))
    }

    /// Every stored commit of a repository, oldest first.
    pub async fn commits(&self, full_name: &str) -> Result<Vec<StoredCommit>> {
        let rows = sqlx::query_as(
            "SELECT c.sha, c.subject, c.person, c.merged_by, c.ai, c.agents, c.kind, c.landed, c.pull_request,
                    c.merge, c.record, c.landed_at, c.unlanded_at, c.unlanded_reason
             FROM commits c JOIN repositories r ON r.id = c.repository_id
             WHERE r.full_name = $1 ORDER BY c.authored_at, c.id",
        )
        .bind(full_name.to_ascii_lowercase())
        .fetch_all(self.pool())
        .await.named("commits::commits")?;
        Ok(rows)
    }
}

/// See [`Store::upsert_commit`].
async fn upsert_commit(
    conn: &mut AnyConnection,
    repository_id: i64,
    record: &CommitRecord,
    landed_at: Option<i64>,
    pull_request: Option<&PullRequestLink>,
    now: i64,
) -> Result<()> {
    // The record's time comes from git2 and always parses; a time that does not
    // is an error, never silently 1970.
    let authored_at = chrono::DateTime::parse_from_rfc3339(&record.authored_at)
        .map(|t| t.timestamp_millis())
        .map_err(|e| {
            super::StoreError::Invalid(format!(
                "commit {} has an unreadable time {:?}: {e}",
                record.sha, record.authored_at
            ))
        })?;
    let json = |v: &Vec<String>| serde_json::to_string(v).expect("strings serialise");
    sqlx::query(
        "INSERT INTO commits (repository_id, sha, subject, person, author_email, authored_at, ai,
             agents, model, kind, kind_source, usage_tokens, changed_lines, patch_id, merge, record,
             landed, landed_at, pull_request, first_seen_at, credit, committed_at,
             detected_kind, formatting_only, minhash, files, pull_request_via)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22,
                 $23, $24, $25, $26, $27)
         ON CONFLICT (repository_id, sha) DO UPDATE SET
             landed = CASE WHEN commits.landed = 1 THEN 1 ELSE excluded.landed END,
             landed_at = CASE WHEN commits.landed = 1 THEN commits.landed_at
                              ELSE COALESCE(excluded.landed_at, commits.landed_at) END,
             unlanded_at = CASE WHEN excluded.landed = 1 THEN NULL ELSE commits.unlanded_at END,
             unlanded_reason = CASE WHEN excluded.landed = 1 THEN NULL
                                    ELSE commits.unlanded_reason END,
             pull_request = COALESCE(commits.pull_request, excluded.pull_request),
             pull_request_via = CASE WHEN commits.pull_request IS NULL THEN excluded.pull_request_via
                                     ELSE commits.pull_request_via END",
    )
    .bind(repository_id)
    .bind(&record.sha)
    .bind(&record.subject)
    .bind(&record.person)
    .bind(&record.author_email)
    .bind(authored_at)
    .bind(i64::from(record.ai))
    .bind(json(&record.agents))
    .bind(&record.model)
    .bind(record.kind.as_str())
    .bind(record.kind_source.as_str())
    .bind(record.usage_tokens.map(|n| n as i64))
    .bind(record.changed_lines as i64)
    .bind(&record.patch_id)
    .bind(i64::from(record.merge))
    .bind(serde_json::to_string(record).expect("records serialise"))
    .bind(i64::from(landed_at.is_some()))
    .bind(landed_at)
    .bind(pull_request.map(|p| p.number))
    .bind(now)
    .bind(record.credit.as_str())
    .bind(
        chrono::DateTime::parse_from_rfc3339(&record.committed_at)
            .map(|t| t.timestamp_millis())
            .ok(),
    )
    .bind(record.detected_kind.map(|k| k.as_str()))
    .bind(i64::from(record.formatting_only))
    .bind(&record.minhash)
    .bind(json(&record.files))
    .bind(pull_request.map(|p| p.via_text()))
    .execute(&mut *conn)
    .await.named("commits::upsert_commit")?;
    Ok(())
}

async fn mark_landed(
    conn: &mut AnyConnection,
    repository_id: i64,
    sha: &str,
    landed_at: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE commits SET landed = 1, landed_at = $1, unlanded_at = NULL, unlanded_reason = NULL
         WHERE repository_id = $2 AND sha = $3 AND landed = 0",
    )
    .bind(landed_at)
    .bind(repository_id)
    .bind(sha)
    .execute(&mut *conn)
    .await
    .named("commits::mark_landed")?;
    Ok(())
}

impl StoreTx {
    pub async fn upsert_commit(
        &mut self,
        repository_id: i64,
        record: &CommitRecord,
        landed_at: Option<i64>,
        pull_request: Option<&PullRequestLink>,
        now: i64,
    ) -> Result<()> {
        upsert_commit(
            self.conn(),
            repository_id,
            record,
            landed_at,
            pull_request,
            now,
        )
        .await
    }

    pub async fn mark_landed(
        &mut self,
        repository_id: i64,
        sha: &str,
        landed_at: i64,
    ) -> Result<()> {
        mark_landed(self.conn(), repository_id, sha, landed_at).await
    }

    /// A landed commit that is no longer on the default branch (force-pushed
    /// away): not landed any more, with when and why.
    pub async fn mark_unlanded(
        &mut self,
        repository_id: i64,
        sha: &str,
        at: i64,
        reason: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE commits SET landed = 0, unlanded_at = $1, unlanded_reason = $2
             WHERE repository_id = $3 AND sha = $4 AND landed = 1",
        )
        .bind(at)
        .bind(reason)
        .bind(repository_id)
        .bind(sha)
        .execute(self.conn())
        .await
        .named("commits::mark_unlanded")?;
        Ok(())
    }
}

/// A stored commit as the read API shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CommitRow {
    pub id: i64,
    pub sha: String,
    pub subject: String,
    pub person: String,
    pub credit: String,
    pub merged_by: Option<String>,
    pub authored_at: i64,
    pub ai: i64,
    pub agents: String,
    pub model: Option<String>,
    pub kind: String,
    pub kind_source: String,
    pub changed_lines: i64,
    pub landed: i64,
    pub landed_at: Option<i64>,
    pub unlanded_at: Option<i64>,
    pub unlanded_reason: Option<String>,
    pub pull_request: Option<i64>,
    pub record: String,
    /// Its commit time (when it was made; author-set).
    pub committed_at: Option<i64>,
}

/// Filters of `GET /api/v1/repos/{repo}/commits`; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct CommitFilter {
    pub ai: Option<bool>,
    pub landed: Option<bool>,
    /// Epoch ms, on the landing time (the authoring time for commits not landed).
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub person: Option<String>,
    pub agent: Option<String>,
    /// Only commits stored after this row id (the page cursor).
    pub after: Option<i64>,
    pub limit: i64,
}

const COMMIT_COLUMNS: &str = "id, sha, subject, person, credit, merged_by, authored_at, ai, agents, model, kind,
    kind_source, changed_lines, landed, landed_at, unlanded_at, unlanded_reason, pull_request, record, committed_at";

impl Store {
    /// A landed commit (not `sha`) with the patch id `patch`, landed at or after
    /// `since`: the commit a new one would duplicate.
    pub async fn landed_with_patch(
        &self,
        patch: &str,
        sha: &str,
        since: i64,
    ) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT sha FROM commits
             WHERE patch_id = $1 AND sha <> $2 AND landed = 1 AND landed_at >= $3
             ORDER BY landed_at, id LIMIT 1",
        )
        .bind(patch)
        .bind(sha)
        .bind(since)
        .fetch_optional(self.pool())
        .await
        .named("commits::landed_with_patch")?;
        Ok(row.map(|(sha,)| sha))
    }

    /// A commit by its row id, with its repository's name.
    pub async fn commit_by_id(&self, id: i64) -> Result<Option<(String, CommitRow)>> {
        let Some(row): Option<CommitRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COMMIT_COLUMNS} FROM commits WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await
        .named("commits::commit_by_id")?
        else {
            return Ok(None);
        };
        let (name,): (String,) = sqlx::query_as(
            "SELECT r.full_name FROM repositories r JOIN commits c ON c.repository_id = r.id WHERE c.id = $1",
        )
        .bind(id)
        .fetch_one(self.pool())
        .await.named("commits::commit_by_id")?;
        Ok(Some((name, row)))
    }

    /// The commits attributed to a pull request, oldest first.
    pub async fn pull_request_commits(
        &self,
        repository_id: i64,
        number: i64,
    ) -> Result<Vec<CommitRow>> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COMMIT_COLUMNS} FROM commits WHERE repository_id = $1 AND pull_request = $2
             ORDER BY authored_at, id"
        )))
        .bind(repository_id)
        .bind(number)
        .fetch_all(self.pool())
        .await
        .named("commits::pull_request_commits")
    }

    /// Commits of a repository whose id starts with `sha` (7 to 40 hex digits).
    pub async fn commits_by_prefix(&self, repository_id: i64, sha: &str) -> Result<Vec<CommitRow>> {
        if !super::is_commit_prefix(sha) {
            return Ok(Vec::new());
        }
        let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COMMIT_COLUMNS} FROM commits
             WHERE repository_id = $1 AND substr(sha, 1, length($2)) = $2
             ORDER BY id LIMIT 2"
        )))
        .bind(repository_id)
        .bind(sha.to_ascii_lowercase())
        .fetch_all(self.pool())
        .await
        .named("commits::commits_by_prefix")?;
        Ok(rows)
    }

    /// Commits that reverted or fixed `sha` (from the git-derived signals).
    pub async fn commits_linking_to(
        &self,
        repository_id: i64,
        sha: &str,
    ) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query_as(
            "SELECT name, context FROM signals
             WHERE repository_id = $1 AND sha = $2 AND source = 'git' AND context IS NOT NULL
             ORDER BY occurred_at, id",
        )
        .bind(repository_id)
        .bind(sha)
        .fetch_all(self.pool())
        .await
        .named("commits::commits_linking_to")?;
        Ok(rows)
    }

    /// One page of a repository's commits, oldest stored first.
    pub async fn list_commits(
        &self,
        repository_id: i64,
        f: &CommitFilter,
    ) -> Result<Vec<CommitRow>> {
        // Agents are a JSON array of slugs: look for the quoted slug.
        let contains = match self.backend() {
            super::Backend::Sqlite => "instr(agents, $7) > 0",
            super::Backend::Postgres => "strpos(agents, $7) > 0",
        };
        let sql = format!(
            "SELECT {COMMIT_COLUMNS} FROM commits
             WHERE repository_id = $1
               AND ($2 IS NULL OR ai = $2)
               AND ($3 IS NULL OR landed = $3)
               AND ($4 IS NULL OR COALESCE(landed_at, authored_at) >= $4)
               AND ($5 IS NULL OR COALESCE(landed_at, authored_at) <= $5)
               AND ($6 IS NULL OR person = $6)
               AND ($7 IS NULL OR {contains})
               AND id > $8
             ORDER BY id LIMIT $9"
        );
        let rows = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(repository_id)
            .bind(f.ai.map(i64::from))
            .bind(f.landed.map(i64::from))
            .bind(f.since)
            .bind(f.until)
            .bind(f.person.clone())
            .bind(f.agent.as_ref().map(|a| format!("\"{a}\"")))
            .bind(f.after.unwrap_or(0))
            .bind(f.limit)
            .fetch_all(self.pool())
            .await
            .named("commits::list_commits")?;
        Ok(rows)
    }
}
