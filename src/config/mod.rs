//! Configuration: `tokentally.toml` overlaid with `TOKENTALLY_*` environment variables.
//!
//! Environment variables win over the file. Unknown keys and bad values are
//! errors that name the key (or the variable) so a typo never silently falls
//! back to a default.
//!
//! - `mod.rs`: the top-level schema ([`Config`]), loading and its errors;
//! - `sections.rs`: the service's tables (`[http]`, `[worker]`, `[payout]`, …);
//! - `output.rs`: the digest, Discord and dashboard tables;
//! - `env.rs`: the `TOKENTALLY_*` variables and how they overlay the file;
//! - `validate.rs`: checks that need more than a type;
//! - `schedule.rs`: cron expressions; `first_run.rs`: the file `serve` writes.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::attribution::agents::AgentConfig;
use crate::attribution::identity::PersonConfig;
use crate::store::{ConnectOptions, SqliteSync};

mod env;
mod first_run;
mod output;
mod schedule;
mod sections;
mod validate;

pub use crate::github::settings::GithubConfig;
pub use env::ENV_VARS;
pub use first_run::write_first_run_file;
pub use output::{
    ChartKind, DashboardConfig, DestinationConfig, DigestConfig, DiscordConfig, WebhookTarget,
    parse_webhook_url,
};
pub use schedule::parse_cron;
pub use sections::{
    ApiConfig, AttributionConfig, DatabaseConfig, HttpConfig, LogFormat, MirrorsConfig,
    PayoutConfig, PayoutMode, SchedulesConfig, SignalsConfig, WorkerConfig, resolve_listen,
};

/// The file `serve` looks for when `--config` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "tokentally.toml";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP server binds to: `HOST:PORT`, a host name resolved at start.
    #[serde(deserialize_with = "sections::socket_address")]
    pub listen: SocketAddr,
    /// `sqlite://FILE` or `postgres://…`.
    pub database_url: String,
    /// SQLite only: `normal` (survives a process crash) or `full` (also power loss, slower).
    pub sqlite_synchronous: SqliteSync,
    /// `[database]`: the connection pool.
    pub database: DatabaseConfig,
    /// Where repository mirrors are kept.
    pub data_dir: PathBuf,
    pub mirrors: MirrorsConfig,
    /// Log filter in `tracing` syntax (`info`, `tokentally=debug`, …).
    pub log: String,
    /// `text` (for people) or `json` (one object a line, for log shippers).
    pub log_format: LogFormat,
    pub github: GithubConfig,
    pub worker: WorkerConfig,
    pub http: HttpConfig,
    pub api: ApiConfig,
    pub signals: SignalsConfig,
    /// `[[agents]]`: agents beyond (or overriding) the built-in registry.
    pub agents: Vec<AgentConfig>,
    /// `[[people]]`: who owns which emails, GitHub login and Discord id.
    pub people: Vec<PersonConfig>,
    pub attribution: AttributionConfig,
    /// `[scoring]`: tier weights, size, outcome multipliers, calibration,
    /// hygiene, vesting (defaults in `docs/scoring.md`).
    pub scoring: crate::scoring::rules::Rules,
    /// IANA time zone of ISO weeks, schedules and `scoring.pay_from` dates.
    pub timezone: String,
    /// `[schedules]`: when the vesting, calibration and hygiene jobs run.
    pub schedules: SchedulesConfig,
    /// `[payout]`: how tokens become money.
    pub payout: PayoutConfig,
    /// The dashboard's public address, for links in the digest and PR comments.
    pub public_url: Option<String>,
    /// `[digest]`: the weekly digest's schedule and contents.
    pub digest: DigestConfig,
    /// `[discord]`: where the digest is posted.
    pub discord: DiscordConfig,
    /// `[dashboard]`: login and sessions of the web pages.
    pub dashboard: DashboardConfig,
    /// `[usage]`: verified usage the coding agents report over OTLP.
    pub usage: UsageConfig,
}

/// `[usage]`: which OTLP metric prefixes are which agent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UsageConfig {
    /// `"claude_code" = "claude-code"`: given entries are laid over the
    /// defaults (claude_code, gemini_cli, opencode, codex).
    #[serde(deserialize_with = "agents_over_defaults")]
    pub agents: std::collections::BTreeMap<String, String>,
    /// What a cache-read token weighs in verified usage (input, output and
    /// cache creation weigh 1): reading a cache is cheap.
    pub cache_read_weight: f64,
    /// With `scoring.require_usage`: how many hours before a commit its
    /// author's agent must have reported usage.
    pub window_hours: u32,
    /// Requests per minute one telemetry token may send (each agent's export
    /// is one request: 100 engineers × 10 agents every minute are 1,000).
    pub rate_limit_per_minute: u32,
}

impl Default for UsageConfig {
    fn default() -> Self {
        UsageConfig {
            agents: crate::scoring::usage::default_agents(),
            cache_read_weight: 0.1,
            window_hours: 72,
            rate_limit_per_minute: 6_000,
        }
    }
}

fn agents_over_defaults<'de, D: serde::Deserializer<'de>>(
    de: D,
) -> Result<std::collections::BTreeMap<String, String>, D::Error> {
    let given = std::collections::BTreeMap::<String, String>::deserialize(de)?;
    let mut agents = crate::scoring::usage::default_agents();
    agents.extend(given);
    Ok(agents)
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: "sqlite://tokentally.db".to_string(),
            sqlite_synchronous: SqliteSync::default(),
            database: DatabaseConfig::default(),
            data_dir: PathBuf::from("tokentally-data"),
            mirrors: MirrorsConfig::default(),
            log: "info".to_string(),
            log_format: LogFormat::Text,
            github: GithubConfig::default(),
            worker: WorkerConfig::default(),
            http: HttpConfig::default(),
            api: ApiConfig::default(),
            signals: SignalsConfig::default(),
            agents: Vec::new(),
            people: Vec::new(),
            attribution: AttributionConfig::default(),
            scoring: crate::scoring::rules::Rules::default(),
            timezone: "UTC".to_string(),
            schedules: SchedulesConfig::default(),
            payout: PayoutConfig::default(),
            public_url: None,
            digest: DigestConfig::default(),
            discord: DiscordConfig::default(),
            dashboard: DashboardConfig::default(),
            usage: UsageConfig::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("invalid configuration: `{key}`{origin}: {message}")]
    Invalid {
        key: String,
        origin: String,
        message: String,
    },
    #[error(
        "unknown environment variable {name}: did you mean {nearest}? (every variable is listed in the README's configuration table)"
    )]
    UnknownVariable { name: String, nearest: String },
    #[error("cannot write config file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Config {
    /// How commits are attributed under this configuration.
    pub fn attributor(&self) -> crate::attribution::commit::Attributor {
        crate::attribution::commit::Attributor::new(
            &self.agents,
            &self.attribution.paths,
            &self.people,
        )
        .with_follow_up_window(2 * i64::from(self.scoring.vesting_days))
    }

    /// Which repositories events are taken for (`github.repositories`, the App).
    pub fn repository_policy(&self) -> crate::github::repositories::RepositoryPolicy {
        crate::github::repositories::RepositoryPolicy::new(
            &self.github.repositories,
            self.github.app_id.is_some(),
        )
    }

    /// How the store connects (`sqlite_synchronous` and `[database]`).
    pub fn connect_options(&self) -> ConnectOptions {
        ConnectOptions {
            sqlite_sync: self.sqlite_synchronous,
            acquire_timeout: std::time::Duration::from_millis(self.database.acquire_timeout_ms),
            max_connections: self.database.max_connections,
        }
    }

    /// The configured time zone.
    pub fn tz(&self) -> Result<chrono_tz::Tz, String> {
        self.timezone.parse().map_err(|_| {
            format!(
                "{:?} is not an IANA time zone (for example UTC, Europe/Berlin, America/New_York)",
                self.timezone
            )
        })
    }

    /// Reads `path` (if given and present) and overlays the `TOKENTALLY_*` variables in `env`.
    pub fn load(path: Option<&Path>, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
        // A misspelled variable would silently fall back to a default.
        let mut unknown: Vec<&String> = env
            .keys()
            .filter(|k| k.starts_with("TOKENTALLY_"))
            .filter(|k| !env::is_known(k))
            .collect();
        unknown.sort();
        if let Some(var) = unknown.first() {
            return Err(ConfigError::UnknownVariable {
                name: var.to_string(),
                nearest: env::nearest_variable(var).to_string(),
            });
        }
        let mut table = match path {
            Some(path) => read_table(path)?,
            None => toml::Table::new(),
        };
        let from_env = env::overlay_env(&mut table, env)?;
        let config = deserialize(table, &from_env)?;
        config.validate(&from_env)?;
        Ok(config)
    }
}

fn read_table(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    text.parse::<toml::Table>()
        .map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

fn deserialize(
    table: toml::Table,
    from_env: &BTreeMap<String, String>,
) -> Result<Config, ConfigError> {
    serde_path_to_error::deserialize::<_, Config>(toml::Value::Table(table)).map_err(|err| {
        let key = err.path().to_string();
        let message = err.inner().to_string();
        let message = message.lines().next().unwrap_or_default().to_string();
        ConfigError::Invalid {
            origin: validate::origin(from_env, &key),
            key,
            message,
        }
    })
}

#[cfg(test)]
mod tests;
