//! The token ledger's SQL: scoring's inputs in bulk, appending entries (never
//! updating or deleting one), balances, redemptions, rule sets, pull request
//! heads, scheduled-job runs and the weekly snapshots.

use sqlx::AnyConnection;

use super::{Backend, Named, Result, Store};

/// A commit as scoring reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScoringCommit {
    pub id: i64,
    pub repository_id: i64,
    pub sha: String,
    pub person: String,
    pub ai: i64,
    pub kind: String,
    pub changed_lines: i64,
    pub usage_tokens: Option<i64>,
    pub patch_id: Option<String>,
    pub landed_at: Option<i64>,
    pub unlanded_at: Option<i64>,
    pub pull_request: Option<i64>,
    /// When the repository was first seen (the default `pay_from`).
    pub repository_first_seen: i64,
}

/// A signal as scoring reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScoringSignal {
    pub repository_id: i64,
    pub sha: String,
    pub name: String,
    pub status: String,
    pub source: String,
    pub context: Option<String>,
    pub attempt: Option<i64>,
    pub occurred_at: i64,
}

/// A ledger entry as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct EntryRow {
    pub id: i64,
    pub person: String,
    pub kind: String,
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
    pub kind: String,
    pub amount: i64,
    pub at: i64,
    pub idempotency_key: String,
    pub rules_version: String,
}

/// An entry to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEntry {
    pub person: String,
    pub kind: String,
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
    /// Every commit that has landed (or landed and was taken off again).
    pub async fn scoring_commits(&self) -> Result<Vec<ScoringCommit>> {
        sqlx::query_as(
            "SELECT c.id, c.repository_id, c.sha, c.person, c.ai, c.kind,
                    c.changed_lines, c.usage_tokens, c.patch_id, c.landed_at, c.unlanded_at,
                    c.pull_request, r.created_at AS repository_first_seen
             FROM commits c JOIN repositories r ON r.id = c.repository_id
             WHERE c.landed_at IS NOT NULL
             ORDER BY c.id",
        )
        .fetch_all(self.pool())
        .await
        .named("ledger::scoring_commits")
    }

    /// Every signal, handed to `each` as it is read (scoring matches
    /// abbreviated ids to commits itself); never all rows in memory at once.
    pub async fn each_scoring_signal(&self, mut each: impl FnMut(ScoringSignal)) -> Result<()> {
        use futures_util::TryStreamExt;
        let mut rows = sqlx::query_as::<_, ScoringSignal>(
            "SELECT repository_id, sha, name, status, source, context, attempt, occurred_at
             FROM signals ORDER BY id",
        )
        .fetch(self.pool());
        while let Some(row) = rows.try_next().await.named("ledger::each_scoring_signal")? {
            each(row);
        }
        Ok(())
    }

    /// Per person and kind, the sum of the entries that belong to commits.
    pub async fn commit_entry_totals(&self) -> Result<Vec<(String, String, i64)>> {
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

    /// (repository id, number) → (head sha, merged at) of merged pull requests.
    pub async fn merged_pull_request_heads(&self) -> Result<Vec<(i64, i64, String, i64)>> {
        sqlx::query_as(
            "SELECT repository_id, number, head_sha, merged_at FROM pull_requests
             WHERE merged_at IS NOT NULL",
        )
        .fetch_all(self.pool())
        .await
        .named("ledger::merged_pull_request_heads")
    }

    /// Records a pull request's head (and merge, once merged). A later event
    /// never moves a merged pull request's head.
    pub async fn record_pull_request(
        &self,
        repository_id: i64,
        number: i64,
        head_sha: &str,
        merge: Option<(&str, i64)>,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO pull_requests (repository_id, number, head_sha, merge_sha, merged_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (repository_id, number) DO UPDATE SET
                 head_sha = CASE WHEN pull_requests.merged_at IS NULL THEN excluded.head_sha
                                 ELSE pull_requests.head_sha END,
                 merge_sha = COALESCE(pull_requests.merge_sha, excluded.merge_sha),
                 merged_at = COALESCE(pull_requests.merged_at, excluded.merged_at),
                 updated_at = excluded.updated_at",
        )
        .bind(repository_id)
        .bind(number)
        .bind(head_sha)
        .bind(merge.map(|m| m.0))
        .bind(merge.map(|m| m.1))
        .bind(now)
        .execute(self.pool())
        .await.named("ledger::record_pull_request")?;
        Ok(())
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

    /// The rule set stored under `version`, as JSON.
    pub async fn rule_set(&self, version: &str) -> Result<Option<String>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT rules FROM rule_sets WHERE version = $1")
                .bind(version)
                .fetch_optional(self.pool())
                .await
                .named("ledger::rule_set")?;
        Ok(row.map(|r| r.0))
    }

    pub async fn save_rule_set(&self, version: &str, rules: &str, now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO rule_sets (version, rules, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (version) DO NOTHING",
        )
        .bind(version)
        .bind(rules)
        .bind(now)
        .execute(self.pool())
        .await
        .named("ledger::save_rule_set")?;
        Ok(())
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

    /// Claims a scheduled job's run: `true` for the one process (of all sharing
    /// the database) that inserted it.
    pub async fn claim_job_run(
        &self,
        job: &str,
        scheduled_at: i64,
        owner: &str,
        now: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO job_runs (job, scheduled_at, owner, started_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (job, scheduled_at) DO NOTHING",
        )
        .bind(job)
        .bind(scheduled_at)
        .bind(owner)
        .bind(now)
        .execute(self.pool())
        .await
        .named("ledger::claim_job_run")?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn finish_job_run(
        &self,
        job: &str,
        scheduled_at: i64,
        outcome: &str,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE job_runs SET finished_at = $1, outcome = $2 WHERE job = $3 AND scheduled_at = $4",
        )
        .bind(now)
        .bind(outcome)
        .bind(job)
        .bind(scheduled_at)
        .execute(self.pool())
        .await.named("ledger::finish_job_run")?;
        Ok(())
    }

    /// Keeps a week's calibration as first computed under a rule version.
    pub async fn save_calibration(
        &self,
        week: &str,
        version: &str,
        factors: &str,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO calibrations (week, rules_version, factors, computed_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (week, rules_version) DO NOTHING",
        )
        .bind(week)
        .bind(version)
        .bind(factors)
        .bind(now)
        .execute(self.pool())
        .await.named("ledger::save_calibration")?;
        Ok(())
    }

    /// Keeps a person's hygiene for a week as first computed under a rule version.
    pub async fn save_hygiene(
        &self,
        rows: &[(String, u32, String)],
        week: &str,
        version: &str,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.pool().begin().await.named("ledger::save_hygiene")?;
        for (person, score, events) in rows {
            sqlx::query(
                "INSERT INTO hygiene_scores (person, week, rules_version, score, events, computed_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (person, week, rules_version) DO NOTHING",
            )
            .bind(person)
            .bind(week)
            .bind(version)
            .bind(i64::from(*score))
            .bind(events)
            .bind(now)
            .execute(&mut *tx)
            .await.named("ledger::save_hygiene")?;
        }
        tx.commit().await.named("ledger::save_hygiene")?;
        Ok(())
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
    let rows: Vec<(Option<i64>, String, i64)> = sqlx::query_as(
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
            .bind(&e.kind)
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

/// A commit that landed in a week and is in the ledger, for the leaderboard:
/// its entry sums and what its latest score said.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WeekCommit {
    pub id: i64,
    pub repository_id: i64,
    pub person: String,
    pub changed_lines: i64,
    pub usage_tokens: Option<i64>,
    pub reverted: i64,
    pub earned: i64,
    pub vested: i64,
    pub clawed: i64,
    /// What the latest score said: 1 = CI red, 2 = a duplicate (bits).
    pub flags: i64,
}

/// One person's vest (or clawback of vested) sum of one commit in a week.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PaidRow {
    pub person: String,
    pub repository_id: Option<i64>,
    pub commit_id: i64,
    pub kind: String,
    pub amount: i64,
}

impl WeekCommit {
    pub fn red(&self) -> bool {
        self.flags & 1 != 0
    }

    pub fn duplicate(&self) -> bool {
        self.flags & 2 != 0
    }
}

impl Store {
    /// AI commits in the ledger that landed in `[from, to)`, one row each with
    /// its entry sums. Entries record their commit's landing time, so this is
    /// one index range; the latest score's explanation is searched where it is
    /// stored (its JSON comes from one serialiser) rather than sent and parsed.
    pub async fn week_commits(&self, from: i64, to: i64) -> Result<Vec<WeekCommit>> {
        sqlx::query_as(
            // Scalar subqueries make both databases look rows up by key (a
            // join let PostgreSQL's planner scan the whole commits table, an
            // EXISTS all reverted signals).
            // Only AI commits have entries.
            "SELECT g.commit_id AS id, g.repository_id, g.person,
                    (SELECT c.changed_lines FROM commits c WHERE c.id = g.commit_id) AS changed_lines,
                    (SELECT c.usage_tokens FROM commits c WHERE c.id = g.commit_id) AS usage_tokens,
                    COALESCE((SELECT 1 FROM signals s WHERE s.repository_id = g.repository_id
                              AND s.sha = g.sha AND s.name = 'reverted' LIMIT 1), 0) AS reverted,
                    g.earned, g.vested, g.clawed,
                    (SELECT CASE WHEN l.explanation LIKE '%\"ci\":\"red\"%' THEN 1 ELSE 0 END
                          + CASE WHEN l.explanation LIKE '%\"duplicate_of\":%' THEN 2 ELSE 0 END
                     FROM ledger_entries l WHERE l.id = g.latest) AS flags
             FROM (SELECT commit_id, MAX(person) AS person, MAX(repository_id) AS repository_id,
                          MAX(sha) AS sha,
                          CAST(SUM(CASE WHEN kind IN ('accrual', 'adjustment') THEN amount ELSE 0 END) AS BIGINT) AS earned,
                          CAST(SUM(CASE WHEN kind = 'vest' THEN amount ELSE 0 END) AS BIGINT) AS vested,
                          CAST(SUM(CASE WHEN kind = 'clawback' THEN amount ELSE 0 END) AS BIGINT) AS clawed,
                          MAX(CASE WHEN kind IN ('accrual', 'adjustment') THEN id END) AS latest
                   FROM ledger_entries
                   WHERE landed_at >= $1 AND landed_at < $2 AND commit_id IS NOT NULL
                   GROUP BY commit_id) g
             ORDER BY g.commit_id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await.named("ledger::week_commits")
    }

    /// Per person and repository: commits in the ledger reverted / fixed later
    /// by events in `[from, to)`.
    pub async fn hygiene_events_between(
        &self,
        from: i64,
        to: i64,
    ) -> Result<Vec<(String, i64, String, i64)>> {
        sqlx::query_as(
            "SELECT c.person, c.repository_id, s.name, COUNT(DISTINCT c.id)
             FROM signals s JOIN commits c ON c.repository_id = s.repository_id AND c.sha = s.sha
             WHERE s.name IN ('reverted', 'fixed_later') AND s.occurred_at >= $1 AND s.occurred_at < $2
               AND c.ai = 1 AND EXISTS (SELECT 1 FROM ledger_entries e WHERE e.commit_id = c.id)
             GROUP BY c.person, c.repository_id, s.name",
        )
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await.named("ledger::hygiene_events_between")
    }

    /// Per person and commit (with its repository): sums of vest entries
    /// effective in `[from, to)`, and of clawbacks then of commits that had
    /// vested ("paid in week").
    pub async fn paid_between(&self, from: i64, to: i64) -> Result<Vec<PaidRow>> {
        sqlx::query_as(
            "SELECT e.person, MAX(e.repository_id) AS repository_id, e.commit_id, e.kind,
                    CAST(SUM(e.amount) AS BIGINT) AS amount
             FROM ledger_entries e
             WHERE e.at >= $1 AND e.at < $2 AND e.commit_id IS NOT NULL
               AND e.kind IN ('vest', 'clawback')
               AND (e.kind = 'vest'
                    -- LIMIT keeps PostgreSQL from hashing every vest of the ledger
                    -- for this (it looks each clawback's commit up by its index).
                    OR EXISTS (SELECT 1 FROM ledger_entries v
                               WHERE v.commit_id = e.commit_id AND v.kind = 'vest' LIMIT 1))
             GROUP BY e.person, e.commit_id, e.kind",
        )
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await
        .named("ledger::paid_between")
    }

    /// Per commit and kind, a person's entry sums (for balances).
    pub async fn person_sums(&self, person: &str) -> Result<Vec<(Option<i64>, String, i64)>> {
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
