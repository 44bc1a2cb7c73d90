//! Dashboard sessions: created at login, looked up by the hash of the
//! session id a browser's cookie carries, ended at logout.

use super::tokens::{Row, TokenRow, to_token};
use super::{Named, Result, Store};

/// A token's columns, then the session's csrf.
type SessionJoin = (
    i64,
    String,
    String,
    i64,
    Option<i64>,
    String,
    Option<String>,
    Option<String>,
    String,
);

/// A live session: its token and the forms' anti-forgery value.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub token: TokenRow,
    pub csrf: String,
}

impl Store {
    pub async fn create_session(
        &self,
        id_hash: &str,
        token_id: i64,
        csrf: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, token_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id_hash)
        .bind(token_id)
        .bind(csrf)
        .bind(now)
        .bind(expires_at)
        .execute(self.pool())
        .await.named("sessions::create_session")?;
        Ok(())
    }

    /// The session with this id hash, if it has not expired or ended and its
    /// token is not revoked.
    pub async fn session(&self, id_hash: &str, now: i64) -> Result<Option<SessionRow>> {
        let row: Option<SessionJoin> = sqlx::query_as(
            "SELECT t.id, t.name, t.repositories, t.created_at, t.revoked_at, t.role, t.signals, t.person, s.csrf
             FROM sessions s JOIN api_tokens t ON t.id = s.token_id
             WHERE s.id_hash = $1 AND s.ended_at IS NULL AND s.expires_at > $2 AND t.revoked_at IS NULL",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await.named("sessions::session")?;
        Ok(row.map(
            |(id, name, repositories, created_at, revoked_at, role, signals, person, csrf)| {
                let token: Row = (
                    id,
                    name,
                    repositories,
                    created_at,
                    revoked_at,
                    role,
                    signals,
                    person,
                );
                SessionRow {
                    token: to_token(token),
                    csrf,
                }
            },
        ))
    }

    pub async fn end_session(&self, id_hash: &str, now: i64) -> Result<()> {
        sqlx::query("UPDATE sessions SET ended_at = $2 WHERE id_hash = $1 AND ended_at IS NULL")
            .bind(id_hash)
            .bind(now)
            .execute(self.pool())
            .await
            .named("sessions::end_session")?;
        Ok(())
    }
}
