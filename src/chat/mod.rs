//! tokentally as a Discord application over HTTP (no gateway): the slash
//! commands people ask (`/tokens`, `/leaderboard`, `/why`, `/redeem`), their
//! registration, and the DMs that tell people what happened to their tokens.
//!
//! - [`interaction`]: what Discord sends and the answers it takes;
//! - [`commands`]: the commands' definitions and answers;
//! - [`register`]: `tokentally discord register`;
//! - [`dm`]: one DM per person per settle pass, through an outbox.

pub mod commands;
pub mod dm;
pub mod interaction;
pub mod register;

use std::sync::Arc;

use crate::config::Config;
use crate::ledger::Ledger;
use crate::notify::discord::DiscordClient;

/// What answering Discord needs.
#[derive(Clone)]
pub struct Chat {
    pub ledger: Ledger,
    pub config: Arc<Config>,
    pub client: DiscordClient,
    pub clock: Arc<dyn crate::clock::Clock>,
}

impl Chat {
    /// The person a Discord user is, through `[[people]] discord`.
    pub fn person_of(&self, discord_user: &str) -> Option<String> {
        self.config
            .people
            .iter()
            .find(|p| p.discord.as_deref() == Some(discord_user))
            .map(|p| p.name.clone())
    }

    /// `Bot …` for calls made as the application.
    pub fn bot_authorization(&self) -> Option<String> {
        self.config
            .discord
            .bot_token
            .as_ref()
            .map(|t| format!("Bot {}", t.expose()))
    }
}
