//! The rules the ledger scores under and what its weekly jobs keep: rule sets
//! by version, calibration factors, hygiene scores.

use super::{Named, Result, Store};

impl Store {
    /// The rule set stored under `version`, as JSON.
    pub async fn rule_set(&self, version: &str) -> Result<Option<String>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT rules FROM rule_sets WHERE version = $1")
                .bind(version)
                .fetch_optional(self.pool())
                .await
                .named("rules::rule_set")?;
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
        .named("rules::save_rule_set")?;
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
        .await.named("rules::save_calibration")?;
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
        let mut tx = self.pool().begin().await.named("rules::save_hygiene")?;
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
            .await.named("rules::save_hygiene")?;
        }
        tx.commit().await.named("rules::save_hygiene")?;
        Ok(())
    }

    /// The latest calibration factors kept by the weekly job (JSON), if any.
    pub async fn latest_calibration(&self, rules_version: &str) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT factors FROM calibrations WHERE rules_version = $1 ORDER BY week DESC LIMIT 1",
        )
        .bind(rules_version)
        .fetch_optional(self.pool())
        .await
        .named("rules::latest_calibration")?;
        Ok(row.map(|(f,)| f))
    }
}
