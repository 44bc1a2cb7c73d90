//! `/people/{person}`: balance, the 12-week trend, hygiene events, the
//! statements of the last 12 closed weeks, and the week's ledger entries with
//! their explanations.

use crate::server::extract::{Path, Query};
use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::layout::{not_found, ok, repo_path, shell, time, tokens, unavailable};
use super::{Viewer, next_week, week_of};
use crate::digest::TREND_WEEKS;
use crate::ledger::read::LeaderboardLine;
use crate::scoring::usage::{Spent, UsageKind};
use crate::scoring::week::Week;
use crate::server::AppState;
use crate::store::usage::UsageRow;

#[derive(Debug, Deserialize)]
pub struct PersonQuery {
    week: Option<String>,
}

/// `/me`: the page of the person the login's token belongs to.
pub async fn me(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Query(q): Query<PersonQuery>,
) -> Response {
    match viewer.person.clone() {
        Some(person) => page(State(state), Extension(viewer), Path(person), Query(q)).await,
        None => not_found(
            &viewer,
            "This login is not tied to a person. Sign in with a token made for you: \
             `tokentally token create --name NAME --role read --person YOU`.",
        ),
    }
}

pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(person): Path<String>,
    Query(q): Query<PersonQuery>,
) -> Response {
    let week = match week_of(q.week.as_deref(), &state) {
        Ok(w) => w,
        Err(what) => return not_found(&viewer, &what),
    };
    let ledger = &state.ledger;
    let store = ledger.store();
    match store.person_exists(&person).await {
        Ok(true) => {}
        Ok(false) => return not_found(&viewer, &format!("There is no person {person:?}.")),
        Err(e) => return unavailable(&viewer, e),
    }
    let tz = ledger.tz();
    let mut weeks = vec![week];
    for _ in 1..TREND_WEEKS {
        let earlier = weeks.last().expect("one week").previous(tz);
        weeks.push(earlier);
    }
    weeks.reverse();
    let (trend_from, to) = (weeks[0].bounds(tz).0, week.bounds(tz).1);
    // The team's lines: waste compares with the team's median.
    let everyone = crate::ledger::read::Scope::all();
    let read = tokio::try_join!(
        ledger.balance(&person),
        ledger.person_entries(&person, week),
        async {
            Ok(store
                .person_earned_by_landing(&person, trend_from, to)
                .await?)
        },
        async { Ok(store.person_hygiene_events(&person, trend_from, to).await?) },
        ledger.person_statements(&person, 12),
        ledger.person_commits(&person, trend_from, to),
        async {
            let (first_day, _) = weeks[0].days();
            let (_, last_day) = week.days();
            Ok(store
                .usage_between(&first_day, &last_day, Some(&person))
                .await?)
        },
        ledger.person_weeks(week, &everyone),
    );
    let (balance, entries, earned, events, statements, commits, usage, lines) = match read {
        Ok(r) => r,
        Err(e) => return unavailable(&viewer, e),
    };
    let mut by_week: Vec<(Week, i64)> = weeks.iter().map(|w| (*w, 0)).collect();
    for (landed_at, sum) in earned {
        let w = Week::of(landed_at, tz);
        if let Some(slot) = by_week.iter_mut().find(|(x, _)| *x == w) {
            slot.1 += sum;
        }
    }
    let max = by_week.iter().map(|(_, s)| *s).max().unwrap_or(0).max(1);
    let usage = UsageView::new(&usage, &weeks, week, state.config.usage.cache_read_weight);
    let line = lines.into_iter().find(|l| l.person == person);
    let self_link = |w: Week| format!("?week={}", w.label());
    let content = html! {
        h1 { (person) }
        div.cards #balance {
            div.card { b #pending { (tokens(balance.pending)) } span { "pending" } }
            div.card { b #vested { (tokens(balance.vested)) } span { "vested" } }
            div.card { b #redeemed { (tokens(balance.redeemed)) } span { "redeemed" } }
            div.card { b #clawed_back { (tokens(balance.clawed_back)) } span { "clawed back" } }
            div.card { b #paid { (tokens(balance.paid)) } span { "paid" } }
            div.card { b #available { (tokens(balance.available)) } span { "available" } }
            @if balance.owed > 0 {
                div.card { b #owed { (tokens(balance.owed)) } span { "owed" } }
            }
        }
        @let payout = &state.config.payout;
        p #worth {
            "Available " (tokens(balance.available)) " tokens = "
            (crate::digest::money(payout.rate_minor(balance.available), &payout.currency))
            " at " (payout.rate.to_string()) " " (payout.currency) " a token"
            @if let Some(hours) = payout.pto_hours_per_token {
                " = " (crate::digest::short(balance.available as f64 / 1000.0 * hours)) " h of PTO"
            }
            ". Pending tokens vest " (state.ledger.rules().vesting_days) " days after their commit landed unless reverted or followed up by a fix."
        }
        h2 { "Commits (12 weeks)" }
        @if commits.is_empty() { p.muted { "No AI-assisted commit landed in these weeks." } }
        @else {
            div.scroll { table #commits { thead { tr {
                th { "landed" } th { "commit" } th { "state" } th.num { "net tokens" } th { "vests / vested / taken back" } th { "why" }
            } } tbody {
                @for c in &commits {
                    tr data-sha=(c.sha) {
                        td { (time(c.landed_at)) }
                        td { a href=(format!("/commits/{}/{}", repo_path(&c.repo), c.sha)) { code { (&c.sha[..c.sha.len().min(7)]) } } " " (c.subject) }
                        td.state { (c.state.replace('_', " ")) }
                        td.num.tokens { (tokens(c.tokens)) }
                        td.when {
                            @match (&c.taken_back, c.state) {
                                (Some((at, _)), _) => { "taken back " (time(*at)) },
                                (None, "vested") => { "vested " (time(c.vests_at)) },
                                _ => { "vests " span.vests_at { (time(c.vests_at)) } },
                            }
                        }
                        td {
                            @if let Some((_, reason)) = &c.taken_back { (reason.replace('_', " ")) " " }
                            @for f in &c.flags { span.flag { (f.replace('_', " ")) } " " }
                        }
                    }
                }
            } } }
        }
        h2 { "Earned per week (12 weeks)" }
        svg.trend width="600" height="140" viewBox="0 0 600 140" role="img" aria-label="tokens earned per week" {
            @for (i, (w, sum)) in by_week.iter().enumerate() {
                @let h = (110.0 * (*sum).max(0) as f64 / max as f64) as i64;
                rect x=(i * 50 + 5) y=(115 - h) width="40" height=(h.max(1)) fill="#2b8a3e" {
                    title { (w.label()) ": " (tokens(*sum)) }
                }
                text x=(i * 50 + 25) y="132" font-size="10" text-anchor="middle" fill="currentColor" {
                    (w.label().split_once('-').map_or("", |(_, n)| n))
                }
            }
        }
        (usage_section(&usage, line.as_ref(), week))
        h2 { "Hygiene events (12 weeks)" }
        @let flagged: Vec<_> = commits.iter().flat_map(|c| c.flags.iter().map(move |f| (c, *f))).collect();
        @if events.is_empty() && flagged.is_empty() { p.muted { "None: no reverts, follow-up fixes, red CI, duplicates or noise." } }
        @else {
            table #hygiene { thead { tr { th { "when" } th { "event" } th { "commit" } } } tbody {
                @for (repo, sha, subject, name, at) in &events {
                    tr {
                        td { (time(*at)) }
                        td { (name.replace('_', " ")) }
                        td { a href=(format!("/commits/{}/{sha}", repo_path(repo))) { code { (&sha[..sha.len().min(7)]) } } " " (subject) }
                    }
                }
                // Red CI, duplicates and noise count in the week the commit landed.
                @for (c, flag) in &flagged {
                    tr {
                        td { (time(c.landed_at)) }
                        td { (flag.replace('_', " ")) }
                        td { a href=(format!("/commits/{}/{}", repo_path(&c.repo), c.sha)) { code { (&c.sha[..c.sha.len().min(7)]) } } " " (c.subject) }
                    }
                }
            } }
        }
        h2 { "Statements (last 12 closed weeks)" }
        @if statements.is_empty() { p.muted { "No closed week moved this balance yet." } }
        @else {
            table #statements { thead { tr {
                th { "week" } th.num { "opening" } th.num { "vested" } th.num { "clawed back" }
                th.num { "corrections" } th.num { "redeemed" } th.num { "paid" } th.num { "closing" } th.num { "amount" }
            } } tbody {
                @for (w, l) in &statements {
                    tr {
                        td { a href=(self_link(Week::parse(w).unwrap_or(week))) { (w) } }
                        td.num { (tokens(l.opening)) }
                        td.num { (tokens(l.vested)) }
                        td.num { (tokens(l.clawed_back)) }
                        td.num { (tokens(l.corrections)) }
                        td.num { (tokens(l.redeemed)) }
                        td.num { (tokens(l.paid)) }
                        td.num { (tokens(l.closing)) }
                        td.num { (crate::digest::money(l.amount_minor, &state.config.payout.currency)) }
                    }
                }
            } }
        }
        h2 { "Ledger · " (week.label()) }
        div.weeknav {
            a href=(self_link(week.previous(tz))) { "← " (week.previous(tz).label()) }
            a href=(self_link(next_week(week, tz))) { (next_week(week, tz).label()) " →" }
        }
        @if entries.is_empty() { p.muted { "No entries effective this week." } }
        @else {
            table #entries { thead { tr { th { "when" } th { "kind" } th.num { "tokens" } th { "commit" } th { "why" } } } tbody {
                @for e in &entries {
                    @let explanation: serde_json::Value = serde_json::from_str(&e.explanation).unwrap_or_default();
                    tr {
                        td { (time(e.at)) @if let Some(w) = &e.corrects { " " span.muted { "(corrects " (w) ")" } } }
                        td { (e.kind.as_str()) }
                        td.num { (tokens(e.amount)) }
                        td {
                            @if let (Some(repo), Some(sha)) = (&e.repo, &e.sha) {
                                a href=(format!("/commits/{}/{sha}", repo_path(repo))) { code { (&sha[..sha.len().min(7)]) } }
                            }
                        }
                        td { (explanation["formula"].as_str().or(explanation["reason"].as_str()).unwrap_or("")) }
                    }
                }
            } }
        }
    };
    ok(shell(&person, &viewer, content))
}

/// A person's verified usage: the week's rows per agent and model, and the
/// weighted usage and cost of each of the 12 weeks.
struct UsageView {
    /// (agent, model) → summed amounts by kind.
    rows: std::collections::BTreeMap<(String, String), std::collections::BTreeMap<UsageKind, i64>>,
    /// Per week: weighted usage tokens and micro-USD.
    weeks: Vec<(Week, Spent)>,
}

impl UsageView {
    fn new(rows: &[UsageRow], weeks: &[Week], week: Week, cache_read_weight: f64) -> UsageView {
        let (first, last) = week.days();
        let mut by_model: std::collections::BTreeMap<
            _,
            std::collections::BTreeMap<UsageKind, i64>,
        > = Default::default();
        let mut per_week: Vec<(Week, Spent)> =
            weeks.iter().map(|w| (*w, Spent::default())).collect();
        for (_, agent, model, day, kind, amount) in rows {
            let Some(kind) = UsageKind::parse(kind) else {
                continue;
            };
            if *day >= first && *day <= last {
                *by_model
                    .entry((agent.clone(), model.clone()))
                    .or_default()
                    .entry(kind)
                    .or_default() += amount;
            }
            let Some(slot) = per_week.iter_mut().find(|(w, _)| {
                let (a, b) = w.days();
                *day >= a && *day <= b
            }) else {
                continue;
            };
            slot.1.add(kind, *amount, cache_read_weight);
        }
        UsageView {
            rows: by_model,
            weeks: per_week,
        }
    }
}

fn usd(micro: i64) -> String {
    format!("${:.2}", micro as f64 / 1e6)
}

fn usage_section(u: &UsageView, line: Option<&LeaderboardLine>, week: Week) -> maud::Markup {
    let max = u.weeks.iter().map(|(_, s)| s.tokens).fold(1.0, f64::max);
    let amount = |kinds: &std::collections::BTreeMap<UsageKind, i64>, k: UsageKind| {
        kinds.get(&k).copied().unwrap_or(0)
    };
    html! {
        h2 { "Verified usage · " (week.label()) }
        @if u.rows.is_empty() {
            p.muted #usage-none {
                "No verified usage this week: the coding agents report it over OpenTelemetry "
                "(see the README, \"Verified usage\"). Efficiency then rests on self-reported "
                code { "AI-Tokens:" } " trailers."
            }
        } @else {
            div.scroll { table #usage { thead { tr {
                th { "agent" } th { "model" } th.num { "input" } th.num { "output" }
                th.num { "cache read" } th.num { "cache creation" } th.num { "cost" } th.num { "sessions" }
            } } tbody {
                @for ((agent, model), kinds) in &u.rows {
                    tr {
                        td { (agent) } td { (model) }
                        td.num { (amount(kinds, UsageKind::Input)) }
                        td.num { (amount(kinds, UsageKind::Output)) }
                        td.num { (amount(kinds, UsageKind::CacheRead)) }
                        td.num { (amount(kinds, UsageKind::CacheCreation)) }
                        td.num { (usd(amount(kinds, UsageKind::CostMicroUsd))) }
                        td.num { (amount(kinds, UsageKind::Sessions)) }
                    }
                }
            } } }
        }
        @if let Some(l) = line {
            p #spend {
                @match (l.efficiency, l.efficiency_source) {
                    (Some(e), Some(source)) => { "Efficiency " b { (format!("{e:.2}")) } " tokens per 1k usage (" (source.replace('_', "-")) "). " },
                    (None, Some(source)) => { "Too little " (source.replace('_', "-")) " usage this week for an efficiency. " },
                    _ => {},
                }
                @if let Some(cost) = l.cost_usd {
                    "Cost " b #cost { (format!("${cost:.2}")) }
                    @if let Some(per) = l.cost_per_commit_usd { ", " (format!("${per:.2}")) " per landed AI commit" }
                    @if let Some(back) = l.taken_back_cost_usd.filter(|b| *b > 0.0) { ", " b #taken-back-cost { (format!("${back:.2}")) } " of it on work that was taken back" }
                    ". "
                }
                @match l.waste {
                    Some("nothing_landed") => { span.flag #waste { "Waste: usage with no landed AI commit this week." } },
                    Some(_) => { span.flag #waste { "Waste: usage per landed commit far above the team's median." } },
                    None => {},
                }
            }
        }
        svg.trend #usage-trend width="600" height="140" viewBox="0 0 600 140" role="img" aria-label="verified usage per week" {
            @for (i, (w, spent)) in u.weeks.iter().enumerate() {
                @let h = (110.0 * spent.tokens / max) as i64;
                rect x=(i * 50 + 5) y=(115 - h) width="40" height=(h.max(1)) fill="#5c7cfa" {
                    title { (w.label()) ": " (spent.tokens.round() as i64) " usage tokens, " (usd(spent.cost_micro_usd)) }
                }
                text x=(i * 50 + 25) y="132" font-size="10" text-anchor="middle" fill="currentColor" {
                    (w.label().split_once('-').map_or("", |(_, n)| n))
                }
            }
        }
    }
}
