//! What the ledger should hold for one commit, and which entries to append so it
//! does. Pure: the inputs are plain data (the commit, its signals, the entries
//! it has, the rules, the time), so the same inputs always give the same entries.
//!
//! A commit's entries:
//! - `accrual` at landing: `tier × size × outcome × calibration` with the
//!   signals that had happened by then (key `accrual:C`);
//! - `adjustment` at each later signal time up to vesting (or clawback) that
//!   changes the outcome multiplier (key `adjustment:C:T`), plus a correction
//!   when what the entries add up to is not what the rules give (a signal that
//!   happened before entries already made, or `replay --apply` under new rules);
//! - `vest` at landing + `vesting_days`, when that time has come, of everything
//!   earned (key `vest:C`);
//! - `clawback` of everything earned at the first revert, follow-up fix,
//!   failed incident or force push inside the window (after vesting only with
//!   `clawback_vested`) (key `clawback:C`).
//!
//! Nothing here edits an entry: a change is a new entry for the difference.

use std::sync::Arc;

use serde::Serialize;
use serde_json::json;

use crate::scoring::MilliTokens;
use crate::scoring::balance::EntryKind;
use crate::scoring::ci::{CiObservation, CiResult, ci_result};
use crate::scoring::commit::{CommitFacts, Outcomes, score};
use crate::scoring::rules::Rules;

const DAY_MS: i64 = 86_400_000;

/// A stored signal, as scoring sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalFact {
    /// Shared text: a pass holds hundreds of thousands of signals with a few
    /// distinct names, statuses, sources and contexts.
    pub name: Arc<str>,
    pub status: Arc<str>,
    pub source: Arc<str>,
    pub context: Arc<str>,
    pub attempt: Option<i64>,
    pub occurred_at: i64,
}

/// Everything scoring needs to know about one commit.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitInputs {
    pub commit_id: i64,
    pub ai: bool,
    pub kind: String,
    pub changed_lines: u64,
    pub usage_tokens: Option<u64>,
    /// When it landed on the default branch (`None`: never landed).
    pub landed_at: Option<i64>,
    /// Set when it was taken off the default branch again (force push).
    pub unlanded_at: Option<i64>,
    /// History that landed before this time never accrues (the baseline).
    pub pay_from: i64,
    /// An earlier landed commit with the same patch (inside the duplicate window).
    pub duplicate_of: Option<String>,
    /// The commit's own signals.
    pub signals: Vec<SignalFact>,
    /// Its pull request's head CI, taken when the commit has no CI of its own
    /// (a squash or merge commit): (head sha, merged at, CI signals of the head).
    pub pull_request_head: Option<(String, i64, Vec<SignalFact>)>,
}

/// An entry the commit already has.
#[derive(Debug, Clone, PartialEq)]
pub struct Existing {
    pub kind: EntryKind,
    pub amount: MilliTokens,
    pub at: i64,
    pub key: String,
}

/// An entry to append.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Planned {
    pub kind: EntryKind,
    pub amount: MilliTokens,
    pub at: i64,
    pub key: String,
    /// JSON: the inputs, each factor and the formula (or the reason of a vest
    /// or clawback).
    pub explanation: String,
}

/// A score's explanation, serialised straight to JSON text.
#[derive(Serialize)]
struct ScoreExplanation<'a> {
    reason: &'a str,
    inputs: ScoreInputs<'a>,
    factors: Factors,
    formula: String,
    tokens_milli: MilliTokens,
    #[serde(skip_serializing_if = "Option::is_none")]
    entries_before: Option<MilliTokens>,
}

#[derive(Serialize)]
struct ScoreInputs<'a> {
    kind: &'a str,
    changed_lines: u64,
    ci: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ci_from_pull_request_head: Option<&'a str>,
    deployed: bool,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    custom_signals: std::collections::BTreeMap<String, bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage_tokens: Option<u64>,
    calibration_week: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    duplicate_of: Option<&'a str>,
    as_of: i64,
}

/// Where a commit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Pending,
    Vested,
    ClawedBack,
    /// Landed before `pay_from`: counted as history, never paid.
    Baseline,
    NotAi,
    NotLanded,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Vested => "vested",
            State::ClawedBack => "clawed_back",
            State::Baseline => "baseline",
            State::NotAi => "not_ai",
            State::NotLanded => "not_landed",
        }
    }
}

/// What the rules make of a commit, and the entries that bring its ledger there.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub state: State,
    /// Tokens earned under the rules (accruals + adjustments once applied).
    pub earned: MilliTokens,
    pub factors: Option<Factors>,
    pub ci: CiResult,
    /// When it vests (landing + vesting days), for an accruing commit.
    pub vests_at: Option<i64>,
    /// The first event that claws it back, and when.
    pub clawback: Option<(String, i64)>,
    pub entries: Vec<Planned>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Factors {
    pub tier: f64,
    pub size: f64,
    pub outcome: f64,
    pub calibration: f64,
}

/// The signals that decide the outcome multiplier.
fn is_outcome_signal(name: &str) -> bool {
    !matches!(name, "reverted" | "fixed_later" | "incident")
}

/// The first event that takes a commit's tokens back, at or after landing.
fn first_clawback(c: &CommitInputs, landed_at: i64) -> Option<(String, i64)> {
    let from_signals = c.signals.iter().filter_map(|s| {
        let claws = match &*s.name {
            "reverted" | "fixed_later" => true,
            "incident" => &*s.status == "fail",
            _ => false,
        };
        (claws && s.occurred_at >= landed_at).then(|| (s.name.to_string(), s.occurred_at))
    });
    let unlanded = c.unlanded_at.map(|t| ("force_pushed_away".to_string(), t));
    from_signals
        .chain(unlanded)
        .min_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)))
}

/// The outcomes known at `t` (signals that happened at or before it).
fn outcomes_at(c: &CommitInputs, t: i64) -> (Outcomes, CiResult, bool) {
    let observe = |s: &SignalFact| CiObservation {
        source: s.source.to_string(),
        context: s.context.to_string(),
        attempt: s.attempt,
        status: s.status.to_string(),
        occurred_at: s.occurred_at,
    };
    let own: Vec<CiObservation> = c
        .signals
        .iter()
        .filter(|s| &*s.name == "ci" && s.occurred_at <= t)
        .map(observe)
        .collect();
    let (observations, from_head) = match &c.pull_request_head {
        Some((_, merged_at, head)) if own.is_empty() => (
            head.iter()
                .filter(|s| &*s.name == "ci" && s.occurred_at <= (*merged_at).min(t))
                .map(observe)
                .collect(),
            true,
        ),
        _ => (own, false),
    };
    let ci = ci_result(&observations);
    let mut outcomes = Outcomes {
        ci: Some(ci),
        ..Outcomes::default()
    };
    // Latest status of each other signal at `t` (ordered by time, then status so
    // the order of arrival never decides).
    let mut later: Vec<&SignalFact> = c
        .signals
        .iter()
        .filter(|s| &*s.name != "ci" && is_outcome_signal(&s.name) && s.occurred_at <= t)
        .collect();
    later.sort_by(|a, b| (a.occurred_at, &a.status).cmp(&(b.occurred_at, &b.status)));
    for s in later {
        if &*s.name == "deploy" {
            outcomes.deployed |= &*s.status == "pass";
        } else {
            outcomes
                .custom
                .insert(s.name.to_string(), &*s.status == "pass");
        }
    }
    (outcomes, ci, from_head && ci != CiResult::None)
}

/// Plans a commit's entries. `calibration` is the factor of its kind for the
/// week it landed in (and that week, for the explanation); `now` decides
/// whether it has vested.
pub fn plan_commit(
    c: &CommitInputs,
    calibration: (f64, &str),
    existing: &[Existing],
    rules: &Rules,
    rules_version: &str,
    now: i64,
) -> Plan {
    let not_paid = |state| Plan {
        state,
        earned: 0,
        factors: None,
        ci: CiResult::None,
        vests_at: None,
        clawback: None,
        entries: Vec::new(),
    };
    let landed_at = match (c.landed_at, c.unlanded_at) {
        (Some(t), _) => t,
        (None, _) => return not_paid(State::NotLanded),
    };
    if !c.ai {
        return not_paid(State::NotAi);
    }
    if landed_at < c.pay_from {
        return not_paid(State::Baseline);
    }
    let vests_at = landed_at + i64::from(rules.vesting_days) * DAY_MS;
    let clawback =
        first_clawback(c, landed_at).filter(|(_, at)| *at < vests_at || rules.clawback_vested);
    // After vesting (or a clawback) the outcome is settled: later signals change nothing.
    let cutoff = clawback
        .as_ref()
        .map_or(vests_at, |(_, at)| (*at).min(vests_at));
    let mut points: Vec<i64> = c
        .signals
        .iter()
        .filter(|s| is_outcome_signal(&s.name))
        .chain(c.pull_request_head.iter().flat_map(|(_, merged_at, head)| {
            head.iter()
                .filter(move |s| &*s.name == "ci" && s.occurred_at <= *merged_at)
        }))
        .filter(|s| s.occurred_at > landed_at)
        .map(|s| s.occurred_at)
        .filter(|t| *t <= cutoff)
        .collect();
    points.sort_unstable();
    points.dedup();
    points.insert(0, landed_at);

    let facts = CommitFacts {
        kind: c.kind.clone(),
        changed_lines: c.changed_lines,
    };
    let (calibration, week) = calibration;
    // The score at a time: cheap; its explanation is built only for entries
    // that are appended.
    let score_at = |t: i64| {
        let (outcomes, ci, from_head) = outcomes_at(c, t);
        let s = score(&facts, &outcomes, calibration, rules);
        let tokens = if c.duplicate_of.is_some() {
            0
        } else {
            s.milli_tokens
        };
        (tokens, ci, s, outcomes, from_head)
    };
    let explain = |t: i64, reason: &str, entries_before: Option<MilliTokens>| {
        let (tokens, ci, s, outcomes, from_head) = score_at(t);
        let explanation = ScoreExplanation {
            reason,
            inputs: ScoreInputs {
                kind: &c.kind,
                changed_lines: c.changed_lines,
                ci: ci.as_str(),
                ci_from_pull_request_head: from_head
                    .then(|| c.pull_request_head.as_ref().map(|h| h.0.as_str()))
                    .flatten(),
                deployed: outcomes.deployed,
                custom_signals: outcomes.custom,
                usage_tokens: c.usage_tokens,
                calibration_week: week,
                duplicate_of: c.duplicate_of.as_deref(),
                as_of: t,
            },
            factors: Factors {
                tier: s.tier,
                size: s.size,
                outcome: s.outcome,
                calibration: s.calibration,
            },
            formula: format!(
                "{} × {:.6} × {:.6} × {:.6} = {:.3}{}",
                s.tier,
                s.size,
                s.outcome,
                s.calibration,
                s.milli_tokens as f64 / 1000.0,
                if c.duplicate_of.is_some() {
                    " (a duplicate: 0)"
                } else {
                    ""
                },
            ),
            tokens_milli: tokens,
            entries_before,
        };
        serde_json::to_string(&explanation).expect("explanations serialise")
    };

    let mut entries: Vec<Planned> = Vec::new();
    let has = |key: &str| existing.iter().any(|e| e.key == key);
    let mut previous: MilliTokens = 0;
    let mut last = None;
    for (i, t) in points.iter().enumerate() {
        let (tokens, ci, s, _, _) = score_at(*t);
        let (kind, key) = if i == 0 {
            (EntryKind::Accrual, format!("accrual:{}", c.commit_id))
        } else {
            (
                EntryKind::Adjustment,
                format!("adjustment:{}:{t}", c.commit_id),
            )
        };
        if (i == 0 || tokens != previous) && !has(&key) {
            entries.push(Planned {
                kind,
                amount: tokens - previous,
                at: *t,
                key,
                explanation: explain(*t, if i == 0 { "landed" } else { "signal" }, None),
            });
        }
        previous = tokens;
        last = Some((*t, ci, s));
    }
    let (last_t, ci, s) = last.expect("landing is a point");
    let earned = previous;

    // What the entries add up to after the natural ones; a difference (a signal
    // that happened before entries already made, or other rules) is corrected.
    let earned_so_far = sum(existing, &entries, &|k| k.is_earning());
    if earned_so_far != earned {
        let explanation = explain(last_t, "correction", Some(earned_so_far));
        entries.push(Planned {
            kind: EntryKind::Adjustment,
            amount: earned - earned_so_far,
            at: last_t,
            key: format!(
                "adjustment:{}:{}:{}",
                c.commit_id,
                rules_version,
                count(existing, &entries, &|k| k.is_earning())
            ),
            explanation,
        });
    }

    let vested_now = now >= vests_at && clawback.as_ref().is_none_or(|(_, at)| *at >= vests_at);
    let vest_target = if vested_now { earned } else { 0 };
    let vested_so_far = sum(existing, &entries, &|k| k == EntryKind::Vest);
    if vest_target != vested_so_far {
        let first = count(existing, &entries, &|k| k == EntryKind::Vest) == 0;
        entries.push(Planned {
            kind: EntryKind::Vest,
            amount: vest_target - vested_so_far,
            at: vests_at.max(last_t),
            key: if first {
                format!("vest:{}", c.commit_id)
            } else {
                format!(
                    "vest:{}:{}:{}",
                    c.commit_id,
                    rules_version,
                    count(existing, &entries, &|k| k == EntryKind::Vest)
                )
            },
            explanation: json!({
                "reason": "vesting",
                "formula": format!("landed + {} days: {:.3} tokens vest", rules.vesting_days, vest_target as f64 / 1000.0),
                "landed_at": landed_at,
                "vests_at": vests_at,
            })
            .to_string(),
        });
    }

    let clawback_target = if clawback.is_some() { -earned } else { 0 };
    let clawed_so_far = sum(existing, &entries, &|k| k == EntryKind::Clawback);
    if clawback_target != clawed_so_far {
        let (reason, at) = clawback.clone().unwrap_or(("relanded".to_string(), last_t));
        let first = count(existing, &entries, &|k| k == EntryKind::Clawback) == 0;
        entries.push(Planned {
            kind: EntryKind::Clawback,
            amount: clawback_target - clawed_so_far,
            at,
            key: if first {
                format!("clawback:{}", c.commit_id)
            } else {
                format!(
                    "clawback:{}:{}:{}",
                    c.commit_id,
                    rules_version,
                    count(existing, &entries, &|k| k == EntryKind::Clawback)
                )
            },
            explanation: json!({
                "reason": reason,
                "formula": format!("{reason} {} vesting: {:.3} tokens clawed back",
                    if at < vests_at { "before" } else { "after" },
                    -clawback_target as f64 / 1000.0),
                "vests_at": vests_at,
                "clawback_vested": rules.clawback_vested,
            })
            .to_string(),
        });
    }

    let state = if clawback.is_some() {
        State::ClawedBack
    } else if vested_now {
        State::Vested
    } else {
        State::Pending
    };
    Plan {
        state,
        earned,
        factors: Some(Factors {
            tier: s.tier,
            size: s.size,
            outcome: s.outcome,
            calibration: s.calibration,
        }),
        ci,
        vests_at: Some(vests_at),
        clawback,
        entries,
    }
}

/// What existing and planned entries of some kinds add up to.
fn sum(
    existing: &[Existing],
    planned: &[Planned],
    kinds: &dyn Fn(EntryKind) -> bool,
) -> MilliTokens {
    let old: MilliTokens = existing
        .iter()
        .filter(|e| kinds(e.kind))
        .map(|e| e.amount)
        .sum();
    old + planned
        .iter()
        .filter(|e| kinds(e.kind))
        .map(|e| e.amount)
        .sum::<MilliTokens>()
}

/// How many existing and planned entries of some kinds there are.
fn count(existing: &[Existing], planned: &[Planned], kinds: &dyn Fn(EntryKind) -> bool) -> usize {
    existing.iter().filter(|e| kinds(e.kind)).count()
        + planned.iter().filter(|e| kinds(e.kind)).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::balance::standing;

    const LANDED: i64 = 1_000 * DAY_MS;

    fn signal(name: &str, status: &str, at: i64) -> SignalFact {
        SignalFact {
            name: name.into(),
            status: status.into(),
            source: "github:check_run".into(),
            context: "build".into(),
            attempt: None,
            occurred_at: at,
        }
    }

    /// An AI fix of 127 changed lines (size log2(128)/log2(401) = 7/8.6474584 = 0.809486).
    fn fix() -> CommitInputs {
        CommitInputs {
            commit_id: 7,
            ai: true,
            kind: "fix".into(),
            changed_lines: 127,
            usage_tokens: None,
            landed_at: Some(LANDED),
            unlanded_at: None,
            pay_from: 0,
            duplicate_of: None,
            signals: vec![signal("ci", "pass", LANDED - 60_000)],
            pull_request_head: None,
        }
    }

    fn existing(plan: &Plan) -> Vec<Existing> {
        plan.entries
            .iter()
            .map(|e| Existing {
                kind: e.kind,
                amount: e.amount,
                at: e.at,
                key: e.key.clone(),
            })
            .collect()
    }

    fn amounts(plan: &Plan) -> Vec<(EntryKind, MilliTokens, i64)> {
        plan.entries
            .iter()
            .map(|e| (e.kind, e.amount, e.at))
            .collect()
    }

    #[test]
    fn a_first_run_green_fix_accrues_then_vests_after_14_days() {
        let r = Rules::default();
        // 10 × 0.809486 × 1.2 × 1.0 = 9.713832 → 9,714 milli-tokens
        let day_one = plan_commit(&fix(), (1.0, "W"), &[], &r, "v", LANDED + DAY_MS);
        assert_eq!(day_one.state, State::Pending);
        assert_eq!(amounts(&day_one), [(EntryKind::Accrual, 9_714, LANDED)]);
        let mut have = existing(&day_one);
        // Nothing new the next day: applying twice changes nothing.
        let again = plan_commit(&fix(), (1.0, "W"), &have, &r, "v", LANDED + 2 * DAY_MS);
        assert!(again.entries.is_empty());
        // Day 14: vest of everything earned, effective at landing + 14 days.
        let vest_at = LANDED + 14 * DAY_MS;
        let vested = plan_commit(&fix(), (1.0, "W"), &have, &r, "v", vest_at);
        assert_eq!(vested.state, State::Vested);
        assert_eq!(amounts(&vested), [(EntryKind::Vest, 9_714, vest_at)]);
        have.extend(existing(&vested));
        assert!(
            plan_commit(&fix(), (1.0, "W"), &have, &r, "v", vest_at + DAY_MS)
                .entries
                .is_empty()
        );
        assert_eq!(
            standing(&have.iter().map(|e| (e.kind, e.amount)).collect::<Vec<_>>()),
            (0, 9_714, 0)
        );
    }

    #[test]
    fn a_commit_whose_vesting_date_has_passed_vests_in_the_same_pass() {
        let r = Rules::default();
        let plan = plan_commit(&fix(), (1.0, "W"), &[], &r, "v", LANDED + 30 * DAY_MS);
        assert_eq!(
            amounts(&plan),
            [
                (EntryKind::Accrual, 9_714, LANDED),
                (EntryKind::Vest, 9_714, LANDED + 14 * DAY_MS)
            ]
        );
    }

    #[test]
    fn later_signals_adjust_and_a_revert_claws_back() {
        let r = Rules::default();
        let mut c = fix();
        c.signals.clear();
        // No CI at landing: 10 × 0.809486 × 0.9 = 7.285374 → 7,285
        let p = plan_commit(&c, (1.0, "W"), &[], &r, "v", LANDED);
        assert_eq!(amounts(&p), [(EntryKind::Accrual, 7_285, LANDED)]);
        let mut have = existing(&p);
        // Red an hour later: × 0.3 = 2.428458 → 2,428; adjustment −4,857.
        c.signals.push(signal("ci", "fail", LANDED + 3_600_000));
        let p = plan_commit(&c, (1.0, "W"), &have, &r, "v", LANDED + DAY_MS);
        assert_eq!(
            amounts(&p),
            [(EntryKind::Adjustment, -4_857, LANDED + 3_600_000)]
        );
        have.extend(existing(&p));
        // A deploy pass after vesting changes nothing (the outcome settled at vesting).
        c.signals
            .push(signal("deploy", "pass", LANDED + 20 * DAY_MS));
        // Reverted on day 3: the whole 2,428 is clawed back then; it never vests.
        c.signals
            .push(signal("reverted", "fail", LANDED + 3 * DAY_MS));
        let p = plan_commit(&c, (1.0, "W"), &have, &r, "v", LANDED + 30 * DAY_MS);
        assert_eq!(p.state, State::ClawedBack);
        assert_eq!(
            amounts(&p),
            [(EntryKind::Clawback, -2_428, LANDED + 3 * DAY_MS)]
        );
        have.extend(existing(&p));
        let all: Vec<_> = have.iter().map(|e| (e.kind, e.amount)).collect();
        assert_eq!(standing(&all), (0, 0, 2_428));
    }

    #[test]
    fn a_revert_after_vesting_claws_back_only_with_clawback_vested() {
        let mut c = fix();
        c.signals
            .push(signal("reverted", "fail", LANDED + 20 * DAY_MS));
        let r = Rules::default();
        let p = plan_commit(&c, (1.0, "W"), &[], &r, "v", LANDED + 30 * DAY_MS);
        assert_eq!(p.state, State::Vested);
        assert_eq!(p.entries.len(), 2);
        let r = Rules {
            clawback_vested: true,
            ..Rules::default()
        };
        let p = plan_commit(&c, (1.0, "W"), &[], &r, "v", LANDED + 30 * DAY_MS);
        assert_eq!(
            amounts(&p),
            [
                (EntryKind::Accrual, 9_714, LANDED),
                (EntryKind::Vest, 9_714, LANDED + 14 * DAY_MS),
                (EntryKind::Clawback, -9_714, LANDED + 20 * DAY_MS)
            ]
        );
        let all: Vec<_> = p.entries.iter().map(|e| (e.kind, e.amount)).collect();
        assert_eq!(standing(&all), (0, 0, 9_714));
    }

    #[test]
    fn baseline_human_unlanded_and_duplicate_commits_earn_nothing() {
        let r = Rules::default();
        let mut old = fix();
        old.pay_from = LANDED + 1;
        assert_eq!(
            plan_commit(&old, (1.0, "W"), &[], &r, "v", LANDED).state,
            State::Baseline
        );
        let human = CommitInputs { ai: false, ..fix() };
        assert_eq!(
            plan_commit(&human, (1.0, "W"), &[], &r, "v", LANDED).state,
            State::NotAi
        );
        let open = CommitInputs {
            landed_at: None,
            ..fix()
        };
        let p = plan_commit(&open, (1.0, "W"), &[], &r, "v", LANDED);
        assert_eq!((p.state, p.entries.len()), (State::NotLanded, 0));
        let dup = CommitInputs {
            duplicate_of: Some("b".repeat(40)),
            ..fix()
        };
        let p = plan_commit(&dup, (1.0, "W"), &[], &r, "v", LANDED);
        assert_eq!(amounts(&p), [(EntryKind::Accrual, 0, LANDED)]);
    }

    #[test]
    fn a_squash_commit_without_ci_takes_its_pull_request_heads_ci_at_merge_time() {
        let r = Rules::default();
        let mut squash = fix();
        squash.signals.clear();
        squash.pull_request_head = Some((
            "c".repeat(40),
            LANDED,
            vec![
                signal("ci", "pass", LANDED - 1_000),
                // After the merge: not the head's CI at merge time.
                signal("ci", "fail", LANDED + 1_000),
            ],
        ));
        let p = plan_commit(&squash, (1.0, "W"), &[], &r, "v", LANDED);
        assert_eq!(p.ci, CiResult::FirstRunGreen);
        assert_eq!(amounts(&p), [(EntryKind::Accrual, 9_714, LANDED)]);
        let explanation: serde_json::Value =
            serde_json::from_str(&p.entries[0].explanation).unwrap();
        assert_eq!(
            explanation["inputs"]["ci_from_pull_request_head"],
            json!("c".repeat(40))
        );
    }

    #[test]
    fn a_late_signal_and_new_rules_are_corrected_by_one_entry() {
        let r = Rules::default();
        let mut c = fix();
        c.signals = vec![signal("ci", "pass", LANDED + 2 * 3_600_000)];
        let p = plan_commit(&c, (1.0, "W"), &[], &r, "v", LANDED + DAY_MS);
        // 7,285 at landing (no CI), +2,429 when green: 9,714.
        assert_eq!(
            amounts(&p),
            [
                (EntryKind::Accrual, 7_285, LANDED),
                (EntryKind::Adjustment, 2_429, LANDED + 2 * 3_600_000)
            ]
        );
        let have = existing(&p);
        // A failure an hour earlier arrives late: the run at +2 h is now a
        // second attempt (green after failure, 1.0): 10 × 0.809486 = 8,095.
        let mut fail_first = signal("ci", "fail", LANDED + 3_600_000);
        fail_first.attempt = Some(1);
        c.signals[0].attempt = Some(2);
        c.signals.push(fail_first);
        let p = plan_commit(&c, (1.0, "W"), &have, &r, "v", LANDED + DAY_MS);
        let total: MilliTokens = have.iter().map(|e| e.amount).sum::<i64>()
            + p.entries.iter().map(|e| e.amount).sum::<i64>();
        assert_eq!((p.earned, total), (8_095, 8_095));
        // A new fix weight: a correction brings the total to 12 × 0.809486 = 9,714.
        let mut heavier = Rules::default();
        heavier.tiers.insert("fix".into(), 12.0);
        let mut have = have;
        have.extend(existing(&p));
        let p = plan_commit(&c, (1.0, "W"), &have, &heavier, "v2", LANDED + DAY_MS);
        assert_eq!(p.entries.len(), 1);
        assert_eq!(p.entries[0].kind, EntryKind::Adjustment);
        assert_eq!(p.entries[0].amount, 9_714 - 8_095);
        assert!(p.entries[0].key.contains(":v2:"));
    }

    #[test]
    fn a_force_push_claws_back_and_relanding_restores() {
        let r = Rules::default();
        let mut c = fix();
        let p = plan_commit(&c, (1.0, "W"), &[], &r, "v", LANDED);
        let mut have = existing(&p);
        c.landed_at = None;
        c.unlanded_at = Some(LANDED + DAY_MS);
        // Unlanded commits keep their landing time in the store; the engine
        // passes it on, so model that.
        c.landed_at = Some(LANDED);
        let p = plan_commit(&c, (1.0, "W"), &have, &r, "v", LANDED + DAY_MS);
        assert_eq!(
            amounts(&p),
            [(EntryKind::Clawback, -9_714, LANDED + DAY_MS)]
        );
        have.extend(existing(&p));
        c.unlanded_at = None;
        let p = plan_commit(&c, (1.0, "W"), &have, &r, "v", LANDED + 2 * DAY_MS);
        assert_eq!(p.entries.len(), 1);
        assert_eq!(
            (p.entries[0].kind, p.entries[0].amount),
            (EntryKind::Clawback, 9_714)
        );
    }
}
