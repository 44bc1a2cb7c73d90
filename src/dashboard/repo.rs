//! `/repos/{owner}/{name}`: per week, landed commits, AI share, revert rates
//! and CI first-run green rates, AI vs human.

use std::collections::HashMap;

use crate::server::extract::Path;
use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use maud::html;

use super::Viewer;
use super::layout::{not_found, ok, percent, shell, unavailable};
use crate::digest::TREND_WEEKS;
use crate::scoring::ci::CiResult;
use crate::scoring::outcome::{SignalFact, outcomes_at};
use crate::scoring::signal::SignalName;
use crate::scoring::week::Week;
use crate::server::AppState;

/// One week's figures: (landed, reverted, first-run green) for AI and for human commits.
#[derive(Default)]
struct WeekRow {
    ai: [u32; 3],
    human: [u32; 3],
}

pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(path): Path<String>,
) -> Response {
    let store = state.ledger.store();
    let repository = match store.repository(&path.to_ascii_lowercase()).await {
        Ok(Some(r)) => r,
        Ok(None) => return not_found(&viewer, &format!("There is no repository {path:?}.")),
        Err(e) => return unavailable(&viewer, e),
    };
    let tz = state.ledger.tz();
    let mut weeks = vec![Week::of(state.clock.now_ms(), tz)];
    for _ in 1..TREND_WEEKS {
        let earlier = weeks.last().expect("one week").previous(tz);
        weeks.push(earlier);
    }
    let (from, to) = (weeks[TREND_WEEKS - 1].bounds(tz).0, weeks[0].bounds(tz).1);
    let read = tokio::try_join!(
        store.repository_landings(repository.id, from, to),
        store.repository_ci(repository.id, from, to),
    );
    let (landings, ci) = match read {
        Ok(r) => r,
        Err(e) => return unavailable(&viewer, e),
    };
    let mut signals: HashMap<&str, Vec<SignalFact>> = HashMap::new();
    for (sha, source, context, attempt, status, occurred_at) in &ci {
        signals
            .entry(sha.as_str())
            .or_default()
            .push(SignalFact::new(
                SignalName::Ci,
                *status,
                source,
                context.as_deref().unwrap_or_default(),
                *attempt,
                *occurred_at,
            ));
    }
    let mut rows: HashMap<Week, WeekRow> = HashMap::new();
    for (sha, ai, landed_at, reverted) in &landings {
        let row = rows.entry(Week::of(*landed_at, tz)).or_default();
        let counts = if *ai == 1 {
            &mut row.ai
        } else {
            &mut row.human
        };
        counts[0] += 1;
        counts[1] += u32::from(*reverted == 1);
        let green = signals
            .get(sha.as_str())
            .is_some_and(|s| outcomes_at(s, None, i64::MAX).1 == CiResult::FirstRunGreen);
        counts[2] += u32::from(green);
    }
    let rate = |a: u32, b: u32| {
        if b == 0 {
            "—".to_string()
        } else {
            percent(f64::from(a) / f64::from(b))
        }
    };
    let content = html! {
        h1 { (repository.full_name) }
        p.muted { "Weeks in " (state.config.timezone) "; merge commits left out." }
        table #weeks {
            thead { tr {
                th { "week" } th.num { "landed" } th.num { "AI share" }
                th.num { "revert rate AI" } th.num { "revert rate human" }
                th.num { "CI first-run green AI" } th.num { "CI first-run green human" }
            } }
            tbody {
                @for w in &weeks {
                    @let r = rows.remove(w).unwrap_or_default();
                    @let landed = r.ai[0] + r.human[0];
                    tr data-week=(w.label()) {
                        td { a href=(format!("/?week={}", w.label())) { (w.label()) } }
                        td.num.landed { (landed) }
                        td.num { (rate(r.ai[0], landed)) }
                        td.num { (rate(r.ai[1], r.ai[0])) }
                        td.num { (rate(r.human[1], r.human[0])) }
                        td.num { (rate(r.ai[2], r.ai[0])) }
                        td.num { (rate(r.human[2], r.human[0])) }
                    }
                }
            }
        }
    };
    ok(shell(&repository.full_name, &viewer, content))
}
