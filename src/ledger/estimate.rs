//! What a commit that has not landed yet would earn if it landed now, with the
//! facts it has: the pull-request comment's estimate. It goes through the same
//! planner as the ledger (`plan::estimate`), so the two never disagree.

use super::plan::{self, CommitInputs, Estimate};
use super::{Ledger, LedgerError};
use crate::scoring::outcome::SignalFact;
use crate::store::commits::CommitRow;

const DAY_MS: i64 = 86_400_000;

impl Ledger {
    /// `commit`'s estimate at `now` (in `repository_id`).
    pub async fn estimate(
        &self,
        repository_id: i64,
        commit: &CommitRow,
        now: i64,
    ) -> Result<Estimate, LedgerError> {
        self.estimate_in_pull_request(repository_id, commit, None, now)
            .await
    }

    /// `commit`'s estimate as one of the commits of a pull request whose
    /// head is `head`: the CI that decides is the head's latest (an earlier
    /// head's red run no longer counts once the new head is green), as it
    /// will when the pull request lands.
    pub async fn estimate_in_pull_request(
        &self,
        repository_id: i64,
        commit: &CommitRow,
        head: Option<&str>,
        now: i64,
    ) -> Result<Estimate, LedgerError> {
        let store = self.store();
        let head = head.filter(|h| *h != commit.sha);
        let mut signals: Vec<SignalFact> = store
            .signals_for_commit(repository_id, &commit.sha)
            .await?
            .iter()
            .map(fact)
            .collect();
        let record: serde_json::Value = serde_json::from_str(&commit.record).unwrap_or_default();
        let rules = self.rules();
        let window = i64::from(rules.hygiene.duplicate_days) * DAY_MS;
        let duplicate_of = match record["patch_id"].as_str() {
            Some(patch) => {
                store
                    .landed_with_patch(patch, &commit.sha, now - window)
                    .await?
            }
            None => None,
        };
        let pull_request_head = match head {
            Some(head) => {
                // Its own CI is an older head's: the head's CI decides.
                signals.retain(|s| s.name != crate::scoring::signal::SignalName::Ci);
                let head_ci: Vec<SignalFact> = store
                    .signals_for_commit(repository_id, head)
                    .await?
                    .iter()
                    .filter(|s| s.name == crate::scoring::signal::SignalName::Ci)
                    .map(fact)
                    .collect();
                Some((head.to_string(), now, head_ci))
            }
            None => None,
        };
        let inputs = CommitInputs {
            commit_id: commit.id,
            ai: commit.ai == 1,
            kind: commit.kind.clone(),
            detected_kind: record["detected_kind"].as_str().map(str::to_string),
            changed_lines: commit.changed_lines.max(0) as u64,
            formatting_only: record["formatting_only"].as_bool().unwrap_or(false),
            change_set: None,
            usage_tokens: record["usage_tokens"].as_u64(),
            landed_at: Some(now),
            unlanded_at: None,
            pay_from: i64::MIN,
            duplicate_of,
            signals,
            pull_request_head,
            unverified: None,
        };
        let calibration: std::collections::BTreeMap<String, f64> = store
            .latest_calibration(self.version())
            .await?
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default();
        let factor = crate::scoring::calibration::factor(&calibration, &commit.kind);
        Ok(plan::estimate(&inputs, (factor, "latest"), rules, now))
    }
}

/// A stored signal as scoring reads it.
fn fact(s: &crate::store::signals::SignalRow) -> SignalFact {
    SignalFact::new(
        s.name.clone(),
        s.status,
        &s.source,
        s.context.as_deref().unwrap_or_default(),
        s.attempt,
        s.occurred_at,
    )
    .with_value(s.value)
}
