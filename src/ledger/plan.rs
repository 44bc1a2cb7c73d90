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

use serde::Serialize;
use serde_json::json;

use crate::scoring::balance::EntryKind;
use crate::scoring::ci::CiResult;
use crate::scoring::commit::{CommitFacts, Outcomes, Score, score};
use crate::scoring::hygiene::is_noise;
use crate::scoring::money::FactorPpm;
use crate::scoring::outcome::SignalFact;
use crate::scoring::outcome::outcomes_at;
use crate::scoring::rules::Rules;
use crate::scoring::signal::{SignalName, SignalStatus};
use crate::scoring::{MilliTokens, to_milli};

const DAY_MS: i64 = 86_400_000;

/// Everything scoring needs to know about one commit.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitInputs {
    pub commit_id: i64,
    pub ai: bool,
    pub kind: String,
    /// When a trailer declared `kind`: the detected kind (the lower tier pays).
    pub detected_kind: Option<String>,
    pub changed_lines: u64,
    /// Only whitespace changed or lines were re-wrapped (noise, as is a
    /// commit under `noise_lines` changed lines: it earns nothing).
    pub formatting_only: bool,
    /// The change set it belongs to with other commits, if any.
    pub change_set: Option<ChangeSet>,
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
    /// Why it is `unverified` (the rules require verified usage and its
    /// author's agent reported none before it): it earns nothing.
    pub unverified: Option<String>,
}

/// One person's commits that landed close together on common files (or one
/// merged pull request): their size is computed once, over all their lines.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeSet {
    /// Every commit of the set (this one included), oldest first.
    pub members: Vec<ChangeSetMember>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeSetMember {
    /// Short id.
    pub sha: String,
    pub landed_at: i64,
    pub lines: u64,
}

impl ChangeSet {
    /// The members that had landed by `t`: a commit joining later changes the
    /// earlier ones' size from its landing on (an adjustment, as any fact).
    fn at(&self, t: i64) -> Vec<&ChangeSetMember> {
        self.members.iter().filter(|m| m.landed_at <= t).collect()
    }
}

/// A change set as an explanation states it.
#[derive(Serialize)]
struct ChangeSetView<'a> {
    lines: u64,
    commits: Vec<&'a str>,
}

/// An entry the commit already has.
#[derive(Debug, Clone, PartialEq)]
pub struct Existing {
    pub kind: EntryKind,
    pub amount: MilliTokens,
    pub at: i64,
    pub key: String,
    /// A vest's payout factor (ppm), when it was recorded.
    pub factor_ppm: Option<FactorPpm>,
}

/// An entry to append.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Planned {
    pub kind: EntryKind,
    pub amount: MilliTokens,
    pub at: i64,
    pub key: String,
    /// JSON: the inputs, each factor and the formula (or the reason of a vest
    /// or clawback), and how this entry's amount follows.
    pub explanation: String,
    /// A vest's or clawback's payout factor (ppm).
    pub factor_ppm: Option<FactorPpm>,
}

/// A score's explanation, serialised straight to JSON text.
#[derive(Serialize)]
struct ScoreExplanation<'a> {
    reason: &'a str,
    inputs: ScoreInputs<'a>,
    factors: Factors,
    formula: String,
    /// What the commit has earned, all entries together, after this one.
    tokens_milli: MilliTokens,
    /// What the entries before this one added up to.
    booked_before_milli: MilliTokens,
    /// This entry: `tokens_milli − booked_before_milli`.
    amount_milli: MilliTokens,
    /// The same, as text: `9.714 − 7.285 already booked = 2.429 this entry`.
    arithmetic: String,
}

#[derive(Serialize)]
struct ScoreInputs<'a> {
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detected_kind: Option<&'a str>,
    /// The kind whose tier pays (the lower of declared and detected).
    paid_kind: &'a str,
    changed_lines: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    change_set: Option<ChangeSetView<'a>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    noise: bool,
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
    /// An AI commit no verified usage backs, where the rules require it.
    Unverified,
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
            State::Unverified => "unverified",
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

impl Plan {}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Factors {
    pub tier: f64,
    pub size: f64,
    pub outcome: f64,
    pub calibration: f64,
}

/// What takes a commit's tokens back.
#[derive(Debug, Clone, Default, PartialEq)]
struct Clawbacks {
    /// The first event that takes all of them: a revert, a failed incident, a
    /// force push, or follow-up fixes whose shares reach 1.
    full: Option<(String, i64)>,
    /// Follow-up fixes before that, each with the share of the commit's added
    /// lines it touched (their sum stays under 1).
    partial: Vec<(f64, i64)>,
}

/// A follow-up fix's share of the commit's added lines: its value (found by
/// blame), or all of them for a `Fixes:` that touched none of its lines.
fn fix_share(s: &SignalFact) -> f64 {
    s.value.map_or(1.0, |v| v.clamp(0.0, 1.0))
}

/// The events at or after landing that take a commit's tokens back. A
/// follow-up fix counts only when it landed after the commit: fixing your
/// own work inside the pull request that lands it costs nothing.
fn clawbacks(c: &CommitInputs, landed_at: i64) -> Clawbacks {
    let mut full: Vec<(String, i64)> = c
        .signals
        .iter()
        .filter(|s| s.occurred_at >= landed_at)
        .filter(|s| match s.name {
            SignalName::Reverted => true,
            SignalName::Incident => s.status == SignalStatus::Fail,
            _ => false,
        })
        .map(|s| (s.name.to_string(), s.occurred_at))
        .chain(c.unlanded_at.map(|t| ("force_pushed_away".to_string(), t)))
        .collect();
    let mut fixes: Vec<(i64, f64)> = c
        .signals
        .iter()
        .filter(|s| s.name == SignalName::FixedLater && s.occurred_at > landed_at)
        .map(|s| (s.occurred_at, fix_share(s)))
        .collect();
    fixes.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)));
    let mut partial = Vec::new();
    let mut total = 0.0;
    for (at, share) in fixes {
        total += share;
        // Shares are rounded to 1e-9 so that four quarters make a whole.
        if total >= 1.0 - 1e-9 {
            full.push((SignalName::FixedLater.to_string(), at));
            break;
        }
        partial.push((share, at));
    }
    let full = full
        .into_iter()
        .min_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    if let Some((_, at)) = &full {
        partial.retain(|(_, t)| t < at);
    }
    Clawbacks { full, partial }
}

/// Scores a commit at any time, and explains a score: what accruals,
/// adjustments and estimates all go through.
struct Scorer<'a> {
    c: &'a CommitInputs,
    facts: CommitFacts,
    calibration: f64,
    calibration_week: &'a str,
    rules: &'a Rules,
}

/// A commit's score at one time.
struct ScoreAt {
    /// Its tokens (0 for a duplicate or noise).
    tokens: MilliTokens,
    ci: CiResult,
    score: Score,
    outcomes: Outcomes,
    /// The CI came from its pull request's head.
    from_head: bool,
}

impl<'a> Scorer<'a> {
    fn new(c: &'a CommitInputs, calibration: (f64, &'a str), rules: &'a Rules) -> Scorer<'a> {
        Scorer {
            c,
            facts: CommitFacts {
                kind: c.kind.clone(),
                detected_kind: c.detected_kind.clone(),
                changed_lines: c.changed_lines,
                change_set_lines: None,
            },
            calibration: calibration.0,
            calibration_week: calibration.1,
            rules,
        }
    }

    /// The members of its change set at `t`, when there are others.
    fn change_set_at(&self, t: i64) -> Option<Vec<&'a ChangeSetMember>> {
        let members = self.c.change_set.as_ref()?.at(t);
        (members.len() > 1).then_some(members)
    }

    fn noise(&self) -> bool {
        is_noise(self.c.changed_lines, self.c.formatting_only, self.rules)
    }

    /// The score at `t` (cheap; explained only for entries that are appended).
    fn at(&self, t: i64) -> ScoreAt {
        let head = self
            .c
            .pull_request_head
            .as_ref()
            .map(|(_, merged_at, head)| (*merged_at, head.as_slice()));
        let (outcomes, ci, from_head) = outcomes_at(&self.c.signals, head, t);
        let facts = CommitFacts {
            change_set_lines: self
                .change_set_at(t)
                .map(|members| members.iter().map(|m| m.lines).sum()),
            ..self.facts.clone()
        };
        let score = score(&facts, &outcomes, self.calibration, self.rules);
        let tokens = if self.c.duplicate_of.is_some() || self.noise() {
            0
        } else {
            score.milli_tokens
        };
        ScoreAt {
            tokens,
            ci,
            score,
            outcomes,
            from_head,
        }
    }

    /// The explanation of an earning entry at `t`, after entries adding up to `before`.
    fn explain(&self, t: i64, reason: &str, before: MilliTokens) -> String {
        let c = self.c;
        let at = self.at(t);
        let s = &at.score;
        let explanation = ScoreExplanation {
            reason,
            inputs: ScoreInputs {
                kind: &c.kind,
                detected_kind: c.detected_kind.as_deref(),
                paid_kind: crate::scoring::commit::paid_kind(&self.facts, self.rules),
                changed_lines: c.changed_lines,
                change_set: self.change_set_at(t).map(|members| ChangeSetView {
                    lines: members.iter().map(|m| m.lines).sum(),
                    commits: members.iter().map(|m| m.sha.as_str()).collect(),
                }),
                noise: self.noise(),
                ci: at.ci.as_str(),
                ci_from_pull_request_head: at
                    .from_head
                    .then(|| c.pull_request_head.as_ref().map(|h| h.0.as_str()))
                    .flatten(),
                deployed: at.outcomes.deployed,
                custom_signals: at.outcomes.custom.clone(),
                usage_tokens: c.usage_tokens,
                calibration_week: self.calibration_week,
                duplicate_of: c.duplicate_of.as_deref(),
                as_of: t,
            },
            factors: Factors::of(s),
            formula: format!(
                "{} × {:.6} × {:.6} × {:.6} = {:.3}{}",
                s.tier,
                s.size,
                s.outcome,
                s.calibration,
                s.milli_tokens as f64 / 1000.0,
                if c.duplicate_of.is_some() {
                    " (a duplicate: 0)"
                } else if self.noise() {
                    " (noise: 0)"
                } else {
                    ""
                },
            ),
            tokens_milli: at.tokens,
            booked_before_milli: before,
            amount_milli: at.tokens - before,
            arithmetic: format!(
                "{:.3} − {:.3} already booked = {:.3} this entry",
                at.tokens as f64 / 1000.0,
                before as f64 / 1000.0,
                (at.tokens - before) as f64 / 1000.0
            ),
        };
        serde_json::to_string(&explanation).expect("explanations serialise")
    }
}

impl Factors {
    fn of(s: &Score) -> Factors {
        Factors {
            tier: s.tier,
            size: s.size,
            outcome: s.outcome,
            calibration: s.calibration,
        }
    }
}

/// What a commit would earn if it landed at `now` with the facts it has: the
/// pull-request comment's estimate, through the same scoring as the ledger's.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub tokens: MilliTokens,
    pub ci: CiResult,
    pub factors: Factors,
}

pub fn estimate(c: &CommitInputs, calibration: (f64, &str), rules: &Rules, now: i64) -> Estimate {
    let at = Scorer::new(c, calibration, rules).at(now);
    Estimate {
        tokens: at.tokens,
        ci: at.ci,
        factors: Factors::of(&at.score),
    }
}

/// When a commit landed, or why it earns nothing.
fn paid_landing(c: &CommitInputs) -> Result<i64, State> {
    let landed_at = c.landed_at.ok_or(State::NotLanded)?;
    if !c.ai {
        return Err(State::NotAi);
    }
    if landed_at < c.pay_from {
        return Err(State::Baseline);
    }
    if c.unverified.is_some() {
        return Err(State::Unverified);
    }
    Ok(landed_at)
}

/// The times a commit's score may change: its landing, then each outcome
/// signal after it (its own, and its pull request's head CI up to the merge),
/// up to `cutoff` (vesting or a clawback: after that the outcome is settled).
fn score_points(c: &CommitInputs, landed_at: i64, cutoff: i64) -> Vec<i64> {
    let mut points: Vec<i64> = c
        .signals
        .iter()
        .filter(|s| s.name.decides_outcome())
        .chain(c.pull_request_head.iter().flat_map(|(_, merged_at, head)| {
            head.iter()
                .filter(move |s| s.name == SignalName::Ci && s.occurred_at <= *merged_at)
        }))
        .filter(|s| s.occurred_at > landed_at)
        .map(|s| s.occurred_at)
        // Each later commit of its change set changes its share of the size.
        .chain(
            c.change_set
                .iter()
                .flat_map(|s| s.members.iter().map(|m| m.landed_at)),
        )
        .filter(|t| *t > landed_at && *t <= cutoff)
        .collect();
    points.sort_unstable();
    points.dedup();
    points.insert(0, landed_at);
    points
}

/// The earning entries: the accrual at landing, an adjustment at each point
/// where the score changed, and a correction when what is booked differs from
/// what the facts say (a late signal, other rules). Returns what the commit
/// earned, the last point and its score.
fn plan_earnings(
    scorer: &Scorer<'_>,
    points: &[i64],
    existing: &[Existing],
    rules_version: &str,
    entries: &mut Vec<Planned>,
) -> (MilliTokens, i64, ScoreAt) {
    let commit_id = scorer.c.commit_id;
    let has = |key: &str| existing.iter().any(|e| e.key == key);
    let mut previous: MilliTokens = 0;
    let mut last = None;
    for (i, t) in points.iter().enumerate() {
        let at = scorer.at(*t);
        let (kind, key) = if i == 0 {
            (EntryKind::Accrual, format!("accrual:{commit_id}"))
        } else {
            (EntryKind::Adjustment, format!("adjustment:{commit_id}:{t}"))
        };
        if (i == 0 || at.tokens != previous) && !has(&key) {
            entries.push(Planned {
                kind,
                amount: at.tokens - previous,
                at: *t,
                key,
                explanation: scorer.explain(*t, if i == 0 { "landed" } else { "signal" }, previous),
                factor_ppm: None,
            });
        }
        previous = at.tokens;
        last = Some((*t, at));
    }
    let (last_t, last_score) = last.expect("landing is a point");
    let earned = previous;
    let earned_so_far = sum(existing, entries, &|k| k.is_earning());
    if earned_so_far != earned {
        let explanation = scorer.explain(last_t, "correction", earned_so_far);
        let n = count(existing, entries, &|k| k.is_earning());
        entries.push(Planned {
            kind: EntryKind::Adjustment,
            amount: earned - earned_so_far,
            at: last_t,
            key: format!("adjustment:{commit_id}:{rules_version}:{n}"),
            explanation,
            factor_ppm: None,
        });
    }
    (earned, last_t, last_score)
}

/// The key of a commit's next entry of `kind`: `kind:C` for the first, then
/// numbered under the rule version.
fn next_key(
    kind: EntryKind,
    commit_id: i64,
    rules_version: &str,
    existing: &[Existing],
    entries: &[Planned],
) -> String {
    let n = count(existing, entries, &|k| k == kind);
    if n == 0 {
        format!("{}:{commit_id}", kind.as_str())
    } else {
        format!("{}:{commit_id}:{rules_version}:{n}", kind.as_str())
    }
}

/// What a commit's entries of one kind must add up to, and why: the entry that
/// brings them there states its own amount as `target − booked`.
struct Target<'a> {
    kind: EntryKind,
    total: MilliTokens,
    at: i64,
    reason: &'a str,
    formula: String,
    factor_ppm: Option<FactorPpm>,
    detail: serde_json::Value,
}

/// Appends the entry that brings `kind`'s entries to `target.total`, if any.
fn book_target(
    target: Target<'_>,
    commit_id: i64,
    rules_version: &str,
    existing: &[Existing],
    entries: &mut Vec<Planned>,
) {
    let booked = sum(existing, entries, &|k| k == target.kind);
    if target.total == booked {
        return;
    }
    let amount = target.total - booked;
    let mut explanation = json!({
        "reason": target.reason,
        "formula": target.formula,
        "target_milli": target.total,
        "booked_before_milli": booked,
        "amount_milli": amount,
        "arithmetic": format!(
            "{:.3} − {:.3} already booked = {:.3} this entry",
            target.total as f64 / 1000.0,
            booked as f64 / 1000.0,
            amount as f64 / 1000.0
        ),
    });
    if let (Some(map), serde_json::Value::Object(detail)) =
        (explanation.as_object_mut(), target.detail)
    {
        map.extend(detail);
    }
    entries.push(Planned {
        kind: target.kind,
        amount,
        at: target.at,
        key: next_key(target.kind, commit_id, rules_version, existing, entries),
        explanation: explanation.to_string(),
        factor_ppm: target.factor_ppm,
    });
}

/// The payout factor of a commit's vests: the one its first vest recorded,
/// else `landing_factor` (that of the hygiene of the week it landed).
fn vest_factor(existing: &[Existing], landing_factor: FactorPpm) -> FactorPpm {
    existing
        .iter()
        .find(|e| e.kind == EntryKind::Vest && e.factor_ppm.is_some())
        .and_then(|e| e.factor_ppm)
        .unwrap_or(landing_factor)
}

/// Plans a commit's entries. `calibration` is the factor of its kind for the
/// week it landed in (and that week, for the explanation); `landing_factor`
/// the payout factor of that week, fixed on its vest; `now` decides whether it
/// has vested.
pub fn plan_commit(
    c: &CommitInputs,
    calibration: (f64, &str),
    landing_factor: FactorPpm,
    existing: &[Existing],
    rules: &Rules,
    rules_version: &str,
    now: i64,
) -> Plan {
    let landed_at = match paid_landing(c) {
        Ok(t) => t,
        Err(state) => return unwind(c, state, existing, rules_version, now),
    };
    let vests_at = landed_at + i64::from(rules.vesting_days) * DAY_MS;
    let found = clawbacks(c, landed_at);
    let first_bad = found.full.clone();
    // Before vesting, a revert cancels the pending tokens, however late it
    // became known (a vest booked before it was wrong on the facts); after
    // vesting, `clawback_vested` decides whether vested tokens come back.
    let before_vesting = first_bad.clone().filter(|(_, at)| *at < vests_at);
    let after_vesting = first_bad
        .clone()
        .filter(|(_, at)| *at >= vests_at && rules.clawback_vested);
    let clawback = before_vesting.clone().or(after_vesting.clone());
    let cutoff = clawback
        .as_ref()
        .map_or(vests_at, |(_, at)| (*at).min(vests_at));
    let points = score_points(c, landed_at, cutoff);
    let scorer = Scorer::new(c, calibration, rules);
    let mut entries: Vec<Planned> = Vec::new();
    let (earned, last_t, last) =
        plan_earnings(&scorer, &points, existing, rules_version, &mut entries);
    let factor = vest_factor(existing, landing_factor);
    // Follow-up fixes that touched part of its lines before vesting cancel
    // that share of the pending tokens; after vesting (with `clawback_vested`)
    // they claw back that share of the vested ones.
    let share_before: f64 = found
        .partial
        .iter()
        .filter(|(_, at)| *at < vests_at)
        .map(|(share, _)| share)
        .sum();
    let share_after: f64 = found
        .partial
        .iter()
        .filter(|(_, at)| *at >= vests_at && rules.clawback_vested)
        .map(|(share, _)| share)
        .sum();
    let last_fix = |before: bool| {
        found
            .partial
            .iter()
            .filter(|(_, at)| (*at < vests_at) == before)
            .map(|(_, at)| *at)
            .max()
    };
    let cancelled = if before_vesting.is_some() {
        earned
    } else {
        to_milli(earned as f64 / 1000.0 * share_before.min(1.0))
    };
    let vesting = earned - cancelled;
    let clawed = if after_vesting.is_some() {
        vesting
    } else {
        to_milli(vesting as f64 / 1000.0 * share_after.min(1.0))
    };

    // Vesting: what is earned and not cancelled, once vesting day has come
    // without a revert before it.
    let vested_now = now >= vests_at && before_vesting.is_none();
    book_target(
        Target {
            kind: EntryKind::Vest,
            total: if vested_now { vesting } else { 0 },
            at: vests_at.max(last_t),
            reason: "vesting",
            formula: format!(
                "landed + {} days: {:.3} tokens vested in all, payout factor {:.6}",
                rules.vesting_days,
                if vested_now { vesting } else { 0 } as f64 / 1000.0,
                factor as f64 / 1_000_000.0
            ),
            factor_ppm: Some(factor),
            detail: json!({"landed_at": landed_at, "vests_at": vests_at}),
        },
        c.commit_id,
        rules_version,
        existing,
        &mut entries,
    );
    // Cancelled: the pending tokens of a commit reverted before it vested,
    // or the share of them that follow-up fixes touched.
    let (cancel_reason, cancel_at) =
        before_vesting
            .clone()
            .unwrap_or_else(|| match last_fix(true) {
                Some(at) => (SignalName::FixedLater.to_string(), at),
                None => ("relanded".to_string(), last_t),
            });
    let cancel_formula = if before_vesting.is_some() || cancelled == 0 {
        format!(
            "{cancel_reason} before vesting: the {:.3} pending tokens are cancelled",
            cancelled as f64 / 1000.0
        )
    } else {
        format!(
            "follow-up fixes touched {:.1}% of its added lines before vesting: {:.3} × {:.4} = {:.3} pending tokens cancelled",
            share_before.min(1.0) * 100.0,
            earned as f64 / 1000.0,
            share_before.min(1.0),
            cancelled as f64 / 1000.0
        )
    };
    book_target(
        Target {
            kind: EntryKind::Cancel,
            total: -cancelled,
            at: cancel_at,
            reason: &cancel_reason,
            formula: cancel_formula,
            factor_ppm: None,
            detail: json!({"vests_at": vests_at, "share": share_before.min(1.0)}),
        },
        c.commit_id,
        rules_version,
        existing,
        &mut entries,
    );
    // Clawed back: vested tokens (or the share follow-up fixes touched),
    // when `clawback_vested` says so.
    let (claw_reason, claw_at) = after_vesting
        .clone()
        .unwrap_or_else(|| match last_fix(false) {
            Some(at) if clawed != 0 => (SignalName::FixedLater.to_string(), at),
            _ => ("relanded".to_string(), last_t),
        });
    book_target(
        Target {
            kind: EntryKind::Clawback,
            total: -clawed,
            at: claw_at,
            reason: &claw_reason,
            formula: format!(
                "{claw_reason} after vesting: {:.3} vested tokens clawed back at payout factor {:.6}",
                clawed as f64 / 1000.0,
                factor as f64 / 1_000_000.0
            ),
            factor_ppm: Some(factor),
            detail: json!({"vests_at": vests_at, "clawback_vested": rules.clawback_vested}),
        },
        c.commit_id,
        rules_version,
        existing,
        &mut entries,
    );

    let state = if clawback.is_some() || (cancelled > 0 && cancelled == earned) {
        State::ClawedBack
    } else if vested_now {
        State::Vested
    } else {
        State::Pending
    };
    Plan {
        state,
        earned,
        factors: Some(Factors::of(&last.score)),
        ci: last.ci,
        vests_at: Some(vests_at),
        clawback,
        entries,
    }
}

/// A commit that earns nothing (it turned out not landed, not AI-assisted, or
/// history before `pay_from`) but has entries: every kind is brought back to
/// zero, so what it was credited is undone — exactly the difference a replay
/// shows.
fn unwind(
    c: &CommitInputs,
    state: State,
    existing: &[Existing],
    rules_version: &str,
    now: i64,
) -> Plan {
    let mut entries = Vec::new();
    let factor = vest_factor(existing, crate::scoring::money::FACTOR_ONE);
    for kind in [
        EntryKind::Adjustment,
        EntryKind::Vest,
        EntryKind::Cancel,
        EntryKind::Clawback,
    ] {
        // Accruals and adjustments are undone together by an adjustment.
        let booked = if kind == EntryKind::Adjustment {
            sum(existing, &entries, &|k| k.is_earning())
        } else {
            sum(existing, &entries, &|k| k == kind)
        };
        if booked == 0 {
            continue;
        }
        let amount = -booked;
        let n = count(existing, &entries, &|k| k == kind);
        entries.push(Planned {
            kind,
            amount,
            at: now,
            key: format!("{}:{}:{rules_version}:undo:{n}", kind.as_str(), c.commit_id),
            explanation: json!({
                "reason": "undone",
                "formula": format!("the commit is now {}: nothing is owed to it", state.as_str()),
                "target_milli": 0,
                "booked_before_milli": booked,
                "amount_milli": amount,
                "arithmetic": format!("0.000 − {:.3} already booked = {:.3} this entry", booked as f64 / 1000.0, amount as f64 / 1000.0),
            })
            .to_string(),
            factor_ppm: matches!(kind, EntryKind::Vest | EntryKind::Clawback).then_some(factor),
        });
    }
    Plan {
        state,
        earned: 0,
        factors: None,
        ci: CiResult::None,
        vests_at: None,
        clawback: None,
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
    use crate::scoring::money::FACTOR_ONE;

    const LANDED: i64 = 1_000 * DAY_MS;

    fn signal(name: &str, status: &str, at: i64) -> SignalFact {
        SignalFact {
            name: name.parse().unwrap(),
            status: status.parse().unwrap(),
            source: "github:check_run".into(),
            context: "build".into(),
            attempt: None,
            occurred_at: at,
            value: None,
        }
    }

    /// An AI fix of 127 changed lines (size log2(128)/log2(401) = 7/8.6474584 = 0.809486).
    fn fix() -> CommitInputs {
        CommitInputs {
            commit_id: 7,
            ai: true,
            kind: "fix".into(),
            changed_lines: 127,
            detected_kind: None,
            formatting_only: false,
            change_set: None,
            usage_tokens: None,
            landed_at: Some(LANDED),
            unlanded_at: None,
            pay_from: 0,
            duplicate_of: None,
            signals: vec![signal("ci", "pass", LANDED - 60_000)],
            pull_request_head: None,
            unverified: None,
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
                factor_ppm: e.factor_ppm,
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
        let day_one = plan_commit(
            &fix(),
            (1.0, "W"),
            FACTOR_ONE,
            &[],
            &r,
            "v",
            LANDED + DAY_MS,
        );
        assert_eq!(day_one.state, State::Pending);
        assert_eq!(amounts(&day_one), [(EntryKind::Accrual, 9_714, LANDED)]);
        let mut have = existing(&day_one);
        // Nothing new the next day: applying twice changes nothing.
        let again = plan_commit(
            &fix(),
            (1.0, "W"),
            FACTOR_ONE,
            &have,
            &r,
            "v",
            LANDED + 2 * DAY_MS,
        );
        assert!(again.entries.is_empty());
        // Day 14: vest of everything earned, effective at landing + 14 days.
        let vest_at = LANDED + 14 * DAY_MS;
        let vested = plan_commit(&fix(), (1.0, "W"), FACTOR_ONE, &have, &r, "v", vest_at);
        assert_eq!(vested.state, State::Vested);
        assert_eq!(amounts(&vested), [(EntryKind::Vest, 9_714, vest_at)]);
        have.extend(existing(&vested));
        assert!(
            plan_commit(
                &fix(),
                (1.0, "W"),
                FACTOR_ONE,
                &have,
                &r,
                "v",
                vest_at + DAY_MS
            )
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
        let plan = plan_commit(
            &fix(),
            (1.0, "W"),
            FACTOR_ONE,
            &[],
            &r,
            "v",
            LANDED + 30 * DAY_MS,
        );
        assert_eq!(
            amounts(&plan),
            [
                (EntryKind::Accrual, 9_714, LANDED),
                (EntryKind::Vest, 9_714, LANDED + 14 * DAY_MS)
            ]
        );
    }

    #[test]
    fn follow_up_fixes_cancel_the_share_of_lines_they_touched() {
        let r = Rules::default();
        let mut c = fix();
        // Green first run: 10 × 0.809486 × 1.2 = 9.714 → 9,714.
        let fixed =
            |share: Option<f64>, at: i64| signal("fixed_later", "fail", at).with_value(share);
        // A quarter of its lines touched on day 2, then an eighth on day 5.
        c.signals.push(fixed(Some(0.25), LANDED + 2 * DAY_MS));
        c.signals.push(fixed(Some(0.125), LANDED + 5 * DAY_MS));
        let p = plan_commit(
            &c,
            (1.0, "W"),
            FACTOR_ONE,
            &[],
            &r,
            "v",
            LANDED + 15 * DAY_MS,
        );
        assert_eq!(p.state, State::Vested);
        // 9,714 × 0.375 = 3,642.75 → 3,643 cancelled (at the last fix); 6,071 vest.
        assert_eq!(
            amounts(&p),
            [
                (EntryKind::Accrual, 9_714, LANDED),
                (EntryKind::Vest, 6_071, LANDED + 14 * DAY_MS),
                (EntryKind::Cancel, -3_643, LANDED + 5 * DAY_MS),
            ]
        );
        // Fixed inside its own push (same landing time): nothing.
        let mut own = fix();
        own.signals.push(fixed(Some(1.0), LANDED));
        let p = plan_commit(&own, (1.0, "W"), FACTOR_ONE, &[], &r, "v", LANDED + DAY_MS);
        assert_eq!(amounts(&p), [(EntryKind::Accrual, 9_714, LANDED)]);
        // Four quarters make a whole: all of it, at the fourth.
        let mut whole = fix();
        for d in 1..=4 {
            whole.signals.push(fixed(Some(0.25), LANDED + d * DAY_MS));
        }
        let p = plan_commit(
            &whole,
            (1.0, "W"),
            FACTOR_ONE,
            &[],
            &r,
            "v",
            LANDED + 15 * DAY_MS,
        );
        assert_eq!(p.state, State::ClawedBack);
        assert_eq!(
            p.clawback,
            Some(("fixed_later".to_string(), LANDED + 4 * DAY_MS))
        );
        let cancelled: MilliTokens = p
            .entries
            .iter()
            .filter(|e| e.kind == EntryKind::Cancel)
            .map(|e| e.amount)
            .sum();
        assert_eq!(cancelled, -9_714);
        // A `Fixes:` without touched lines (no value) counts as all of them.
        let mut declared = fix();
        declared.signals.push(fixed(None, LANDED + DAY_MS));
        let p = plan_commit(
            &declared,
            (1.0, "W"),
            FACTOR_ONE,
            &[],
            &r,
            "v",
            LANDED + 2 * DAY_MS,
        );
        assert_eq!(p.state, State::ClawedBack);
    }

    #[test]
    fn later_signals_adjust_and_a_revert_claws_back() {
        let r = Rules::default();
        let mut c = fix();
        c.signals.clear();
        // No CI at landing: 10 × 0.809486 × 0.9 = 7.285374 → 7,285
        let p = plan_commit(&c, (1.0, "W"), FACTOR_ONE, &[], &r, "v", LANDED);
        assert_eq!(amounts(&p), [(EntryKind::Accrual, 7_285, LANDED)]);
        let mut have = existing(&p);
        // Red an hour later: × 0.3 = 2.428458 → 2,428; adjustment −4,857.
        c.signals.push(signal("ci", "fail", LANDED + 3_600_000));
        let p = plan_commit(&c, (1.0, "W"), FACTOR_ONE, &have, &r, "v", LANDED + DAY_MS);
        assert_eq!(
            amounts(&p),
            [(EntryKind::Adjustment, -4_857, LANDED + 3_600_000)]
        );
        have.extend(existing(&p));
        // A deploy pass after vesting changes nothing (the outcome settled at vesting).
        c.signals
            .push(signal("deploy", "pass", LANDED + 20 * DAY_MS));
        // Reverted on day 3: the whole 2,428 is cancelled then (it was pending); it never vests.
        c.signals
            .push(signal("reverted", "fail", LANDED + 3 * DAY_MS));
        let p = plan_commit(
            &c,
            (1.0, "W"),
            FACTOR_ONE,
            &have,
            &r,
            "v",
            LANDED + 30 * DAY_MS,
        );
        assert_eq!(p.state, State::ClawedBack);
        assert_eq!(
            amounts(&p),
            [(EntryKind::Cancel, -2_428, LANDED + 3 * DAY_MS)]
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
        let p = plan_commit(
            &c,
            (1.0, "W"),
            FACTOR_ONE,
            &[],
            &r,
            "v",
            LANDED + 30 * DAY_MS,
        );
        assert_eq!(p.state, State::Vested);
        assert_eq!(p.entries.len(), 2);
        let r = Rules {
            clawback_vested: true,
            ..Rules::default()
        };
        let p = plan_commit(
            &c,
            (1.0, "W"),
            FACTOR_ONE,
            &[],
            &r,
            "v",
            LANDED + 30 * DAY_MS,
        );
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
            plan_commit(&old, (1.0, "W"), FACTOR_ONE, &[], &r, "v", LANDED).state,
            State::Baseline
        );
        let human = CommitInputs { ai: false, ..fix() };
        assert_eq!(
            plan_commit(&human, (1.0, "W"), FACTOR_ONE, &[], &r, "v", LANDED).state,
            State::NotAi
        );
        let open = CommitInputs {
            landed_at: None,
            ..fix()
        };
        let p = plan_commit(&open, (1.0, "W"), FACTOR_ONE, &[], &r, "v", LANDED);
        assert_eq!((p.state, p.entries.len()), (State::NotLanded, 0));
        let dup = CommitInputs {
            duplicate_of: Some("b".repeat(40)),
            ..fix()
        };
        let p = plan_commit(&dup, (1.0, "W"), FACTOR_ONE, &[], &r, "v", LANDED);
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
        let p = plan_commit(&squash, (1.0, "W"), FACTOR_ONE, &[], &r, "v", LANDED);
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
        let p = plan_commit(&c, (1.0, "W"), FACTOR_ONE, &[], &r, "v", LANDED + DAY_MS);
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
        let p = plan_commit(&c, (1.0, "W"), FACTOR_ONE, &have, &r, "v", LANDED + DAY_MS);
        let total: MilliTokens = have.iter().map(|e| e.amount).sum::<i64>()
            + p.entries.iter().map(|e| e.amount).sum::<i64>();
        assert_eq!((p.earned, total), (8_095, 8_095));
        // A new fix weight: a correction brings the total to 12 × 0.809486 = 9,714.
        let mut heavier = Rules::default();
        heavier.tiers.insert("fix".into(), 12.0);
        let mut have = have;
        have.extend(existing(&p));
        let p = plan_commit(
            &c,
            (1.0, "W"),
            FACTOR_ONE,
            &have,
            &heavier,
            "v2",
            LANDED + DAY_MS,
        );
        assert_eq!(p.entries.len(), 1);
        assert_eq!(p.entries[0].kind, EntryKind::Adjustment);
        assert_eq!(p.entries[0].amount, 9_714 - 8_095);
        assert!(p.entries[0].key.contains(":v2:"));
    }

    #[test]
    fn a_force_push_claws_back_and_relanding_restores() {
        let r = Rules::default();
        let mut c = fix();
        let p = plan_commit(&c, (1.0, "W"), FACTOR_ONE, &[], &r, "v", LANDED);
        let mut have = existing(&p);
        c.landed_at = None;
        c.unlanded_at = Some(LANDED + DAY_MS);
        // Unlanded commits keep their landing time in the store; the engine
        // passes it on, so model that.
        c.landed_at = Some(LANDED);
        let p = plan_commit(&c, (1.0, "W"), FACTOR_ONE, &have, &r, "v", LANDED + DAY_MS);
        assert_eq!(amounts(&p), [(EntryKind::Cancel, -9_714, LANDED + DAY_MS)]);
        have.extend(existing(&p));
        c.unlanded_at = None;
        let p = plan_commit(
            &c,
            (1.0, "W"),
            FACTOR_ONE,
            &have,
            &r,
            "v",
            LANDED + 2 * DAY_MS,
        );
        assert_eq!(p.entries.len(), 1);
        assert_eq!(
            (p.entries[0].kind, p.entries[0].amount),
            (EntryKind::Cancel, 9_714)
        );
    }
}
