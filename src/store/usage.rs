//! Verified usage: the points coding agents report, each counted once, summed
//! per person, agent, model, day and kind.

use super::{Named, Result, Store};
use crate::scoring::usage::{UsageKind, UsagePoint, added};

/// A point to count: who it belongs to and which day (in `timezone`).
pub struct DatedPoint<'a> {
    pub point: &'a UsagePoint,
    pub person: String,
    pub day: String,
}

/// One summed row: person, agent, model, day, kind, amount.
pub type UsageRow = (String, String, String, String, String, i64);

impl Store {
    /// Counts `points` in one transaction: a delta point once per window, a
    /// cumulative one by its growth since its series' last point. Returns how
    /// many points added something (the rest were counted before).
    pub async fn record_usage(&self, points: &[DatedPoint<'_>]) -> Result<u64> {
        let mut tx = self.begin().await?;
        let conn = tx.conn();
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
                let new = sqlx::query(
                    "INSERT INTO usage_windows (series, start_time, end_time) VALUES ($1, $2, $3)
                     ON CONFLICT (series, start_time, end_time) DO NOTHING",
                )
                .bind(&p.series)
                .bind(p.start_ns)
                .bind(p.time_ns)
                .execute(&mut *conn)
                .await
                .named("usage::record_usage")?
                .rows_affected()
                    == 1;
                added(p, None, !new)
            };
            let Some(amount) = amount.filter(|a| *a != 0) else {
                continue;
            };
            counted += 1;
            sqlx::query(
                "INSERT INTO usage (person, agent, model, day, kind, amount) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (person, agent, model, day, kind) DO UPDATE SET amount = usage.amount + excluded.amount",
            )
            .bind(&d.person)
            .bind(&p.agent)
            .bind(&p.model)
            .bind(&d.day)
            .bind(p.kind.as_str())
            .bind(amount)
            .execute(&mut *conn)
            .await
            .named("usage::record_usage")?;
        }
        tx.commit().await?;
        Ok(counted)
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

/// Whether `kind` text names a usage kind (rows of older versions may not).
pub fn known_kind(kind: &str) -> Option<UsageKind> {
    UsageKind::parse(kind)
}
