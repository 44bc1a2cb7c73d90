//! A commit's factors and tokens: `tier × size × outcome × calibration`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::ci::CiResult;
use super::rules::Rules;
use super::{MilliTokens, to_milli};

/// What scoring needs to know about a commit.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CommitFacts {
    pub kind: String,
    /// When `kind` was declared by a trailer: the kind the subject or the diff
    /// gives. The tier is the lower of the two.
    pub detected_kind: Option<String>,
    /// Changed lines without moved lines and excluded paths.
    pub changed_lines: u64,
    /// The changed lines of the commit's whole change set, when it is part of
    /// one with other commits: the size factor is the set's, shared by lines.
    pub change_set_lines: Option<u64>,
}

/// The outcome signals that decide the multiplier.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Outcomes {
    pub ci: Option<CiResult>,
    /// Some deploy passed.
    pub deployed: bool,
    /// Custom signals: name → latest status passed.
    pub custom: BTreeMap<String, bool>,
}

/// Each factor of a score, for the explanation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    pub tier: f64,
    pub size: f64,
    pub outcome: f64,
    pub calibration: f64,
    pub milli_tokens: MilliTokens,
}

/// `s = clamp(log2(1 + changed) / log2(1 + reference), min, max)`.
pub fn size_factor(changed_lines: u64, rules: &Rules) -> f64 {
    let s = (1.0 + changed_lines as f64).log2() / (1.0 + rules.size_reference_lines).log2();
    s.clamp(rules.size_min, rules.size_max)
}

/// The size factor a commit gets: `s(changed)`, or for a commit in a change
/// set its share of the set's, `s(set lines) × changed / set lines` — so ten
/// small commits to one file earn what one commit of their total would.
pub fn shared_size_factor(facts: &CommitFacts, rules: &Rules) -> f64 {
    match facts.change_set_lines {
        Some(total) if total > facts.changed_lines => {
            size_factor(total, rules) * facts.changed_lines as f64 / total as f64
        }
        _ => size_factor(facts.changed_lines, rules),
    }
}

/// The kind whose tier pays: the declared kind, unless the detected one
/// weighs less (a declaration can lower pay, never raise it).
pub fn paid_kind<'a>(facts: &'a CommitFacts, rules: &Rules) -> &'a str {
    match facts.detected_kind.as_deref() {
        Some(detected) if rules.tier(detected) < rules.tier(&facts.kind) => detected,
        _ => &facts.kind,
    }
}

/// `m`: CI (first-run green, green after failure, red, or none by vesting
/// time) × deploy pass × each custom signal's weight.
pub fn outcome_multiplier(outcomes: &Outcomes, rules: &Rules) -> f64 {
    let w = &rules.outcome;
    let mut m = match outcomes.ci.unwrap_or(CiResult::None) {
        CiResult::FirstRunGreen => w.first_run_green,
        CiResult::GreenAfterFailure => w.green_after_failure,
        CiResult::Red => w.red,
        CiResult::None => w.no_ci,
    };
    if outcomes.deployed {
        m *= w.deploy_pass;
    }
    for (name, passed) in &outcomes.custom {
        if let Some(weight) = rules.signals.get(name) {
            m *= if *passed { weight.pass } else { weight.fail };
        }
    }
    m
}

/// The score of a commit: each factor and the tokens, rounded to milli-tokens.
pub fn score(facts: &CommitFacts, outcomes: &Outcomes, calibration: f64, rules: &Rules) -> Score {
    let tier = rules.tier(paid_kind(facts, rules));
    let size = shared_size_factor(facts, rules);
    let outcome = outcome_multiplier(outcomes, rules);
    Score {
        tier,
        size,
        outcome,
        calibration,
        milli_tokens: to_milli(tier * size * outcome * calibration),
    }
}

/// Tokens earned per 1,000 model usage tokens (`AI-Tokens`); `None` without usage.
pub fn efficiency(milli_tokens: MilliTokens, usage_tokens: u64) -> Option<f64> {
    (usage_tokens > 0).then(|| milli_tokens as f64 / 1000.0 / (usage_tokens as f64 / 1000.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn size_is_sublinear_and_capped() {
        let r = Rules::default();
        // log2(1+400)/log2(401) = 1.0
        assert!(close(size_factor(400, &r), 1.0));
        // log2(1+0) = 0 → clamped to 0.25
        assert!(close(size_factor(0, &r), 0.25));
        // log2(1+1) = 1; log2(401) = 8.647458… → 0.11564 → clamped to 0.25
        assert!(close(size_factor(1, &r), 0.25));
        // log2(1+63) = 6; 6 / 8.6474584 = 0.693845…
        assert!((size_factor(63, &r) - 0.693845).abs() < 1e-6);
        // 10,000 lines are worth no more than 400.
        assert!(close(size_factor(10_000, &r), 1.0));
    }

    #[test]
    fn outcome_multipliers() {
        let r = Rules::default();
        let m = |ci, deployed| {
            outcome_multiplier(
                &Outcomes {
                    ci,
                    deployed,
                    custom: BTreeMap::new(),
                },
                &r,
            )
        };
        assert!(close(m(Some(CiResult::FirstRunGreen), false), 1.2));
        assert!(close(m(Some(CiResult::GreenAfterFailure), false), 1.0));
        assert!(close(m(Some(CiResult::Red), false), 0.3));
        assert!(close(m(None, false), 0.9));
        // 1.2 × 1.1 = 1.32
        assert!(close(m(Some(CiResult::FirstRunGreen), true), 1.32));
        let mut custom = Rules::default();
        custom.signals.insert(
            "perf_budget".into(),
            crate::scoring::rules::SignalWeight {
                pass: 1.05,
                fail: 0.8,
            },
        );
        let outcomes = Outcomes {
            ci: Some(CiResult::GreenAfterFailure),
            deployed: false,
            custom: [
                ("perf_budget".to_string(), false),
                ("unknown".to_string(), false),
            ]
            .into_iter()
            .collect(),
        };
        // 1.0 × 0.8 (unknown custom signals weigh nothing)
        assert!(close(outcome_multiplier(&outcomes, &custom), 0.8));
    }

    #[test]
    fn a_declared_kind_never_raises_the_tier() {
        let r = Rules::default();
        let declared = |kind: &str, detected: &str| CommitFacts {
            kind: kind.into(),
            detected_kind: Some(detected.into()),
            changed_lines: 63,
            ..CommitFacts::default()
        };
        // `AI-Kind: fix` on a chore: chore's 2, not fix's 10.
        assert_eq!(paid_kind(&declared("fix", "chore"), &r), "chore");
        let s = score(&declared("fix", "chore"), &Outcomes::default(), 1.0, &r);
        assert!(close(s.tier, 2.0));
        // Declaring less than the diff says is taken at its word.
        assert_eq!(paid_kind(&declared("docs", "feature"), &r), "docs");
        // No declaration: the kind as detected.
        let plain = CommitFacts {
            kind: "fix".into(),
            changed_lines: 63,
            ..CommitFacts::default()
        };
        assert_eq!(paid_kind(&plain, &r), "fix");
    }

    #[test]
    fn a_change_set_shares_one_size_factor_by_lines() {
        let r = Rules::default();
        // Ten 4-line commits of a 40-line change set: each s(40) × 4/40.
        let part = CommitFacts {
            kind: "fix".into(),
            changed_lines: 4,
            change_set_lines: Some(40),
            ..CommitFacts::default()
        };
        let whole = CommitFacts {
            kind: "fix".into(),
            changed_lines: 40,
            ..CommitFacts::default()
        };
        let ten: f64 = (0..10).map(|_| shared_size_factor(&part, &r)).sum();
        assert!(close(ten, shared_size_factor(&whole, &r)));
        // log2(41) / log2(401) = 0.619553…; a tenth of it each.
        assert!((shared_size_factor(&part, &r) - 0.0619553).abs() < 1e-6);
        // Alone (or a set of one), a commit has its own factor, floor included.
        let alone = CommitFacts {
            change_set_lines: Some(4),
            ..part.clone()
        };
        assert!(close(shared_size_factor(&alone, &r), size_factor(4, &r)));
        let tiny = CommitFacts {
            changed_lines: 1,
            change_set_lines: Some(1),
            ..part.clone()
        };
        assert!(close(shared_size_factor(&tiny, &r), 0.25));
    }

    #[test]
    fn worked_scores() {
        let r = Rules::default();
        // The README's digest example: fix 10 × size 0.81 × first run 1.2 × calibration 1.05.
        // size 0.81 ≈ log2(1+c)/log2(401) → c = 2^(0.81 × 8.6474584) − 1 ≈ 127 lines:
        // log2(128) = 7 → 7 / 8.6474584 = 0.809486; 10 × 0.809486 × 1.2 × 1.05 = 10.19953
        let fix = CommitFacts {
            kind: "fix".into(),
            changed_lines: 127,
            ..CommitFacts::default()
        };
        let green = Outcomes {
            ci: Some(CiResult::FirstRunGreen),
            ..Outcomes::default()
        };
        let s = score(&fix, &green, 1.05, &r);
        assert_eq!(s.milli_tokens, 10_200);
        assert!((s.size - 0.809486).abs() < 1e-6);
        // A 2-line chore with no CI: 2 × 0.25 × 0.9 × 1.0 = 0.45
        let chore = CommitFacts {
            kind: "chore".into(),
            changed_lines: 2,
            ..CommitFacts::default()
        };
        assert_eq!(
            score(&chore, &Outcomes::default(), 1.0, &r).milli_tokens,
            450
        );
        // A revert earns nothing whatever its size and outcome.
        let revert = CommitFacts {
            kind: "revert".into(),
            changed_lines: 500,
            ..CommitFacts::default()
        };
        assert_eq!(score(&revert, &green, 1.5, &r).milli_tokens, 0);
        // Efficiency: 10.2 tokens for 12,400 usage tokens = 0.8226 per 1,000.
        assert!((efficiency(10_200, 12_400).unwrap() - 0.822580).abs() < 1e-6);
        assert_eq!(efficiency(10_200, 0), None);
    }
}
