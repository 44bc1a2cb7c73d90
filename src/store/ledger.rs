//! The token ledger's entries: appending them (never updating or deleting
//! one), reading them by commit, person and id, and redemptions, which check
//! the balance and append in one transaction.
//!
//! Every append takes the ledger's write lock (an advisory lock on PostgreSQL,
//! the write lock on SQLite), refuses to date anything into a week that was
//! closed since the caller looked, and extends the hash chain: each entry's
//! SHA-256 over the previous entry's hash and its own fields (`ledger_chain`).

use std::collections::HashMap;

use sqlx::{AnyConnection, Row};

use super::{Backend, Named, Result, Store, StoreTx};
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
    /// The closed ISO week this entry corrects, if any.
    pub corrects: Option<String>,
    /// A vest's (or clawback's) payout factor, ppm.
    pub payout_factor_ppm: Option<i64>,
    /// A payout's money, minor units.
    pub money_minor: Option<i64>,
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
    pub payout_factor_ppm: Option<i64>,
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
    /// The closed week it corrects (it is dated in the oldest open week instead).
    pub corrects: Option<String>,
    pub payout_factor_ppm: Option<i64>,
    pub money_minor: Option<i64>,
}

/// Rows per INSERT. SQLite takes them as one JSON array (sqlx's SQLite
/// driver looks each parameter up by name among all of the statement's, so
/// many parameters cost their square); PostgreSQL as a multi-row VALUES of
/// 14 parameters each.
const SQLITE_INSERT_ROWS: usize = 1_000;
const POSTGRES_INSERT_ROWS: usize = 500;

/// The columns an insert of entries fills, in the order of `NewEntry`'s fields.
const INSERT_COLUMNS: &str = "person, kind, repository_id, commit_id, sha, amount, rules_version,
    at, landed_at, idempotency_key, explanation, corrects, payout_factor_ppm, money_minor,
    created_at";

const ENTRY_COLUMNS: &str =
    "e.id, e.person, e.kind, e.repository_id, e.commit_id, r.full_name AS repo, e.sha,
     e.amount, e.rules_version, e.at, e.idempotency_key, e.explanation, e.corrects,
     e.payout_factor_ppm, e.money_minor";

/// What an append found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// How many entries were new (the others were appended before).
    Done(u64),
    /// A week was closed since the caller chose the entries' dates: nothing
    /// was written; date them again and retry.
    PeriodMoved,
}

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
            "SELECT commit_id, person, kind, amount, at, idempotency_key, rules_version,
                 payout_factor_ppm
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
    /// was appended before, maybe by another replica). `last_closed` is the
    /// last closed week the caller dated the entries after: if another week
    /// closed meanwhile, nothing is written ([`Appended::PeriodMoved`]).
    pub async fn append_entries(
        &self,
        entries: &[NewEntry],
        now: i64,
        last_closed: Option<&str>,
    ) -> Result<Appended> {
        let mut tx = self.begin_ledger_write().await?;
        if tx.last_closed_week().await?.as_deref() != last_closed {
            return Ok(Appended::PeriodMoved);
        }
        let added = tx.append(entries, now).await?;
        tx.commit().await?;
        Ok(Appended::Done(added))
    }

    /// A transaction that holds the ledger's write lock: appends, closes and
    /// redemptions happen one at a time, so the chain has one order and no
    /// entry is dated into a week while it closes.
    pub async fn begin_ledger_write(&self) -> Result<StoreTx> {
        let mut tx = self.begin().await?;
        let lock = match self.backend() {
            Backend::Postgres => "SELECT pg_advisory_xact_lock(7286001)",
            // The first write takes SQLite's write lock (reads after it are current).
            Backend::Sqlite => "UPDATE ledger_head SET last_entry_id = last_entry_id WHERE id = 1",
        };
        sqlx::query(lock)
            .execute(tx.conn())
            .await
            .named("ledger::begin_ledger_write")?;
        Ok(tx)
    }

    /// Debits `amount` from the person's available (vested, unredeemed) balance,
    /// or refuses. The balance check and the entry are one transaction, with the
    /// person's row locked on PostgreSQL (SQLite has one writer), so two
    /// redemptions at once can never overdraw.
    pub async fn redeem(&self, entry: &NewEntry, now: i64) -> Result<Redemption> {
        // The ledger's write lock: the balance read below stays true until the entry is in.
        let mut store_tx = self.begin_ledger_write().await?;
        let tx = store_tx.conn();
        let person: Option<(i64,)> = sqlx::query_as("SELECT id FROM people WHERE person_key = $1")
            .bind(&entry.person)
            .fetch_optional(&mut *tx)
            .await
            .named("ledger::redeem")?;
        if person.is_none() {
            return Ok(Redemption::UnknownPerson);
        }
        let earlier: Option<(i64, i64, String, String)> = sqlx::query_as(
            "SELECT id, amount, person, explanation FROM ledger_entries WHERE idempotency_key = $1",
        )
        .bind(&entry.idempotency_key)
        .fetch_optional(&mut *tx)
        .await
        .named("ledger::redeem")?;
        if let Some((id, amount, person, explanation)) = earlier {
            // The same request again: the same amount, person and kind (the
            // kind is in the explanation: bonus, pto, equity).
            let kind = |text: &str| {
                serde_json::from_str::<serde_json::Value>(text)
                    .ok()
                    .and_then(|v| v["redeemed_as"].as_str().map(str::to_string))
            };
            return Ok(Redemption::Replayed {
                entry_id: id,
                same: amount == entry.amount
                    && person == entry.person
                    && kind(&explanation) == kind(&entry.explanation),
            });
        }
        let available = available_in(&mut *tx, &entry.person)
            .await
            .named("ledger::redeem")?;
        if available + entry.amount < 0 {
            return Ok(Redemption::Insufficient { available });
        }
        store_tx.append(std::slice::from_ref(entry), now).await?;
        let (id,): (i64,) =
            sqlx::query_as("SELECT id FROM ledger_entries WHERE idempotency_key = $1")
                .bind(&entry.idempotency_key)
                .fetch_one(store_tx.conn())
                .await
                .named("ledger::redeem")?;
        store_tx.commit().await.named("ledger::redeem")?;
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
         WHERE person = $1 AND kind IN ('vest', 'clawback', 'payout', 'redemption')
         GROUP BY commit_id, kind",
    )
    .bind(person)
    .fetch_all(&mut *conn)
    .await
    .named("ledger::available_in")?;
    Ok(crate::scoring::balance::available(&rows))
}

/// Inserts `entries` (those whose key is new); returns (id, key) of each inserted.
async fn insert_entries(
    conn: &mut AnyConnection,
    entries: &[NewEntry],
    now: i64,
) -> Result<Vec<(i64, String)>> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = format!("INSERT INTO ledger_entries ({INSERT_COLUMNS}) VALUES ");
    for i in 0..entries.len() {
        if i > 0 {
            sql.push_str(", ");
        }
        let placeholders: Vec<String> = (0..14).map(|k| format!("${}", i * 14 + k + 2)).collect();
        sql.push_str(&format!("({}, $1)", placeholders.join(", ")));
    }
    sql.push_str(" ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, idempotency_key");
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
            .bind(&e.explanation)
            .bind(&e.corrects)
            .bind(e.payout_factor_ppm)
            .bind(e.money_minor);
    }
    inserted_keys(insert.fetch_all(&mut *conn).await)
}

/// (id, key) of each row an insert of entries returned.
fn inserted_keys(
    rows: std::result::Result<Vec<sqlx::any::AnyRow>, sqlx::Error>,
) -> Result<Vec<(i64, String)>> {
    let rows = rows.named("ledger::insert_entries")?;
    Ok(rows
        .iter()
        .map(|row| (row.get::<i64, _>(0), row.get::<String, _>(1)))
        .collect())
}

/// [`insert_entries`] on SQLite: the rows as one JSON parameter, expanded by
/// `json_each` (the stored values are exactly the bound ones: the chain is
/// hashed from them).
async fn insert_entries_sqlite(
    conn: &mut AnyConnection,
    entries: &[NewEntry],
    now: i64,
) -> Result<Vec<(i64, String)>> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<serde_json::Value> = entries
        .iter()
        .map(|e| {
            serde_json::json!([
                e.person,
                e.kind.as_str(),
                e.repository_id,
                e.commit_id,
                e.sha,
                e.amount,
                e.rules_version,
                e.at,
                e.landed_at,
                e.idempotency_key,
                e.explanation,
                e.corrects,
                e.payout_factor_ppm,
                e.money_minor,
            ])
        })
        .collect();
    let sql = format!(
        "INSERT INTO ledger_entries ({INSERT_COLUMNS})
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5,
                value ->> 6, value ->> 7, value ->> 8, value ->> 9, value ->> 10, value ->> 11,
                value ->> 12, value ->> 13, $1
         FROM json_each($2) WHERE true
         ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, idempotency_key"
    );
    let insert = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(now)
        .bind(serde_json::Value::Array(rows).to_string());
    inserted_keys(insert.fetch_all(&mut *conn).await)
}

/// An entry with every field the chain's hash covers, in the chain's order.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ChainedEntry {
    pub id: i64,
    pub person: String,
    pub kind: EntryKind,
    pub repository_id: Option<i64>,
    pub commit_id: Option<i64>,
    pub sha: Option<String>,
    pub amount: i64,
    pub rules_version: String,
    pub at: i64,
    pub landed_at: Option<i64>,
    pub idempotency_key: String,
    pub explanation: String,
    pub corrects: Option<String>,
    pub payout_factor_ppm: Option<i64>,
    pub money_minor: Option<i64>,
    pub created_at: i64,
    /// Its stored hash (none for an entry not chained yet).
    pub hash: Option<String>,
}

const CHAINED_COLUMNS: &str = "e.id, e.person, e.kind, e.repository_id, e.commit_id, e.sha,
    e.amount, e.rules_version, e.at, e.landed_at, e.idempotency_key, e.explanation, e.corrects,
    e.payout_factor_ppm, e.money_minor, e.created_at, c.hash";

impl ChainedEntry {
    /// The row `entry` became when it was inserted as `id` at `now`.
    fn of(id: i64, entry: &NewEntry, now: i64) -> ChainedEntry {
        ChainedEntry {
            id,
            person: entry.person.clone(),
            kind: entry.kind,
            repository_id: entry.repository_id,
            commit_id: entry.commit_id,
            sha: entry.sha.clone(),
            amount: entry.amount,
            rules_version: entry.rules_version.clone(),
            at: entry.at,
            landed_at: entry.landed_at,
            idempotency_key: entry.idempotency_key.clone(),
            explanation: entry.explanation.clone(),
            corrects: entry.corrects.clone(),
            payout_factor_ppm: entry.payout_factor_ppm,
            money_minor: entry.money_minor,
            created_at: now,
            hash: None,
        }
    }

    /// The entry's hash given the previous one: SHA-256 over the previous hash,
    /// a newline, and the entry's fields as a JSON array.
    pub fn chain_hash(&self, previous: &str) -> String {
        let fields = serde_json::json!([
            self.id,
            self.person,
            self.kind.as_str(),
            self.repository_id,
            self.commit_id,
            self.sha,
            self.amount,
            self.rules_version,
            self.at,
            self.landed_at,
            self.idempotency_key,
            self.explanation,
            self.corrects,
            self.payout_factor_ppm,
            self.money_minor,
            self.created_at,
        ]);
        crate::secret::sha256_hex(format!("{previous}\n{fields}"))
    }
}

impl StoreTx {
    /// Appends `entries` (see [`Store::append_entries`]) and extends the chain;
    /// the caller holds the ledger's write lock ([`Store::begin_ledger_write`]).
    pub async fn append(&mut self, entries: &[NewEntry], now: i64) -> Result<u64> {
        let rows = if self.is_sqlite() {
            SQLITE_INSERT_ROWS
        } else {
            POSTGRES_INSERT_ROWS
        };
        let (head_id, head_hash) = self.chain_head().await?;
        // (id, position in `entries`) of each row this call inserted.
        let mut inserted: Vec<(i64, usize)> = Vec::new();
        let sqlite = self.is_sqlite();
        for (n, chunk) in entries.chunks(rows).enumerate() {
            let positions: HashMap<&str, usize> = chunk
                .iter()
                .enumerate()
                .rev()
                .map(|(i, e)| (e.idempotency_key.as_str(), n * rows + i))
                .collect();
            let inserted_now = if sqlite {
                insert_entries_sqlite(self.conn(), chunk, now).await
            } else {
                insert_entries(self.conn(), chunk, now).await
            };
            for (id, key) in inserted_now.named("ledger::append")? {
                inserted.push((id, positions[key.as_str()]));
            }
        }
        self.extend_balances().await?;
        let (after_head,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM ledger_entries WHERE id > $1")
                .bind(head_id)
                .fetch_one(self.conn())
                .await
                .named("ledger::append")?;
        if after_head as usize == inserted.len() {
            // The rows are what was bound: chained from them, not read back.
            inserted.sort_unstable();
            let chained = inserted
                .iter()
                .map(|&(id, i)| ChainedEntry::of(id, &entries[i], now));
            self.chain(chained, head_hash).await?;
        } else {
            // Entries made before the chain existed come first: read them all.
            self.extend_chain().await?;
        }
        Ok(inserted.len() as u64)
    }

    /// Adds the entries appended since the last call to `commit_balances`
    /// (each commit's sums by kind, per landing time), in the transaction
    /// that appended them (and on start, see [`Store::migrate`]).
    pub(super) async fn extend_balances(&mut self) -> Result<()> {
        let (from,): (i64,) =
            sqlx::query_as("SELECT balanced_entry_id FROM ledger_head WHERE id = 1")
                .fetch_one(self.conn())
                .await
                .named("ledger::extend_balances")?;
        // The flags of the latest score are read once, here: its explanation
        // never changes. `WHERE true` keeps SQLite from reading `ON` as a join's.
        sqlx::query(
            "INSERT INTO commit_balances (commit_id, landed_at, person, repository_id, sha,
                                          earned, vested, clawed, cancelled, latest, flags)
             SELECT g.*,
                    (SELECT CASE WHEN l.explanation LIKE '%\"ci\":\"red\"%' THEN 1 ELSE 0 END
                          + CASE WHEN l.explanation LIKE '%\"duplicate_of\":%' THEN 2 ELSE 0 END
                          + CASE WHEN l.explanation LIKE '%\"noise\":true%' THEN 4 ELSE 0 END
                     FROM ledger_entries l WHERE l.id = g.latest)
             FROM (SELECT commit_id, landed_at, MAX(person), MAX(repository_id), MAX(sha),
                          CAST(SUM(CASE WHEN kind IN ('accrual', 'adjustment') THEN amount ELSE 0 END) AS BIGINT),
                          CAST(SUM(CASE WHEN kind = 'vest' THEN amount ELSE 0 END) AS BIGINT),
                          CAST(SUM(CASE WHEN kind = 'clawback' THEN amount ELSE 0 END) AS BIGINT),
                          CAST(SUM(CASE WHEN kind = 'cancel' THEN amount ELSE 0 END) AS BIGINT),
                          MAX(CASE WHEN kind IN ('accrual', 'adjustment') THEN id END) AS latest
                   FROM ledger_entries
                   WHERE id > $1 AND commit_id IS NOT NULL AND landed_at IS NOT NULL
                   GROUP BY commit_id, landed_at) g
             WHERE true
             ON CONFLICT (commit_id, landed_at) DO UPDATE SET
                 earned = commit_balances.earned + excluded.earned,
                 vested = commit_balances.vested + excluded.vested,
                 clawed = commit_balances.clawed + excluded.clawed,
                 cancelled = commit_balances.cancelled + excluded.cancelled,
                 latest = COALESCE(excluded.latest, commit_balances.latest),
                 flags = CASE WHEN excluded.latest IS NULL THEN commit_balances.flags
                              ELSE excluded.flags END",
        )
        .bind(from)
        .execute(self.conn())
        .await
        .named("ledger::extend_balances")?;
        sqlx::query(
            "UPDATE ledger_head
             SET balanced_entry_id = (SELECT COALESCE(MAX(id), $1) FROM ledger_entries)
             WHERE id = 1",
        )
        .bind(from)
        .execute(self.conn())
        .await
        .named("ledger::extend_balances")?;
        Ok(())
    }

    /// Chains every entry after the head, read from the database (on the
    /// first run after an upgrade, every entry made before the chain existed).
    async fn extend_chain(&mut self) -> Result<()> {
        let (mut last_id, mut last_hash) = self.chain_head().await?;
        loop {
            let sql = format!(
                "SELECT {CHAINED_COLUMNS} FROM ledger_entries e
                 LEFT JOIN ledger_chain c ON c.entry_id = e.id
                 WHERE e.id > $1 ORDER BY e.id LIMIT 1000"
            );
            let batch: Vec<ChainedEntry> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(last_id)
                .fetch_all(self.conn())
                .await
                .named("ledger::extend_chain")?;
            let Some(last) = batch.last() else {
                return Ok(());
            };
            last_id = last.id;
            last_hash = self.chain(batch.into_iter(), last_hash).await?;
        }
    }

    /// Hashes `entries` (in id order, the first one right after the head,
    /// whose hash is `last_hash`) into the chain and moves the head to the
    /// last; returns its hash.
    async fn chain(
        &mut self,
        entries: impl Iterator<Item = ChainedEntry>,
        mut last_hash: String,
    ) -> Result<String> {
        let mut rows = Vec::new();
        for e in entries {
            last_hash = e.chain_hash(&last_hash);
            rows.push((e.id, last_hash.clone()));
        }
        let Some(&(last_id, _)) = rows.last() else {
            return Ok(last_hash);
        };
        let sqlite = self.is_sqlite();
        for chunk in rows.chunks(if sqlite { SQLITE_INSERT_ROWS } else { 200 }) {
            let insert = if sqlite {
                // One JSON parameter (see `SQLITE_INSERT_ROWS`).
                let json = serde_json::to_string(chunk).expect("ids and hashes serialise");
                sqlx::query(
                    "INSERT INTO ledger_chain (entry_id, hash)
                     SELECT value ->> 0, value ->> 1 FROM json_each($1)",
                )
                .bind(json)
            } else {
                let mut sql = String::from("INSERT INTO ledger_chain (entry_id, hash) VALUES ");
                for i in 0..chunk.len() {
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    sql.push_str(&format!("(${}, ${})", 2 * i + 1, 2 * i + 2));
                }
                let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (id, hash) in chunk {
                    insert = insert.bind(*id).bind(hash);
                }
                insert
            };
            insert.execute(self.conn()).await.named("ledger::chain")?;
        }
        sqlx::query("UPDATE ledger_head SET last_entry_id = $1, last_hash = $2 WHERE id = 1")
            .bind(last_id)
            .bind(&last_hash)
            .execute(self.conn())
            .await
            .named("ledger::chain")?;
        Ok(last_hash)
    }

    /// The last closed week, if any.
    pub async fn last_closed_week(&mut self) -> Result<Option<String>> {
        last_closed_week(self.conn()).await
    }

    /// The chain's head: (last entry id, its hash).
    pub async fn chain_head(&mut self) -> Result<(i64, String)> {
        sqlx::query_as("SELECT last_entry_id, last_hash FROM ledger_head WHERE id = 1")
            .fetch_one(self.conn())
            .await
            .named("ledger::chain_head")
    }
}

async fn last_closed_week(conn: &mut AnyConnection) -> Result<Option<String>> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT week FROM closed_weeks ORDER BY ends_at DESC LIMIT 1")
            .fetch_optional(conn)
            .await
            .named("ledger::last_closed_week")?;
    Ok(row.map(|(w,)| w))
}

impl Store {
    /// Every entry with its stored hash, in the chain's order, handed to `each`.
    pub async fn each_chained_entry(&self, mut each: impl FnMut(ChainedEntry)) -> Result<()> {
        use futures_util::TryStreamExt;
        let sql = format!(
            "SELECT {CHAINED_COLUMNS} FROM ledger_entries e
             LEFT JOIN ledger_chain c ON c.entry_id = e.id ORDER BY e.id"
        );
        let mut rows =
            sqlx::query_as::<_, ChainedEntry>(sqlx::AssertSqlSafe(sql)).fetch(self.pool());
        while let Some(row) = rows.try_next().await.named("ledger::each_chained_entry")? {
            each(row);
        }
        Ok(())
    }

    /// The last closed week, if any.
    pub async fn last_closed_week(&self) -> Result<Option<String>> {
        let mut conn = self
            .pool()
            .acquire()
            .await
            .named("ledger::last_closed_week")?;
        last_closed_week(&mut conn).await
    }
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
