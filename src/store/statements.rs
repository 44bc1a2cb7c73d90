//! Closed weeks and their statements: written once, under the ledger's write
//! lock, never changed (database triggers refuse UPDATE and DELETE); and the
//! entries a statement is computed from.

use sqlx::AnyConnection;

use super::{Named, Result, Store, StoreTx};
use crate::scoring::balance::EntryKind;
use crate::scoring::statement::MoneyFact;

/// An entry as the money view reads it, with its person and effective time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatedFact {
    pub person: String,
    pub at: i64,
    pub fact: MoneyFact,
}

#[derive(sqlx::FromRow)]
struct FactRow {
    id: i64,
    person: String,
    kind: EntryKind,
    commit_id: Option<i64>,
    amount: i64,
    at: i64,
    payout_factor_ppm: Option<i64>,
    corrects: Option<String>,
    money_minor: Option<i64>,
}

impl From<FactRow> for DatedFact {
    fn from(r: FactRow) -> Self {
        DatedFact {
            person: r.person,
            at: r.at,
            fact: MoneyFact {
                id: r.id,
                kind: r.kind,
                commit_id: r.commit_id,
                amount: r.amount,
                factor_ppm: r.payout_factor_ppm,
                corrects: r.corrects,
                money_minor: r.money_minor,
            },
        }
    }
}

/// A closed week as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ClosedWeekRow {
    pub week: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub closed_at: i64,
    /// The last entry (and its chain hash) when the week closed.
    pub last_entry_id: i64,
    pub last_hash: String,
    pub currency: String,
    pub total_minor: i64,
}

/// One person's statement line as stored (milli-tokens; `entries` is JSON).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StatementRow {
    pub week: String,
    pub person: String,
    pub opening: i64,
    pub vested: i64,
    pub clawed_back: i64,
    pub corrections: i64,
    pub redeemed: i64,
    pub paid: i64,
    pub closing: i64,
    pub amount_minor: i64,
    pub entries: String,
}

const FACT_COLUMNS: &str =
    "id, person, kind, commit_id, amount, at, payout_factor_ppm, corrects, money_minor";
const STATEMENT_COLUMNS: &str = "week, person, opening, vested, clawed_back, corrections,
    redeemed, paid, closing, amount_minor, entries";
const CLOSED_COLUMNS: &str =
    "week, starts_at, ends_at, closed_at, last_entry_id, last_hash, currency, total_minor";

async fn facts_before(conn: &mut AnyConnection, end: i64) -> Result<Vec<DatedFact>> {
    let sql = format!("SELECT {FACT_COLUMNS} FROM ledger_entries WHERE at < $1 ORDER BY at, id");
    let rows: Vec<FactRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(end)
        .fetch_all(conn)
        .await
        .named("statements::facts_before")?;
    Ok(rows.into_iter().map(DatedFact::from).collect())
}

async fn facts_between(conn: &mut AnyConnection, from: i64, to: i64) -> Result<Vec<DatedFact>> {
    let sql = format!(
        "SELECT {FACT_COLUMNS} FROM ledger_entries WHERE at >= $1 AND at < $2 ORDER BY at, id"
    );
    let rows: Vec<FactRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(from)
        .bind(to)
        .fetch_all(conn)
        .await
        .named("statements::facts_between")?;
    Ok(rows.into_iter().map(DatedFact::from).collect())
}

impl StoreTx {
    /// Every entry effective before `end`, in time order (ties by id).
    pub async fn facts_before(&mut self, end: i64) -> Result<Vec<DatedFact>> {
        facts_before(self.conn(), end).await
    }

    /// The entries effective in `[from, to)`, in time order (ties by id).
    pub async fn facts_between(&mut self, from: i64, to: i64) -> Result<Vec<DatedFact>> {
        facts_between(self.conn(), from, to).await
    }

    /// Records a closed week and its statement lines.
    pub async fn insert_closed_week(
        &mut self,
        week: &ClosedWeekRow,
        lines: &[StatementRow],
    ) -> Result<()> {
        let sql = format!(
            "INSERT INTO closed_weeks ({CLOSED_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&week.week)
            .bind(week.starts_at)
            .bind(week.ends_at)
            .bind(week.closed_at)
            .bind(week.last_entry_id)
            .bind(&week.last_hash)
            .bind(&week.currency)
            .bind(week.total_minor)
            .execute(self.conn())
            .await
            .named("statements::insert_closed_week")?;
        for l in lines {
            let sql = format!(
                "INSERT INTO statements ({STATEMENT_COLUMNS})
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&l.week)
                .bind(&l.person)
                .bind(l.opening)
                .bind(l.vested)
                .bind(l.clawed_back)
                .bind(l.corrections)
                .bind(l.redeemed)
                .bind(l.paid)
                .bind(l.closing)
                .bind(l.amount_minor)
                .bind(&l.entries)
                .execute(self.conn())
                .await
                .named("statements::insert_closed_week")?;
        }
        Ok(())
    }
}

impl Store {
    /// Every entry effective before `end`, in time order (ties by id).
    pub async fn facts_before(&self, end: i64) -> Result<Vec<DatedFact>> {
        let mut conn = self
            .pool()
            .acquire()
            .await
            .named("statements::facts_before")?;
        facts_before(&mut conn, end).await
    }

    /// The entries effective in `[from, to)`, in time order (ties by id).
    pub async fn facts_between(&self, from: i64, to: i64) -> Result<Vec<DatedFact>> {
        let mut conn = self
            .pool()
            .acquire()
            .await
            .named("statements::facts_between")?;
        facts_between(&mut conn, from, to).await
    }

    /// Each person's closing balance in the latest closed week they have a line in.
    pub async fn closing_balances(&self) -> Result<Vec<(String, i64)>> {
        sqlx::query_as(
            "SELECT s.person, s.closing FROM statements s
             WHERE s.week = (SELECT MAX(l.week) FROM statements l WHERE l.person = s.person)",
        )
        .fetch_all(self.pool())
        .await
        .named("statements::closing_balances")
    }

    /// When the earliest entry is effective (the first week that can close).
    pub async fn first_entry_at(&self) -> Result<Option<i64>> {
        let (at,): (Option<i64>,) = sqlx::query_as("SELECT MIN(at) FROM ledger_entries")
            .fetch_one(self.pool())
            .await
            .named("statements::first_entry_at")?;
        Ok(at)
    }

    /// A closed week, if it is closed.
    pub async fn closed_week(&self, week: &str) -> Result<Option<ClosedWeekRow>> {
        let sql = format!("SELECT {CLOSED_COLUMNS} FROM closed_weeks WHERE week = $1");
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(week)
            .fetch_optional(self.pool())
            .await
            .named("statements::closed_week")
    }

    /// Every closed week, oldest first.
    pub async fn closed_weeks(&self) -> Result<Vec<ClosedWeekRow>> {
        let sql = format!("SELECT {CLOSED_COLUMNS} FROM closed_weeks ORDER BY ends_at");
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(self.pool())
            .await
            .named("statements::closed_weeks")
    }

    /// The statement lines of a closed week, by person.
    pub async fn statement_lines(&self, week: &str) -> Result<Vec<StatementRow>> {
        let sql =
            format!("SELECT {STATEMENT_COLUMNS} FROM statements WHERE week = $1 ORDER BY person");
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(week)
            .fetch_all(self.pool())
            .await
            .named("statements::statement_lines")
    }

    /// Every statement line, by week and person.
    pub async fn all_statement_lines(&self) -> Result<Vec<StatementRow>> {
        let sql = format!("SELECT {STATEMENT_COLUMNS} FROM statements ORDER BY week, person");
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(self.pool())
            .await
            .named("statements::all_statement_lines")
    }

    /// A person's statement lines of the last `limit` closed weeks they have one in, newest first.
    pub async fn person_statement_lines(
        &self,
        person: &str,
        limit: i64,
    ) -> Result<Vec<StatementRow>> {
        let sql = format!(
            "SELECT {STATEMENT_COLUMNS} FROM statements WHERE person = $1
             ORDER BY week DESC LIMIT $2"
        );
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(person)
            .bind(limit)
            .fetch_all(self.pool())
            .await
            .named("statements::person_statement_lines")
    }

    /// Whether some repository's first sync started after `since` and is
    /// still running (weeks wait for it to close; an older mark is a sync
    /// that died with its process).
    pub async fn first_sync_running(&self, since: i64) -> Result<bool> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM repositories WHERE first_sync_since > $1")
                .bind(since)
                .fetch_one(self.pool())
                .await
                .named("statements::first_sync_running")?;
        Ok(n > 0)
    }

    /// Marks a repository's first sync as running (`Some(since)`) or over (`None`).
    pub async fn set_first_sync(&self, repository_id: i64, since: Option<i64>) -> Result<()> {
        sqlx::query("UPDATE repositories SET first_sync_since = $1 WHERE id = $2")
            .bind(since)
            .bind(repository_id)
            .execute(self.pool())
            .await
            .named("statements::set_first_sync")?;
        Ok(())
    }
}
