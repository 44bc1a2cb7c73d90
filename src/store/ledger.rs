//! The token ledger's entries: appending them (never updating or deleting
//! one), reading them by commit, person and id, and redemptions, which check
//! the balance and append in one transaction.

use sqlx::AnyConnection;

use super::{Backend, Named, Result, Store};
use crate::scoring::balance::EntryKind;

/// A ledger entry as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct EntryRow {
    pub id: i64,
    pub person: String,
    pub kind: EntryKind,
    pub repository_id: Option<i64>,
    pub commit_id: Option<i64>,
    pub repo: Option<String>,
    pub sha: Option<String>,
    pub amount: i64,
    pub rules_version: String,
    pub at: i64,
    pub idempotency_key: String,
    pub explanation: String,
}

/// What planning needs of an entry a commit has (no explanation).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StateRow {
    pub commit_id: i64,
    pub person: String,
    pub kind: EntryKind,
    pub amount: i64,
    pub at: i64,
    pub idempotency_key: String,
    pub rules_version: String,
}

/// An entry to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEntry {
    pub person: String,
    pub kind: EntryKind,
    pub repository_id: Option<i64>,
    pub commit_id: Option<i64>,
    pub sha: Option<String>,
    pub amount: i64,
    pub rules_version: String,
    pub at: i64,
    /// When the entry's commit landed (none for redemptions).
    pub landed_at: Option<i64>,
    pub idempotency_key: String,
    pub explanation: String,
}

/// Rows per multi-row INSERT (11 parameters each). sqlx's SQLite driver looks each parameter up by
/// name among all of the statement's, so its cost grows with the square of
/// the parameters: SQLite takes small statements, PostgreSQL large ones.
const SQLITE_INSERT_ROWS: usize = 16;
const POSTGRES_INSERT_ROWS: usize = 500;

const ENTRY_COLUMNS: &str =
    "e.id, e.person, e.kind, e.repository_id, e.commit_id, r.full_name AS repo, e.sha,
     e.amount, e.rules_version, e.at, e.idempotency_key, e.explanation";

/// Why a redemption was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redemption {
    Done {
        entry_id: i64,
    },
    /// The key was used before: the entry it made.
    Replayed {
        entry_id: i64,
        same: bool,
    },
    Insufficient {
        available: i64,
    },
    UnknownPerson,
}

impl Store {
    /// Per person and kind, the sum of the entries that belong to commits.
    pub async fn commit_entry_totals(&self) -> Result<Vec<(String, EntryKind, i64)>> {
        sqlx::query_as(
            "SELECT person, kind, CAST(SUM(amount) AS BIGINT) FROM ledger_entries
             WHERE commit_id IS NOT NULL GROUP BY person, kind",
        )
        .fetch_all(self.pool())
        .await
        .named("ledger::commit_entry_totals")
    }

    /// What planning needs of every entry that belongs to a commit, in the order made.
    pub async fn ledger_state(&self) -> Result<Vec<StateRow>> {
        sqlx::query_as(
            "SELECT commit_id, person, kind, amount, at, idempotency_key, rules_version
             FROM ledger_entries WHERE commit_id IS NOT NULL ORDER BY id",
        )
        .fetch_all(self.pool())
        .await
        .named("ledger::ledger_state")
    }

    /// Every entry that belongs to a commit (what the ledger already holds).
    pub async fn commit_entries(&self) -> Result<Vec<EntryRow>> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM ledger_entries e
             LEFT JOIN repositories r ON r.id = e.repository_id
             WHERE e.commit_id IS NOT NULL ORDER BY e.id"
        );
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(self.pool())
            .await
            .named("ledger::commit_entries")
    }

    /// Entries of one commit, in the order they were made.
    pub async fn entries_of_commit(&self, commit_id: i64) -> Result<Vec<EntryRow>> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM ledger_entries e
             LEFT JOIN repositories r ON r.id = e.repository_id
             WHERE e.commit_id = $1 ORDER BY e.id"
        );
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(commit_id)
            .fetch_all(self.pool())
            .await
            .named("ledger::entries_of_commit")
    }

    /// A person's entries effective in `[from, to)`, in time order.
    pub async fn person_entries(&self, person: &str, from: i64, to: i64) -> Result<Vec<EntryRow>> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM ledger_entries e
             LEFT JOIN repositories r ON r.id = e.repository_id
             WHERE e.person = $1 AND e.at >= $2 AND e.at < $3 ORDER BY e.at, e.id"
        );
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(person)
            .bind(from)
            .bind(to)
            .fetch_all(self.pool())
            .await
            .named("ledger::person_entries")
    }

    /// Appends entries; an entry whose idempotency key is taken is skipped (it
    /// was appended before, maybe by another replica). Returns how many were new.
    pub async fn append_entries(&self, entries: &[NewEntry], now: i64) -> Result<u64> {
        let mut tx = self.pool().begin().await.named("ledger::append_entries")?;
        let mut added = 0;
        let rows = match self.backend() {
            Backend::Sqlite => SQLITE_INSERT_ROWS,
            Backend::Postgres => POSTGRES_INSERT_ROWS,
        };
        for chunk in entries.chunks(rows) {
            added += insert_entries(&mut tx, chunk, now)
                .await
                .named("ledger::append_entries")?;
        }
        tx.commit().await.named("ledger::append_entries")?;
        Ok(added)
    }

    /// Debits `amount` from the person's available (vested, unredeemed) balance,
    /// or refuses. The balance check and the entry are one transaction, with the
    /// person's row locked on PostgreSQL (SQLite has one writer), so two
    /// redemptions at once can never overdraw.
    pub async fn redeem(&self, entry: &NewEntry, now: i64) -> Result<Redemption> {
        let mut tx = self.pool().begin().await.named("ledger::redeem")?;
        // Start as a writer at once on SQLite, so the read below is not stale.
        let lock = match self.backend() {
            Backend::Postgres => "SELECT id FROM people WHERE person_key = $1 FOR UPDATE",
            Backend::Sqlite => "SELECT id FROM people WHERE person_key = $1",
        };
        if self.backend() == Backend::Sqlite {
            sqlx::query("UPDATE people SET configured = configured WHERE person_key = $1")
                .bind(&entry.person)
                .execute(&mut *tx)
                .await
                .named("ledger::redeem")?;
        }
        let person: Option<(i64,)> = sqlx::query_as(sqlx::AssertSqlSafe(lock))
            .bind(&entry.person)
            .fetch_optional(&mut *tx)
            .await
            .named("ledger::redeem")?;
        if person.is_none() {
            return Ok(Redemption::UnknownPerson);
        }
        let earlier: Option<(i64, i64, String)> = sqlx::query_as(
            "SELECT id, amount, person FROM ledger_entries WHERE idempotency_key = $1",
        )
        .bind(&entry.idempotency_key)
        .fetch_optional(&mut *tx)
        .await
        .named("ledger::redeem")?;
        if let Some((id, amount, person)) = earlier {
            return Ok(Redemption::Replayed {
                entry_id: id,
                same: amount == entry.amount && person == entry.person,
            });
        }
        let available = available_in(&mut tx, &entry.person)
            .await
            .named("ledger::redeem")?;
        if available + entry.amount < 0 {
            return Ok(Redemption::Insufficient { available });
        }
        insert_entries(&mut tx, std::slice::from_ref(entry), now)
            .await
            .named("ledger::redeem")?;
        let (id,): (i64,) =
            sqlx::query_as("SELECT id FROM ledger_entries WHERE idempotency_key = $1")
                .bind(&entry.idempotency_key)
                .fetch_one(&mut *tx)
                .await
                .named("ledger::redeem")?;
        tx.commit().await.named("ledger::redeem")?;
        Ok(Redemption::Done { entry_id: id })
    }

    /// Whether a person is known.
    pub async fn person_exists(&self, person: &str) -> Result<bool> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM people WHERE person_key = $1")
            .bind(person)
            .fetch_optional(self.pool())
            .await
            .named("ledger::person_exists")?;
        Ok(row.is_some())
    }

    /// An entry by id.
    pub async fn entry(&self, id: i64) -> Result<Option<EntryRow>> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM ledger_entries e
             LEFT JOIN repositories r ON r.id = e.repository_id WHERE e.id = $1"
        );
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .named("ledger::entry")
    }
}

/// Vested tokens not yet redeemed (clawbacks of vested tokens included).
async fn available_in(conn: &mut AnyConnection, person: &str) -> Result<i64> {
    let rows: Vec<(Option<i64>, EntryKind, i64)> = sqlx::query_as(
        "SELECT commit_id, kind, CAST(SUM(amount) AS BIGINT) FROM ledger_entries
         WHERE person = $1 AND kind IN ('vest', 'clawback', 'redemption')
         GROUP BY commit_id, kind",
    )
    .bind(person)
    .fetch_all(&mut *conn)
    .await
    .named("ledger::available_in")?;
    Ok(crate::scoring::balance::available(&rows))
}

async fn insert_entries(conn: &mut AnyConnection, entries: &[NewEntry], now: i64) -> Result<u64> {
    if entries.is_empty() {
        return Ok(0);
    }
    let mut sql = String::from(
        "INSERT INTO ledger_entries (person, kind, repository_id, commit_id, sha, amount,
             rules_version, at, landed_at, idempotency_key, explanation, created_at) VALUES ",
    );
    for i in 0..entries.len() {
        if i > 0 {
            sql.push_str(", ");
        }
        let placeholders: Vec<String> = (0..11).map(|k| format!("${}", i * 11 + k + 2)).collect();
        sql.push_str(&format!("({}, $1)", placeholders.join(", ")));
    }
    sql.push_str(" ON CONFLICT (idempotency_key) DO NOTHING");
    let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
    for e in entries {
        insert = insert
            .bind(&e.person)
            .bind(e.kind)
            .bind(e.repository_id)
            .bind(e.commit_id)
            .bind(&e.sha)
            .bind(e.amount)
            .bind(&e.rules_version)
            .bind(e.at)
            .bind(e.landed_at)
            .bind(&e.idempotency_key)
            .bind(&e.explanation);
    }
    Ok(insert
        .execute(&mut *conn)
        .await
        .named("ledger::insert_entries")?
        .rows_affected())
}

impl Store {
    /// Per commit and kind, a person's entry sums (for balances).
    pub async fn person_sums(&self, person: &str) -> Result<Vec<(Option<i64>, EntryKind, i64)>> {
        sqlx::query_as(
            "SELECT commit_id, kind, CAST(SUM(amount) AS BIGINT) FROM ledger_entries
             WHERE person = $1 GROUP BY commit_id, kind",
        )
        .bind(person)
        .fetch_all(self.pool())
        .await
        .named("ledger::person_sums")
    }
}
