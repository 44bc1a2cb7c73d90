//! `tokentally deliveries list|retry`: see what the worker could not process, and
//! queue it again once its cause (a token, a remote, a bug) is fixed.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{load_config, process_env};
use crate::clock::now_ms;
use crate::store::Store;
use crate::store::deliveries::DeliveryStatus;

#[derive(Debug, Args)]
pub struct DeliveriesArgs {
    #[command(subcommand)]
    pub command: DeliveriesCommand,
}

#[derive(Debug, Subcommand)]
pub enum DeliveriesCommand {
    /// List webhook deliveries with their state, attempts and last error
    List {
        /// Only deliveries that failed for good
        #[arg(long)]
        failed: bool,
    },
    /// Queue failed deliveries again (with a fresh count of attempts)
    Retry {
        /// The X-GitHub-Delivery id of a failed delivery
        #[arg(value_name = "DELIVERY_ID", required_unless_present = "failed")]
        id: Option<String>,
        /// Every delivery that failed for good
        #[arg(long, conflicts_with = "id")]
        failed: bool,
    },
}

pub async fn run(config_path: Option<&PathBuf>, args: DeliveriesArgs) -> anyhow::Result<()> {
    let config = load_config(config_path, &process_env())?;
    let store = Store::open_existing(&config.database_url, config.connect_options()).await?;
    store.migrate().await?;
    let result = match args.command {
        DeliveriesCommand::List { failed } => {
            let rows = if failed {
                store.failed_deliveries().await?
            } else {
                store.all_delivery_statuses().await?
            };
            print_table(&rows, failed);
            Ok(())
        }
        DeliveriesCommand::Retry { id: Some(id), .. } => {
            if store.requeue_delivery(&id, now_ms()).await? {
                eprintln!("queued delivery {id} again");
                Ok(())
            } else {
                Err(anyhow::anyhow!(
                    "there is no failed delivery {id:?} (see `tokentally deliveries list --failed`)"
                ))
            }
        }
        DeliveriesCommand::Retry { id: None, .. } => {
            let failed = store.failed_deliveries().await?;
            for delivery in &failed {
                store
                    .requeue_delivery(&delivery.delivery_id, now_ms())
                    .await?;
            }
            eprintln!(
                "queued {} failed deliver{} again",
                failed.len(),
                if failed.len() == 1 { "y" } else { "ies" }
            );
            Ok(())
        }
    };
    store.close().await;
    result
}

fn print_table(rows: &[DeliveryStatus], failed_only: bool) {
    if rows.is_empty() {
        eprintln!(
            "{}",
            if failed_only {
                "no failed deliveries"
            } else {
                "no deliveries"
            }
        );
        return;
    }
    println!(
        "{:<38} {:<20} {:<10} {:>8}  last error",
        "delivery", "event", "state", "attempts"
    );
    for row in rows {
        let error: String = row
            .last_error
            .as_deref()
            .unwrap_or("")
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(160)
            .collect();
        println!(
            "{:<38} {:<20} {:<10} {:>8}  {}",
            row.delivery_id, row.event, row.state, row.attempts, error
        );
    }
}
