//! `tokentally discord register`: creates or updates the slash commands
//! (`/tokens`, `/leaderboard`, `/why`, `/redeem`) with Discord.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::{load_config, process_env};

#[derive(Debug, Args)]
pub struct DiscordArgs {
    #[command(subcommand)]
    pub command: DiscordCommand,
}

#[derive(Debug, Subcommand)]
pub enum DiscordCommand {
    /// Create or update the slash commands (globally, or in `discord.guild_id`); safe to run again.
    Register,
}

pub async fn run(config_path: Option<&PathBuf>, args: DiscordArgs) -> anyhow::Result<()> {
    match args.command {
        DiscordCommand::Register => register(config_path).await,
    }
}

async fn register(config_path: Option<&PathBuf>) -> anyhow::Result<()> {
    let config = load_config(config_path, &process_env())?;
    let store =
        crate::store::Store::open_existing(&config.database_url, config.connect_options()).await?;
    let ledger = crate::ledger::Ledger::new(store.clone(), &config);
    let config = Arc::new(config);
    let chat = crate::chat::Chat {
        ledger,
        client: crate::notify::discord::DiscordClient::new(
            &config.discord.api_url,
            Duration::from_millis(config.discord.retry_base_ms),
            Arc::new(crate::metrics::Metrics::new()),
        ),
        config: config.clone(),
        clock: Arc::new(crate::clock::SystemClock),
    };
    let names = crate::chat::register::register(&chat).await?;
    store.close().await;
    let place = match &config.discord.guild_id {
        Some(guild) => format!("in server {guild}"),
        None => "globally (new global commands can take up to an hour to show)".to_string(),
    };
    println!("registered /{} {place}", names.join(", /"));
    Ok(())
}
