//! Balance arithmetic: what a person's entries add up to (pending, vested,
//! clawed back, paid, redeemed, available, owed), from sums by entry kind.
//!
//! Earning entries (accrual, adjustment) are pending until a vest moves them
//! to the available balance. A cancellation takes back pending tokens (no
//! money moves); a clawback takes back vested ones; payouts and redemptions
//! are tokens leaving the balance. `available = vested − clawed back after
//! vesting − paid − redeemed`, below zero only when paid tokens were clawed
//! back (owed).

use serde::Serialize;

use super::MilliTokens;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Accrual,
    Adjustment,
    Vest,
    /// Pending tokens taken back (a revert before vesting).
    Cancel,
    /// Vested tokens taken back.
    Clawback,
    /// Tokens paid out at a week's close (`payout.mode` rate or pool).
    Payout,
    Redemption,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Accrual => "accrual",
            EntryKind::Adjustment => "adjustment",
            EntryKind::Vest => "vest",
            EntryKind::Cancel => "cancel",
            EntryKind::Clawback => "clawback",
            EntryKind::Payout => "payout",
            EntryKind::Redemption => "redemption",
        }
    }

    pub const ALL: [EntryKind; 7] = [
        EntryKind::Accrual,
        EntryKind::Adjustment,
        EntryKind::Vest,
        EntryKind::Cancel,
        EntryKind::Clawback,
        EntryKind::Payout,
        EntryKind::Redemption,
    ];

    /// Accruals and adjustments: what a commit earned.
    pub fn is_earning(self) -> bool {
        matches!(self, EntryKind::Accrual | EntryKind::Adjustment)
    }

    /// Cancellations and clawbacks: what was taken back of a commit's tokens.
    pub fn is_taking_back(self) -> bool {
        matches!(self, EntryKind::Cancel | EntryKind::Clawback)
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

/// A commit's standing from its entries: (pending, vested now, taken back).
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
    let cancelled = total(&|k| k == EntryKind::Cancel);
    let clawed = total(&|k| k == EntryKind::Clawback);
    (
        earned - vested + cancelled,
        vested + clawed,
        -(cancelled + clawed),
    )
}

/// A person's balances (milli-tokens).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Balance {
    /// Earned, not vested, not cancelled.
    pub pending: MilliTokens,
    /// Vested, net of vests reversed.
    pub vested: MilliTokens,
    pub redeemed: MilliTokens,
    /// Taken back: pending tokens cancelled and vested tokens clawed back.
    pub clawed_back: MilliTokens,
    pub paid: MilliTokens,
    /// Paid or redeemed tokens clawed back since: what the person owes.
    pub owed: MilliTokens,
    /// vested − clawed back after vesting − paid − redeemed.
    pub available: MilliTokens,
}

/// Balances from sums by kind: rows of (commit id, kind, sum).
pub fn balance(rows: &[(Option<i64>, EntryKind, i64)]) -> Balance {
    let mut b = Balance::default();
    let mut clawed_vested = 0;
    for &(_, kind, sum) in rows {
        match kind {
            EntryKind::Accrual | EntryKind::Adjustment => b.pending += sum,
            EntryKind::Vest => {
                b.pending -= sum;
                b.vested += sum;
            }
            EntryKind::Cancel => {
                b.pending += sum;
                b.clawed_back -= sum;
            }
            EntryKind::Clawback => {
                clawed_vested -= sum;
                b.clawed_back -= sum;
            }
            EntryKind::Payout => b.paid -= sum,
            EntryKind::Redemption => b.redeemed -= sum,
        }
    }
    b.available = b.vested - clawed_vested - b.paid - b.redeemed;
    b.owed = (-b.available).max(0);
    b
}

/// What can be paid or redeemed.
pub fn available(rows: &[(Option<i64>, EntryKind, i64)]) -> MilliTokens {
    balance(rows).available
}
