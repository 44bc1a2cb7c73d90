//! Verified usage: the points coding agents report, each counted once, summed
//! per person, agent, model, day and kind.

use super::{Named, Result, Store};
use crate::scoring::usage::{UsagePoint, added};

/// A point to count: who it belongs to and which day (in `timezone`).
pub struct DatedPoint<'a> {
    pub point: &'a UsagePoint,
    pub person: String,
    pub day: String,
}

/// Windows per multi-row insert (3 parameters each; well under both
/// databases' parameter limits).
const WINDOW_CHUNK: usize = 100;
/// Usage rows per multi-row upsert (6 parameters each).
const USAGE_CHUNK: usize = 50;

/// One summed row: person, agent, model, day, kind, amount.
pub type UsageRow = (String, String, String, String, String, i64);

impl Store {
    /// Stores an OTLP batch as received (protobuf): what `/v1/metrics`
    /// acknowledges. Returns its id.
    pub async fn store_usage_batch(&self, body: &[u8], now: i64) -> Result<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO usage_batches (body, received_at) VALUES ($1, $2) RETURNING id",
        )
        .bind(body)
        .bind(now)
        .fetch_one(self.pool())
        .await
        .named("usage::store_usage_batch")?;
        Ok(id)
    }

    /// Up to `limit` stored batches not counted yet, oldest first: (id, size
    /// in bytes), so the counter can read their bodies a bounded amount at a time.
    pub async fn open_usage_batches(&self, limit: i64) -> Result<Vec<(i64, i64)>> {
        sqlx::query_as(
            "SELECT id, CAST(length(body) AS BIGINT) FROM usage_batches WHERE counted_at IS NULL ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .named("usage::open_usage_batches")
    }

    /// The bodies of the batches from `first` to `last` (ids) not counted yet.
    pub async fn usage_batch_bodies(&self, first: i64, last: i64) -> Result<Vec<(i64, Vec<u8>)>> {
        sqlx::query_as(
            "SELECT id, body FROM usage_batches
             WHERE id >= $1 AND id <= $2 AND counted_at IS NULL ORDER BY id",
        )
        .bind(first)
        .bind(last)
        .fetch_all(self.pool())
        .await
        .named("usage::usage_batch_bodies")
    }

    /// Counts the points of several stored batches in one transaction, each
    /// batch once: a batch is marked counted in the same transaction, and a
    /// batch another replica counted already is skipped. Returns how many
    /// points added something.
    pub async fn count_usage_batches(
        &self,
        batches: &[(i64, Vec<DatedPoint<'_>>)],
        now: i64,
    ) -> Result<u64> {
        if batches.is_empty() {
            return Ok(0);
        }
        let mut tx = self.begin().await?;
        // One statement claims them all (a statement per small batch cost
        // more than counting it); only the batches it claimed are counted.
        let placeholders: Vec<String> = (0..batches.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "UPDATE usage_batches SET counted_at = $1
             WHERE id IN ({}) AND counted_at IS NULL RETURNING id",
            placeholders.join(", ")
        );
        let mut claim = sqlx::query_as::<_, (i64,)>(sqlx::AssertSqlSafe(sql)).bind(now);
        for (id, _) in batches {
            claim = claim.bind(*id);
        }
        let claimed: std::collections::HashSet<i64> = claim
            .fetch_all(tx.conn())
            .await
            .named("usage::count_usage_batches")?
            .into_iter()
            .map(|(id,)| id)
            .collect();
        let points: Vec<&DatedPoint<'_>> = batches
            .iter()
            .filter(|(id, _)| claimed.contains(id))
            .flat_map(|(_, batch)| batch)
            .collect();
        let counted = record_in(tx.conn(), &points).await?;
        tx.commit().await?;
        Ok(counted)
    }
}

/// Counts `points` on `conn` (inside the caller's transaction): a delta point
/// once per window, a cumulative one by its growth since its series' last
/// point. Returns how many points added something.
async fn record_in(conn: &mut sqlx::AnyConnection, points: &[&DatedPoint<'_>]) -> Result<u64> {
    // Delta windows: one multi-row insert per chunk; the rows it returns
    // are the windows not counted before.
    let deltas: Vec<&UsagePoint> = points
        .iter()
        .map(|d| d.point)
        .filter(|p| !p.cumulative)
        .collect();
    let mut new_windows: std::collections::HashSet<(String, i64, i64)> = Default::default();
    for chunk in deltas.chunks(WINDOW_CHUNK) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3))
            .collect();
        let sql = format!(
            "INSERT INTO usage_windows (series, start_time, end_time) VALUES {}
                 ON CONFLICT (series, start_time, end_time) DO NOTHING
                 RETURNING series, start_time, end_time",
            values.join(", ")
        );
        let mut query = sqlx::query_as::<_, (String, i64, i64)>(sqlx::AssertSqlSafe(sql));
        for p in chunk {
            query = query.bind(&p.series).bind(p.start_ns).bind(p.time_ns);
        }
        new_windows.extend(
            query
                .fetch_all(&mut *conn)
                .await
                .named("usage::record_usage")?,
        );
    }
    // What each point adds, summed per row of the usage table.
    let mut sums: std::collections::BTreeMap<(&str, &str, &str, &str, &str), i64> =
        Default::default();
    let mut counted = 0;
    for d in points {
        let p = d.point;
        let amount = if p.cumulative {
            let last: Option<(i64, i64, i64)> = sqlx::query_as(
                "SELECT start_time, last_time, last_value FROM usage_series WHERE series = $1",
            )
            .bind(&p.series)
            .fetch_optional(&mut *conn)
            .await
            .named("usage::record_usage")?;
            let amount = added(p, last, false);
            if amount.is_some() {
                sqlx::query(
                    "INSERT INTO usage_series (series, start_time, last_time, last_value)
                         VALUES ($1, $2, $3, $4)
                         ON CONFLICT (series) DO UPDATE SET start_time = excluded.start_time,
                             last_time = excluded.last_time, last_value = excluded.last_value",
                )
                .bind(&p.series)
                .bind(p.start_ns)
                .bind(p.time_ns)
                .bind(p.value)
                .execute(&mut *conn)
                .await
                .named("usage::record_usage")?;
            }
            amount
        } else {
            // A window seen twice in one batch counts once.
            let new = new_windows.remove(&(p.series.clone(), p.start_ns, p.time_ns));
            added(p, None, !new)
        };
        let Some(amount) = amount.filter(|a| *a != 0) else {
            continue;
        };
        counted += 1;
        *sums
            .entry((&d.person, &p.agent, &p.model, &d.day, p.kind.as_str()))
            .or_default() += amount;
    }
    let rows: Vec<_> = sums.into_iter().collect();
    for chunk in rows.chunks(USAGE_CHUNK) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                let b = 6 * i;
                format!(
                    "(${}, ${}, ${}, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO usage (person, agent, model, day, kind, amount) VALUES {}
                 ON CONFLICT (person, agent, model, day, kind)
                 DO UPDATE SET amount = usage.amount + excluded.amount",
            values.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for ((person, agent, model, day, kind), amount) in chunk {
            query = query
                .bind(*person)
                .bind(*agent)
                .bind(*model)
                .bind(*day)
                .bind(*kind)
                .bind(*amount);
        }
        query
            .execute(&mut *conn)
            .await
            .named("usage::record_usage")?;
    }
    Ok(counted)
}

impl Store {
    /// (person, agent, day) of the days from `from` on with model tokens
    /// reported: what proves a commit was assisted.
    pub async fn usage_days(
        &self,
        from: &str,
        person: Option<&str>,
    ) -> Result<Vec<(String, String, String)>> {
        sqlx::query_as(
            "SELECT DISTINCT person, agent, day FROM usage
             WHERE day >= $1 AND ($2 = '' OR person = $2) AND amount > 0
               AND kind IN ('input', 'output', 'cache_read', 'cache_creation')",
        )
        .bind(from)
        .bind(person.unwrap_or_default())
        .fetch_all(self.pool())
        .await
        .named("usage::usage_days")
    }

    /// The usage rows of days `[from, to]` (`YYYY-MM-DD`), optionally one person's.
    pub async fn usage_between(
        &self,
        from: &str,
        to: &str,
        person: Option<&str>,
    ) -> Result<Vec<UsageRow>> {
        sqlx::query_as(
            "SELECT person, agent, model, day, kind, amount FROM usage
             WHERE day >= $1 AND day <= $2 AND ($3 = '' OR person = $3)
             ORDER BY person, agent, model, day, kind",
        )
        .bind(from)
        .bind(to)
        .bind(person.unwrap_or_default())
        .fetch_all(self.pool())
        .await
        .named("usage::usage_between")
    }
}
