//! `tokentally usage [--week W] [--person P]`: verified usage per person and agent.

use std::path::PathBuf;

use clap::Args;

use super::open_ledger;
use crate::scoring::usage::UsageKind;

#[derive(Debug, Args)]
pub struct UsageArgs {
    /// ISO week, e.g. 2026-W41, or `current` [default: the last complete week]
    #[arg(long)]
    pub week: Option<String>,
    /// One person's usage only
    #[arg(long)]
    pub person: Option<String>,
}

pub async fn run(config_path: Option<&PathBuf>, args: UsageArgs) -> anyhow::Result<()> {
    let (ledger, store) = open_ledger(config_path).await?;
    let tz = ledger.tz();
    let week = super::standings::week_arg(args.week.as_deref(), tz)?;
    let (first_day, last_day) = week.days();
    let rows = store
        .usage_between(&first_day, &last_day, args.person.as_deref())
        .await;
    store.close().await;
    let rows = rows?;
    println!(
        "{} · verified usage reported by the coding agents",
        week.label()
    );
    if rows.is_empty() {
        println!(
            "  none reported (see the README: sending usage from Claude Code, Gemini CLI, opencode)"
        );
        return Ok(());
    }
    // (person, agent) → kind → amount
    let mut sums: std::collections::BTreeMap<
        (String, String),
        std::collections::BTreeMap<UsageKind, i64>,
    > = Default::default();
    for (person, agent, _model, _day, kind, amount) in rows {
        if let Some(kind) = UsageKind::parse(&kind) {
            *sums
                .entry((person, agent))
                .or_default()
                .entry(kind)
                .or_default() += amount;
        }
    }
    println!(
        "  {:<24} {:<12} {:>10} {:>10} {:>12} {:>12} {:>9} {:>8}",
        "person", "agent", "input", "output", "cache read", "cache write", "cost $", "sessions"
    );
    for ((person, agent), k) in &sums {
        let get = |kind| k.get(&kind).copied().unwrap_or(0);
        println!(
            "  {:<24} {:<12} {:>10} {:>10} {:>12} {:>12} {:>9.2} {:>8}",
            person,
            agent,
            get(UsageKind::Input),
            get(UsageKind::Output),
            get(UsageKind::CacheRead),
            get(UsageKind::CacheCreation),
            get(UsageKind::CostMicroUsd) as f64 / 1_000_000.0,
            get(UsageKind::Sessions)
        );
    }
    Ok(())
}
