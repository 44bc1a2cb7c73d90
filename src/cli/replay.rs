//! `tokentally replay [--apply]`: the ledger recomputed from stored commits and
//! signals under the current rules, compared with the ledger as it stands.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;

use super::open_ledger;
use crate::clock::now_ms;
use crate::scoring::MilliTokens;
use crate::scoring::balance::EntryKind;

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Append compensating adjustments so balances match the current rules
    #[arg(long)]
    pub apply: bool,
}

/// Per person: (earned, vested, clawed back) in milli-tokens.
type Totals = BTreeMap<String, [MilliTokens; 3]>;

fn add(totals: &mut Totals, person: &str, kind: EntryKind, amount: MilliTokens) {
    let slot = totals.entry(person.to_string()).or_default();
    match kind {
        k if k.is_earning() => slot[0] += amount,
        EntryKind::Vest => slot[1] += amount,
        EntryKind::Clawback => slot[2] -= amount,
        _ => {}
    }
}

async fn totals_now(store: &crate::store::Store) -> anyhow::Result<Totals> {
    let mut totals = Totals::new();
    for (person, kind, amount) in store.commit_entry_totals().await? {
        add(&mut totals, &person, kind, amount);
    }
    Ok(totals)
}

pub async fn run(config_path: Option<&PathBuf>, args: ReplayArgs) -> anyhow::Result<()> {
    let (ledger, store) = open_ledger(config_path).await?;
    let now = now_ms();
    let started = std::time::Instant::now();
    let current = totals_now(&store).await?;
    // With --apply the new rules are applied (one pass), and the differences
    // are what that appended; without, a scratch ledger is computed and compared.
    let (replayed, what) = if args.apply {
        let report = ledger.replay_apply(now).await?;
        (
            totals_now(&store).await?,
            format!(
                "applied: {} compensating entries appended over {} commits \
                 (loading {:.2} s, planning {:.2} s, appending {:.2} s)",
                report.appended,
                report.commits,
                report.load.as_secs_f64(),
                report.plan.as_secs_f64(),
                (report.total - report.load - report.plan).as_secs_f64()
            ),
        )
    } else {
        let mut replayed = Totals::new();
        let mut count = 0;
        ledger
            .replay_scratch_each(now, |e| {
                count += 1;
                add(&mut replayed, &e.person, e.kind, e.amount);
            })
            .await?;
        (replayed, format!("{count} entries replayed"))
    };
    let people: Vec<&String> = {
        let mut all: Vec<&String> = replayed.keys().chain(current.keys()).collect();
        all.sort();
        all.dedup();
        all
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
    let mut differing = 0;
    for person in people {
        let now = current.get(person).copied().unwrap_or_default();
        let new = replayed.get(person).copied().unwrap_or_default();
        if now == new {
            continue;
        }
        differing += 1;
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
    if differing == 0 {
        println!("no differences: the ledger matches the current rules");
    } else if !args.apply {
        println!("run `tokentally replay --apply` to append compensating adjustments");
    }
    store.close().await;
    Ok(())
}
