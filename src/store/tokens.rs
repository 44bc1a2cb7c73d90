//! API tokens: stored as SHA-256 hashes, scoped to repositories, revocable.

use super::{Named, Result, Store};

/// What a token may do.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Write signals for its repositories (CI pipelines).
    Report,
    /// Read the API (and the dashboard) for its repositories.
    Read,
    /// Everything, redemptions included.
    Admin,
    /// OTLP usage metrics from coding agents (`POST /v1/metrics`) only.
    Telemetry,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Report => "report",
            Role::Read => "read",
            Role::Admin => "admin",
            Role::Telemetry => "telemetry",
        }
    }

    fn parse(text: &str) -> Role {
        match text {
            "read" => Role::Read,
            "admin" => Role::Admin,
            "telemetry" => Role::Telemetry,
            // Tokens made before roles existed report signals.
            _ => Role::Report,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub role: Role,
    /// `owner/name` entries, or `*` for every repository.
    pub repositories: Vec<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    /// The signal names it was granted (`None`: its role's default).
    pub signals: Option<Vec<String>>,
    /// The person it belongs to (a login with it opens their page as `/me`).
    pub person: Option<String>,
}

/// The signals a report token may post when it was granted none.
pub const DEFAULT_REPORT_SIGNALS: &[&str] = &["ci"];

impl TokenRow {
    /// The signal names this token may post: `*` for any.
    pub fn signal_grants(&self) -> Vec<String> {
        match (&self.signals, self.role) {
            (Some(granted), _) => granted.clone(),
            (None, Role::Admin) => vec!["*".to_string()],
            (None, Role::Report) => DEFAULT_REPORT_SIGNALS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            (None, Role::Read | Role::Telemetry) => Vec::new(),
        }
    }

    /// Whether it may post signal `name` (an admin token any).
    pub fn may_post(&self, name: &str) -> bool {
        self.role == Role::Admin
            || self
                .signal_grants()
                .iter()
                .any(|g| g == "*" || g.eq_ignore_ascii_case(name))
    }

    pub fn allows(&self, repository: &str) -> bool {
        self.repositories
            .iter()
            .any(|r| r == "*" || r.eq_ignore_ascii_case(repository))
    }

    /// Scoped to every repository (`--all-repos`).
    pub fn allows_all(&self) -> bool {
        self.repositories.iter().any(|r| r == "*")
    }
}

pub(super) type Row = (
    i64,
    String,
    String,
    i64,
    Option<i64>,
    String,
    Option<String>,
    Option<String>,
);

pub(super) fn to_token(
    (id, name, repositories, created_at, revoked_at, role, signals, person): Row,
) -> TokenRow {
    TokenRow {
        id,
        name,
        role: Role::parse(&role),
        repositories: serde_json::from_str(&repositories).unwrap_or_default(),
        created_at,
        revoked_at,
        signals: signals.and_then(|s| serde_json::from_str(&s).ok()),
        person,
    }
}

impl Store {
    /// Stores a new token's hash; `false` if a live token has that name. A revoked
    /// token's name can be used again: the revoked one is renamed
    /// `NAME (revoked #ID)` and stays listed.
    pub async fn create_token(
        &self,
        name: &str,
        token_hash: &str,
        repositories: &[String],
        role: Role,
        now: i64,
    ) -> Result<bool> {
        let repositories = serde_json::to_string(repositories).expect("strings serialise");
        let mut tx = self.pool().begin().await.named("tokens::create_token")?;
        sqlx::query(
            "UPDATE api_tokens SET name = name || ' (revoked #' || CAST(id AS TEXT) || ')'
             WHERE name = $1 AND revoked_at IS NOT NULL",
        )
        .bind(name)
        .execute(&mut *tx)
        .await
        .named("tokens::create_token")?;
        let done = sqlx::query(
            "INSERT INTO api_tokens (name, token_hash, repositories, created_at, role)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(token_hash)
        .bind(repositories)
        .bind(now)
        .bind(role.as_str())
        .execute(&mut *tx)
        .await
        .named("tokens::create_token")?;
        tx.commit().await.named("tokens::create_token")?;
        Ok(done.rows_affected() == 1)
    }

    /// The live (not revoked) token with this hash.
    pub async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRow>> {
        let row: Option<Row> = sqlx::query_as(
            "SELECT id, name, repositories, created_at, revoked_at, role, signals, person FROM api_tokens
             WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await
        .named("tokens::token_by_hash")?;
        Ok(row.map(to_token))
    }

    pub async fn tokens(&self) -> Result<Vec<TokenRow>> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, name, repositories, created_at, revoked_at, role, signals, person
             FROM api_tokens ORDER BY name",
        )
        .fetch_all(self.pool())
        .await
        .named("tokens::tokens")?;
        Ok(rows.into_iter().map(to_token).collect())
    }

    /// Grants the live token `name` exactly these signal names (`*`: any).
    pub async fn set_token_signals(&self, name: &str, signals: &[String]) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE api_tokens SET signals = $1 WHERE name = $2 AND revoked_at IS NULL",
        )
        .bind(serde_json::to_string(signals).expect("strings serialise"))
        .bind(name)
        .execute(self.pool())
        .await
        .named("tokens::set_token_signals")?;
        Ok(done.rows_affected() == 1)
    }

    /// Ties the live token `name` to `person` (its login's `/me`).
    pub async fn set_token_person(&self, name: &str, person: &str) -> Result<bool> {
        let done =
            sqlx::query("UPDATE api_tokens SET person = $1 WHERE name = $2 AND revoked_at IS NULL")
                .bind(person)
                .bind(name)
                .execute(self.pool())
                .await
                .named("tokens::set_token_person")?;
        Ok(done.rows_affected() == 1)
    }

    /// Revokes a token by name; `false` if there is no live token of that name.
    pub async fn revoke_token(&self, name: &str, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(name)
        .execute(self.pool())
        .await
        .named("tokens::revoke_token")?;
        Ok(done.rows_affected() == 1)
    }
}
