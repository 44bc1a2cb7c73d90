//! People and the identities (emails) they are known by.

use sqlx::AnyConnection;

use super::{Named, Result, Store, StoreTx};
use crate::attribution::identity::PersonConfig;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRow {
    pub key: String,
    pub display_name: String,
    pub github_login: Option<String>,
    pub discord_id: Option<String>,
    pub configured: bool,
    /// Email identities, sorted.
    pub emails: Vec<String>,
}

/// key, display name, GitHub login, Discord id, configured, one email (or none).
type PersonEmailRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    Option<String>,
);

impl Store {
    /// Writes the `[[people]]` of the configuration: names, GitHub logins, Discord ids
    /// and emails (an email first seen as its own person moves to the configured one).
    pub async fn sync_configured_people(&self, people: &[PersonConfig], now: i64) -> Result<()> {
        for person in people {
            sqlx::query(
                "INSERT INTO people (person_key, display_name, github_login, discord_id, configured, created_at)
                 VALUES ($1, $1, $2, $3, 1, $4)
                 ON CONFLICT (person_key) DO UPDATE SET
                     github_login = excluded.github_login, discord_id = excluded.discord_id,
                     configured = 1",
            )
            .bind(&person.name)
            .bind(&person.github)
            .bind(&person.discord)
            .bind(now)
            .execute(self.pool())
            .await.named("people::sync_configured_people")?;
            for email in &person.emails {
                self.link_email(&person.name, email, true, now)
                    .await
                    .named("people::sync_configured_people")?;
            }
        }
        Ok(())
    }

    /// Makes sure the person a commit is credited to exists, known by `email`.
    /// Unknown authors become people by themselves; nothing configured is overwritten.
    pub async fn ensure_person(
        &self,
        key: &str,
        display_name: &str,
        email: &str,
        now: i64,
    ) -> Result<()> {
        let mut conn = self.pool().acquire().await.named("people::ensure_person")?;
        ensure_person(&mut conn, key, display_name, email, now).await
    }

    async fn link_email(&self, key: &str, email: &str, reassign: bool, now: i64) -> Result<()> {
        let mut conn = self.pool().acquire().await.named("people::link_email")?;
        link_email(&mut conn, key, email, reassign, now).await
    }

    /// Authors of landed commits that no `[[people]]` entry owns (their key is
    /// a raw email): (email, landed commits, AI commits, last landed), most
    /// commits first.
    pub async fn unmapped_authors(&self) -> Result<Vec<(String, i64, i64, Option<i64>)>> {
        let mut rows: Vec<(String, i64, i64, Option<i64>)> = sqlx::query_as(
            "SELECT person, CAST(COUNT(*) AS BIGINT), CAST(SUM(ai) AS BIGINT), MAX(landed_at)
             FROM commits
             WHERE landed = 1 AND person LIKE '%@%' AND person NOT LIKE '@%'
             GROUP BY person
             ORDER BY COUNT(*) DESC, person",
        )
        .fetch_all(self.pool())
        .await
        .named("people::unmapped_authors")?;
        // Emails that only reported usage (OTLP) are unmapped too.
        let usage: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT person FROM usage
             WHERE person LIKE '%@%' AND person NOT LIKE '@%' ORDER BY person",
        )
        .fetch_all(self.pool())
        .await
        .named("people::unmapped_authors")?;
        for (email,) in usage {
            if !rows.iter().any(|r| r.0 == email) {
                rows.push((email, 0, 0, None));
            }
        }
        Ok(rows)
    }

    /// Everyone, by key, with their emails.
    pub async fn people(&self) -> Result<Vec<PersonRow>> {
        let rows: Vec<PersonEmailRow> = sqlx::query_as(
            "SELECT p.person_key, p.display_name, p.github_login, p.discord_id, p.configured, i.value
             FROM people p LEFT JOIN identities i ON i.person_id = p.id AND i.kind = 'email'
             ORDER BY p.person_key, i.value",
        )
        .fetch_all(self.pool())
        .await.named("people::people")?;
        let mut people: Vec<PersonRow> = Vec::new();
        for (key, display_name, github_login, discord_id, configured, email) in rows {
            if people.last().map(|p| &p.key) != Some(&key) {
                people.push(PersonRow {
                    key,
                    display_name,
                    github_login,
                    discord_id,
                    configured: configured == 1,
                    emails: Vec::new(),
                });
            }
            if let Some(email) = email {
                people.last_mut().expect("pushed above").emails.push(email);
            }
        }
        Ok(people)
    }
}

impl StoreTx {
    /// See [`Store::ensure_person`].
    pub async fn ensure_person(
        &mut self,
        key: &str,
        display_name: &str,
        email: &str,
        now: i64,
    ) -> Result<()> {
        ensure_person(self.conn(), key, display_name, email, now).await
    }
}

async fn ensure_person(
    conn: &mut AnyConnection,
    key: &str,
    display_name: &str,
    email: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO people (person_key, display_name, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (person_key) DO NOTHING",
    )
    .bind(key)
    .bind(if display_name.is_empty() {
        key
    } else {
        display_name
    })
    .bind(now)
    .execute(&mut *conn)
    .await
    .named("people::ensure_person")?;
    if !email.is_empty() {
        link_email(conn, key, email, false, now)
            .await
            .named("people::ensure_person")?;
    }
    Ok(())
}

/// Records that `email` belongs to the person `key`; `reassign` moves it from
/// another person (configuration wins over what was inferred).
async fn link_email(
    conn: &mut AnyConnection,
    key: &str,
    email: &str,
    reassign: bool,
    now: i64,
) -> Result<()> {
    let sql = if reassign {
        "INSERT INTO identities (person_id, kind, value, created_at)
         SELECT id, 'email', $2, $3 FROM people WHERE person_key = $1
         ON CONFLICT (kind, value) DO UPDATE SET person_id = excluded.person_id"
    } else {
        "INSERT INTO identities (person_id, kind, value, created_at)
         SELECT id, 'email', $2, $3 FROM people WHERE person_key = $1
         ON CONFLICT (kind, value) DO NOTHING"
    };
    sqlx::query(sql)
        .bind(key)
        .bind(email.trim().to_lowercase())
        .bind(now)
        .execute(&mut *conn)
        .await
        .named("people::link_email")?;
    Ok(())
}
