//! `tokentally leaderboard`, `tokentally balance PERSON` and
//! `tokentally payouts`: the ledger's standings, read from the database.

use std::path::PathBuf;

use clap::Args;

use super::open_ledger;
use crate::clock::now_ms;
use crate::scoring::leaderboard::RankBy;
use crate::scoring::week::Week;

#[derive(Debug, Args)]
pub struct LeaderboardArgs {
    /// ISO week, e.g. 2026-W41, or `current` [default: the last complete week]
    #[arg(long)]
    pub week: Option<String>,
    /// value, efficiency or hygiene
    #[arg(long, default_value = "value")]
    pub rank_by: String,
    /// table or json
    #[arg(long, default_value = "table")]
    pub format: String,
}

#[derive(Debug, Args)]
pub struct BalanceArgs {
    /// The person's key (configured name, @login or email)
    pub person: String,
}

#[derive(Debug, Args)]
pub struct PayoutsArgs {
    /// ISO week, e.g. 2026-W41, or `current` [default: the last complete week]
    #[arg(long)]
    pub week: Option<String>,
}

/// `--week`: an ISO week or `current`; by default the last complete week.
pub fn week_arg(text: Option<&str>, tz: chrono_tz::Tz) -> anyhow::Result<Week> {
    Week::chosen(text, now_ms(), tz).ok_or_else(|| {
        anyhow::anyhow!(
            "--week {:?} is not an ISO week such as 2026-W41 (or `current`)",
            text.unwrap_or_default()
        )
    })
}

pub async fn leaderboard(
    config_path: Option<&PathBuf>,
    args: LeaderboardArgs,
) -> anyhow::Result<()> {
    let by = RankBy::parse(&args.rank_by).ok_or_else(|| {
        anyhow::anyhow!(
            "--rank-by {:?}: expected value, efficiency or hygiene",
            args.rank_by
        )
    })?;
    if !matches!(args.format.as_str(), "table" | "json") {
        anyhow::bail!("--format {:?}: expected table or json", args.format);
    }
    let (ledger, store) = open_ledger(config_path).await?;
    let week = week_arg(args.week.as_deref(), ledger.tz())?;
    let board = ledger.leaderboard(week, by).await?;
    store.close().await;
    if args.format == "json" {
        println!("{}", serde_json::to_string_pretty(&board.to_json())?);
        return Ok(());
    }
    let t = |m: i64| m as f64 / 1000.0;
    println!(
        "{} (rules {}, ranked by {})",
        board.week, board.rules_version, board.rank_by
    );
    println!(
        "{:>4} {:<24} {:>10} {:>10} {:>10} {:>8} {:>7} {:>10} {:>6} {:>5}",
        "rank",
        "person",
        "value",
        "earned",
        "clawed",
        "hygiene",
        "factor",
        "efficiency",
        "ai",
        "trend"
    );
    for l in board.entries.iter().chain(&board.unranked) {
        println!(
            "{:>4} {:<24} {:>10.3} {:>10.3} {:>10.3} {:>8} {:>7.3} {:>10} {:>6} {:>5}",
            l.rank.map(|r| r.to_string()).unwrap_or_else(|| "-".into()),
            l.person,
            t(l.value),
            t(l.earned),
            t(l.clawed_back),
            l.hygiene,
            l.payout_factor,
            l.efficiency
                .map(|e| format!("{e:.3}"))
                .unwrap_or_else(|| "-".into()),
            l.ai_commits,
            l.trend.clone().unwrap_or_default()
        );
    }
    if board.entries.is_empty() && board.unranked.is_empty() {
        println!("nothing landed in {}", board.week);
    }
    Ok(())
}

pub async fn balance(config_path: Option<&PathBuf>, args: BalanceArgs) -> anyhow::Result<()> {
    let (ledger, store) = open_ledger(config_path).await?;
    if !store.person_exists(&args.person).await? {
        store.close().await;
        anyhow::bail!("no person {:?} is known", args.person);
    }
    let b = ledger.balance(&args.person).await?;
    store.close().await;
    let t = |m: i64| m as f64 / 1000.0;
    println!("{}", args.person);
    println!("  pending     {:>12.3}", t(b.pending));
    println!("  vested      {:>12.3}", t(b.vested));
    println!("  redeemed    {:>12.3}", t(b.redeemed));
    println!("  clawed back {:>12.3}", t(b.clawed_back));
    println!("  paid        {:>12.3}", t(b.paid));
    println!("  available   {:>12.3}", t(b.available));
    println!("  owed        {:>12.3}", t(b.owed));
    Ok(())
}

pub async fn payouts(config_path: Option<&PathBuf>, args: PayoutsArgs) -> anyhow::Result<()> {
    let (ledger, store) = open_ledger(config_path).await?;
    let week = week_arg(args.week.as_deref(), ledger.tz())?;
    let statement = ledger.statement(week).await?;
    store.close().await;
    let config = ledger.payout_config();
    let exponent = config.exponent();
    println!(
        "{} · payout mode {} · amounts in {}",
        week.label(),
        config.mode.as_str(),
        config.currency
    );
    if !statement.closed {
        println!(
            "  {} is still open: it closes at {} and its payouts are made then",
            week.label(),
            crate::ledger::read::rfc3339(ledger.closes_at(week))
        );
        return Ok(());
    }
    let paid: Vec<_> = statement.lines.iter().filter(|l| l.paid != 0).collect();
    for l in &paid {
        println!(
            "  {:<24} {:>12} tokens  {:>14}",
            l.person,
            crate::scoring::money::milli_text(l.paid),
            crate::scoring::money::minor_text(l.amount_minor, exponent, &config.currency)
        );
    }
    if paid.is_empty() {
        println!("  nothing was paid at the close of {}", week.label());
    }
    Ok(())
}
