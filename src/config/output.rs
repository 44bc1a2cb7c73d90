//! The configuration of what the service sends out: the weekly digest, its
//! Discord destinations, and the dashboard address used in links.

use serde::Deserialize;

use super::{Config, ConfigError};
use crate::secret::Secret;

/// `[digest]`: when the weekly digest is posted and what it shows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DigestConfig {
    /// Cron expression (seconds first, `Mon`), in `timezone`: posts the last complete week.
    pub schedule: String,
    /// How many people the leaderboard shows.
    pub top: usize,
    /// `people` (tokens per person, vested/pending) or `trend` (12-week team trend).
    pub chart: ChartKind,
}

impl Default for DigestConfig {
    fn default() -> Self {
        DigestConfig {
            schedule: "0 0 9 * * Mon *".to_string(),
            top: 10,
            chart: ChartKind::People,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChartKind {
    #[default]
    People,
    Trend,
}

/// `[discord]`: where digests go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscordConfig {
    /// Where every Discord request goes (tests and proxies point it elsewhere).
    pub api_url: String,
    /// A single destination (named `team`) by its webhook URL
    /// (`TOKENTALLY_DISCORD_WEBHOOK_URL`).
    pub webhook_url: Option<Secret>,
    /// `[[discord.destinations]]`.
    pub destinations: Vec<DestinationConfig>,
    /// First wait before retrying a 5xx or a network error (doubles each time).
    pub retry_base_ms: u64,
    /// Attempts of one digest before it is marked failed.
    pub max_attempts: u32,
    /// The Discord application (slash commands and DMs): its id…
    pub application_id: Option<String>,
    /// …its public key (hex), which signs every interaction…
    pub public_key: Option<String>,
    /// …and its bot token, for registering commands and sending DMs only.
    pub bot_token: Option<Secret>,
    /// Register the commands in this server (guild) only, instead of globally.
    pub guild_id: Option<String>,
    /// Discord role ids whose members may `/redeem`; nobody when empty.
    pub redeem_roles: Vec<String>,
    /// DM people when their tokens vest, are clawed back or are paid.
    pub dm: bool,
    /// Interactions one Discord user may make per minute.
    pub interactions_per_minute: u32,
    /// An answer not ready within this is deferred ("thinking…") and sent
    /// as a follow-up (Discord allows 3 s).
    pub answer_within_ms: u64,
}

impl Default for DiscordConfig {
    fn default() -> Self {
        DiscordConfig {
            api_url: "https://discord.com".to_string(),
            webhook_url: None,
            destinations: Vec::new(),
            retry_base_ms: 2_000,
            max_attempts: 8,
            application_id: None,
            public_key: None,
            bot_token: None,
            guild_id: None,
            redeem_roles: Vec::new(),
            dm: false,
            interactions_per_minute: 20,
            answer_within_ms: 2_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    pub name: String,
    /// `https://discord.com/api/webhooks/{id}/{token}`: a secret.
    pub webhook_url: Secret,
    /// Only these repositories (`owner/name`); all when empty.
    #[serde(default)]
    pub repos: Vec<String>,
    /// Only these people; all when empty.
    #[serde(default)]
    pub people: Vec<String>,
}

/// `[dashboard]`: the web pages `serve` shows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardConfig {
    /// Pages without a login (compensation data is private: off by default).
    pub public: bool,
    /// How long a login lasts.
    pub session_hours: u64,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            public: false,
            session_hours: 12,
        }
    }
}

/// A Discord webhook: its id and token, parsed from its URL.
#[derive(Clone)]
pub struct WebhookTarget {
    pub id: u64,
    pub token: Secret,
}

impl std::fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebhookTarget({}, [redacted])", self.id)
    }
}

/// Reads `…/api/webhooks/{id}/{token}` (any host: the request goes to `discord.api_url`).
/// The error never repeats the URL: it holds the token.
pub fn parse_webhook_url(url: &str) -> Result<WebhookTarget, &'static str> {
    const SHAPE: &str = "must look like https://discord.com/api/webhooks/{id}/{token}";
    let parsed = url::Url::parse(url).map_err(|_| SHAPE)?;
    let segments: Vec<&str> = parsed
        .path_segments()
        .map(|s| s.filter(|p| !p.is_empty()).collect())
        .unwrap_or_default();
    let at = segments
        .iter()
        .position(|s| *s == "webhooks")
        .ok_or(SHAPE)?;
    match &segments[at..] {
        [_, id, token] => {
            let id: u64 = id.parse().map_err(|_| SHAPE)?;
            if id == 0
                || token.is_empty()
                || !token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(SHAPE);
            }
            Ok(WebhookTarget {
                id,
                token: Secret::new(*token),
            })
        }
        _ => Err(SHAPE),
    }
}

impl DiscordConfig {
    /// Every destination: the `[[discord.destinations]]` and the single `webhook_url` (as `team`).
    pub fn all_destinations(&self) -> Vec<DestinationConfig> {
        let mut all = self.destinations.clone();
        if let Some(url) = &self.webhook_url {
            all.push(DestinationConfig {
                name: "team".to_string(),
                webhook_url: url.clone(),
                repos: Vec::new(),
                people: Vec::new(),
            });
        }
        all
    }
}

impl Config {
    /// Checks `[digest]`, `[discord]`, `public_url` and the GitHub App settings.
    pub(super) fn validate_output(
        &self,
        invalid: &dyn Fn(&str, &str) -> ConfigError,
    ) -> Result<(), ConfigError> {
        if let Err(e) = crate::config::parse_cron(&self.digest.schedule) {
            return Err(invalid("digest.schedule", &e));
        }
        if self.digest.top == 0 {
            return Err(invalid("digest.top", "must be at least 1"));
        }
        let http_url = |key: &str, url: &str| {
            if url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
                Ok(())
            } else {
                Err(invalid(key, "must be an http(s) URL"))
            }
        };
        http_url("discord.api_url", &self.discord.api_url)?;
        if let Some(url) = &self.public_url {
            http_url("public_url", url)?;
        }
        if self.discord.max_attempts == 0 {
            return Err(invalid("discord.max_attempts", "must be at least 1"));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, d) in self.discord.all_destinations().iter().enumerate() {
            let key = if i < self.discord.destinations.len() {
                format!("discord.destinations[{i}]")
            } else {
                "discord.webhook_url".to_string()
            };
            if d.name.trim().is_empty() {
                return Err(invalid(&format!("{key}.name"), "must not be empty"));
            }
            if !names.insert(d.name.as_str()) {
                return Err(invalid(
                    &format!("{key}.name"),
                    &format!("{:?} names two destinations", d.name),
                ));
            }
            if let Err(e) = parse_webhook_url(d.webhook_url.expose()) {
                let key = if key.ends_with("webhook_url") {
                    key
                } else {
                    format!("{key}.webhook_url")
                };
                return Err(invalid(&key, e));
            }
        }
        if self.github.app_id.is_some() != self.github.private_key.is_some() {
            return Err(invalid(
                "github.app_id",
                "a GitHub App needs both app_id and private_key (the path of its PEM key)",
            ));
        }
        if self.dashboard.session_hours == 0 {
            return Err(invalid("dashboard.session_hours", "must be at least 1"));
        }
        if self.github.reconcile_interval_seconds == 0 {
            return Err(invalid(
                "github.reconcile_interval_seconds",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_are_read_without_echoing_the_token() {
        let t = parse_webhook_url("https://discord.com/api/webhooks/123456/abc-DEF_9").unwrap();
        assert_eq!(t.id, 123456);
        assert_eq!(t.token.expose(), "abc-DEF_9");
        assert!(!format!("{t:?}").contains("abc"));
        let t = parse_webhook_url("https://discord.com/api/v10/webhooks/7/tok").unwrap();
        assert_eq!(t.id, 7);
        for bad in [
            "https://discord.com/api/webhooks/123456",
            "https://discord.com/api/webhooks/x/abc",
            "https://discord.com/api/hooks/1/abc",
            "not a url secret-token",
        ] {
            let err = parse_webhook_url(bad).unwrap_err();
            assert!(!err.contains("abc") && !err.contains("secret"), "{err}");
        }
    }
}
