//! The rule set: `[scoring]` configuration with the defaults of `docs/scoring.md`. Its
//! version is derived from every value, so changing any weight changes it, and
//! each ledger entry records the version it was computed under.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rules {
    /// Tokens per kind (`fix`, `feature`, …, `revert`); kinds not given keep
    /// their default weight.
    #[serde(deserialize_with = "tiers_over_defaults")]
    pub tiers: BTreeMap<String, f64>,
    /// Changed lines at which the size factor reaches 1.0.
    pub size_reference_lines: f64,
    pub size_min: f64,
    pub size_max: f64,
    pub outcome: OutcomeWeights,
    /// Custom signals: `[scoring.signals.NAME] pass = 1.05, fail = 0.9`.
    pub signals: BTreeMap<String, SignalWeight>,
    pub calibration: CalibrationRules,
    pub hygiene: HygieneRules,
    pub vesting_days: u32,
    /// Whether a revert or fix after vesting claws vested tokens back.
    pub clawback_vested: bool,
    /// Landed AI commits in a week needed to be ranked on the leaderboard.
    pub leaderboard_min_ai_commits: u32,
    /// One person's commits landing within this many hours of each other on a
    /// common file form one change set (size is computed over the set).
    pub change_set_hours: u32,
    /// Ranked by efficiency only with this much reported usage in the week…
    pub efficiency_min_usage: u64,
    /// …over at least this many commits with reported usage.
    pub efficiency_min_commits: u32,
    /// History that landed before this (a date `YYYY-MM-DD` or an RFC 3339 time,
    /// in `timezone`) never accrues; default: when the repository was first seen.
    pub pay_from: Option<String>,
    /// Proof of assistance: an AI commit earns only when its author's agent
    /// reported verified usage in the `usage.window_hours` before it (else it
    /// is `unverified`: no tokens, no hygiene penalty). Left out of the
    /// version while off, so turning nothing on changes no version.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub require_usage: bool,
    /// `owner/name` = true | false: a repository's own `require_usage`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub require_usage_repositories: BTreeMap<String, bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutcomeWeights {
    pub first_run_green: f64,
    pub green_after_failure: f64,
    pub no_ci: f64,
    pub red: f64,
    pub deploy_pass: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalWeight {
    #[serde(default = "one")]
    pub pass: f64,
    #[serde(default = "one")]
    pub fail: f64,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CalibrationRules {
    pub window_weeks: u32,
    /// The prior: `(good + prior_good) / (n + prior_n)`.
    pub prior_good: f64,
    pub prior_n: f64,
    pub min: f64,
    pub max: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HygieneRules {
    pub reverted: u32,
    pub fixed_later: u32,
    pub red_never_green: u32,
    pub duplicate: u32,
    pub noise: u32,
    /// AI commits with fewer changed lines are noise.
    pub noise_lines: u64,
    /// A patch-id seen within this many days before is a duplicate.
    pub duplicate_days: u32,
    /// Payout factor at hygiene 0: `floor + (1 - floor) × h / 100`.
    pub payout_floor: f64,
    /// Points per week of wasted usage (verified usage with nothing landed,
    /// or usage per landed commit far above the team's median); 0 shows
    /// waste without deducting anything.
    #[serde(skip_serializing_if = "is_zero")]
    pub waste: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The given tier weights laid over the defaults.
fn tiers_over_defaults<'de, D: serde::Deserializer<'de>>(
    de: D,
) -> Result<BTreeMap<String, f64>, D::Error> {
    let given = BTreeMap::<String, f64>::deserialize(de)?;
    let mut tiers = default_tiers();
    tiers.extend(given);
    Ok(tiers)
}

fn default_tiers() -> BTreeMap<String, f64> {
    [
        ("fix", 10.0),
        ("perf", 10.0),
        ("feature", 8.0),
        ("refactor", 6.0),
        ("debug", 6.0),
        ("test", 5.0),
        ("docs", 4.0),
        ("chore", 2.0),
        ("revert", 0.0),
    ]
    .into_iter()
    .map(|(k, w)| (k.to_string(), w))
    .collect()
}

impl Default for Rules {
    fn default() -> Self {
        let tiers = default_tiers();
        Rules {
            tiers,
            size_reference_lines: 400.0,
            size_min: 0.25,
            size_max: 1.0,
            outcome: OutcomeWeights::default(),
            signals: BTreeMap::new(),
            calibration: CalibrationRules::default(),
            hygiene: HygieneRules::default(),
            vesting_days: 14,
            clawback_vested: false,
            leaderboard_min_ai_commits: 2,
            change_set_hours: 24,
            efficiency_min_usage: 10_000,
            efficiency_min_commits: 2,
            pay_from: None,
            require_usage: false,
            require_usage_repositories: BTreeMap::new(),
        }
    }
}

impl Default for OutcomeWeights {
    fn default() -> Self {
        OutcomeWeights {
            first_run_green: 1.2,
            green_after_failure: 1.0,
            no_ci: 0.9,
            red: 0.3,
            deploy_pass: 1.1,
        }
    }
}

impl Default for CalibrationRules {
    fn default() -> Self {
        CalibrationRules {
            window_weeks: 12,
            prior_good: 2.0,
            prior_n: 4.0,
            min: 0.5,
            max: 1.5,
        }
    }
}

impl Default for HygieneRules {
    fn default() -> Self {
        HygieneRules {
            reverted: 15,
            fixed_later: 10,
            red_never_green: 5,
            duplicate: 3,
            noise: 2,
            noise_lines: 3,
            duplicate_days: 30,
            payout_floor: 0.5,
            waste: 0,
        }
    }
}

impl Rules {
    /// `v1-` and the first 12 hex digits of the SHA-256 of the rule set's
    /// canonical JSON (maps are ordered): any change of any value changes it.
    pub fn version(&self) -> String {
        let canonical = serde_json::to_vec(self).expect("rules serialise");
        let digest = Sha256::digest(&canonical);
        format!("v1-{}", &hex::encode(digest)[..12])
    }

    /// Whether AI commits of `repository` (`owner/name`) must be backed by
    /// verified usage to earn.
    pub fn requires_usage(&self, repository: &str) -> bool {
        self.require_usage_repositories
            .get(repository)
            .copied()
            .unwrap_or(self.require_usage)
    }

    /// Whether any repository requires verified usage.
    pub fn requires_usage_anywhere(&self) -> bool {
        self.require_usage || self.require_usage_repositories.values().any(|on| *on)
    }

    /// The tier weight of `kind` (an unknown kind weighs nothing).
    pub fn tier(&self, kind: &str) -> f64 {
        self.tiers.get(kind).copied().unwrap_or(0.0)
    }

    /// What is wrong with the rule set, if anything (checked when config loads).
    pub fn problem(&self) -> Option<String> {
        let finite_non_negative = |x: f64| x.is_finite() && x >= 0.0;
        if let Some((kind, w)) = self.tiers.iter().find(|(_, w)| !finite_non_negative(**w)) {
            return Some(format!("tiers.{kind} = {w} must be a number ≥ 0"));
        }
        if !(self.size_reference_lines >= 1.0
            && 0.0 < self.size_min
            && self.size_min <= self.size_max)
        {
            return Some(
                "size: need size_reference_lines ≥ 1 and 0 < size_min ≤ size_max".to_string(),
            );
        }
        let c = &self.calibration;
        if !(c.prior_n > 0.0 && 0.0 < c.min && c.min <= 1.0 && c.max >= 1.0) {
            return Some("calibration: need prior_n > 0 and min ≤ 1 ≤ max".to_string());
        }
        if !(0.0..=1.0).contains(&self.hygiene.payout_floor) {
            return Some("hygiene.payout_floor must be between 0 and 1".to_string());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_product_md_and_every_change_moves_the_version() {
        let rules = Rules::default();
        assert_eq!(rules.tier("fix"), 10.0);
        assert_eq!(rules.tier("feature"), 8.0);
        assert_eq!(rules.tier("revert"), 0.0);
        assert_eq!(rules.tier("nonsense"), 0.0);
        assert!(rules.problem().is_none());
        let v = rules.version();
        assert!(v.starts_with("v1-") && v.len() == 15, "{v}");
        assert_eq!(v, Rules::default().version(), "deterministic");
        let mut changed = Rules::default();
        changed.tiers.insert("fix".into(), 11.0);
        assert_ne!(changed.version(), v);
        let mut changed = Rules::default();
        changed.hygiene.noise = 3;
        assert_ne!(changed.version(), v);
        let mut changed = Rules::default();
        changed.signals.insert(
            "perf_budget".into(),
            SignalWeight {
                pass: 1.05,
                fail: 0.9,
            },
        );
        assert_ne!(changed.version(), v);
        // Proof of assistance and waste move the version when turned on,
        // and leave the default rules' version (entries made before them) as it was.
        let canonical = serde_json::to_string(&rules).unwrap();
        assert!(!canonical.contains("require_usage") && !canonical.contains("waste"));
        let changed = Rules {
            require_usage: true,
            ..Rules::default()
        };
        assert_ne!(changed.version(), v);
        let mut changed = Rules::default();
        changed.hygiene.waste = 5;
        assert_ne!(changed.version(), v);
        let mut changed = Rules::default();
        changed
            .require_usage_repositories
            .insert("acme/api".into(), true);
        assert_ne!(changed.version(), v);
        assert!(changed.requires_usage("acme/api") && !changed.requires_usage("acme/web"));
        assert!(changed.requires_usage_anywhere() && !rules.requires_usage_anywhere());
        changed.require_usage = true;
        changed
            .require_usage_repositories
            .insert("acme/api".into(), false);
        assert!(!changed.requires_usage("acme/api") && changed.requires_usage("acme/web"));
        let bad = Rules {
            size_min: 0.0,
            ..Rules::default()
        };
        assert!(bad.problem().is_some());
    }
}
