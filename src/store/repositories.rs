//! Repositories the service has heard of, keyed by `owner/name`.

use super::{Named, Result, Store};

/// What an event tells about a repository; `None` fields leave the stored value alone.
#[derive(Debug, Clone, Default)]
pub struct RepositoryUpdate<'a> {
    pub full_name: &'a str,
    pub github_id: Option<i64>,
    pub default_branch: Option<&'a str>,
    pub clone_url: Option<&'a str>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Repository {
    pub id: i64,
    pub full_name: String,
    pub github_id: Option<i64>,
    pub default_branch: Option<String>,
    pub clone_url: Option<String>,
    pub installation_id: Option<i64>,
    /// When the service first heard of it (the default `scoring.pay_from`).
    pub created_at: i64,
}

impl Store {
    /// Creates the repository or refreshes what is known about it. Idempotent.
    pub async fn upsert_repository(&self, r: &RepositoryUpdate<'_>, now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO repositories (full_name, github_id, default_branch, clone_url, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $5)
             ON CONFLICT (full_name) DO UPDATE SET
                 github_id = COALESCE(excluded.github_id, repositories.github_id),
                 default_branch = COALESCE(excluded.default_branch, repositories.default_branch),
                 clone_url = COALESCE(excluded.clone_url, repositories.clone_url),
                 updated_at = excluded.updated_at
             -- Most events repeat what is known: then nothing is written.
             WHERE repositories.github_id IS DISTINCT FROM COALESCE(excluded.github_id, repositories.github_id)
                OR repositories.default_branch IS DISTINCT FROM COALESCE(excluded.default_branch, repositories.default_branch)
                OR repositories.clone_url IS DISTINCT FROM COALESCE(excluded.clone_url, repositories.clone_url)",
        )
        .bind(r.full_name.to_ascii_lowercase())
        .bind(r.github_id)
        .bind(r.default_branch)
        .bind(r.clone_url)
        .bind(now)
        .execute(self.pool())
        .await.named("repositories::upsert_repository")?;
        Ok(())
    }

    /// Records which GitHub App installation covers the repository (`None`: it no longer does).
    pub async fn set_repository_installation(
        &self,
        full_name: &str,
        github_id: Option<i64>,
        installation_id: Option<i64>,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO repositories (full_name, github_id, installation_id, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $4)
             ON CONFLICT (full_name) DO UPDATE SET
                 github_id = COALESCE(excluded.github_id, repositories.github_id),
                 installation_id = excluded.installation_id,
                 updated_at = excluded.updated_at",
        )
        .bind(full_name.to_ascii_lowercase())
        .bind(github_id)
        .bind(installation_id)
        .bind(now)
        .execute(self.pool())
        .await.named("repositories::set_repository_installation")?;
        Ok(())
    }

    /// The repository's id, read first and created only when missing (a read is
    /// much cheaper than a write on SQLite's single writer).
    pub async fn repository_id(&self, full_name: &str, now: i64) -> Result<i64> {
        let found: Option<(i64,)> =
            sqlx::query_as("SELECT id FROM repositories WHERE full_name = $1")
                .bind(full_name.to_ascii_lowercase())
                .fetch_optional(self.pool())
                .await
                .named("repositories::repository_id")?;
        match found {
            Some((id,)) => Ok(id),
            None => self.ensure_repository(full_name, now).await,
        }
    }

    /// The repository's id, creating it if it was never heard of (a CI signal can
    /// arrive before any webhook).
    pub async fn ensure_repository(&self, full_name: &str, now: i64) -> Result<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO repositories (full_name, created_at, updated_at) VALUES ($1, $2, $2)
             ON CONFLICT (full_name) DO UPDATE SET full_name = repositories.full_name
             RETURNING id",
        )
        .bind(full_name.to_ascii_lowercase())
        .bind(now)
        .fetch_one(self.pool())
        .await
        .named("repositories::ensure_repository")?;
        Ok(id)
    }

    pub async fn repository(&self, full_name: &str) -> Result<Option<Repository>> {
        let repo = sqlx::query_as(
            "SELECT id, full_name, github_id, default_branch, clone_url, installation_id, created_at
             FROM repositories WHERE full_name = $1",
        )
        .bind(full_name.to_ascii_lowercase())
        .fetch_optional(self.pool())
        .await.named("repositories::repository")?;
        Ok(repo)
    }

    pub async fn repositories(&self) -> Result<Vec<Repository>> {
        let repos = sqlx::query_as(
            "SELECT id, full_name, github_id, default_branch, clone_url, installation_id, created_at
             FROM repositories ORDER BY full_name",
        )
        .fetch_all(self.pool())
        .await.named("repositories::repositories")?;
        Ok(repos)
    }

    /// Repositories whose history is not in yet: a first sync is running,
    /// one of `configured` (`owner/name`) never finished one, or none ever
    /// did (an empty list: everything synced).
    pub async fn awaiting_first_sync(&self, configured: &[String]) -> Result<Vec<String>> {
        let rows: Vec<(String, Option<String>, Option<i64>)> =
            sqlx::query_as("SELECT full_name, landed_tip, first_sync_since FROM repositories")
                .fetch_all(self.pool())
                .await
                .named("repositories::awaiting_first_sync")?;
        let mut waiting: Vec<String> = rows
            .iter()
            .filter(|(_, _, running)| running.is_some())
            .map(|(name, _, _)| name.clone())
            .collect();
        for name in configured {
            let synced = rows
                .iter()
                .any(|(n, tip, _)| n.eq_ignore_ascii_case(name) && tip.is_some());
            if !synced && !waiting.iter().any(|w| w.eq_ignore_ascii_case(name)) {
                waiting.push(name.clone());
            }
        }
        if waiting.is_empty() && !rows.iter().any(|(_, tip, _)| tip.is_some()) {
            waiting.push("(no repository has been synced yet)".to_string());
        }
        Ok(waiting)
    }
}
