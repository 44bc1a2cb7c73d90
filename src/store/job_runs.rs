//! Scheduled job runs, claimed once per (job, scheduled time) across replicas.

use super::{Named, Result, Store};

impl Store {
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
        .named("job_runs::claim_job_run")?;
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
        .await.named("job_runs::finish_job_run")?;
        Ok(())
    }
}
