//! `tokentally replay [--apply]`: the ledger recomputed from stored commits and
//! signals under the current rules, compared with the ledger as it stands.

use std::path::PathBuf;

use clap::Args;

use super::open_ledger;
use crate::clock::now_ms;
use crate::scoring::MilliTokens;

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Append compensating adjustments so balances match the current rules
    #[arg(long)]
    pub apply: bool,
}

pub async fn run(config_path: Option<&PathBuf>, args: ReplayArgs) -> anyhow::Result<()> {
    let (ledger, store) = open_ledger(config_path).await?;
    let now = now_ms();
    let started = std::time::Instant::now();
    let replay = ledger.replay(now, args.apply).await?;
    let what = match &replay.report {
        Some(report) => format!(
            "applied: {} compensating entries appended over {} commits \
             (loading {:.2} s, planning {:.2} s, appending {:.2} s)",
            report.appended,
            report.commits,
            report.load.as_secs_f64(),
            report.plan.as_secs_f64(),
            (report.total - report.load - report.plan).as_secs_f64()
        ),
        None => format!("{} entries replayed", replay.entries),
    };
    let t = |m: MilliTokens| m as f64 / 1000.0;
    println!(
        "rules {}: {what} in {:.2} s",
        ledger.version(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "{:<28} {:>12} {:>12} {:>10} {:>12} {:>12}",
        "person",
        "earned now",
        if args.apply { "applied" } else { "replayed" },
        "diff",
        "vested now",
        if args.apply { "applied" } else { "replayed" },
    );
    let differences = replay.differences();
    for (person, now, new) in &differences {
        println!(
            "{:<28} {:>12.3} {:>12.3} {:>+10.3} {:>12.3} {:>12.3}",
            person,
            t(now[0] - now[2]),
            t(new[0] - new[2]),
            t((new[0] - new[2]) - (now[0] - now[2])),
            t(now[1]),
            t(new[1])
        );
    }
    let differing = differences.len();
    if differing == 0 {
        println!("no differences: the ledger matches the current rules");
    } else if !args.apply {
        println!("run `tokentally replay --apply` to append compensating adjustments");
    }
    store.close().await;
    Ok(())
}
