//! Why a commit earned what it did: finding it by a (short) id, and its
//! explanation as text, one factor a line, under the rules it was booked
//! under. `tokentally why` and Discord's `/why` print the same.

use super::read::CommitTokens;
use super::{Ledger, LedgerError};
use crate::scoring::rules::Rules;
use crate::store::commits::CommitRow;
use crate::store::repositories::Repository;

/// The commits a (short) id names.
pub enum Found {
    /// The repository asked for is not known.
    UnknownRepository(String),
    /// Every commit the id names (none, one, or several to choose from).
    Commits(Vec<(Repository, CommitRow)>),
}

impl Ledger {
    /// The commits whose id starts with `sha` (lower-case hex), in `repo` or anywhere.
    pub async fn find_commit(&self, sha: &str, repo: Option<&str>) -> Result<Found, LedgerError> {
        let store = self.store();
        let repositories = match repo {
            Some(name) => {
                let name = name.to_ascii_lowercase();
                match store.repository(&name).await? {
                    Some(r) => vec![r],
                    None => return Ok(Found::UnknownRepository(name)),
                }
            }
            None => store.repositories().await?,
        };
        let mut found = Vec::new();
        for repository in repositories {
            for commit in store.commits_by_prefix(repository.id, sha).await? {
                found.push((repository.clone(), commit));
            }
        }
        Ok(Found::Commits(found))
    }

    /// What the commit earned, with the rule version (and set) its score was
    /// booked under: its score is explained under those, not today's.
    pub async fn why(
        &self,
        repository: &Repository,
        commit: &CommitRow,
    ) -> Result<(CommitTokens, String, Rules), LedgerError> {
        let t = self.commit_tokens(repository, commit).await?;
        let version = t
            .entries
            .iter()
            .rev()
            .find(|e| matches!(e.kind.as_str(), "accrual" | "adjustment"))
            .map(|e| e.rules_version.clone())
            .unwrap_or_else(|| self.version().to_string());
        let rules = self.rules_of(&version).await?;
        Ok((t, version, rules))
    }
}

/// The readable explanation, under the rule set `version` (`rules`) its score was booked under.
pub fn explain(t: &CommitTokens, version: &str, rules: &Rules) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let tokens = |m: i64| m as f64 / 1000.0;
    let _ = writeln!(
        out,
        "{} {} {:?}",
        t.repo,
        &t.sha[..12.min(t.sha.len())],
        t.subject
    );
    let _ = writeln!(
        out,
        "person {}, {}, kind {}: {}",
        t.person,
        if t.ai {
            "AI-assisted"
        } else {
            "not AI-assisted"
        },
        t.kind,
        t.state
    );
    if let Some(at) = &t.vests_at {
        let verb = if t.state == "vested" {
            "vested"
        } else {
            "vests"
        };
        let _ = writeln!(out, "{verb} {at}");
    }
    match (&t.factors, &t.inputs) {
        (Some(f), Some(i)) => {
            let _ = writeln!(
                out,
                "tokens {:.3} = {}  (rules {version})",
                tokens(t.tokens),
                t.formula.clone().unwrap_or_default()
            );
            let _ = writeln!(
                out,
                "  tier        {:<10} weight of kind {:?}",
                f["tier"], t.kind
            );
            let _ = writeln!(
                out,
                "  size        {:<10.6} log2(1 + {}) / log2(1 + {}) clamped to [{}, {}] ({} changed lines)",
                f["size"].as_f64().unwrap_or_default(),
                i["changed_lines"],
                rules.size_reference_lines,
                rules.size_min,
                rules.size_max,
                i["changed_lines"]
            );
            let _ = writeln!(
                out,
                "  outcome     {:<10.6} CI {}{}{}",
                f["outcome"].as_f64().unwrap_or_default(),
                i["ci"].as_str().unwrap_or("none"),
                if i["deployed"] == true {
                    ", deployed"
                } else {
                    ""
                },
                i["ci_from_pull_request_head"]
                    .as_str()
                    .map(|h| format!(" (from pull request head {})", &h[..12.min(h.len())]))
                    .unwrap_or_default()
            );
            let _ = writeln!(
                out,
                "  calibration {:<10.6} kind {:?} in {}",
                f["calibration"].as_f64().unwrap_or_default(),
                t.kind,
                i["calibration_week"].as_str().unwrap_or("?")
            );
            if let Some(of) = i["duplicate_of"].as_str() {
                let _ = writeln!(out, "  duplicate of {of}: earns nothing");
            }
        }
        _ => {
            let why = match t.state {
                "baseline" => "landed before scoring.pay_from: counted as history, never paid",
                "not_ai" => "not AI-assisted: tracked for the baseline, earns nothing",
                "not_landed" => "not on the default branch: earns nothing until it lands",
                "unverified" => t
                    .unverified_reason
                    .as_deref()
                    .unwrap_or("no verified usage"),
                _ => "not in the ledger yet",
            };
            let _ = writeln!(out, "tokens 0: {why}");
        }
    }
    let _ = writeln!(
        out,
        "pending {:.3}, vested {:.3}, clawed back {:.3}",
        tokens(t.pending),
        tokens(t.vested),
        tokens(t.clawed_back)
    );
    if !t.entries.is_empty() {
        let _ = writeln!(out, "entries:");
        for e in &t.entries {
            let _ = writeln!(
                out,
                "  {}  {:<10} {:>+10.3}  {}  {}{}",
                e.at,
                e.kind,
                e.amount,
                e.rules_version,
                e.explanation["reason"].as_str().unwrap_or(""),
                e.corrects
                    .as_ref()
                    .map(|w| format!(" (corrects {w})"))
                    .unwrap_or_default()
            );
            // How the entry's own amount follows: target − already booked.
            if let Some(arithmetic) = e.explanation["arithmetic"].as_str() {
                let _ = writeln!(out, "      {arithmetic}");
            }
        }
    }
    if !t.signals.is_empty() {
        let _ = writeln!(out, "signals:");
        for sig in &t.signals {
            let by = match sig["token"].as_str() {
                Some(token) => format!("token {token} (#{})", sig["token_id"]),
                None => sig["source"].as_str().unwrap_or("?").to_string(),
            };
            let _ = writeln!(
                out,
                "  {} {} {} — posted by {by}",
                sig["at"].as_str().unwrap_or("?"),
                sig["signal"].as_str().unwrap_or("?"),
                sig["status"].as_str().unwrap_or("?"),
            );
        }
    }
    if !t.hygiene_events.is_empty() {
        let _ = writeln!(out, "hygiene:");
        for h in &t.hygiene_events {
            let share = match (h["share"].as_f64(), h["by"].as_str()) {
                (Some(share), Some(by)) => format!(
                    " by {} ({:.0}% of its added lines)",
                    &by[..by.len().min(12)],
                    share * 100.0
                ),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "  {}{share} (−{})",
                h["event"].as_str().unwrap_or("?"),
                h["penalty"]
            );
        }
    }
    out
}
