//! The DM outbox: one message per person per settle pass, planned once
//! (a cursor over ledger entries that only one replica can move) and sent
//! once (a lease per row).

use super::{Named, Result, Store};

/// A ledger entry a DM tells about.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DmEntry {
    pub id: i64,
    pub person: String,
    pub kind: String,
    pub amount: i64,
    pub money_minor: Option<i64>,
}

/// A DM to store.
#[derive(Debug, Clone)]
pub struct NewDm {
    pub person: String,
    pub discord_id: String,
    pub body: String,
}

/// A DM to send.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DmRow {
    pub id: i64,
    pub person: String,
    pub discord_id: String,
    pub body: String,
    pub attempts: i64,
}

impl Store {
    /// The cursor: the last entry DMs were planned for (none before the first plan).
    pub async fn dm_cursor(&self) -> Result<Option<i64>> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT through_entry_id FROM discord_dm_cursor WHERE id = 1")
                .fetch_optional(self.pool())
                .await
                .named("dms::dm_cursor")?;
        Ok(row.map(|r| r.0))
    }

    /// Vests, clawbacks, cancellations and payouts after entry `after`, and
    /// the last entry id there is (0 in an empty ledger).
    pub async fn dm_entries_after(&self, after: i64) -> Result<(Vec<DmEntry>, i64)> {
        let entries = sqlx::query_as(
            "SELECT id, person, kind, amount, money_minor FROM ledger_entries
             WHERE id > $1 AND kind IN ('vest', 'clawback', 'cancel', 'payout') ORDER BY id",
        )
        .bind(after)
        .fetch_all(self.pool())
        .await
        .named("dms::dm_entries_after")?;
        let (last,): (Option<i64>,) = sqlx::query_as("SELECT MAX(id) FROM ledger_entries")
            .fetch_one(self.pool())
            .await
            .named("dms::dm_entries_after")?;
        Ok((entries, last.unwrap_or(0)))
    }

    /// Moves the cursor from `from` (none: it starts here) to `to` and stores
    /// `dms` for the entries between, in one transaction. `false` when another
    /// replica moved it first (its DMs cover these entries).
    pub async fn plan_dms(
        &self,
        from: Option<i64>,
        to: i64,
        dms: &[NewDm],
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let conn = tx.conn();
        let moved = match from {
            None => sqlx::query(
                "INSERT INTO discord_dm_cursor (id, through_entry_id) VALUES (1, $1)
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(to)
            .execute(&mut *conn)
            .await
            .named("dms::plan_dms")?,
            Some(from) => sqlx::query(
                "UPDATE discord_dm_cursor SET through_entry_id = $2 WHERE id = 1 AND through_entry_id = $1",
            )
            .bind(from)
            .bind(to)
            .execute(&mut *conn)
            .await
            .named("dms::plan_dms")?,
        };
        if moved.rows_affected() == 0 {
            return Ok(false);
        }
        for dm in dms {
            sqlx::query(
                "INSERT INTO discord_dms (person, discord_id, after_entry_id, through_entry_id, body,
                                          next_attempt_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $6)
                 ON CONFLICT (person, after_entry_id) DO NOTHING",
            )
            .bind(&dm.person)
            .bind(&dm.discord_id)
            .bind(from.unwrap_or(to))
            .bind(to)
            .bind(&dm.body)
            .bind(now)
            .execute(&mut *conn)
            .await
            .named("dms::plan_dms")?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Takes the next due DM for `owner` for `lease_ms`, if any.
    pub async fn claim_dm(&self, owner: &str, now: i64, lease_ms: i64) -> Result<Option<DmRow>> {
        loop {
            let next: Option<(i64,)> = sqlx::query_as(
                "SELECT id FROM discord_dms WHERE state = 'pending' AND next_attempt_at <= $1
                   AND (lease_until IS NULL OR lease_until < $1) ORDER BY id LIMIT 1",
            )
            .bind(now)
            .fetch_optional(self.pool())
            .await
            .named("dms::claim_dm")?;
            let Some((id,)) = next else {
                return Ok(None);
            };
            let taken = sqlx::query(
                "UPDATE discord_dms SET lease_owner = $2, lease_until = $3, attempts = attempts + 1
                 WHERE id = $1 AND state = 'pending' AND (lease_until IS NULL OR lease_until < $4)",
            )
            .bind(id)
            .bind(owner)
            .bind(now + lease_ms)
            .bind(now)
            .execute(self.pool())
            .await
            .named("dms::claim_dm")?;
            if taken.rows_affected() == 1 {
                return sqlx::query_as(
                    "SELECT id, person, discord_id, body, attempts FROM discord_dms WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(self.pool())
                .await
                .named("dms::claim_dm");
            }
            // Another replica took it: look again.
        }
    }

    /// Marks a DM sent, failed for good, or due again at `retry_at`.
    pub async fn finish_dm(
        &self,
        id: i64,
        state: &str,
        retry_at: Option<i64>,
        error: Option<&str>,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE discord_dms SET state = $2, next_attempt_at = COALESCE($3, next_attempt_at),
                    last_error = $4, lease_owner = NULL, lease_until = NULL,
                    sent_at = CASE WHEN $2 = 'sent' THEN $5 ELSE sent_at END
             WHERE id = $1",
        )
        .bind(id)
        .bind(state)
        .bind(retry_at)
        .bind(error)
        .bind(now)
        .execute(self.pool())
        .await
        .named("dms::finish_dm")?;
        Ok(())
    }

    /// (person, state, attempts, body) of every DM, oldest first (tests, operators).
    pub async fn dms(&self) -> Result<Vec<(String, String, i64, String)>> {
        sqlx::query_as("SELECT person, state, attempts, body FROM discord_dms ORDER BY id")
            .fetch_all(self.pool())
            .await
            .named("dms::dms")
    }
}
