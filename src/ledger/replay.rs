//! `replay`: the ledger recomputed from stored commits and signals under the
//! current rules, compared person by person with the ledger as it stands —
//! from a scratch ledger (nothing stored), or by applying the current rules
//! (`--apply`, what that appended). Both compare the same totals, so they
//! show the same differences, and after an apply a replay shows none.

use std::collections::BTreeMap;

use super::{Ledger, LedgerError, SettleReport};
use crate::scoring::MilliTokens;
use crate::scoring::balance::EntryKind;

/// Per person: [earned, vested, taken back (cancelled or clawed back)], milli-tokens.
pub type Totals = BTreeMap<String, [MilliTokens; 3]>;

fn add(totals: &mut Totals, person: &str, kind: EntryKind, amount: MilliTokens) {
    let slot = totals.entry(person.to_string()).or_default();
    match kind {
        k if k.is_earning() => slot[0] += amount,
        EntryKind::Vest => slot[1] += amount,
        EntryKind::Clawback | EntryKind::Cancel => slot[2] -= amount,
        _ => {}
    }
}

/// What a replay found: the totals now and under the current rules.
pub struct Replay {
    pub current: Totals,
    pub replayed: Totals,
    /// Entries replayed (scratch) or appended (apply).
    pub entries: u64,
    /// The apply's pass, when applied.
    pub report: Option<SettleReport>,
}

impl Replay {
    /// (person, now, replayed) of everyone whose totals differ.
    pub fn differences(&self) -> Vec<(&String, [MilliTokens; 3], [MilliTokens; 3])> {
        let mut people: Vec<&String> = self.replayed.keys().chain(self.current.keys()).collect();
        people.sort();
        people.dedup();
        people
            .into_iter()
            .filter_map(|p| {
                let now = self.current.get(p).copied().unwrap_or_default();
                let new = self.replayed.get(p).copied().unwrap_or_default();
                (now != new).then_some((p, now, new))
            })
            .collect()
    }
}

impl Ledger {
    async fn commit_totals(&self) -> Result<Totals, LedgerError> {
        let mut totals = Totals::new();
        for (person, kind, amount) in self.store.commit_entry_totals().await? {
            add(&mut totals, &person, kind, amount);
        }
        Ok(totals)
    }

    /// Replays under the current rules at `now`; with `apply`, appends what
    /// brings the ledger there (in the open period).
    pub async fn replay(&self, now: i64, apply: bool) -> Result<Replay, LedgerError> {
        let current = self.commit_totals().await?;
        if apply {
            let report = self.replay_apply(now).await?;
            return Ok(Replay {
                current,
                replayed: self.commit_totals().await?,
                entries: report.appended,
                report: Some(report),
            });
        }
        let mut replayed = Totals::new();
        let mut entries = 0;
        self.replay_scratch_each(now, |e| {
            entries += 1;
            add(&mut replayed, &e.person, e.kind, e.amount);
        })
        .await?;
        Ok(Replay {
            current,
            replayed,
            entries,
            report: None,
        })
    }
}
