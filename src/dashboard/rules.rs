//! `/rules`: the scoring rules in force and their version.

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use maud::{Markup, html};
use serde_json::Value;

use super::Viewer;
use super::layout::{ok, shell};
use crate::server::AppState;

/// Each leaf of the rules as `a.b.c = value` rows.
fn rows(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                rows(&key, v, out);
            }
        }
        Value::Null => out.push((prefix.to_string(), "—".to_string())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

pub async fn page(
    State(state): State<AppState>,
    axum::Extension(viewer): Extension<Viewer>,
) -> Response {
    let ledger = &state.ledger;
    let unmapped = match state.store.unmapped_authors().await {
        Ok(rows) => rows,
        Err(e) => return super::layout::unavailable(&viewer, e),
    };
    let mut list = Vec::new();
    rows(
        "",
        &serde_json::to_value(ledger.rules()).unwrap_or_default(),
        &mut list,
    );
    let table: Markup = html! {
        table #rules { thead { tr { th { "rule" } th { "value" } } } tbody {
            @for (k, v) in &list { tr { td { code { (k) } } td { (v) } } }
        } }
    };
    let content = html! {
        h1 { "Rules " code #version { (ledger.version()) } }
        p { "Each commit earns " code { "tier × size × outcome × calibration" }
            " tokens; the version changes with any value below. Commits keep the rules they accrued under until "
            code { "tokentally replay --apply" } "." }
        (table)
        h2 { "Unmapped authors" }
        @if unmapped.is_empty() {
            p.muted #unmapped { "Every author of a landed commit is in " code { "[[people]]" } "." }
        } @else {
            p { "These emails own landed commits but no " code { "[[people]]" }
                " entry: add them to a person's " code { "emails" }
                " so their work counts for that person (public messages show them masked)." }
            table #unmapped { thead { tr { th { "email" } th { "landed" } th { "AI" } } } tbody {
                @for (email, landed, ai, _) in &unmapped {
                    tr { td { code { (email) } } td { (landed) } td { (ai) } }
                }
            } }
        }
    };
    ok(shell("Rules", &viewer, content))
}
