//! The webhook inbox: deliveries stored on receipt, claimed by workers under a
//! lease, and finished as processed, ignored or failed.

use super::{Backend, Named, Result, Store};

/// A delivery as ingress hands it to the store.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub delivery_id: String,
    pub event: String,
    pub action: Option<String>,
    pub hook_id: Option<String>,
    pub payload: String,
    pub received_at: i64,
    /// When it may first be processed (epoch ms): `received_at` for a webhook.
    pub not_before: i64,
    /// Background work (a reconcile fetch): claimed only when no live delivery is due.
    pub background: bool,
}

impl NewDelivery {
    /// A webhook delivery, to be processed at once.
    pub fn live(
        delivery_id: String,
        event: String,
        action: Option<String>,
        hook_id: Option<String>,
        payload: String,
        received_at: i64,
    ) -> NewDelivery {
        NewDelivery {
            delivery_id,
            event,
            action,
            hook_id,
            payload,
            received_at,
            not_before: received_at,
            background: false,
        }
    }
}

/// Rows per multi-row `INSERT` (7 bound values each; well under both databases'
/// limits on bound parameters).
const INSERT_CHUNK: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    Stored,
    /// A delivery with this id was stored before; nothing was written.
    Duplicate,
    /// A delivery with this id had failed for good: GitHub's "Redeliver" queues it
    /// again (after its cause, a token or a remote, was fixed).
    Requeued,
}

/// Puts a failed delivery back in the queue with a fresh count of attempts.
const REQUEUE: &str = "\
UPDATE deliveries
SET state = 'pending', attempts = 0, next_attempt_at = $2, lease_owner = NULL,
    last_error = 'queued again after: ' || COALESCE(last_error, '')
WHERE delivery_id = $1 AND state = 'failed'
RETURNING id";

/// A delivery a worker holds the lease on.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub delivery_id: String,
    pub event: String,
    pub action: Option<String>,
    pub payload: String,
    /// Including this claim.
    pub attempts: i64,
    /// When ingress stored it (epoch ms).
    pub received_at: i64,
}

/// Where a delivery stands, for tests, the API and operators.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryStatus {
    pub delivery_id: String,
    pub event: String,
    pub state: DeliveryState,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub processed_by: Option<String>,
    pub received_at: i64,
}

/// Where a delivery is: waiting (again), claimed by a worker, or finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    Pending,
    Processing,
    Processed,
    Ignored,
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Processing => "processing",
            DeliveryState::Processed => "processed",
            DeliveryState::Ignored => "ignored",
            DeliveryState::Failed => "failed",
        }
    }
}

impl std::str::FromStr for DeliveryState {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        [
            DeliveryState::Pending,
            DeliveryState::Processing,
            DeliveryState::Processed,
            DeliveryState::Ignored,
            DeliveryState::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
        .ok_or_else(|| format!("{text:?} is not a delivery state"))
    }
}

impl std::fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for DeliveryState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Final states a worker leaves a delivery in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    Processed,
    Ignored,
    Failed,
}

impl Finished {
    pub fn state(self) -> DeliveryState {
        match self {
            Finished::Processed => DeliveryState::Processed,
            Finished::Ignored => DeliveryState::Ignored,
            Finished::Failed => DeliveryState::Failed,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.state().as_str()
    }
}

// A delivery is claimable when it is unfinished and its `next_attempt_at` has
// passed: a pending one is due (again), a processing one's lease ran out (its
// worker crashed or hung). The partial index on `next_attempt_at` makes finding
// the next one O(log n). The condition is repeated in the outer UPDATE so that
// on PostgreSQL a concurrent claimer that waited for the row lock re-checks it
// and backs off instead of claiming twice.
const CLAIM_SQLITE: &str = "\
UPDATE deliveries
SET state = 'processing', lease_owner = $1, next_attempt_at = $2, attempts = attempts + 1
WHERE id = (
    SELECT id FROM deliveries
    WHERE state IN ('pending', 'processing') AND next_attempt_at <= $3
    ORDER BY priority, next_attempt_at LIMIT 1)
  AND state IN ('pending', 'processing') AND next_attempt_at <= $3
RETURNING id, delivery_id, event, action, attempts, received_at,
    (SELECT payload FROM delivery_payloads p WHERE p.id = deliveries.id)";

const CLAIM_POSTGRES: &str = "\
UPDATE deliveries
SET state = 'processing', lease_owner = $1, next_attempt_at = $2, attempts = attempts + 1
WHERE id = (
    SELECT id FROM deliveries
    WHERE state IN ('pending', 'processing') AND next_attempt_at <= $3
    ORDER BY priority, next_attempt_at LIMIT 1
    FOR UPDATE SKIP LOCKED)
  AND state IN ('pending', 'processing') AND next_attempt_at <= $3
RETURNING id, delivery_id, event, action, attempts, received_at,
    (SELECT payload FROM delivery_payloads p WHERE p.id = deliveries.id)";

impl Store {
    /// Stores deliveries in one transaction (one disk sync for the lot), skipping
    /// those whose delivery id was stored before (a failed one is queued again).
    /// Durable when it returns. The rows go in with one multi-row `INSERT` per
    /// table: on PostgreSQL each statement is a network round trip.
    pub async fn insert_deliveries(&self, batch: &[NewDelivery]) -> Result<Vec<Inserted>> {
        let mut tx = self
            .pool()
            .begin()
            .await
            .named("deliveries::insert_deliveries")?;
        let mut results = vec![Inserted::Duplicate; batch.len()];
        for chunk_start in (0..batch.len()).step_by(INSERT_CHUNK) {
            let chunk = &batch[chunk_start..(chunk_start + INSERT_CHUNK).min(batch.len())];
            let mut sql = String::from(
                "INSERT INTO deliveries (delivery_id, event, action, hook_id, received_at, next_attempt_at, priority) VALUES ",
            );
            for i in 0..chunk.len() {
                let p = i * 7;
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5,
                    p + 6,
                    p + 7
                ));
            }
            sql.push_str(" ON CONFLICT (delivery_id) DO NOTHING RETURNING id, delivery_id");
            let mut insert = sqlx::query_as::<_, (i64, String)>(sqlx::AssertSqlSafe(sql));
            for d in chunk {
                insert = insert
                    .bind(&d.delivery_id)
                    .bind(&d.event)
                    .bind(&d.action)
                    .bind(&d.hook_id)
                    .bind(d.received_at)
                    .bind(d.not_before)
                    .bind(i64::from(d.background));
            }
            let stored: std::collections::HashMap<String, i64> = insert
                .fetch_all(&mut *tx)
                .await
                .named("deliveries::insert_deliveries")?
                .into_iter()
                .map(|(id, delivery_id)| (delivery_id, id))
                .collect();

            // Payloads of the rows just stored (the first of any id repeated in the batch).
            let mut payload_rows: Vec<(i64, &str)> = Vec::new();
            let mut taken = std::collections::HashSet::new();
            for (i, d) in chunk.iter().enumerate() {
                match stored.get(&d.delivery_id) {
                    Some(id) if taken.insert(*id) => {
                        payload_rows.push((*id, &d.payload));
                        results[chunk_start + i] = Inserted::Stored;
                    }
                    Some(_) => {} // the same id twice in one batch: a duplicate
                    None => {
                        let requeued: Option<(i64,)> = sqlx::query_as(REQUEUE)
                            .bind(&d.delivery_id)
                            .bind(d.received_at)
                            .fetch_optional(&mut *tx)
                            .await
                            .named("deliveries::insert_deliveries")?;
                        if requeued.is_some() {
                            results[chunk_start + i] = Inserted::Requeued;
                        }
                    }
                }
            }
            if !payload_rows.is_empty() {
                let mut sql = String::from("INSERT INTO delivery_payloads (id, payload) VALUES ");
                for i in 0..payload_rows.len() {
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    sql.push_str(&format!("(${}, ${})", 2 * i + 1, 2 * i + 2));
                }
                let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (id, payload) in payload_rows {
                    insert = insert.bind(id).bind(payload);
                }
                insert
                    .execute(&mut *tx)
                    .await
                    .named("deliveries::insert_deliveries")?;
            }
        }
        tx.commit().await.named("deliveries::insert_deliveries")?;
        Ok(results)
    }

    /// Claims the oldest ready delivery for `owner` until `lease_until`; `None` when there is none.
    pub async fn claim_delivery(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
    ) -> Result<Option<ClaimedDelivery>> {
        let sql = match self.backend() {
            Backend::Sqlite => CLAIM_SQLITE,
            Backend::Postgres => CLAIM_POSTGRES,
        };
        // The payload comes back with the claim: one round trip.
        type Claimed = (
            i64,
            String,
            String,
            Option<String>,
            i64,
            i64,
            Option<String>,
        );
        let claimed: Option<Claimed> = sqlx::query_as(sql)
            .bind(owner)
            .bind(lease_until)
            .bind(now)
            .fetch_optional(self.worker_pool())
            .await
            .named("deliveries::claim_delivery")?;
        let Some((id, delivery_id, event, action, attempts, received_at, payload)) = claimed else {
            return Ok(None);
        };
        let payload = payload.unwrap_or_default();
        Ok(Some(ClaimedDelivery {
            id,
            delivery_id,
            event,
            action,
            payload,
            attempts,
            received_at,
        }))
    }

    /// Pushes the lease of a delivery `owner` is still processing out to `until`.
    /// Returns false when `owner` no longer holds it.
    pub async fn extend_lease(&self, id: i64, owner: &str, until: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE deliveries SET next_attempt_at = $1
             WHERE id = $2 AND lease_owner = $3 AND state = 'processing'",
        )
        .bind(until)
        .bind(id)
        .bind(owner)
        .execute(self.worker_pool())
        .await
        .named("deliveries::extend_lease")?;
        Ok(done.rows_affected() == 1)
    }

    /// Records the final state. Returns false when `owner` no longer holds the lease
    /// (it ran out and another worker took the delivery over); nothing is written then.
    pub async fn finish_delivery(
        &self,
        id: i64,
        owner: &str,
        state: Finished,
        error: Option<&str>,
        now: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE deliveries
             SET state = $1, last_error = $2, processed_at = $3, processed_by = $4,
                 lease_owner = NULL
             WHERE id = $5 AND lease_owner = $4 AND state = 'processing'",
        )
        .bind(state.state())
        .bind(error)
        .bind(now)
        .bind(owner)
        .bind(id)
        .execute(self.worker_pool())
        .await
        .named("deliveries::finish_delivery")?;
        Ok(done.rows_affected() == 1)
    }

    /// Puts a delivery back in the queue for another attempt at `next_attempt_at`.
    pub async fn retry_delivery_later(
        &self,
        id: i64,
        owner: &str,
        error: &str,
        next_attempt_at: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE deliveries
             SET state = 'pending', last_error = $1, next_attempt_at = $2,
                 lease_owner = NULL
             WHERE id = $3 AND lease_owner = $4 AND state = 'processing'",
        )
        .bind(error)
        .bind(next_attempt_at)
        .bind(id)
        .bind(owner)
        .execute(self.worker_pool())
        .await
        .named("deliveries::retry_delivery_later")?;
        Ok(done.rows_affected() == 1)
    }

    /// Deliveries stored and not yet finished (waiting, retrying or being processed).
    pub async fn count_unfinished_deliveries(&self) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM deliveries WHERE state IN ('pending', 'processing')",
        )
        .fetch_one(self.pool())
        .await
        .named("deliveries::count_unfinished_deliveries")?;
        Ok(n)
    }

    pub async fn count_deliveries(&self) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM deliveries")
            .fetch_one(self.pool())
            .await
            .named("deliveries::count_deliveries")?;
        Ok(n)
    }

    pub async fn delivery_status(&self, delivery_id: &str) -> Result<Option<DeliveryStatus>> {
        let status = sqlx::query_as(
            "SELECT delivery_id, event, state, attempts, last_error, processed_by, received_at
             FROM deliveries WHERE delivery_id = $1",
        )
        .bind(delivery_id)
        .fetch_optional(self.pool())
        .await
        .named("deliveries::delivery_status")?;
        Ok(status)
    }

    /// Every delivery's status, oldest first.
    pub async fn all_delivery_statuses(&self) -> Result<Vec<DeliveryStatus>> {
        let rows = sqlx::query_as(
            "SELECT delivery_id, event, state, attempts, last_error, processed_by, received_at
             FROM deliveries ORDER BY id",
        )
        .fetch_all(self.pool())
        .await
        .named("deliveries::all_delivery_statuses")?;
        Ok(rows)
    }

    /// Deliveries that failed for good, oldest first.
    pub async fn failed_deliveries(&self) -> Result<Vec<DeliveryStatus>> {
        let rows = sqlx::query_as(
            "SELECT delivery_id, event, state, attempts, last_error, processed_by, received_at
             FROM deliveries WHERE state = 'failed' ORDER BY id",
        )
        .fetch_all(self.pool())
        .await
        .named("deliveries::failed_deliveries")?;
        Ok(rows)
    }

    /// Queues a failed delivery again (an operator fixed its cause); false when
    /// there is no failed delivery with that id.
    pub async fn requeue_delivery(&self, delivery_id: &str, now: i64) -> Result<bool> {
        let row: Option<(i64,)> = sqlx::query_as(REQUEUE)
            .bind(delivery_id)
            .bind(now)
            .fetch_optional(self.pool())
            .await
            .named("deliveries::requeue_delivery")?;
        Ok(row.is_some())
    }
}
