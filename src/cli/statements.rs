//! `tokentally statements` (a week's statement: table, CSV for payroll, JSON)
//! and `tokentally ledger verify` (the hash chain and every statement).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::open_ledger;
use crate::ledger::periods::Verified;
use crate::scoring::money::minor_text;

#[derive(Debug, Args)]
pub struct StatementsArgs {
    /// ISO week, e.g. 2026-W41, or `current` [default: the last complete week]
    #[arg(long)]
    pub week: Option<String>,
    /// table, csv (one row per person, header included) or json
    #[arg(long, default_value = "table")]
    pub format: String,
}

#[derive(Debug, Args)]
pub struct LedgerArgs {
    #[command(subcommand)]
    pub command: LedgerCommand,
}

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Recompute the hash chain and every closed week's statement; exit 1 at the first mismatch.
    Verify,
}

pub async fn statements(config_path: Option<&PathBuf>, args: StatementsArgs) -> anyhow::Result<()> {
    if !matches!(args.format.as_str(), "table" | "csv" | "json") {
        anyhow::bail!("--format {:?}: expected table, csv or json", args.format);
    }
    let (ledger, store) = open_ledger(config_path).await?;
    let tz = ledger.tz();
    let week = super::standings::week_arg(args.week.as_deref(), tz)?;
    let statement = ledger.statement(week).await?;
    let closes_at = ledger.closes_at(week);
    store.close().await;
    let exponent = ledger.payout_config().exponent();
    let t = crate::scoring::money::milli_text;
    match args.format.as_str() {
        "json" => {
            let mut body = statement.to_json();
            if !statement.closed {
                body["closes_at"] = serde_json::json!(crate::ledger::read::rfc3339(closes_at));
            }
            println!("{}", serde_json::to_string_pretty(&body)?);
        }
        "csv" => {
            println!(
                "week,person,opening,vested,clawed_back,corrections,redeemed,paid,closing,amount_minor,amount,currency,closed"
            );
            for l in &statement.lines {
                println!(
                    "{},{},{},{},{},{},{},{},{},{},{},{},{}",
                    statement.week,
                    csv_field(&l.person),
                    t(l.opening),
                    t(l.vested),
                    t(l.clawed_back),
                    t(l.corrections),
                    t(l.redeemed),
                    t(l.paid),
                    t(l.closing),
                    l.amount_minor,
                    rust_decimal::Decimal::new(l.amount_minor, exponent),
                    statement.currency,
                    statement.closed
                );
            }
        }
        _ => {
            let state = if statement.closed {
                format!(
                    "closed, chain hash {}",
                    statement.hash.as_deref().unwrap_or("")
                )
            } else {
                format!(
                    "open: closes at {}, not final",
                    crate::ledger::read::rfc3339(closes_at)
                )
            };
            println!("{} ({state})", statement.week);
            println!(
                "  {:<24} {:>10} {:>10} {:>10} {:>11} {:>10} {:>10} {:>10} {:>14}",
                "person",
                "opening",
                "vested",
                "clawed",
                "corrections",
                "redeemed",
                "paid",
                "closing",
                "amount"
            );
            for l in &statement.lines {
                println!(
                    "  {:<24} {:>10} {:>10} {:>10} {:>11} {:>10} {:>10} {:>10} {:>14}",
                    l.person,
                    t(l.opening),
                    t(l.vested),
                    t(l.clawed_back),
                    t(l.corrections),
                    t(l.redeemed),
                    t(l.paid),
                    t(l.closing),
                    minor_text(l.amount_minor, exponent, &statement.currency)
                );
            }
            if statement.lines.is_empty() {
                println!("  no balance moved in {}", statement.week);
            }
            println!(
                "  total {}",
                minor_text(statement.total_minor, exponent, &statement.currency)
            );
        }
    }
    Ok(())
}

/// A CSV field, quoted when it holds a comma, quote or line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

pub async fn ledger(config_path: Option<&PathBuf>, args: LedgerArgs) -> anyhow::Result<()> {
    match args.command {
        LedgerCommand::Verify => {
            let (ledger, store) = open_ledger(config_path).await?;
            let verified = ledger.verify().await;
            store.close().await;
            match verified? {
                Verified::Ok {
                    entries,
                    statements,
                } => {
                    println!("ok: {entries} entries, {statements} statements");
                    Ok(())
                }
                Verified::Entry { id, reason } => {
                    anyhow::bail!("ledger entry {id} does not match the chain: {reason}")
                }
                Verified::Statement { week, reason } => {
                    anyhow::bail!("the statement of {week} does not match the ledger: {reason}")
                }
            }
        }
    }
}
