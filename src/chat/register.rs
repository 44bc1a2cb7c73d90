//! `tokentally discord register`: creates or updates the slash commands as
//! global commands, or in one server (`discord.guild_id`). Discord's bulk
//! overwrite makes it idempotent: registering twice leaves the same commands.

use serenity::http::{LightMethod, Route};
use serenity::model::id::{ApplicationId, GuildId};

use super::Chat;
use super::commands::definitions;
use crate::notify::discord::Called;

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("set discord.{0} (or TOKENTALLY_DISCORD_{1}) to register the commands")]
    Missing(&'static str, &'static str),
    #[error("Discord did not take the commands: {0}")]
    Refused(String),
}

/// Registers the commands; returns the names Discord answered with.
pub async fn register(chat: &Chat) -> Result<Vec<String>, RegisterError> {
    let d = &chat.config.discord;
    let application: u64 = d
        .application_id
        .as_deref()
        .and_then(|id| id.parse().ok())
        .ok_or(RegisterError::Missing("application_id", "APPLICATION_ID"))?;
    let authorization = chat
        .bot_authorization()
        .ok_or(RegisterError::Missing("bot_token", "BOT_TOKEN"))?;
    let application_id = ApplicationId::new(application);
    let route = match d.guild_id.as_deref().and_then(|g| g.parse::<u64>().ok()) {
        Some(guild) => Route::GuildCommands {
            application_id,
            guild_id: GuildId::new(guild),
        },
        None => Route::Commands { application_id },
    };
    let body = serde_json::to_value(definitions()).expect("commands serialise");
    match chat
        .client
        .call(LightMethod::Put, route, Some(&body), &authorization)
        .await
    {
        Called::Done(answer) => Ok(answer
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|c| c["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()),
        Called::Retry { error, .. } | Called::Rejected(error) => Err(RegisterError::Refused(error)),
    }
}
