//! The weekly digest: the data of one ISO week (this module), then pure
//! renderers — Markdown ([`markdown`]), Discord embeds ([`discord`]) and the
//! chart ([`chart`]). The JSON form is this data serialised.

pub mod chart;
pub mod discord;
pub mod markdown;

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::TimeZone;
use serde::Serialize;

use crate::config::{Config, DestinationConfig, PayoutMode};
use crate::ledger::periods::Statement;
use crate::ledger::read::{LeaderboardLine, Scope};
use crate::ledger::{Ledger, LedgerError};
use crate::scoring::MilliTokens;
use crate::scoring::leaderboard::RankBy;
use crate::scoring::usage::{Spent, UsageKind};
use crate::scoring::week::Week;
use crate::store::usage::UsageRow;
use crate::store::weeks::LandingRow;

/// Weeks of the team trend (chart and dashboard).
pub const TREND_WEEKS: usize = 12;

/// Everything a digest shows. Amounts are milli-tokens; the JSON form has tokens.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Digest {
    pub week: String,
    /// `Nov 16–22`.
    pub dates: String,
    pub timezone: String,
    /// The destination whose filters shaped it (none: the whole team).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// Nothing landed, vested or was clawed back.
    pub quiet: bool,
    pub totals: Totals,
    pub commits: CommitStats,
    /// The top N of the leaderboard (by value).
    pub leaderboard: Vec<DigestLine>,
    /// Ranked people beyond the top N.
    pub more: usize,
    pub highlights: Highlights,
    /// The bad news, itemised: tokens cancelled or clawed back this week.
    pub taken_back: Vec<TakenBack>,
    /// People who earned this week but are not ranked (too few AI commits).
    pub also_earned: Vec<AlsoEarned>,
    /// AI commits a person needs in the week to be ranked.
    pub min_ai_commits: u32,
    /// The team's earned tokens against the week before (milli-tokens, signed).
    #[serde(serialize_with = "as_tokens")]
    pub earned_change: MilliTokens,
    /// Agents of the week's landed AI commits (and those that reported
    /// usage), most used first.
    pub agents: Vec<AgentCount>,
    /// People whose usage was waste this week.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waste: Vec<WasteLine>,
    /// Earned tokens per week, oldest first (the 12-week trend).
    pub trend: Vec<WeekTotal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dashboard_url: Option<String>,
    pub rules_version: String,
    /// Person → Discord id, for mentions (of everyone the digest names).
    #[serde(skip)]
    pub discord_ids: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Totals {
    #[serde(serialize_with = "as_tokens")]
    pub earned: MilliTokens,
    #[serde(serialize_with = "as_tokens")]
    pub vested: MilliTokens,
    #[serde(serialize_with = "as_tokens")]
    pub clawed_back: MilliTokens,
    /// Vested tokens booked this week that correct a closed week.
    #[serde(serialize_with = "as_tokens")]
    pub corrections: MilliTokens,
    /// Tokens paid at the week's close.
    #[serde(serialize_with = "as_tokens")]
    pub paid: MilliTokens,
    /// The week's payouts, in minor units of `currency` (from its statement).
    pub payout_minor: i64,
    /// In `redeem` mode: the week's vested tokens valued at `rate`, minor units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vested_value_minor: Option<i64>,
    pub currency: String,
    /// `payout.mode`: rate, pool or redeem.
    pub mode: &'static str,
    /// Rate and redeem modes: currency units per token (exact decimal text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<String>,
    /// Whether the week is closed (its statement final); an open week's money is a preview.
    pub closed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pto_hours: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommitStats {
    pub landed: u32,
    pub ai: u32,
    /// AI commits / landed commits (0 when none landed).
    pub ai_share: f64,
    pub ai_reverted: u32,
    pub human_reverted: u32,
    pub ai_revert_rate: f64,
    pub human_revert_rate: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DigestLine {
    pub rank: u32,
    pub person: String,
    /// The person's Discord id, for a mention.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discord_id: Option<String>,
    #[serde(serialize_with = "as_tokens")]
    pub value: MilliTokens,
    #[serde(serialize_with = "as_tokens")]
    pub vested: MilliTokens,
    #[serde(serialize_with = "as_tokens")]
    pub pending: MilliTokens,
    /// Tokens per 1,000 usage tokens.
    pub efficiency: Option<f64>,
    pub hygiene: u32,
    /// `▲2`, `▼1`, `=`, `new`.
    pub trend: String,
    pub reverts: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Highlights {
    pub most_valuable: Option<ValuableCommit>,
    pub hygiene_gain: Option<HygieneGain>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValuableCommit {
    pub repo: String,
    pub sha: String,
    pub subject: String,
    pub person: String,
    pub kind: String,
    #[serde(serialize_with = "as_tokens")]
    pub tokens: MilliTokens,
    /// `fix 10 × size 0.81 × CI first run 1.2 × calibration 1.05 = 10.2`.
    pub factors: String,
}

/// Tokens a commit lost this week, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TakenBack {
    pub repo: String,
    /// Short id (12).
    pub sha: String,
    pub subject: String,
    pub person: String,
    #[serde(serialize_with = "as_tokens")]
    pub tokens: MilliTokens,
    /// `reverted`, `fixed_later`, `incident`, `force_pushed_away`, …
    pub reason: String,
    /// The commit that reverted or fixed it (short id), when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// An unranked person's earnings of the week.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlsoEarned {
    pub person: String,
    #[serde(serialize_with = "as_tokens")]
    pub earned: MilliTokens,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HygieneGain {
    pub person: String,
    pub from: u32,
    pub to: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentCount {
    pub agent: String,
    pub commits: u32,
    /// Verified usage the agent reported in the week (weighted tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<u64>,
    /// What that usage cost (USD).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

/// A person whose week of usage was waste, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WasteLine {
    pub person: String,
    /// `nothing_landed` or `far_above_median`.
    pub reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeekTotal {
    pub week: String,
    #[serde(serialize_with = "as_tokens")]
    pub earned: MilliTokens,
}

fn as_tokens<S: serde::Serializer>(milli: &MilliTokens, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(*milli as f64 / 1000.0)
}

/// `Nov 16–22` (or `Nov 30–Dec 6`) for the days of `week` in `tz`.
pub fn week_dates(week: Week, tz: chrono_tz::Tz) -> String {
    let (from, to) = week.bounds(tz);
    let day = |ms: i64| tz.timestamp_millis_opt(ms).single().expect("an instant");
    let (first, last) = (day(from), day(to - 1));
    if first.format("%b").to_string() == last.format("%b").to_string() {
        format!("{}–{}", first.format("%b %-d"), last.format("%-d"))
    } else {
        format!("{}–{}", first.format("%b %-d"), last.format("%b %-d"))
    }
}

/// The part of the team a destination covers.
pub async fn scope_of(
    ledger: &Ledger,
    destination: Option<&DestinationConfig>,
) -> Result<Scope, LedgerError> {
    let Some(d) = destination else {
        return Ok(Scope::all());
    };
    let repositories = if d.repos.is_empty() {
        None
    } else {
        let wanted: HashSet<String> = d.repos.iter().map(|r| r.to_lowercase()).collect();
        Some(
            ledger
                .store()
                .repositories()
                .await?
                .into_iter()
                .filter(|r| wanted.contains(&r.full_name.to_lowercase()))
                .map(|r| r.id)
                .collect(),
        )
    };
    let people = (!d.people.is_empty()).then(|| d.people.iter().cloned().collect());
    Ok(Scope {
        repositories,
        people,
    })
}

/// Builds the digest of `week` for `destination` (all of the team when none).
pub async fn build(
    ledger: &Ledger,
    config: &Config,
    week: Week,
    destination: Option<&DestinationConfig>,
) -> Result<Digest, LedgerError> {
    let tz = ledger.tz();
    let scope = scope_of(ledger, destination).await?;
    let store = ledger.store();
    let (from, to) = week.bounds(tz);
    let trend_from = {
        let mut w = week;
        for _ in 1..TREND_WEEKS {
            w = w.previous(tz);
        }
        w.bounds(tz).0
    };
    let previous = week.previous(tz);
    let (first_day, last_day) = week.days();
    let (
        (lines, week_commits),
        previous_lines,
        landings,
        movement,
        statement,
        earned_by_landing,
        people,
        usage,
    ) = tokio::try_join!(
        ledger.week_lines(week, &scope),
        ledger.person_weeks(previous, &scope),
        async { Ok(store.week_landings(from, to).await?) },
        async { Ok(store.movement_between(from, to).await?) },
        ledger.statement(week),
        async { Ok(store.earned_by_landing(trend_from, to).await?) },
        async { Ok::<_, LedgerError>(store.people().await?) },
        async { Ok::<_, LedgerError>(store.usage_between(&first_day, &last_day, None).await?) },
    )?;
    let board = ledger.ranked(week, RankBy::Value, lines.clone(), &previous_lines);
    // The week's most valuable commit: the most earned, less clawed back
    // (clawback sums are negative).
    let net = |c: &crate::store::weeks::WeekCommit| c.earned - c.clawed.abs() - c.cancelled.abs();
    let best = week_commits
        .into_iter()
        .filter(|c| scope.has_repository(Some(c.repository_id)) && scope.has_person(&c.person))
        .max_by_key(|c| (net(c), std::cmp::Reverse(c.id)));
    let most_valuable = match best {
        Some(c) if net(&c) > 0 => valuable(ledger, c.id, net(&c)).await?,
        _ => None,
    };
    let discord_ids: HashMap<String, String> = people
        .into_iter()
        .filter_map(|p| Some((p.key, p.discord_id?)))
        .collect();
    let mut taken_back = Vec::new();
    for (repository_id, repo, sha, subject, person, amount, explanation) in
        store.taken_back_between(from, to).await?
    {
        if !(scope.has_repository(Some(repository_id)) && scope.has_person(&person)) {
            continue;
        }
        let explanation: serde_json::Value = serde_json::from_str(&explanation).unwrap_or_default();
        let reason = explanation["reason"]
            .as_str()
            .unwrap_or("clawback")
            .to_string();
        let by = store
            .commits_linking_to(repository_id, &sha)
            .await?
            .into_iter()
            .find(|(name, _)| *name == reason)
            .map(|(_, by)| by[..by.len().min(12)].to_string());
        taken_back.push(TakenBack {
            repo,
            sha: sha[..sha.len().min(12)].to_string(),
            subject,
            person,
            tokens: -amount,
            reason,
            by,
        });
    }
    let inputs = Inputs {
        taken_back,
        unranked: &board.unranked,
        week,
        tz,
        scope: &scope,
        board_entries: &board.entries,
        lines: &lines,
        previous_lines: &previous_lines,
        landings: &landings,
        movement: &movement,
        statement: &statement,
        earned_by_landing: &earned_by_landing,
        discord_ids: &discord_ids,
        most_valuable,
        top: config.digest.top,
        usage: &usage,
    };
    Ok(assemble(inputs, config, ledger.version(), destination))
}

/// What the most valuable commit earned, with its factors' arithmetic.
async fn valuable(
    ledger: &Ledger,
    commit_id: i64,
    tokens: MilliTokens,
) -> Result<Option<ValuableCommit>, LedgerError> {
    let Some((repo, commit)) = ledger.store().commit_by_id(commit_id).await? else {
        return Ok(None);
    };
    let entries = ledger.store().entries_of_commit(commit_id).await?;
    let latest: Option<serde_json::Value> = entries
        .iter()
        .rev()
        .find(|e| matches!(e.kind.as_str(), "accrual" | "adjustment"))
        .and_then(|e| serde_json::from_str(&e.explanation).ok());
    let factors = latest
        .map(|l| factor_text(&commit.kind, &l["factors"], tokens))
        .unwrap_or_default();
    Ok(Some(ValuableCommit {
        repo,
        sha: commit.sha,
        subject: commit.subject,
        person: commit.person,
        kind: commit.kind,
        tokens,
        factors,
    }))
}

/// `fix 10 × size 0.81 × outcome 1.2 × calibration 1.05 = 10.2`.
pub fn factor_text(kind: &str, factors: &serde_json::Value, tokens: MilliTokens) -> String {
    let number = |name: &str| factors[name].as_f64();
    let mut parts = Vec::new();
    if let Some(tier) = number("tier") {
        parts.push(format!("{kind} {}", short(tier)));
    }
    for name in ["size", "outcome", "calibration"] {
        if let Some(v) = number(name) {
            parts.push(format!("{name} {}", short(v)));
        }
    }
    format!("{} = {}", parts.join(" × "), short(tokens as f64 / 1000.0))
}

/// A number with at most two decimals, trailing zeros dropped (`10`, `0.81`, `1.2`).
pub fn short(v: f64) -> String {
    let text = format!("{v:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_string()
    } else {
        text.to_string()
    }
}

/// What [`assemble`] reads: the week's rows, already fetched.
pub struct Inputs<'a> {
    pub taken_back: Vec<TakenBack>,
    /// The people with lines who are not ranked.
    pub unranked: &'a [LeaderboardLine],
    pub week: Week,
    pub tz: chrono_tz::Tz,
    pub scope: &'a Scope,
    pub board_entries: &'a [LeaderboardLine],
    pub lines: &'a [LeaderboardLine],
    pub previous_lines: &'a [LeaderboardLine],
    pub landings: &'a [LandingRow],
    /// (person, repository, kind, sum) of vest and clawback entries in the week.
    pub movement: &'a [(String, Option<i64>, String, i64)],
    /// The week's statement (the money line reads it).
    pub statement: &'a Statement,
    /// (landing time, earned) of the trend's weeks.
    pub earned_by_landing: &'a [(i64, MilliTokens)],
    pub discord_ids: &'a HashMap<String, String>,
    pub most_valuable: Option<ValuableCommit>,
    /// People the leaderboard lists (`digest.top`; all of them on the dashboard).
    pub top: usize,
    /// The week's verified usage rows.
    pub usage: &'a [UsageRow],
}

/// The digest from its inputs (pure).
pub fn assemble(
    i: Inputs<'_>,
    config: &Config,
    rules_version: &str,
    destination: Option<&DestinationConfig>,
) -> Digest {
    let scope = i.scope;
    let p = &config.payout;
    let mut totals = Totals {
        earned: i.lines.iter().map(|l| l.earned).sum(),
        vested: 0,
        clawed_back: 0,
        corrections: 0,
        paid: 0,
        payout_minor: 0,
        vested_value_minor: None,
        currency: p.currency.clone(),
        mode: p.mode.as_str(),
        rate: (p.mode != PayoutMode::Pool).then(|| p.rate.to_string()),
        closed: i.statement.closed,
        pto_hours: None,
    };
    // Vested and clawed back: the week's entries, repository by repository.
    // A person's money (from the statement) counts in the share of their
    // week's vests that is in scope (all of it without a repository filter).
    let mut in_scope: HashMap<&str, (MilliTokens, MilliTokens)> = HashMap::new();
    for (person, repository, kind, sum) in i.movement {
        let in_repos = scope.has_repository(*repository);
        if in_repos && scope.has_person(person) {
            match kind.as_str() {
                "vest" => totals.vested += sum,
                _ => totals.clawed_back += -sum,
            }
        }
        if kind == "vest" {
            let e = in_scope.entry(person.as_str()).or_default();
            e.1 += sum;
            if in_repos {
                e.0 += sum;
            }
        }
    }
    let share = |person: &str| match in_scope.get(person) {
        Some((part, all)) if *all > 0 && *part >= 0 => *part as f64 / *all as f64,
        _ if scope.repositories.is_some() => 0.0,
        _ => 1.0,
    };
    let scaled = |amount: i64, share: f64| (amount as f64 * share).round() as i64;
    for line in i
        .statement
        .lines
        .iter()
        .filter(|l| scope.has_person(&l.person))
    {
        let s = share(&line.person);
        totals.corrections += scaled(line.corrections, s);
        totals.paid += scaled(line.paid, s);
        totals.payout_minor += scaled(line.amount_minor, s);
    }
    if p.mode == PayoutMode::Redeem {
        totals.vested_value_minor =
            Some(p.rate_minor(totals.vested + totals.corrections - totals.clawed_back));
    }
    if let Some(hours) = p.pto_hours_per_token {
        let tokens = match p.mode {
            PayoutMode::Redeem => totals.vested + totals.corrections - totals.clawed_back,
            _ => totals.paid,
        };
        totals.pto_hours = Some((tokens as f64 / 1000.0 * hours * 100.0).round() / 100.0);
    }

    let mut stats = CommitStats {
        landed: 0,
        ai: 0,
        ai_share: 0.0,
        ai_reverted: 0,
        human_reverted: 0,
        ai_revert_rate: 0.0,
        human_revert_rate: 0.0,
    };
    let mut agents: BTreeMap<String, u32> = BTreeMap::new();
    for row in i
        .landings
        .iter()
        .filter(|r| scope.has_repository(Some(r.repository_id)))
    {
        let (n, reverted) = (row.landed as u32, row.reverted as u32);
        stats.landed += n;
        if row.ai == 1 {
            stats.ai += n;
            stats.ai_reverted += reverted;
            let slugs: Vec<String> = serde_json::from_str(&row.agents).unwrap_or_default();
            for slug in slugs {
                *agents.entry(slug).or_default() += n;
            }
        } else {
            stats.human_reverted += reverted;
        }
    }
    let ratio = |a: u32, b: u32| {
        if b == 0 {
            0.0
        } else {
            f64::from(a) / f64::from(b)
        }
    };
    stats.ai_share = ratio(stats.ai, stats.landed);
    stats.ai_revert_rate = ratio(stats.ai_reverted, stats.ai);
    stats.human_revert_rate = ratio(stats.human_reverted, stats.landed - stats.ai);
    // Verified usage and cost per agent, of the people in scope.
    let mut usage: BTreeMap<String, Spent> = BTreeMap::new();
    for (person, agent, _model, _day, kind, amount) in i.usage {
        let Some(kind) = UsageKind::parse(kind).filter(|_| scope.has_person(person)) else {
            continue;
        };
        usage
            .entry(agent.clone())
            .or_default()
            .add(kind, *amount, config.usage.cache_read_weight);
        agents.entry(agent.clone()).or_default();
    }
    let mut agents: Vec<AgentCount> = agents
        .into_iter()
        .map(|(agent, commits)| {
            let reported = usage.get(&agent);
            AgentCount {
                usage: reported.map(|s| s.tokens.round() as u64),
                cost_usd: reported.map(|s| (s.cost_micro_usd as f64 / 1e4).round() / 100.0),
                agent,
                commits,
            }
        })
        .collect();
    agents.sort_by(|a, b| {
        (b.commits, b.usage)
            .cmp(&(a.commits, a.usage))
            .then(a.agent.cmp(&b.agent))
    });
    let waste = i
        .lines
        .iter()
        .filter(|l| scope.has_person(&l.person))
        .filter_map(|l| {
            Some(WasteLine {
                person: l.person.clone(),
                reason: l.waste?,
                cost_usd: l.cost_usd,
            })
        })
        .collect();

    let top = i.top;
    let leaderboard: Vec<DigestLine> = i
        .board_entries
        .iter()
        .take(top)
        .map(|l| DigestLine {
            rank: l.rank.unwrap_or(0),
            person: l.person.clone(),
            discord_id: i.discord_ids.get(&l.person).cloned(),
            value: l.value,
            vested: l.vested,
            pending: l.pending,
            efficiency: l.efficiency,
            hygiene: l.hygiene,
            trend: arrow(l.trend.as_deref().unwrap_or("new")),
            reverts: l.hygiene_events.reverted,
        })
        .collect();
    let more = i.board_entries.len().saturating_sub(top);

    // Biggest hygiene gain: of people with lines both weeks, the largest rise.
    let before: HashMap<&str, u32> = i
        .previous_lines
        .iter()
        .map(|l| (l.person.as_str(), l.hygiene))
        .collect();
    // Never someone whose work was reverted this week.
    let hygiene_gain = i
        .lines
        .iter()
        .filter(|l| l.hygiene_events.reverted == 0)
        .filter_map(|l| {
            let from = *before.get(l.person.as_str())?;
            (l.hygiene > from).then(|| HygieneGain {
                person: l.person.clone(),
                from,
                to: l.hygiene,
            })
        })
        .max_by(|a, b| {
            (a.to - a.from)
                .cmp(&(b.to - b.from))
                .then(b.person.cmp(&a.person))
        });

    // The trend: earned per week by landing time (the whole team's).
    let mut weeks = vec![i.week];
    for _ in 1..TREND_WEEKS {
        let earlier = weeks.last().expect("one week").previous(i.tz);
        weeks.push(earlier);
    }
    weeks.reverse();
    let mut by_week: BTreeMap<Week, MilliTokens> = weeks.iter().map(|w| (*w, 0)).collect();
    for (landed_at, earned) in i.earned_by_landing {
        if let Some(sum) = by_week.get_mut(&Week::of(*landed_at, i.tz)) {
            *sum += earned;
        }
    }
    let trend = by_week
        .into_iter()
        .map(|(w, earned)| WeekTotal {
            week: w.label(),
            earned,
        })
        .collect();

    let quiet = stats.landed == 0
        && totals.vested == 0
        && totals.clawed_back == 0
        && totals.earned == 0
        && i.lines.is_empty();
    let also_earned = i
        .unranked
        .iter()
        .filter(|l| l.earned > 0 && scope.has_person(&l.person))
        .map(|l| AlsoEarned {
            person: l.person.clone(),
            earned: l.earned,
        })
        .collect();
    let earned_before: MilliTokens = i.previous_lines.iter().map(|l| l.earned).sum();
    Digest {
        taken_back: i.taken_back,
        also_earned,
        min_ai_commits: config.scoring.leaderboard_min_ai_commits,
        earned_change: totals.earned - earned_before,
        week: i.week.label(),
        dates: week_dates(i.week, i.tz),
        timezone: config.timezone.clone(),
        destination: destination.map(|d| d.name.clone()),
        quiet,
        totals,
        commits: stats,
        leaderboard,
        more,
        highlights: Highlights {
            most_valuable: i.most_valuable,
            hygiene_gain,
        },
        agents,
        waste,
        trend,
        dashboard_url: config
            .public_url
            .as_ref()
            .map(|u| format!("{}/?week={}", u.trim_end_matches('/'), i.week.label())),
        rules_version: rules_version.to_string(),
        discord_ids: i
            .discord_ids
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// The API's trend (`+2`, `-1`, `=`, `new`) as the digest shows it (`▲2`, `▼1`).
fn arrow(trend: &str) -> String {
    if let Some(n) = trend.strip_prefix('+') {
        format!("▲{n}")
    } else if let Some(n) = trend.strip_prefix('-') {
        format!("▼{n}")
    } else {
        trend.to_string()
    }
}

/// Money in minor units as text: `$596.00` for USD, `¥1205` for JPY, `596.00 CHF` otherwise.
pub fn money(minor: i64, currency: &str) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let exponent = crate::scoring::money::exponent(currency).unwrap_or(2);
    let amount = rust_decimal::Decimal::new(minor.abs(), exponent).to_string();
    match currency {
        "USD" => format!("{sign}${amount}"),
        "EUR" => format!("{sign}€{amount}"),
        "GBP" => format!("{sign}£{amount}"),
        "JPY" => format!("{sign}¥{amount}"),
        other => format!("{sign}{amount} {other}"),
    }
}

/// A ratio as a percentage with one decimal (`3.3%`).
pub fn percent(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

/// Milli-tokens as tokens with one decimal (`412.6`).
pub fn tokens1(milli: MilliTokens) -> String {
    format!("{:.1}", milli as f64 / 1000.0)
}

#[cfg(test)]
mod tests;
