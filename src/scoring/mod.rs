//! Scoring rules v1 (see `docs/scoring.md`) as pure functions over plain data: no
//! database, no clock, no configuration loading. The ledger applies what these
//! return; everything here is tested with worked numbers.
//!
//! - [`rules`]: every weight and constant, with their defaults, and the
//!   rule version derived from them;
//! - [`ci`]: which CI result a commit has, from its CI signals;
//! - [`signal`]: signal names and statuses;
//! - [`outcome`]: what a commit's signals say at a time (the one path from
//!   signals to an outcome);
//! - [`commit`]: a commit's factors (tier, size, outcome, calibration) and tokens;
//! - [`calibration`]: per-kind calibration from observed outcomes;
//! - [`hygiene`]: a person's weekly hygiene score and payout factor;
//! - [`proof`]: whether verified usage backs an AI commit (`require_usage`);
//! - [`spend`]: what verified usage cost against what landed, and waste;
//! - [`payout`]: money from value: rate, or a pool split by largest remainder;
//! - [`leaderboard`]: who ranks, in which order, and the trend;
//! - [`week`]: ISO weeks in the configured time zone;
//! - [`balance`]: what a person's ledger entries add up to;
//! - [`statement`]: the money view: lots of vested tokens, a week's statement;
//! - [`money`]: exact money (decimal rates, minor units, pool splits).

pub mod balance;
pub mod calibration;
pub mod change_set;
pub mod ci;
pub mod commit;
pub mod hygiene;
pub mod leaderboard;
pub mod money;
pub mod outcome;
pub mod payout;
pub mod proof;
pub mod rules;
pub mod signal;
pub mod similarity;
pub mod spend;
pub mod statement;
pub mod usage;
pub mod week;

/// Tokens as integer milli-tokens (storage never holds floats).
pub type MilliTokens = i64;

/// `x` tokens rounded to milli-tokens (half away from zero).
pub fn to_milli(tokens: f64) -> MilliTokens {
    (tokens * 1000.0).round() as MilliTokens
}
