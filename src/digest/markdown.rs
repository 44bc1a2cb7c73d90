//! The digest as Markdown (the CLI's form): a header of team
//! totals, the leaderboard as an aligned table in a code block, highlights.

use std::fmt::Write;

use super::{Digest, money, percent, short, tokens1};
use crate::scoring::MilliTokens;

/// The header line: `tokentally — week 2026-W47 (Nov 16–22, Europe/Berlin)`.
pub fn title(d: &Digest) -> String {
    format!("tokentally — week {} ({}, {})", d.week, d.dates, d.timezone)
}

/// `Earned 412.6 tokens · vested 298.0 · clawed back 18.0 · paid $596.00 (rate 2/token)`:
/// the money from the week's statement ("preview" while the week is open).
pub fn totals_line(d: &Digest) -> String {
    let t = &d.totals;
    let mut line = format!(
        "Work landed: earned {} tokens ({} vs last week) · money this week: vested {} · clawed back {}",
        tokens1(t.earned),
        change(d.earned_change),
        tokens1(t.vested),
        tokens1(t.clawed_back),
    );
    if t.corrections != 0 {
        let _ = write!(line, " · corrections {}", tokens1(t.corrections));
    }
    match t.vested_value_minor {
        Some(value) => {
            let _ = write!(line, " · vested worth {}", money(value, &t.currency));
        }
        None => {
            let _ = write!(line, " · paid {}", money(t.payout_minor, &t.currency));
        }
    }
    if let Some(rate) = &t.rate {
        let _ = write!(line, " (rate {rate} {}/token)", t.currency);
    }
    if !t.closed {
        line.push_str(" · week open, not final");
    }
    if let Some(hours) = t.pto_hours {
        let _ = write!(line, " · PTO {} h", short(hours));
    }
    line
}

/// `▲12.5`, `▼3.0` or `=`: a change of tokens against last week.
pub fn change(milli: MilliTokens) -> String {
    match milli.signum() {
        1 => format!("▲{}", tokens1(milli)),
        -1 => format!("▼{}", tokens1(-milli)),
        _ => "=".to_string(),
    }
}

/// Why no one is on the leaderboard.
pub fn nobody_ranked(d: &Digest) -> String {
    format!(
        "No one is ranked this week: it takes {} landed AI-assisted commits in the week.",
        d.min_ai_commits
    )
}

/// `Also earned: lee.c… 1.5 (not ranked: fewer than 2 AI commits)`.
pub fn also_earned_line(d: &Digest, name: impl Fn(&str) -> String) -> Option<String> {
    (!d.also_earned.is_empty()).then(|| {
        let list: Vec<String> = d
            .also_earned
            .iter()
            .map(|a| format!("{} {}", name(&a.person), tokens1(a.earned)))
            .collect();
        format!(
            "Also earned: {} (not ranked: fewer than {} AI commits)",
            list.join(" · "),
            d.min_ai_commits
        )
    })
}

/// One taken-back item: `18.0 from kenji — c0ffee000001 feat: retry queue, reverted by badc0de00002`.
pub fn taken_back_item(t: &super::TakenBack, name: impl Fn(&str) -> String) -> String {
    let why = match (t.reason.as_str(), &t.by) {
        ("reverted", Some(by)) => format!("reverted by {by}"),
        ("fixed_later", Some(by)) => format!("followed up by fix {by}"),
        (reason, Some(by)) => format!("{} ({by})", reason.replace('_', " ")),
        (reason, None) => reason.replace('_', " "),
    };
    format!(
        "{} from {} — {} {}, {why}",
        tokens1(t.tokens),
        name(&t.person),
        t.sha,
        t.subject
    )
}

/// `Landed 143 commits, 61 AI-assisted (43%) · revert rate AI 3.3% vs human 4.9%`.
pub fn commits_line(d: &Digest) -> String {
    let c = &d.commits;
    format!(
        "Landed {} commits, {} AI-assisted ({:.0}%) · revert rate AI {} vs human {}",
        c.landed,
        c.ai,
        c.ai_share * 100.0,
        percent(c.ai_revert_rate),
        percent(c.human_revert_rate)
    )
}

/// `Agents: claude-code 34 (1.2M usage, $48.20) · copilot 15`: landed AI
/// commits per agent, with the verified usage and cost it reported.
pub fn agents_line(d: &Digest) -> Option<String> {
    (!d.agents.is_empty()).then(|| {
        let list: Vec<String> = d
            .agents
            .iter()
            .map(|a| match (a.usage, a.cost_usd) {
                (Some(usage), Some(cost)) => format!(
                    "{} {} ({} usage, ${cost:.2})",
                    a.agent,
                    a.commits,
                    compact(usage)
                ),
                _ => format!("{} {}", a.agent, a.commits),
            })
            .collect();
        format!("Agents: {}", list.join(" · "))
    })
}

/// `Waste: bo (usage, nothing landed, $6.00)`: usage that bought nothing.
pub fn waste_line(d: &Digest, name: impl Fn(&str) -> String) -> Option<String> {
    (!d.waste.is_empty()).then(|| {
        let list: Vec<String> = d
            .waste
            .iter()
            .map(|w| {
                let why = match w.reason {
                    "nothing_landed" => "usage, nothing landed",
                    _ => "usage per commit over 3× the team's median",
                };
                let cost = w.cost_usd.map(|c| format!(", ${c:.2}")).unwrap_or_default();
                format!("{} ({why}{cost})", name(&w.person))
            })
            .collect();
        format!("Waste: {}", list.join(" · "))
    })
}

/// 1234 → `1.2k`, 1234567 → `1.2M`.
pub fn compact(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

/// The most valuable commit, as a sentence (without the person).
pub fn valuable_text(d: &Digest) -> Option<String> {
    let v = d.highlights.most_valuable.as_ref()?;
    Some(format!(
        "most valuable commit {} \"{}\" ({})",
        &v.sha[..v.sha.len().min(7)],
        v.subject,
        v.factors
    ))
}

/// A person as `@name` (a raw email masked, never shown).
fn handle(person: &str) -> String {
    let name = crate::attribution::identity::public_name(person);
    if name.starts_with('@') {
        name
    } else {
        format!("@{name}")
    }
}

/// What the digest's words mean, in one line under the table.
pub const LEGEND: &str = "score = (earned − clawed back) × payout factor (from hygiene) · net = tokens the week's work holds now (earned − clawed back; the chart's bars) · per 1k = tokens per 1,000 model-usage tokens, where reported · vested and clawed back in the totals are money moved this week";

/// The leaderboard as aligned text rows (header first); `name` renders a person.
pub fn table(d: &Digest, name: impl Fn(&str) -> String) -> Vec<String> {
    let names: Vec<String> = d.leaderboard.iter().map(|l| name(&l.person)).collect();
    let width = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0)
        .max(6);
    let mut rows = vec![format!(
        "{:>2}  {:<width$}  {:>6}  {:>6}  {:>8}  {:>7}  trend",
        "#", "person", "score", "net", "per 1k", "hygiene"
    )];
    for (l, n) in d.leaderboard.iter().zip(&names) {
        let eff = l.efficiency.map_or("—".to_string(), |e| format!("{e:.1}"));
        let mut row = format!(
            "{:>2}  {:<width$}  {:>6}  {:>6}  {:>8}  {:>7}  {}",
            l.rank,
            n,
            tokens1(l.value),
            tokens1(l.vested + l.pending),
            eff,
            l.hygiene,
            l.trend
        );
        if l.reverts > 0 {
            let s = if l.reverts == 1 { "" } else { "s" };
            let _ = write!(row, "  ({} revert{s})", l.reverts);
        }
        rows.push(row);
    }
    rows
}

/// The whole digest as Markdown.
pub fn render(d: &Digest) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "**{}**", title(d));
    if d.quiet {
        let _ = writeln!(
            out,
            "A quiet week: nothing landed, vested or was clawed back."
        );
    } else {
        let _ = writeln!(out, "{}", totals_line(d));
        let _ = writeln!(out, "{}", commits_line(d));
        out.push('\n');
        if d.leaderboard.is_empty() {
            let _ = writeln!(out, "{}", nobody_ranked(d));
        } else {
            out.push_str("```\n");
            for row in table(d, handle) {
                let _ = writeln!(out, "{}", row.trim_end());
            }
            if d.more > 0 {
                let _ = writeln!(out, "…and {} more", d.more);
            }
            out.push_str("```\n");
            let _ = writeln!(out, "_{LEGEND}_");
        }
        if let Some(line) = also_earned_line(d, handle) {
            let _ = writeln!(out, "{line}");
        }
        if !d.taken_back.is_empty() {
            let _ = writeln!(out, "\nTaken back this week:");
            for t in &d.taken_back {
                let _ = writeln!(out, "- {}", taken_back_item(t, handle));
            }
        }
        let mut highlights = Vec::new();
        if let (Some(text), Some(v)) = (valuable_text(d), &d.highlights.most_valuable) {
            highlights.push(format!("Highlights: {text} by {}.", handle(&v.person)));
        }
        if let Some(g) = &d.highlights.hygiene_gain {
            highlights.push(format!(
                "Biggest hygiene gain: {} {} → {}.",
                handle(&g.person),
                g.from,
                g.to
            ));
        }
        if !highlights.is_empty() {
            out.push('\n');
            for h in highlights {
                let _ = writeln!(out, "{h}");
            }
        }
        if let Some(agents) = agents_line(d) {
            let _ = writeln!(out, "{agents}");
        }
        if let Some(waste) = waste_line(d, handle) {
            let _ = writeln!(out, "{waste}");
        }
    }
    if let Some(url) = &d.dashboard_url {
        let _ = writeln!(out, "\nDashboard: {url}");
    }
    out
}
