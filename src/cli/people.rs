//! `tokentally people unmapped`: authors whose email no `[[people]]` entry owns.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{load_config, process_env};
use crate::store::Store;

#[derive(Debug, Args)]
pub struct PeopleArgs {
    #[command(subcommand)]
    pub command: PeopleCommand,
}

#[derive(Debug, Subcommand)]
pub enum PeopleCommand {
    /// Emails of landed commits that no `[[people]]` entry owns
    Unmapped,
}

pub async fn run(config_path: Option<&PathBuf>, args: PeopleArgs) -> anyhow::Result<()> {
    let config = load_config(config_path, &process_env())?;
    let store = Store::open_existing(&config.database_url, config.connect_options()).await?;
    store.migrate().await?;
    let PeopleCommand::Unmapped = args.command;
    let rows = store.unmapped_authors().await;
    store.close().await;
    let rows = rows?;
    if rows.is_empty() {
        eprintln!("every author of a landed commit is in [[people]]");
        return Ok(());
    }
    println!("{:<40} {:>7} {:>5}  last landed", "email", "landed", "AI");
    for (email, landed, ai, last) in rows {
        let last = last
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_default();
        println!("{email:<40} {landed:>7} {ai:>5}  {last}");
    }
    eprintln!("add each to a person's `emails` in [[people]] so their work counts for them");
    Ok(())
}
