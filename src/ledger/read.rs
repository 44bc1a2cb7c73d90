//! Reading the ledger: balances, a person's entries, a commit's tokens, the
//! weekly leaderboard (statements and payouts are in `periods`).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use super::{Ledger, LedgerError, plan};
use crate::scoring::balance::{self, Balance, EntryKind};
use crate::scoring::hygiene::{HygieneEvents, hygiene, is_noise, payout_factor};
use crate::scoring::leaderboard::{PersonWeek, RankBy, rank};
use crate::scoring::signal::SignalName;
use crate::scoring::spend::{self, DayUsage, LandedCommit};
use crate::scoring::week::Week;
use crate::scoring::{MilliTokens, commit::efficiency, to_milli};
use crate::store::ledger::EntryRow;
use crate::store::weeks::WeekCommit;

/// Which part of the team a reading covers (a digest destination's filters);
/// `None` means everything.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub repositories: Option<HashSet<i64>>,
    pub people: Option<HashSet<String>>,
}

impl Scope {
    pub fn all() -> Scope {
        Scope::default()
    }

    pub fn has_repository(&self, id: Option<i64>) -> bool {
        match (&self.repositories, id) {
            (None, _) => true,
            (Some(set), Some(id)) => set.contains(&id),
            (Some(_), None) => false,
        }
    }

    pub fn has_person(&self, person: &str) -> bool {
        self.people.as_ref().is_none_or(|set| set.contains(person))
    }
}

/// One person's line of a week.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeaderboardLine {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rank: Option<u32>,
    pub person: String,
    pub value: MilliTokens,
    pub earned: MilliTokens,
    pub vested: MilliTokens,
    pub pending: MilliTokens,
    pub clawed_back: MilliTokens,
    pub payout_factor: f64,
    pub hygiene: u32,
    pub hygiene_events: HygieneCounts,
    pub efficiency: Option<f64>,
    /// Where the efficiency's usage comes from: `verified` (the agents' own
    /// metrics) or `self_reported` (`AI-Tokens:` trailers); never both.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub efficiency_source: Option<&'static str>,
    /// Verified usage of the week (weighted model tokens), when reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_usage: Option<u64>,
    /// What the agents reported the week's usage cost (USD), when they did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// That cost per landed AI commit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_per_commit_usd: Option<f64>,
    /// The cost of the week's work that was taken back: the usage before
    /// each commit whose tokens were cancelled or clawed back, apportioned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub taken_back_cost_usd: Option<f64>,
    /// Why the week's usage is waste (`nothing_landed`, `far_above_median`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waste: Option<&'static str>,
    pub revert_rate: f64,
    pub ai_commits: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trend: Option<String>,
}

impl LeaderboardLine {
    /// A person's line before anything is counted: nothing earned, hygiene 100.
    pub fn blank(person: &str) -> LeaderboardLine {
        LeaderboardLine {
            rank: None,
            person: person.to_string(),
            value: 0,
            earned: 0,
            vested: 0,
            pending: 0,
            clawed_back: 0,
            payout_factor: 1.0,
            hygiene: 100,
            hygiene_events: HygieneCounts::default(),
            efficiency: None,
            efficiency_source: None,
            verified_usage: None,
            cost_usd: None,
            cost_per_commit_usd: None,
            taken_back_cost_usd: None,
            waste: None,
            revert_rate: 0.0,
            ai_commits: 0,
            trend: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HygieneCounts {
    pub reverted: u32,
    /// Follow-up fixes by share of the lines they touched (0.25 + 1 = 1.25).
    pub fixed_later: f64,
    pub red_never_green: u32,
    pub duplicates: u32,
    pub noise: u32,
    /// A week of wasted usage (counts against hygiene only with `hygiene.waste`).
    pub waste: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Leaderboard {
    pub week: String,
    pub rules_version: String,
    pub rank_by: &'static str,
    pub entries: Vec<LeaderboardLine>,
    pub unranked: Vec<LeaderboardLine>,
}

impl Leaderboard {
    /// The API's form: amounts in tokens.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "week": self.week,
            "rules_version": self.rules_version,
            "rank_by": self.rank_by,
            "entries": self.entries.iter().map(line_json).collect::<Vec<_>>(),
            "unranked": self.unranked.iter().map(line_json).collect::<Vec<_>>(),
            "team": self.team_spend(),
        })
    }

    /// The whole team's verified cost of the week: in all, per landed AI
    /// commit, and of the work taken back (USD; nulls when nothing reported).
    pub fn team_spend(&self) -> serde_json::Value {
        let lines = self.entries.iter().chain(&self.unranked);
        let reported: Vec<&LeaderboardLine> = lines.filter(|l| l.cost_usd.is_some()).collect();
        if reported.is_empty() {
            return serde_json::json!({"cost_usd": null, "cost_per_commit_usd": null, "taken_back_cost_usd": null});
        }
        let cents = |f: fn(&LeaderboardLine) -> Option<f64>| -> f64 {
            let sum: f64 = reported.iter().filter_map(|l| f(l)).sum();
            (sum * 100.0).round() / 100.0
        };
        let cost = cents(|l| l.cost_usd);
        let commits: u32 = reported.iter().map(|l| l.ai_commits).sum();
        serde_json::json!({
            "cost_usd": cost,
            "cost_per_commit_usd": (commits > 0).then(|| (cost / f64::from(commits) * 100.0).round() / 100.0),
            "taken_back_cost_usd": cents(|l| l.taken_back_cost_usd),
        })
    }
}

fn line_json(l: &LeaderboardLine) -> serde_json::Value {
    let mut v = serde_json::json!({
        "person": l.person,
        "value": tokens(l.value),
        "earned": tokens(l.earned),
        "vested": tokens(l.vested),
        "pending": tokens(l.pending),
        "clawed_back": tokens(l.clawed_back),
        "payout_factor": l.payout_factor,
        "hygiene": l.hygiene,
        "hygiene_events": l.hygiene_events,
        "efficiency": l.efficiency,
        "efficiency_source": l.efficiency_source,
        "verified_usage": l.verified_usage,
        "cost_usd": l.cost_usd,
        "cost_per_commit_usd": l.cost_per_commit_usd,
        "taken_back_cost_usd": l.taken_back_cost_usd,
        "waste": l.waste,
        "revert_rate": l.revert_rate,
        "ai_commits": l.ai_commits,
    });
    if let Some(rank) = l.rank {
        v["rank"] = rank.into();
    }
    if let Some(trend) = &l.trend {
        v["trend"] = trend.clone().into();
    }
    v
}

/// One of a person's commits as their page lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonCommit {
    pub repo: String,
    pub sha: String,
    pub subject: String,
    pub landed_at: i64,
    /// pending, vested or clawed_back.
    pub state: &'static str,
    /// What it holds now: earned less what was cancelled or clawed back.
    pub tokens: MilliTokens,
    /// When it vests (pending) or vested.
    pub vests_at: i64,
    /// Its vested tokens.
    pub vested: MilliTokens,
    /// When tokens were taken back, and why (reverted, fixed_later, …).
    pub taken_back: Option<(i64, String)>,
    /// What counted against hygiene: red, duplicate, noise.
    pub flags: Vec<&'static str>,
}

impl Ledger {
    /// A person's commits landed in `[from, to)`, newest first, each with its
    /// state, tokens, vest date and what was taken back.
    pub async fn person_commits(
        &self,
        person: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<PersonCommit>, LedgerError> {
        let rows = self.store.person_commit_entries(person, from, to).await?;
        let vesting = i64::from(self.rules.vesting_days) * 86_400_000;
        let mut out: Vec<PersonCommit> = Vec::new();
        for (repo, sha, subject, landed_at, kind, amount, at, explanation) in rows {
            if out.last().is_none_or(|c| c.sha != sha || c.repo != repo) {
                out.push(PersonCommit {
                    repo,
                    sha: sha.clone(),
                    subject,
                    landed_at,
                    state: "pending",
                    tokens: 0,
                    vests_at: landed_at + vesting,
                    vested: 0,
                    taken_back: None,
                    flags: Vec::new(),
                });
            }
            let c = out.last_mut().expect("pushed above");
            let e: serde_json::Value = serde_json::from_str(&explanation).unwrap_or_default();
            match kind.as_str() {
                "accrual" | "adjustment" => {
                    c.tokens += amount;
                    let inputs = &e["inputs"];
                    c.flags.clear();
                    if inputs["ci"] == "red" {
                        c.flags.push("red_never_green");
                    }
                    if !inputs["duplicate_of"].is_null() {
                        c.flags.push("duplicate");
                    }
                    if inputs["noise"] == true {
                        c.flags.push("noise");
                    }
                }
                "vest" => {
                    c.vested += amount;
                    if amount > 0 {
                        c.vests_at = at;
                    }
                }
                "cancel" | "clawback" if amount < 0 => {
                    c.tokens += amount;
                    let reason = e["reason"].as_str().unwrap_or(kind.as_str()).to_string();
                    c.taken_back = Some((at, reason));
                }
                _ => {}
            }
        }
        for c in &mut out {
            c.state = if c.taken_back.is_some() && c.tokens <= 0 {
                "clawed_back"
            } else if c.vested > 0 {
                "vested"
            } else {
                "pending"
            };
        }
        Ok(out)
    }

    pub async fn balance(&self, person: &str) -> Result<Balance, LedgerError> {
        Ok(balance::balance(&self.store.person_sums(person).await?))
    }

    /// A person's entries effective in `week`.
    pub async fn person_entries(
        &self,
        person: &str,
        week: Week,
    ) -> Result<Vec<EntryRow>, LedgerError> {
        let (from, to) = week.bounds(self.tz);
        Ok(self.store.person_entries(person, from, to).await?)
    }

    /// Per person, the figures of `week` (see `docs/scoring.md`, "The leaderboard") in `scope`.
    pub async fn person_weeks(
        &self,
        week: Week,
        scope: &Scope,
    ) -> Result<Vec<LeaderboardLine>, LedgerError> {
        Ok(self.week_lines(week, scope).await?.0)
    }

    /// [`Ledger::person_weeks`], and the week's commits with their entries'
    /// sums that they are made of (the digest reads them too, and reading
    /// them is most of a week's cost).
    pub async fn week_lines(
        &self,
        week: Week,
        scope: &Scope,
    ) -> Result<(Vec<LeaderboardLine>, Vec<WeekCommit>), LedgerError> {
        let (from, to) = week.bounds(self.tz);
        let rules = &self.rules;
        // Two queries at once (PostgreSQL runs them on two connections).
        let (first_day, last_day) = week.days();
        // Usage from the window before the week on: a commit landing on
        // Monday owns the usage of the days before it.
        let window_days = self.usage_window_hours.div_ceil(24).max(1);
        let lookback =
            crate::scoring::week::day_of(from - i64::from(window_days - 1) * 86_400_000, self.tz);
        let (week_commits, events, usage) = tokio::try_join!(
            self.store.week_commits(from, to),
            self.store.hygiene_events_between(from, to),
            self.store.usage_between(&lookback, &last_day, None)
        )?;
        let usage_days = self.usage_days(usage);
        // The week's own verified usage and cost per person.
        let in_week = |d: &DayUsage| d.day >= first_day;
        let verified: BTreeMap<&str, (f64, i64)> = usage_days
            .iter()
            .map(|(person, days)| {
                let week_days = days.iter().filter(|d| in_week(d));
                let (tokens, cost) =
                    week_days.fold((0.0, 0), |(t, c), d| (t + d.tokens, c + d.cost_micro_usd));
                (person.as_str(), (tokens, cost))
            })
            .collect();
        // Each person's landed commits, for the cost of taken-back work.
        let mut landed: BTreeMap<&str, Vec<LandedCommit>> = BTreeMap::new();
        #[derive(Default)]
        struct Acc {
            line: Option<LeaderboardLine>,
            events: HygieneEvents,
            /// Reported usage, and what the commits that reported it earned.
            usage: u64,
            usage_earned: MilliTokens,
            usage_commits: u32,
            reverted_commits: u32,
        }
        let mut people: BTreeMap<String, Acc> = BTreeMap::new();
        let blank = LeaderboardLine::blank;
        let commits = week_commits
            .iter()
            .filter(|c| scope.has_repository(Some(c.repository_id)) && scope.has_person(&c.person));
        for c in commits {
            landed.entry(&c.person).or_default().push(LandedCommit {
                day: crate::scoring::week::day_of(c.landed_at.unwrap_or(from), self.tz),
                taken_back: c.clawed != 0 || c.cancelled != 0,
            });
            let acc = people.entry(c.person.clone()).or_default();
            let line = acc.line.get_or_insert_with(|| blank(&c.person));
            let sums = [
                (EntryKind::Accrual, c.earned),
                (EntryKind::Vest, c.vested),
                (EntryKind::Clawback, c.clawed),
                (EntryKind::Cancel, c.cancelled),
            ];
            let (pending, vested, clawed) = balance::standing(&sums);
            line.earned += c.earned;
            line.pending += pending;
            line.vested += vested;
            line.clawed_back += clawed;
            line.ai_commits += 1;
            // Efficiency divides like by like: only commits that reported usage.
            if let Some(usage) = c.usage_tokens.filter(|u| *u > 0) {
                acc.usage += usage as u64;
                acc.usage_earned += c.earned;
                acc.usage_commits += 1;
            }
            acc.reverted_commits += u32::from(c.reverted == 1);
            acc.events.red_never_green += u32::from(c.red());
            acc.events.duplicates += u32::from(c.duplicate());
            if c.noise() || is_noise(c.changed_lines.max(0) as u64, false, rules) {
                acc.events.noise += 1;
            }
        }
        for (person, repository_id, name, n, shares) in events {
            if !(scope.has_repository(Some(repository_id)) && scope.has_person(&person)) {
                continue;
            }
            let acc = people.entry(person.clone()).or_default();
            acc.line.get_or_insert_with(|| blank(&person));
            match name.as_str() {
                "reverted" => acc.events.reverted += n as u32,
                _ => acc.events.fixed_later += shares,
            }
        }
        // People whose agents reported usage but who landed nothing have a
        // line too: that usage is what waste is about.
        for (person, (tokens, _)) in &verified {
            if *tokens > 0.0 && scope.has_person(person) && scope.repositories.is_none() {
                let acc = people.entry(person.to_string()).or_default();
                acc.line.get_or_insert_with(|| blank(person));
            }
        }
        let per_commit: Vec<f64> = people
            .values()
            .filter_map(|acc| {
                let line = acc.line.as_ref()?;
                let (tokens, _) = verified.get(line.person.as_str())?;
                (line.ai_commits > 0 && *tokens > 0.0).then(|| tokens / f64::from(line.ai_commits))
            })
            .collect();
        let median = spend::team_median(&per_commit);
        let lines: Vec<LeaderboardLine> = people
            .into_values()
            .filter_map(|acc| {
                let mut line = acc.line?;
                let mut e = acc.events;
                if let Some((tokens, cost)) = verified
                    .get(line.person.as_str())
                    .filter(|(t, c)| *t > 0.0 || *c > 0)
                {
                    let commits = landed
                        .get(line.person.as_str())
                        .map(Vec::as_slice)
                        .unwrap_or_default();
                    let days = usage_days
                        .get(&line.person)
                        .map(Vec::as_slice)
                        .unwrap_or_default();
                    let shares = spend::apportion(days, commits, window_days);
                    let usd = |micro: f64| (micro / 1e4).round() / 100.0;
                    line.cost_usd = Some(usd(*cost as f64));
                    line.cost_per_commit_usd = (line.ai_commits > 0)
                        .then(|| usd(*cost as f64 / f64::from(line.ai_commits)));
                    line.taken_back_cost_usd = Some(usd(spend::taken_back_cost(commits, &shares)));
                    line.waste =
                        spend::waste(*tokens, line.ai_commits, median, rules.efficiency_min_usage);
                    e.waste = u32::from(line.waste.is_some());
                }
                line.hygiene = hygiene(&e, rules);
                line.hygiene_events = HygieneCounts {
                    reverted: e.reverted,
                    fixed_later: e.fixed_later,
                    red_never_green: e.red_never_green,
                    duplicates: e.duplicates,
                    noise: e.noise,
                    waste: e.waste,
                };
                line.payout_factor = payout_factor(line.hygiene, rules);
                line.value =
                    to_milli((line.earned - line.clawed_back) as f64 / 1000.0 * line.payout_factor);
                // Verified usage when the person's agents report it (all
                // their AI commits' tokens over it); else the trailers'
                // self-reported usage, like over like. Never the two mixed;
                // too little usage says nothing either way.
                let verified_usage = verified
                    .get(line.person.as_str())
                    .filter(|(u, _)| *u > 0.0)
                    .map(|(u, _)| u.round() as u64);
                line.verified_usage = verified_usage;
                (line.efficiency, line.efficiency_source) = match verified_usage {
                    Some(usage) if usage > 0 => (
                        (usage >= rules.efficiency_min_usage)
                            .then(|| efficiency(line.earned, usage))
                            .flatten(),
                        Some("verified"),
                    ),
                    _ => (
                        (acc.usage_commits >= rules.efficiency_min_commits
                            && acc.usage >= rules.efficiency_min_usage)
                            .then(|| efficiency(acc.usage_earned, acc.usage))
                            .flatten(),
                        (acc.usage_commits > 0).then_some("self_reported"),
                    ),
                };
                line.revert_rate = if line.ai_commits == 0 {
                    0.0
                } else {
                    f64::from(acc.reverted_commits) / f64::from(line.ai_commits)
                };
                Some(line)
            })
            .collect();
        Ok((lines, week_commits))
    }

    /// Per person, their days of verified usage: tokens (input + output +
    /// cache creation, cache reads at their weight) and cost.
    fn usage_days(
        &self,
        rows: Vec<crate::store::usage::UsageRow>,
    ) -> BTreeMap<String, Vec<DayUsage>> {
        use crate::scoring::usage::{Spent, UsageKind};
        let mut by_day: BTreeMap<(String, String), Spent> = BTreeMap::new();
        for (person, _agent, _model, day, kind, amount) in rows {
            if let Some(kind) = UsageKind::parse(&kind) {
                by_day
                    .entry((person, day))
                    .or_default()
                    .add(kind, amount, self.cache_read_weight);
            }
        }
        let mut out: BTreeMap<String, Vec<DayUsage>> = BTreeMap::new();
        for (
            (person, day),
            Spent {
                tokens,
                cost_micro_usd,
            },
        ) in by_day
        {
            out.entry(person).or_default().push(DayUsage {
                day,
                tokens,
                cost_micro_usd,
            });
        }
        out
    }

    /// The leaderboard of `week`, ranked by `by`, with the trend against the week before.
    pub async fn leaderboard(&self, week: Week, by: RankBy) -> Result<Leaderboard, LedgerError> {
        self.leaderboard_in(week, by, &Scope::all()).await
    }

    /// [`Ledger::leaderboard`] of the people and repositories in `scope`.
    pub async fn leaderboard_in(
        &self,
        week: Week,
        by: RankBy,
        scope: &Scope,
    ) -> Result<Leaderboard, LedgerError> {
        // This week and the one before (for the trend) at once.
        let (lines, previous_lines) = tokio::try_join!(
            self.person_weeks(week, scope),
            self.person_weeks(week.previous(self.tz), scope)
        )?;
        Ok(self.ranked(week, by, lines, &previous_lines))
    }

    /// Ranks a week's lines, with the trend against the week before.
    pub fn ranked(
        &self,
        week: Week,
        by: RankBy,
        lines: Vec<LeaderboardLine>,
        previous_lines: &[LeaderboardLine],
    ) -> Leaderboard {
        let to_week = |l: &LeaderboardLine| PersonWeek {
            person: l.person.clone(),
            value: l.value,
            hygiene: l.hygiene,
            efficiency: l.efficiency,
            ai_commits: l.ai_commits,
        };
        let before: Vec<PersonWeek> = previous_lines.iter().map(to_week).collect();
        let (ranked_before, _) = rank(&before, by, &BTreeMap::new(), &self.rules);
        let previous: BTreeMap<String, u32> = ranked_before
            .into_iter()
            .map(|r| (r.week.person, r.rank))
            .collect();
        let now: Vec<PersonWeek> = lines.iter().map(to_week).collect();
        let (ranked, unranked) = rank(&now, by, &previous, &self.rules);
        let by_person: HashMap<&str, &LeaderboardLine> =
            lines.iter().map(|l| (l.person.as_str(), l)).collect();
        let entries = ranked
            .iter()
            .map(|r| LeaderboardLine {
                rank: Some(r.rank),
                trend: Some(r.trend.as_text()),
                ..by_person[r.week.person.as_str()].clone()
            })
            .collect();
        let unranked = unranked
            .iter()
            .map(|w| by_person[w.person.as_str()].clone())
            .collect();
        Leaderboard {
            week: week.label(),
            rules_version: self.version.clone(),
            rank_by: match by {
                RankBy::Value => "value",
                RankBy::Efficiency => "efficiency",
                RankBy::Hygiene => "hygiene",
            },
            entries,
            unranked,
        }
    }
}

/// `GET …/commits/{repo}/{sha}/tokens` and `tokentally why`: what a commit earned and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommitTokens {
    pub repo: String,
    pub sha: String,
    pub subject: String,
    pub person: String,
    pub ai: bool,
    pub kind: String,
    pub state: &'static str,
    /// Milli-tokens: tier × size × outcome × calibration of the latest score.
    pub tokens: MilliTokens,
    pub pending: MilliTokens,
    pub vested: MilliTokens,
    pub clawed_back: MilliTokens,
    /// The latest score's factors (none for a commit that never accrued).
    pub factors: Option<serde_json::Value>,
    pub formula: Option<String>,
    pub inputs: Option<serde_json::Value>,
    pub hygiene_events: Vec<serde_json::Value>,
    /// When it vests (pending) or vested (RFC 3339); none for a commit that
    /// earns nothing or was taken back before vesting.
    pub vests_at: Option<String>,
    /// The signals received for it, each with who posted it (GitHub, git, or
    /// the API token by name and id).
    pub signals: Vec<serde_json::Value>,
    pub entries: Vec<EntryView>,
    /// Why it earns nothing though AI-assisted: no verified usage backs it
    /// where the rules require it.
    pub unverified_reason: Option<String>,
}

/// A ledger entry as the API shows it: amounts in tokens (3 decimals), times in RFC 3339.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntryView {
    pub kind: String,
    pub amount: f64,
    pub repo: Option<String>,
    pub sha: Option<String>,
    pub at: String,
    pub rules_version: String,
    /// The closed ISO week this entry corrects (it is dated in the oldest open week instead).
    pub corrects: Option<String>,
    /// A payout's money, in minor units of `payout.currency`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_minor: Option<i64>,
    /// A vest's payout factor (the hygiene of the week its work landed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payout_factor: Option<f64>,
    pub explanation: serde_json::Value,
}

impl From<&EntryRow> for EntryView {
    fn from(e: &EntryRow) -> Self {
        EntryView {
            kind: e.kind.as_str().to_string(),
            amount: tokens(e.amount),
            repo: e.repo.clone(),
            sha: e.sha.clone(),
            at: rfc3339(e.at),
            rules_version: e.rules_version.clone(),
            corrects: e.corrects.clone(),
            amount_minor: e.money_minor,
            payout_factor: e.payout_factor_ppm.map(|f| f as f64 / 1_000_000.0),
            explanation: serde_json::from_str(&e.explanation).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// Milli-tokens as tokens (a number with 3 decimals).
pub fn tokens(milli: MilliTokens) -> f64 {
    milli as f64 / 1000.0
}

impl Ledger {
    /// What `commit` (of `repository`) earned, from its entries and signals.
    pub async fn commit_tokens(
        &self,
        repository: &crate::store::repositories::Repository,
        commit: &crate::store::commits::CommitRow,
    ) -> Result<CommitTokens, LedgerError> {
        let entries = self.store.entries_of_commit(commit.id).await?;
        let signals = self
            .store
            .signals_for_commit(repository.id, &commit.sha)
            .await?;
        let sums: Vec<(EntryKind, MilliTokens)> =
            entries.iter().map(|e| (e.kind, e.amount)).collect();
        let (pending, vested, clawed_back) = balance::standing(&sums);
        let tokens = sums
            .iter()
            .filter(|(k, _)| k.is_earning())
            .map(|(_, a)| a)
            .sum();
        let latest: Option<serde_json::Value> = entries
            .iter()
            .rev()
            .find(|e| e.kind.is_earning())
            .and_then(|e| serde_json::from_str(&e.explanation).ok());
        let total = |kind: EntryKind| -> MilliTokens {
            sums.iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, a)| a)
                .sum()
        };
        let unverified_reason = match tokens {
            0 => {
                self.commit_unverified(&repository.full_name, commit)
                    .await?
            }
            _ => None,
        };
        let state = if commit.landed_at.is_none() {
            plan::State::NotLanded
        } else if commit.ai == 0 {
            plan::State::NotAi
        } else if entries.is_empty() {
            let pay_from = self.pay_from.unwrap_or(repository.created_at);
            if commit.landed_at < Some(pay_from) {
                plan::State::Baseline
            } else if unverified_reason.is_some() {
                plan::State::Unverified
            } else {
                plan::State::Pending
            }
        } else if unverified_reason.is_some() && tokens == 0 && total(EntryKind::Vest) == 0 {
            // Earned before the rules asked for proof, undone since.
            plan::State::Unverified
        } else if total(EntryKind::Clawback) + total(EntryKind::Cancel) != 0
            && tokens + total(EntryKind::Clawback) + total(EntryKind::Cancel) <= 0
        {
            // All of it taken back (a share taken by a follow-up fix leaves
            // the rest pending or vested).
            plan::State::ClawedBack
        } else if total(EntryKind::Vest) > 0 {
            plan::State::Vested
        } else {
            plan::State::Pending
        };
        let mut hygiene_events = Vec::new();
        for s in &signals {
            if s.name == SignalName::Reverted {
                hygiene_events.push(serde_json::json!({
                    "event": s.name,
                    "by": s.context,
                    "at": rfc3339(s.occurred_at),
                    "penalty": self.rules.hygiene.reverted,
                }));
            } else if s.name == SignalName::FixedLater
                && commit.landed_at.is_some_and(|t| s.occurred_at > t)
            {
                // A follow-up fix: the share of its added lines the fix touched.
                let share = s.value.map_or(1.0, |v| v.clamp(0.0, 1.0));
                hygiene_events.push(serde_json::json!({
                    "event": s.name,
                    "by": s.context,
                    "at": rfc3339(s.occurred_at),
                    "share": share,
                    "found_by": if s.value.is_some() { "blame" } else { "Fixes: trailer" },
                    "penalty": f64::from(self.rules.hygiene.fixed_later) * share,
                }));
            }
        }
        if let Some(latest) = &latest {
            if latest["inputs"]["ci"] == "red" {
                hygiene_events.push(serde_json::json!({"event": "red_never_green", "penalty": self.rules.hygiene.red_never_green}));
            }
            if !latest["inputs"]["duplicate_of"].is_null() {
                hygiene_events.push(serde_json::json!({"event": "duplicate", "of": latest["inputs"]["duplicate_of"], "penalty": self.rules.hygiene.duplicate}));
            }
            if latest["inputs"]["noise"] == true
                || is_noise(commit.changed_lines.max(0) as u64, false, &self.rules)
            {
                hygiene_events.push(serde_json::json!({"event": "noise", "changed_lines": commit.changed_lines, "penalty": self.rules.hygiene.noise}));
            }
        }
        let vests_at = match state {
            plan::State::Vested => entries
                .iter()
                .filter(|e| e.kind == EntryKind::Vest && e.amount > 0)
                .map(|e| e.at)
                .next_back(),
            plan::State::Pending => commit
                .landed_at
                .map(|t| t + i64::from(self.rules.vesting_days) * 86_400_000),
            _ => None,
        };
        Ok(CommitTokens {
            vests_at: vests_at.map(rfc3339),
            repo: repository.full_name.clone(),
            sha: commit.sha.clone(),
            subject: commit.subject.clone(),
            person: commit.person.clone(),
            ai: commit.ai == 1,
            kind: commit.kind.clone(),
            state: state.as_str(),
            tokens,
            pending,
            vested,
            clawed_back,
            factors: latest.as_ref().map(|l| l["factors"].clone()),
            formula: latest
                .as_ref()
                .and_then(|l| l["formula"].as_str().map(String::from)),
            inputs: latest.as_ref().map(|l| l["inputs"].clone()),
            hygiene_events,
            signals: signals
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "signal": s.name,
                        "status": s.status,
                        "value": s.value,
                        "at": rfc3339(s.occurred_at),
                        "source": s.source,
                        "context": s.context,
                        "token": s.source.strip_prefix("api:"),
                        "token_id": s.token_id,
                    })
                })
                .collect(),
            entries: entries.iter().map(EntryView::from).collect(),
            unverified_reason,
        })
    }
}

impl CommitTokens {
    /// The API's form: amounts in tokens.
    pub fn to_json(&self) -> serde_json::Value {
        let t = self;
        let factor = |name: &str| t.factors.as_ref().map(|f| f[name].clone());
        serde_json::json!({
            "repo": t.repo,
            "sha": t.sha,
            "subject": t.subject,
            "person": t.person,
            "ai": t.ai,
            "kind": t.kind,
            "state": t.state,
            "tokens": tokens(t.tokens),
            "pending": tokens(t.pending),
            "vested": tokens(t.vested),
            "clawed_back": tokens(t.clawed_back),
            "factors": t.factors.as_ref().map(|_| serde_json::json!({
                "tier": factor("tier"),
                "size": factor("size"),
                "outcome": factor("outcome"),
                "calibration": factor("calibration"),
            })),
            "formula": t.formula,
            "inputs": t.inputs,
            "hygiene_events": t.hygiene_events,
            "vests_at": t.vests_at,
            "signals": t.signals,
            "entries": t.entries,
            "unverified_reason": t.unverified_reason,
        })
    }
}

/// Epoch ms as RFC 3339 (UTC).
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}
