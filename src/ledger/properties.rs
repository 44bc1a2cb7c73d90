//! Property tests of the ledger's planning: random commits and signals,
//! applied in random orders and at random times.

use proptest::prelude::*;

use super::plan::{CommitInputs, Existing, plan_commit};
use crate::scoring::MilliTokens;
use crate::scoring::balance;
use crate::scoring::balance::{EntryKind, standing};
use crate::scoring::money::FACTOR_ONE;
use crate::scoring::outcome::SignalFact;
use crate::scoring::rules::Rules;
use crate::scoring::signal::SignalStatus;

const DAY: i64 = 86_400_000;
const LANDED: i64 = 1_000 * DAY;

fn signal() -> impl Strategy<Value = SignalFact> {
    (
        prop::sample::select(vec![
            "ci",
            "ci",
            "ci",
            "deploy",
            "reverted",
            "fixed_later",
            "incident",
            "perf",
        ]),
        prop::bool::ANY,
        prop::sample::select(vec!["build", "test", "lint"]),
        prop::option::of(1i64..4),
        prop::sample::select(vec![
            "github:check_run",
            "github:workflow_run",
            "github:status",
            "api:ci",
        ]),
        -2 * DAY..30 * DAY,
    )
        .prop_map(
            |(name, pass, context, attempt, source, offset)| SignalFact {
                name: name.parse().unwrap(),
                status: if pass {
                    SignalStatus::Pass
                } else {
                    SignalStatus::Fail
                },
                source: source.into(),
                context: context.into(),
                attempt,
                occurred_at: LANDED + offset,
                value: None,
            },
        )
}

fn commit() -> impl Strategy<Value = CommitInputs> {
    (
        prop::sample::select(vec!["fix", "feature", "docs", "revert", "chore"]),
        0u64..2_000,
        prop::collection::vec(signal(), 0..8),
        prop::option::of(DAY..20 * DAY),
    )
        .prop_map(|(kind, lines, signals, unlanded)| CommitInputs {
            commit_id: 1,
            ai: true,
            kind: kind.into(),
            changed_lines: lines,
            detected_kind: None,
            formatting_only: false,
            change_set: None,
            usage_tokens: None,
            landed_at: Some(LANDED),
            unlanded_at: unlanded.map(|t| LANDED + t),
            pay_from: 0,
            duplicate_of: None,
            signals,
            pull_request_head: None,
            unverified: None,
        })
}

fn rules() -> Rules {
    let mut rules = Rules::default();
    rules.signals.insert(
        "perf".into(),
        crate::scoring::rules::SignalWeight {
            pass: 1.05,
            fail: 0.8,
        },
    );
    rules
}

/// Applies one pass: plans against `ledger` and appends what it says.
fn pass(c: &CommitInputs, ledger: &mut Vec<Existing>, rules: &Rules, now: i64) -> usize {
    let plan = plan_commit(c, (1.0, "W"), FACTOR_ONE, ledger, rules, "v", now);
    let n = plan.entries.len();
    ledger.extend(plan.entries.into_iter().map(|e| Existing {
        kind: e.kind,
        amount: e.amount,
        at: e.at,
        key: e.key,
        factor_ppm: e.factor_ppm,
    }));
    n
}

fn totals(ledger: &[Existing]) -> (MilliTokens, MilliTokens, MilliTokens) {
    standing(
        &ledger
            .iter()
            .map(|e| (e.kind, e.amount))
            .collect::<Vec<_>>(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Earned tokens are pending, vested or clawed back — nothing else — and a
    /// second pass at the same time appends nothing.
    #[test]
    fn entries_add_up_and_a_second_pass_changes_nothing(c in commit(), now in 0..40 * DAY) {
        let rules = rules();
        let mut ledger = Vec::new();
        pass(&c, &mut ledger, &rules, LANDED + now);
        let earned: MilliTokens = ledger.iter().filter(|e| e.kind.is_earning()).map(|e| e.amount).sum();
        let (pending, vested, clawed) = totals(&ledger);
        prop_assert_eq!(earned, pending + vested + clawed);
        prop_assert!(pending >= 0 && vested >= 0 && clawed >= 0, "{:?}", (pending, vested, clawed));
        prop_assert_eq!(pass(&c, &mut ledger, &rules, LANDED + now), 0);
    }

    /// The same inputs give the same entries, byte for byte.
    #[test]
    fn replaying_gives_identical_entries(c in commit(), now in 0..40 * DAY) {
        let rules = rules();
        let a = plan_commit(&c, (1.1, "W"), FACTOR_ONE, &[], &rules, "v", LANDED + now);
        let b = plan_commit(&c, (1.1, "W"), FACTOR_ONE, &[], &rules, "v", LANDED + now);
        prop_assert_eq!(serde_json::to_string(&a.entries).unwrap(), serde_json::to_string(&b.entries).unwrap());
    }

    /// A signal applied twice (delivered again) changes nothing.
    #[test]
    fn a_signal_applied_twice_changes_nothing(c in commit(), now in 0..40 * DAY, i in 0usize..8) {
        prop_assume!(!c.signals.is_empty());
        let rules = rules();
        let mut twice = c.clone();
        twice.signals.push(c.signals[i % c.signals.len()].clone());
        let once = plan_commit(&c, (1.0, "W"), FACTOR_ONE, &[], &rules, "v", LANDED + now);
        let again = plan_commit(&twice, (1.0, "W"), FACTOR_ONE, &[], &rules, "v", LANDED + now);
        prop_assert_eq!(once.entries, again.entries);
    }

    /// Signals arriving one by one, in any order, with passes in between, end
    /// where the whole set planned at once ends: same earned, pending, vested
    /// and clawed-back tokens.
    #[test]
    fn signals_in_any_order_give_the_same_ledger(
        c in commit(),
        order in Just(()).prop_perturb(|_, mut rng| rng.random::<u64>()),
        now in 0..40 * DAY,
    ) {
        let rules = rules();
        let mut shuffled = c.signals.clone();
        // A deterministic shuffle from the generated seed.
        let mut seed = order;
        for i in (1..shuffled.len()).rev() {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (seed >> 33) as usize % (i + 1));
        }
        let mut ledger = Vec::new();
        let mut arriving = CommitInputs { signals: Vec::new(), ..c.clone() };
        for (step, s) in shuffled.into_iter().enumerate() {
            arriving.signals.push(s);
            pass(&arriving, &mut ledger, &rules, LANDED + (now * step as i64) / 8);
        }
        pass(&arriving, &mut ledger, &rules, LANDED + now);
        let mut at_once = Vec::new();
        pass(&c, &mut at_once, &rules, LANDED + now);
        let earned = |l: &[Existing]| -> MilliTokens { l.iter().filter(|e| e.kind.is_earning()).map(|e| e.amount).sum() };
        prop_assert_eq!(earned(&ledger), earned(&at_once));
        prop_assert_eq!(totals(&ledger), totals(&at_once));
    }

    /// Redemptions accepted only up to the available balance never take it below zero.
    #[test]
    fn redemptions_never_overdraw(c in commit(), asks in prop::collection::vec(1i64..8_000, 0..10)) {
        let rules = rules();
        let mut ledger = Vec::new();
        pass(&c, &mut ledger, &rules, LANDED + 40 * DAY);
        let mut rows: Vec<(Option<i64>, EntryKind, i64)> = ledger
            .iter()
            .map(|e| (Some(1), e.kind, e.amount))
            .collect();
        for ask in asks {
            if balance::balance(&rows).available >= ask {
                rows.push((None, EntryKind::Redemption, -ask));
            }
            let b = balance::balance(&rows);
            prop_assert!(b.available >= 0, "{:?}", b);
            prop_assert_eq!(b.available, b.vested - b.redeemed);
        }
    }
}
