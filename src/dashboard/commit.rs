//! `/commits/{owner}/{name}/{sha}`: why a commit earned what it did —
//! attribution evidence, kind and its source, diff facts, each factor with
//! its arithmetic, the signals received, the ledger entries, and links to the
//! commits that reverted or fixed it and to GitHub.

use crate::server::extract::Path;
use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use maud::html;
use serde_json::Value;

use super::Viewer;
use super::layout::{not_found, ok, repo_path, shell, time, tokens, unavailable};
use crate::server::AppState;

/// The web address of a commit on GitHub (or GitHub Enterprise, from `github.api_url`).
fn github_url(api_url: &str, repo: &str, sha: &str) -> String {
    let web = if api_url.contains("api.github.com") {
        "https://github.com".to_string()
    } else {
        api_url
            .trim_end_matches('/')
            .trim_end_matches("/api/v3")
            .to_string()
    };
    format!("{web}/{repo}/commit/{sha}")
}

/// A factor with the explanation's precision (6 decimals).
fn factor(v: &Value) -> String {
    v.as_f64()
        .map_or_else(|| "—".to_string(), |f| format!("{f:.6}"))
}

pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(path): Path<String>,
) -> Response {
    let Some((repo, sha)) = path.rsplit_once('/') else {
        return not_found(
            &viewer,
            &format!("There is no commit at {path:?} (commits are /commits/OWNER/NAME/SHA)."),
        );
    };
    let store = state.ledger.store();
    let repository = match store.repository(&repo.to_ascii_lowercase()).await {
        Ok(Some(r)) => r,
        Ok(None) => return not_found(&viewer, &format!("There is no repository {repo:?}.")),
        Err(e) => return unavailable(&viewer, e),
    };
    let mut found = match store.commits_by_prefix(repository.id, sha).await {
        Ok(f) => f,
        Err(e) => return unavailable(&viewer, e),
    };
    if found.len() != 1 {
        let why = if found.is_empty() {
            "no commit"
        } else {
            "more than one commit"
        };
        return not_found(&viewer, &format!("{repo} has {why} {sha:?}."));
    }
    let commit = found.remove(0);
    let read = tokio::try_join!(
        state.ledger.commit_tokens(&repository, &commit),
        async { Ok(store.signals_for_commit(repository.id, &commit.sha).await?) },
        async { Ok(store.commits_linking_to(repository.id, &commit.sha).await?) },
    );
    let (t, signals, links) = match read {
        Ok(r) => r,
        Err(e) => return unavailable(&viewer, e),
    };
    // A commit of an open pull request: the estimate its comment shows.
    let estimate = if t.state == "not_landed" && commit.ai == 1 {
        let head = match commit.pull_request {
            Some(n) => store
                .pull_request_head(repository.id, n)
                .await
                .ok()
                .flatten(),
            None => None,
        };
        state
            .ledger
            .estimate_in_pull_request(
                repository.id,
                &commit,
                head.as_deref(),
                state.clock.now_ms(),
            )
            .await
            .ok()
    } else {
        None
    };
    let record: Value = serde_json::from_str(&commit.record).unwrap_or_default();
    let agents: Vec<String> = serde_json::from_str(&commit.agents).unwrap_or_default();
    let factors = t.factors.clone().unwrap_or_default();
    let inputs = t.inputs.clone().unwrap_or_default();
    let full = repository.full_name.as_str();
    let content = html! {
        h1 { code { (&commit.sha[..12]) } " " (commit.subject) }
        p {
            "in " a href=(format!("/repos/{}", repo_path(full))) { (full) }
            " · by " a href=(format!("/people/{}", super::layout::segment(&commit.person))) { (commit.person) }
            " · " a href=(github_url(&state.config.github.api_url, full, &commit.sha)) rel="external" { "on GitHub" }
        }
        div.cards {
            div.card { b #state { (t.state) } span { "state" } }
            div.card { b #tokens { (tokens(t.tokens)) } span { "tokens" } }
            div.card { b #pending { (tokens(t.pending)) } span { "pending" } }
            div.card { b #vested { (tokens(t.vested)) } span { "vested" } }
            div.card { b #clawed_back { (tokens(t.clawed_back)) } span { "clawed back" } }
            @if let Some(at) = &t.vests_at {
                div.card { b #vests_at { (at.get(..10).unwrap_or(at)) }
                    span { (if t.state == "vested" { "vested on" } else { "vests on" }) } }
            }
        }
        h2 { "Attribution" }
        table #attribution { tbody {
            tr { th { "AI-assisted" } td { (if commit.ai == 1 { "yes" } else { "no" }) } }
            tr { th { "agents" } td { (if agents.is_empty() { "—".to_string() } else { agents.join(", ") }) } }
            tr { th { "model" } td { (commit.model.as_deref().unwrap_or("—")) } }
            tr { th { "credited" } td { (commit.person) " (" (commit.credit.replace('_', " ")) ")" } }
            tr { th { "author" } td { (record["author_name"].as_str().unwrap_or("")) " <" (record["author_email"].as_str().unwrap_or("")) ">" } }
            @for e in record["evidence"].as_array().into_iter().flatten() {
                tr { th { "evidence" } td {
                    (e["agent"].as_str().unwrap_or("?")) " — " (e["source"].as_str().unwrap_or(""))
                    @if let Some(via) = e["via"].as_str() { " " code { (via) } }
                    @if let Some(model) = e["model"].as_str() { ", model " (model) }
                } }
            }
        } }
        h2 { "Kind and size" }
        table #facts { tbody {
            tr { th { "kind" } td { (commit.kind) " (from " (commit.kind_source.replace('_', " ")) ")" } }
            @if let Some(paid) = inputs["paid_kind"].as_str().filter(|k| *k != commit.kind) {
                tr { th { "paid as" } td #paid_kind { (paid) " (the detected kind weighs less than the declared one)" } }
            }
            @if let Some(set) = inputs["change_set"].as_object() {
                tr { th { "change set" } td #change_set { (set["lines"]) " lines over "
                    (set["commits"].as_array().map_or(0, Vec::len)) " commits share one size factor" } }
            }
            tr { th { "changed lines" } td { (commit.changed_lines)
                " (+" (record["lines_added"]) " −" (record["lines_deleted"]) ", moved " (record["lines_moved"])
                ", excluded " (record["lines_excluded"]) ", " (record["files_changed"]) " files)" } }
        } }
        h2 { "Factors" }
        @if let Some(e) = &estimate {
            p #estimate {
                b { (tokens(e.tokens)) " tokens" } " — estimate, not landed: "
                code { (format!("{} {:.6} × size {:.6} × CI {} {:.6} × calibration {:.6}",
                    commit.kind, e.factors.tier, e.factors.size, e.ci.as_str(), e.factors.outcome, e.factors.calibration)) }
                " (what the pull-request comment shows; it accrues when the commit lands)"
            }
        } @else if t.factors.is_none() {
            p.muted #no-score { "No score: " (t.state.replace('_', " ")) "."
                @if let Some(reason) = &t.unverified_reason { " " (reason) "." } }
        } @else {
            table #factors { tbody {
                tr { th { "tier" } td.num { (factor(&factors["tier"])) } td { (commit.kind) " tier" } }
                tr { th { "size" } td.num { (factor(&factors["size"])) } td { "log2(1 + " (commit.changed_lines) ") / log2(1 + reference), clamped" } }
                tr { th { "outcome" } td.num { (factor(&factors["outcome"])) } td { "CI " (inputs["ci"].as_str().unwrap_or("none")) } }
                tr { th { "calibration" } td.num { (factor(&factors["calibration"])) } td { "how " (commit.kind) " commits held up lately" } }
                tr { th { "tokens" } td.num { (tokens(t.tokens)) } td { code { (t.formula.as_deref().unwrap_or("")) } } }
            } }
        }
        h2 { "Signals" }
        @if signals.is_empty() { p.muted { "None received." } }
        @else {
            table #signals { thead { tr { th { "when" } th { "signal" } th { "status" } th { "context" } th { "posted by" } } } tbody {
                @for s in &signals {
                    tr { td { (time(s.occurred_at)) } td { (s.name) } td { (s.status) }
                         td { (s.context.as_deref().unwrap_or("")) @if let Some(a) = s.attempt { " #" (a) } }
                         td { @match (s.token_id, s.source.strip_prefix("api:")) {
                             (Some(id), Some(name)) => { "token " (name) " (#" (id) ")" },
                             _ => { (s.source) },
                         } } }
                }
            } }
        }
        @if !links.is_empty() {
            h2 { "Reverted or fixed by" }
            ul #links {
                @for (name, by) in &links {
                    li { (name.replace('_', " ")) " by " a href=(format!("/commits/{}/{by}", repo_path(full))) { code { (&by[..by.len().min(12)]) } }
                         @if let Some(share) = fix_share(&signals, name, by) { " — touched " (format!("{:.0}%", share * 100.0)) " of its added lines" } }
                }
            }
        }
        h2 { "Ledger entries" }
        @if t.entries.is_empty() { p.muted { "None." } }
        @else {
            table #entries { thead { tr { th { "when" } th { "kind" } th.num { "tokens" } th { "rules" } th { "why" } } } tbody {
                @for e in &t.entries {
                    tr { td { (e.at) } td { (e.kind) } td.num { (format!("{:.3}", e.amount)) } td { (e.rules_version) }
                         td { (e.explanation["formula"].as_str().or(e.explanation["reason"].as_str()).unwrap_or("")) } }
                }
            } }
        }
    };
    ok(shell(&commit.subject, &viewer, content))
}

/// The share of the commit's added lines a follow-up fix touched, when it
/// was found by blame (`None` for reverts and plain `Fixes:`).
fn fix_share(signals: &[crate::store::signals::SignalRow], link: &str, by: &str) -> Option<f64> {
    signals
        .iter()
        .find(|s| {
            s.name == "fixed_later" && link == "fixed_later" && s.context.as_deref() == Some(by)
        })
        .and_then(|s| s.value)
}
