//! `/`: a week's leaderboard (the numbers of `GET /api/v1/leaderboard`), week
//! navigation, rank-by switch, team totals, AI share, revert rates, a chart.

use std::collections::HashMap;

use crate::server::extract::Query;
use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;

use super::layout::{ok, percent, segment, shell, tokens};
use super::{Viewer, next_week, week_of};
use crate::config::ChartKind;
use crate::digest::{self, Inputs};
use crate::ledger::read::{LeaderboardLine, Scope};
use crate::scoring::leaderboard::RankBy;
use crate::server::AppState;

#[derive(Debug, Deserialize)]
pub struct BoardQuery {
    week: Option<String>,
    rank_by: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Query(q): Query<BoardQuery>,
) -> Response {
    let week = match week_of(q.week.as_deref(), &state) {
        Ok(w) => w,
        Err(what) => return super::layout::not_found(&viewer, &what),
    };
    let by_text = q.rank_by.as_deref().unwrap_or("value");
    let Some(by) = RankBy::parse(by_text) else {
        return super::layout::not_found(
            &viewer,
            &format!("There is no ranking by {by_text:?} (value, efficiency or hygiene)."),
        );
    };
    let ledger = &state.ledger;
    let tz = ledger.tz();
    let (from, to) = week.bounds(tz);
    let store = ledger.store();
    let all = Scope::all();
    let read = tokio::try_join!(
        ledger.person_weeks(week, &all),
        ledger.person_weeks(week.previous(tz), &all),
        async { Ok(store.week_landings(from, to).await?) },
        async { Ok(store.movement_between(from, to).await?) },
        ledger.statement(week),
        async {
            let (first_day, last_day) = week.days();
            Ok(store.usage_between(&first_day, &last_day, None).await?)
        },
    );
    let (lines, previous, landings, movement, statement, usage) = match read {
        Ok(r) => r,
        Err(e) => return super::layout::unavailable(&viewer, e),
    };
    let board = ledger.ranked(week, by, lines.clone(), &previous);
    let summary = digest::assemble(
        Inputs {
            taken_back: Vec::new(),
            unranked: &board.unranked,
            week,
            tz,
            scope: &all,
            board_entries: &board.entries,
            lines: &lines,
            previous_lines: &previous,
            landings: &landings,
            movement: &movement,
            statement: &statement,
            earned_by_landing: &[],
            discord_ids: &HashMap::new(),
            most_valuable: None,
            top: usize::MAX,
            usage: &usage,
        },
        &state.config,
        ledger.version(),
        None,
    );
    let chart = digest::chart::svg(&summary, ChartKind::People).unwrap_or_default();
    let week_link =
        |w: crate::scoring::week::Week| format!("/?week={}&rank_by={by_text}", w.label());
    let t = &summary.totals;
    let c = &summary.commits;
    let content = html! {
        h1 { "Leaderboard · " (week.label()) " " span.muted { "(" (summary.dates) ", " (summary.timezone) ")" } }
        div.weeknav {
            a href=(week_link(week.previous(tz))) rel="prev" { "← " (week.previous(tz).label()) }
            a href=(week_link(next_week(week, tz))) rel="next" { (next_week(week, tz).label()) " →" }
            form.inline method="get" action="/" {
                label for="week" { "Week" }
                input id="week" type="week" name="week" value=(week.label());
                label for="rank_by" { "rank by" }
                select id="rank_by" name="rank_by" {
                    @for option in ["value", "efficiency", "hygiene"] {
                        option value=(option) selected[option == by_text] { (option) }
                    }
                }
                button type="submit" { "Show" }
            }
        }
        div.cards {
            div.card { b #earned { (tokens(t.earned)) } span { "earned by work landed this week" } }
            div.card { b #vested { (tokens(t.vested)) } span { "vested during the week (money)" } }
            div.card { b #clawed_back { (tokens(t.clawed_back)) } span { "clawed back during the week (money)" } }
            div.card { b #landed { (c.landed) } span { "commits landed, " (c.ai) " AI-assisted" } }
            div.card { b #ai_share { (percent(c.ai_share)) } span { "AI share" } }
            div.card { b #revert_rates { (percent(c.ai_revert_rate)) " / " (percent(c.human_revert_rate)) } span { "revert rate AI / human" } }
        }
        h2 { "Ranked by " (by_text) }
        (lines_table("ranked", &board.entries, week.label().as_str(), true))
        @if !board.unranked.is_empty() {
            h2 { "Not ranked " span.muted { "(fewer than " (ledger.rules().leaderboard_min_ai_commits) " landed AI commits)" } }
            (lines_table("unranked", &board.unranked, week.label().as_str(), false))
        }
        p.muted #legend {
            "The rows are about the work that landed this week: " b { "earned" } " (its tokens), "
            b { "vested so far" } ", " b { "pending" } " and " b { "clawed back" } " (what has happened to it since). "
            b { "score" } " = (earned − clawed back) × payout factor (0.5 + 0.5 × hygiene / 100). "
            b { "tokens per 1k usage" } ": what commits that reported model usage (AI-Tokens) earned per 1,000 usage tokens. "
            "The tiles' vested and clawed back are money moved during the week, whatever week the work landed."
        }
        @if !chart.is_empty() {
            h2 { "Net tokens per person (earned − clawed back)" }
            div.chart { (PreEscaped(chart)) }
        }
        p.muted { "Rules " a href="/rules" { (ledger.version()) } }
    };
    ok(shell(
        &format!("Leaderboard {}", week.label()),
        &viewer,
        content,
    ))
}

fn lines_table(id: &str, lines: &[LeaderboardLine], week: &str, ranked: bool) -> Markup {
    html! {
        table id=(id) {
            thead { tr {
                @if ranked { th.num { "#" } }
                th { "person" } th.num { "score" } th.num { "earned" } th.num { "vested so far" }
                th.num { "pending" } th.num { "clawed back" } th.num { "hygiene" }
                th.num { "tokens per 1k usage" } th.num { "AI commits" }
                @if ranked { th { "trend" } }
            } }
            tbody {
                @if lines.is_empty() {
                    tr { td colspan="11" .muted { "No one this week." } }
                }
                @for l in lines {
                    tr data-person=(l.person) {
                        @if ranked { td.num { (l.rank.unwrap_or(0)) } }
                        td { a href=(format!("/people/{}?week={week}", segment(&l.person))) { (l.person) } }
                        td.num.value { (tokens(l.value)) }
                        td.num.earned { (tokens(l.earned)) }
                        td.num.vested { (tokens(l.vested)) }
                        td.num.pending { (tokens(l.pending)) }
                        td.num { (tokens(l.clawed_back)) }
                        td.num.hygiene { (l.hygiene) }
                        td.num { @match l.efficiency { Some(e) => (format!("{e:.2}")), None => "—" } }
                        td.num { (l.ai_commits) }
                        @if ranked {
                            @let trend = l.trend.as_deref().unwrap_or("new");
                            td class=(if trend.starts_with('+') { "up" } else if trend.starts_with('-') { "down" } else { "" }) { (trend) }
                        }
                    }
                }
            }
        }
    }
}
