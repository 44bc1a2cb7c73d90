//! Outcome signals reported for commits.

use sqlx::AnyConnection;

use super::{Named, Result, Store, StoreTx};
use crate::scoring::signal::{SignalName, SignalStatus};

/// A signal to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSignal {
    pub repository_id: i64,
    pub sha: String,
    pub name: SignalName,
    pub status: SignalStatus,
    pub value: Option<f64>,
    pub url: Option<String>,
    pub source: String,
    pub context: Option<String>,
    pub attempt: Option<i64>,
    pub idempotency_key: Option<String>,
    pub body_hash: Option<String>,
    pub occurred_at: i64,
    pub received_at: i64,
    /// The API token that posted it (`None`: GitHub or git).
    pub token_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SignalRow {
    pub id: i64,
    pub sha: String,
    pub name: SignalName,
    pub status: SignalStatus,
    pub value: Option<f64>,
    pub url: Option<String>,
    pub source: String,
    pub context: Option<String>,
    pub attempt: Option<i64>,
    pub idempotency_key: Option<String>,
    pub body_hash: Option<String>,
    pub occurred_at: i64,
    pub received_at: i64,
    pub token_id: Option<i64>,
}

/// What storing a signal did.
#[derive(Debug, Clone, PartialEq)]
pub enum SignalInsert {
    Created(SignalRow),
    /// The idempotency key was used before with the same body: the first signal.
    Replayed(SignalRow),
    /// The idempotency key was used before with another body: nothing was written.
    Conflict(SignalRow),
}

impl SignalInsert {
    /// `created`, `replayed` or `conflict` (for metrics and logs).
    pub fn as_str(&self) -> &'static str {
        match self {
            SignalInsert::Created(_) => "created",
            SignalInsert::Replayed(_) => "replayed",
            SignalInsert::Conflict(_) => "conflict",
        }
    }
}

impl Store {
    /// Stores a signal once per idempotency key (signals without a key are all stored).
    pub async fn insert_signal(&self, s: &NewSignal) -> Result<SignalInsert> {
        let mut results = self
            .insert_signals(std::slice::from_ref(s))
            .await
            .named("signals::insert_signal")?;
        Ok(results.remove(0))
    }

    /// Stores signals in one transaction; one result per signal, in order.
    pub async fn insert_signals(&self, batch: &[NewSignal]) -> Result<Vec<SignalInsert>> {
        let mut tx = self.begin().await.named("signals::insert_signals")?;
        let mut results = Vec::with_capacity(batch.len());
        for s in batch {
            results.push(tx.insert_signal(s).await.named("signals::insert_signals")?);
        }
        tx.commit().await.named("signals::insert_signals")?;
        Ok(results)
    }

    /// Signals recorded for a commit, matching abbreviated ids either way
    /// (a signal for `abc1234` belongs to `abc1234…`, and a query by prefix finds full ids).
    /// Prefixes are compared with `substr`, not `LIKE`, so no character is a wildcard.
    pub async fn signals_for_commit(
        &self,
        repository_id: i64,
        sha: &str,
    ) -> Result<Vec<SignalRow>> {
        // Only a commit id (7 to 40 hex digits) names commits; anything else names none.
        if !super::is_commit_prefix(sha) {
            return Ok(Vec::new());
        }
        let rows = sqlx::query_as(
            "SELECT id, sha, name, status, value, url, source, context, attempt, idempotency_key,
                 body_hash, occurred_at, received_at, token_id
             FROM signals
             WHERE repository_id = $1
               AND (substr($2, 1, length(sha)) = sha OR substr(sha, 1, length($2)) = $2)
             ORDER BY occurred_at, id",
        )
        .bind(repository_id)
        .bind(sha)
        .fetch_all(self.pool())
        .await
        .named("signals::signals_for_commit")?;
        Ok(rows)
    }

    pub async fn count_signals(&self) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM signals")
            .fetch_one(self.pool())
            .await
            .named("signals::count_signals")?;
        Ok(n)
    }
}

impl StoreTx {
    /// See [`Store::insert_signal`].
    pub async fn insert_signal(&mut self, s: &NewSignal) -> Result<SignalInsert> {
        insert_signal(self.conn(), s).await
    }
}

/// The signal insert, with `$13` or `NULL` as its value.
///
/// Two statements instead of one nullable float parameter: sqlx's `Any` driver
/// binds a `None::<f64>` as a `real` NULL on PostgreSQL, and a statement cached on
/// a connection keeps the parameter types of its first use, so every later `f64`
/// on that connection was refused ("incorrect binary data format"). Each of these
/// binds only non-null floats, so its types never change.
macro_rules! insert_signal_sql {
    ($value:literal) => {
        concat!(
            "INSERT INTO signals (repository_id, sha, name, status, url, source, context,
                 attempt, idempotency_key, body_hash, occurred_at, received_at, token_id, value)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, ",
            $value,
            ")
             ON CONFLICT (repository_id, idempotency_key) DO NOTHING
             RETURNING id, sha, name, status, value, url, source, context, attempt,
                 idempotency_key, body_hash, occurred_at, received_at, token_id"
        )
    };
}
const INSERT_SIGNAL_WITH_VALUE: &str = insert_signal_sql!("$14");
const INSERT_SIGNAL_WITHOUT_VALUE: &str = insert_signal_sql!("NULL");

async fn insert_signal(conn: &mut AnyConnection, s: &NewSignal) -> Result<SignalInsert> {
    let sql = match s.value {
        Some(_) => INSERT_SIGNAL_WITH_VALUE,
        None => INSERT_SIGNAL_WITHOUT_VALUE,
    };
    let mut insert = sqlx::query_as(sql)
        .bind(s.repository_id)
        .bind(&s.sha)
        .bind(&s.name)
        .bind(s.status)
        .bind(&s.url)
        .bind(&s.source)
        .bind(&s.context)
        .bind(s.attempt)
        .bind(&s.idempotency_key)
        .bind(&s.body_hash)
        .bind(s.occurred_at)
        .bind(s.received_at)
        .bind(s.token_id);
    if let Some(value) = s.value {
        insert = insert.bind(value);
    }
    let created: Option<SignalRow> = insert
        .fetch_optional(&mut *conn)
        .await
        .named("signals::insert_signal")?;
    if let Some(row) = created {
        return Ok(SignalInsert::Created(row));
    }
    let existing: SignalRow = sqlx::query_as(
        "SELECT id, sha, name, status, value, url, source, context, attempt, idempotency_key,
             body_hash, occurred_at, received_at, token_id
         FROM signals WHERE repository_id = $1 AND idempotency_key = $2",
    )
    .bind(s.repository_id)
    .bind(&s.idempotency_key)
    .fetch_one(&mut *conn)
    .await
    .named("signals::insert_signal")?;
    Ok(if existing.body_hash == s.body_hash {
        SignalInsert::Replayed(existing)
    } else {
        SignalInsert::Conflict(existing)
    })
}
