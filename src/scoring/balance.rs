//! Balance arithmetic: what a person's entries add up to (pending, vested,
//! redeemed, clawed back, available), from per-commit sums by entry kind.

use std::collections::BTreeMap;

use serde::Serialize;

use super::MilliTokens;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Accrual,
    Adjustment,
    Vest,
    Clawback,
    Redemption,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Accrual => "accrual",
            EntryKind::Adjustment => "adjustment",
            EntryKind::Vest => "vest",
            EntryKind::Clawback => "clawback",
            EntryKind::Redemption => "redemption",
        }
    }

    pub const ALL: [EntryKind; 5] = [
        EntryKind::Accrual,
        EntryKind::Adjustment,
        EntryKind::Vest,
        EntryKind::Clawback,
        EntryKind::Redemption,
    ];

    /// Accruals and adjustments: what a commit earned.
    pub fn is_earning(self) -> bool {
        matches!(self, EntryKind::Accrual | EntryKind::Adjustment)
    }
}

impl std::str::FromStr for EntryKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        EntryKind::ALL
            .into_iter()
            .find(|k| k.as_str() == text)
            .ok_or_else(|| format!("{text:?} is not a ledger entry kind"))
    }
}

/// A commit's standing from its entries: (pending, vested, clawed back).
/// A clawback takes from vested tokens when the commit had vested, else from pending.
pub fn standing(entries: &[(EntryKind, MilliTokens)]) -> (MilliTokens, MilliTokens, MilliTokens) {
    let total = |kind: &dyn Fn(EntryKind) -> bool| -> MilliTokens {
        entries
            .iter()
            .filter(|(k, _)| kind(*k))
            .map(|(_, a)| a)
            .sum()
    };
    let earned = total(&|k| k.is_earning());
    let vested = total(&|k| k == EntryKind::Vest);
    let clawed = total(&|k| k == EntryKind::Clawback);
    if vested != 0 && clawed != 0 {
        (earned - vested, vested + clawed, -clawed)
    } else {
        (earned + clawed - vested, vested, -clawed)
    }
}

/// A person's balances (milli-tokens).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Balance {
    pub pending: MilliTokens,
    pub vested: MilliTokens,
    pub redeemed: MilliTokens,
    pub clawed_back: MilliTokens,
    pub available: MilliTokens,
}

/// Balances from per-commit sums: rows of (commit id, kind, sum); entries
/// without a commit (redemptions) have no commit id.
pub fn balance(rows: &[(Option<i64>, EntryKind, i64)]) -> Balance {
    let mut per_commit: BTreeMap<i64, Vec<(EntryKind, MilliTokens)>> = BTreeMap::new();
    let mut b = Balance::default();
    for &(commit, kind, sum) in rows {
        match commit {
            Some(id) => per_commit.entry(id).or_default().push((kind, sum)),
            None if kind == EntryKind::Redemption => b.redeemed -= sum,
            None => {}
        }
    }
    for entries in per_commit.values() {
        let (pending, vested, clawed) = standing(entries);
        b.pending += pending;
        b.vested += vested;
        b.clawed_back += clawed;
    }
    b.available = b.vested - b.redeemed;
    b
}

/// Vested tokens not yet redeemed.
pub fn available(rows: &[(Option<i64>, EntryKind, i64)]) -> MilliTokens {
    balance(rows).available
}
