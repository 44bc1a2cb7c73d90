//! `tokentally redeem --person P --tokens N --kind bonus|pto|equity`: debits a
//! person's available (vested, unredeemed) tokens, never below zero.

use std::path::PathBuf;

use clap::Args;

use super::open_ledger;
use crate::clock::now_ms;
use crate::store::ledger::Redemption;

#[derive(Debug, Args)]
pub struct RedeemArgs {
    #[arg(long)]
    pub person: String,
    /// Tokens to redeem (up to 3 decimals)
    #[arg(long)]
    pub tokens: f64,
    /// bonus, pto or equity
    #[arg(long)]
    pub kind: String,
    /// Idempotency key: running the same redemption again does nothing [default: a new one]
    #[arg(long)]
    pub key: Option<String>,
}

pub async fn run(config_path: Option<&PathBuf>, args: RedeemArgs) -> anyhow::Result<()> {
    let (ledger, store) = open_ledger(config_path).await?;
    let now = now_ms();
    let key = args
        .key
        .clone()
        .unwrap_or_else(|| format!("{}-{}", now, std::process::id()));
    let entry = crate::ledger::redemption::entry(
        &args.person,
        args.tokens,
        &args.kind,
        &format!("redemption:cli:{key}"),
        "cli",
        ledger.version(),
        now,
    )
    .map_err(|(field, message)| anyhow::anyhow!("--{field}: {message}"))?;
    let outcome = store.redeem(&entry, now).await?;
    let result = match outcome {
        Redemption::Done { .. } => {
            let b = ledger.balance(&args.person).await?;
            println!(
                "redeemed {:.3} tokens for {} as {}; {:.3} available",
                args.tokens,
                args.person,
                args.kind,
                b.available as f64 / 1000.0
            );
            Ok(())
        }
        Redemption::Replayed { same: true, .. } => {
            println!("this redemption (key {key:?}) was recorded before; nothing changed");
            Ok(())
        }
        Redemption::Replayed { same: false, .. } => Err(anyhow::anyhow!(
            "key {key:?} was used for another redemption; nothing was changed"
        )),
        Redemption::Insufficient { available } => Err(anyhow::anyhow!(
            "{} has {:.3} tokens available (vested, not yet redeemed); {:.3} were asked for: nothing was redeemed",
            args.person,
            available as f64 / 1000.0,
            args.tokens
        )),
        Redemption::UnknownPerson => Err(anyhow::anyhow!("no person {:?} is known", args.person)),
    };
    store.close().await;
    result
}
