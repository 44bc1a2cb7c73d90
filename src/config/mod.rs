//! Configuration: `tokentally.toml` overlaid with `TOKENTALLY_*` environment variables.
//!
//! Environment variables win over the file. Unknown keys and bad values are
//! errors that name the key (or the variable) so a typo never silently falls
//! back to a default.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::attribution::agents::AgentConfig;
use crate::attribution::identity::PersonConfig;
use crate::attribution::paths::{PathGlobs, PathRules};
use crate::github::outcomes::{CONCLUSIONS, CiRules, CiSignalConfig};
use crate::store::{ConnectOptions, SqliteSync};

mod output;
pub use output::{
    ChartKind, DashboardConfig, DestinationConfig, DigestConfig, DiscordConfig, WebhookTarget,
    parse_webhook_url,
};

/// The file `serve` looks for when `--config` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "tokentally.toml";

/// A secret value that never shows up in `Debug`/`Display` output or logs.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself; call only where it is used, never to print it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP server binds to: `HOST:PORT`, a host name resolved at start.
    #[serde(deserialize_with = "socket_address")]
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
    /// hygiene, vesting (PRODUCT.md §3 defaults).
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
}

/// `[database]`: how requests get a connection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// How long a request waits for a database connection before it answers 503
    /// (with `Retry-After`); SQLite waits at least its 10 s busy timeout.
    pub acquire_timeout_ms: u64,
    /// PostgreSQL: connections per replica for requests (the worker has up to 8 more).
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        let defaults = ConnectOptions::default();
        DatabaseConfig {
            acquire_timeout_ms: defaults.acquire_timeout.as_millis() as u64,
            max_connections: defaults.max_connections,
        }
    }
}

/// Cron expressions (seconds first; weekdays by name, `Mon`), in `timezone`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulesConfig {
    pub vesting: String,
    pub calibration: String,
    pub hygiene: String,
}

impl Default for SchedulesConfig {
    fn default() -> Self {
        SchedulesConfig {
            vesting: "0 0 * * * *".to_string(),
            calibration: "0 0 0 * * Mon".to_string(),
            hygiene: "0 0 0 * * Mon".to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PayoutMode {
    /// `rate` currency units per token.
    #[default]
    Rate,
    /// `weekly_pool` currency units a week, split pro rata.
    Pool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PayoutConfig {
    pub mode: PayoutMode,
    /// ISO 4217 code, for display.
    pub currency: String,
    /// Currency units per token (rate mode), to the cent.
    pub rate: f64,
    /// Currency units per week (pool mode), to the cent.
    pub weekly_pool: f64,
    /// Optional: PTO hours per token.
    pub pto_hours_per_token: Option<f64>,
}

impl Default for PayoutConfig {
    fn default() -> Self {
        PayoutConfig {
            mode: PayoutMode::Rate,
            currency: "USD".to_string(),
            rate: 1.0,
            weekly_pool: 0.0,
            pto_hours_per_token: None,
        }
    }
}

impl PayoutConfig {
    /// `rate` in cents per token.
    pub fn rate_cents(&self) -> i64 {
        (self.rate * 100.0).round() as i64
    }

    /// `weekly_pool` in cents.
    pub fn pool_cents(&self) -> i64 {
        (self.weekly_pool * 100.0).round() as i64
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttributionConfig {
    /// `[attribution.paths]`: docs, tests, lockfiles, vendored, generated globs.
    pub paths: PathGlobs,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignalsConfig {
    /// `[signals.ci]`: which checks count as CI and how conclusions map to pass/fail.
    pub ci: CiSignalConfig,
    /// `[min, max]` of a signal's `value` (anything else is refused with 422).
    pub value_range: [f64; 2],
}

impl Default for SignalsConfig {
    fn default() -> Self {
        SignalsConfig {
            ci: CiSignalConfig::default(),
            value_range: [0.0, 1e9],
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Requests each API token may make per minute (429 with Retry-After beyond).
    pub rate_limit_per_minute: u32,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            rate_limit_per_minute: 60,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MirrorsConfig {
    /// Fetch repositories on push and pull_request events and attribute their commits.
    pub enabled: bool,
    /// URL prefixes a `clone_url` must start with to be fetched; empty: the GitHub
    /// web host of `github.api_url` only. `file://` and paths only when listed.
    pub allowed_remotes: Vec<String>,
    /// Seconds to wait for a remote to accept a connection.
    pub connect_timeout_seconds: u64,
    /// Seconds a remote may stay silent during a fetch before it is given up on.
    pub timeout_seconds: u64,
}

impl Default for MirrorsConfig {
    fn default() -> Self {
        MirrorsConfig {
            enabled: true,
            allowed_remotes: Vec::new(),
            connect_timeout_seconds: 10,
            timeout_seconds: 60,
        }
    }
}

/// `[http]`: limits that keep slow or hostile clients from holding the server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Seconds a client has to send the request line and headers; an idle
    /// keep-alive connection is closed after the same time.
    pub header_timeout_seconds: u64,
    /// Seconds a client has to send the whole body.
    pub body_timeout_seconds: u64,
    /// Connections served at once; more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Bodies over 1 MiB read at once (each up to 25 MiB); more wait their turn.
    pub max_large_bodies: usize,
    /// Seconds a shutdown waits for in-flight requests before it closes them.
    pub shutdown_grace_seconds: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_timeout_seconds: 10,
            body_timeout_seconds: 30,
            max_connections: 512,
            max_large_bodies: 4,
            shutdown_grace_seconds: 10,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GithubConfig {
    /// Every secret is accepted, so a secret can be rotated without downtime.
    pub webhook_secrets: Vec<Secret>,
    /// Token for fetching private repositories over HTTPS (and, later, the API).
    pub token: Option<Secret>,
    /// GitHub's REST API; its web host is where mirrors are fetched from and the
    /// only host the token is sent to.
    pub api_url: String,
    /// A GitHub App instead of a token: its id …
    pub app_id: Option<u64>,
    /// … and the path of its private key (PEM); installation tokens are fetched per event.
    pub private_key: Option<PathBuf>,
    /// Keep one comment on each pull request with AI-assisted commits.
    pub pr_comments: bool,
    /// How often every mirror is fetched, for pushes whose webhooks were lost.
    pub reconcile_interval_seconds: u64,
    /// First wait before retrying a GitHub API request after a 5xx, 429 or network error.
    pub retry_base_ms: u64,
    /// `owner/name` or `owner/*` patterns of the repositories events are taken
    /// for; empty: an App's installations, or any repository without an App.
    pub repositories: Vec<String>,
}

impl Default for GithubConfig {
    fn default() -> Self {
        GithubConfig {
            webhook_secrets: Vec::new(),
            token: None,
            api_url: "https://api.github.com".to_string(),
            app_id: None,
            private_key: None,
            pr_comments: true,
            reconcile_interval_seconds: 600,
            retry_base_ms: 1_000,
            repositories: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    /// How often an idle worker looks for deliveries stored by other replicas.
    pub poll_interval_ms: u64,
    /// Attempts before a delivery is marked failed for good.
    pub max_attempts: u32,
    /// First retry delay; doubles with every attempt, capped at one hour.
    pub retry_base_ms: u64,
    /// How long a claimed delivery stays claimed before another worker may take it
    /// over; renewed every third of it while the work runs.
    pub lease_seconds: u64,
    /// Deliveries processed at once (mirror syncs stay one at a time per repository).
    pub concurrency: usize,
    /// The longest one attempt at a delivery may take before it is abandoned and retried.
    pub delivery_timeout_seconds: u64,
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
        }
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            poll_interval_ms: 1000,
            max_attempts: 8,
            retry_base_ms: 5_000,
            lease_seconds: 30,
            concurrency: 4,
            delivery_timeout_seconds: 900,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

fn socket_address<'de, D: serde::Deserializer<'de>>(de: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(de)?;
    resolve_listen(&text).map_err(serde::de::Error::custom)
}

/// `HOST:PORT` → an address; a host name (`localhost:8080`) is resolved.
pub fn resolve_listen(text: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let invalid = || {
        format!(
            "{text:?} is not HOST:PORT (for example 127.0.0.1:8080, 0.0.0.0:8080 or localhost:8080)"
        )
    };
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let mut resolved = text.to_socket_addrs().map_err(|_| invalid())?;
    resolved.next().ok_or_else(invalid)
}

/// Variables named TOKENTALLY_* that are not configuration but are known: the
/// `report` command's and the test suite's.
const OTHER_VARS: &[&str] = &[
    "TOKENTALLY_URL",
    "TOKENTALLY_TOKEN",
    "TOKENTALLY_TEST_POSTGRES_URL",
    "TOKENTALLY_TEST_FIXTURES",
];

/// The known variable closest to `name` (by edit distance), to suggest.
fn nearest_variable(name: &str) -> &'static str {
    ENV_VARS
        .iter()
        .map(|(var, _)| *var)
        .chain(OTHER_VARS.iter().copied())
        .min_by_key(|known| edit_distance(name, known))
        .expect("there are known variables")
}

/// Levenshtein distance (bytes; the names are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

/// How an environment variable's text becomes a TOML value.
#[derive(Clone, Copy)]
enum EnvKind {
    Text,
    Integer,
    /// A decimal number (`2.50`).
    Number,
    /// `true`/`false` (also 1/0, yes/no).
    Bool,
    /// Comma-separated list of strings.
    List,
}

/// Every environment variable that configures the service, and the key it sets.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("TOKENTALLY_LISTEN", "listen"),
    ("TOKENTALLY_DATABASE_URL", "database_url"),
    ("TOKENTALLY_SQLITE_SYNCHRONOUS", "sqlite_synchronous"),
    (
        "TOKENTALLY_DATABASE_ACQUIRE_TIMEOUT_MS",
        "database.acquire_timeout_ms",
    ),
    (
        "TOKENTALLY_DATABASE_MAX_CONNECTIONS",
        "database.max_connections",
    ),
    ("TOKENTALLY_DATA_DIR", "data_dir"),
    ("TOKENTALLY_MIRRORS_ENABLED", "mirrors.enabled"),
    (
        "TOKENTALLY_MIRRORS_ALLOWED_REMOTES",
        "mirrors.allowed_remotes",
    ),
    (
        "TOKENTALLY_MIRRORS_CONNECT_TIMEOUT_SECONDS",
        "mirrors.connect_timeout_seconds",
    ),
    (
        "TOKENTALLY_MIRRORS_TIMEOUT_SECONDS",
        "mirrors.timeout_seconds",
    ),
    ("TOKENTALLY_LOG", "log"),
    ("TOKENTALLY_LOG_FORMAT", "log_format"),
    ("TOKENTALLY_GITHUB_WEBHOOK_SECRET", "github.webhook_secrets"),
    ("TOKENTALLY_GITHUB_TOKEN", "github.token"),
    ("TOKENTALLY_GITHUB_API_URL", "github.api_url"),
    (
        "TOKENTALLY_API_RATE_LIMIT_PER_MINUTE",
        "api.rate_limit_per_minute",
    ),
    (
        "TOKENTALLY_WORKER_POLL_INTERVAL_MS",
        "worker.poll_interval_ms",
    ),
    ("TOKENTALLY_WORKER_MAX_ATTEMPTS", "worker.max_attempts"),
    ("TOKENTALLY_WORKER_RETRY_BASE_MS", "worker.retry_base_ms"),
    ("TOKENTALLY_WORKER_LEASE_SECONDS", "worker.lease_seconds"),
    ("TOKENTALLY_WORKER_CONCURRENCY", "worker.concurrency"),
    (
        "TOKENTALLY_WORKER_DELIVERY_TIMEOUT_SECONDS",
        "worker.delivery_timeout_seconds",
    ),
    (
        "TOKENTALLY_HTTP_HEADER_TIMEOUT_SECONDS",
        "http.header_timeout_seconds",
    ),
    (
        "TOKENTALLY_HTTP_BODY_TIMEOUT_SECONDS",
        "http.body_timeout_seconds",
    ),
    ("TOKENTALLY_HTTP_MAX_CONNECTIONS", "http.max_connections"),
    ("TOKENTALLY_HTTP_MAX_LARGE_BODIES", "http.max_large_bodies"),
    (
        "TOKENTALLY_HTTP_SHUTDOWN_GRACE_SECONDS",
        "http.shutdown_grace_seconds",
    ),
    ("TOKENTALLY_TIMEZONE", "timezone"),
    ("TOKENTALLY_SCORING_PAY_FROM", "scoring.pay_from"),
    ("TOKENTALLY_SCHEDULES_VESTING", "schedules.vesting"),
    ("TOKENTALLY_SCHEDULES_CALIBRATION", "schedules.calibration"),
    ("TOKENTALLY_SCHEDULES_HYGIENE", "schedules.hygiene"),
    ("TOKENTALLY_PAYOUT_MODE", "payout.mode"),
    ("TOKENTALLY_PAYOUT_CURRENCY", "payout.currency"),
    ("TOKENTALLY_PAYOUT_RATE", "payout.rate"),
    ("TOKENTALLY_PAYOUT_WEEKLY_POOL", "payout.weekly_pool"),
    (
        "TOKENTALLY_PAYOUT_PTO_HOURS_PER_TOKEN",
        "payout.pto_hours_per_token",
    ),
    ("TOKENTALLY_PUBLIC_URL", "public_url"),
    ("TOKENTALLY_DIGEST_SCHEDULE", "digest.schedule"),
    ("TOKENTALLY_DIGEST_TOP", "digest.top"),
    ("TOKENTALLY_DIGEST_CHART", "digest.chart"),
    ("TOKENTALLY_DISCORD_API_URL", "discord.api_url"),
    ("TOKENTALLY_DISCORD_WEBHOOK_URL", "discord.webhook_url"),
    ("TOKENTALLY_DISCORD_RETRY_BASE_MS", "discord.retry_base_ms"),
    ("TOKENTALLY_DISCORD_MAX_ATTEMPTS", "discord.max_attempts"),
    ("TOKENTALLY_DASHBOARD_PUBLIC", "dashboard.public"),
    (
        "TOKENTALLY_DASHBOARD_SESSION_HOURS",
        "dashboard.session_hours",
    ),
    ("TOKENTALLY_GITHUB_APP_ID", "github.app_id"),
    ("TOKENTALLY_GITHUB_PRIVATE_KEY", "github.private_key"),
    ("TOKENTALLY_GITHUB_PR_COMMENTS", "github.pr_comments"),
    ("TOKENTALLY_GITHUB_RETRY_BASE_MS", "github.retry_base_ms"),
    ("TOKENTALLY_GITHUB_REPOSITORIES", "github.repositories"),
    (
        "TOKENTALLY_GITHUB_RECONCILE_INTERVAL_SECONDS",
        "github.reconcile_interval_seconds",
    ),
];

fn env_kind(key: &str) -> EnvKind {
    match key {
        "github.webhook_secrets" | "mirrors.allowed_remotes" | "github.repositories" => {
            EnvKind::List
        }
        "mirrors.enabled" | "github.pr_comments" | "dashboard.public" => EnvKind::Bool,
        "payout.rate" | "payout.weekly_pool" | "payout.pto_hours_per_token" => EnvKind::Number,
        "digest.top"
        | "discord.retry_base_ms"
        | "discord.max_attempts"
        | "github.app_id"
        | "github.retry_base_ms" => EnvKind::Integer,
        k if k.starts_with("worker.")
            || k.starts_with("database.")
            || k.starts_with("api.")
            || k.starts_with("http.")
            || k.ends_with("_seconds") =>
        {
            EnvKind::Integer
        }
        _ => EnvKind::Text,
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
            .filter(|k| {
                !ENV_VARS.iter().any(|(var, _)| var == k) && !OTHER_VARS.contains(&k.as_str())
            })
            .collect();
        unknown.sort();
        if let Some(var) = unknown.first() {
            return Err(ConfigError::UnknownVariable {
                name: var.to_string(),
                nearest: nearest_variable(var).to_string(),
            });
        }
        let mut table = match path {
            Some(path) => read_table(path)?,
            None => toml::Table::new(),
        };
        let from_env = overlay_env(&mut table, env)?;
        let config = deserialize(table, &from_env)?;
        config.validate(&from_env)?;
        Ok(config)
    }

    fn validate(&self, from_env: &BTreeMap<String, String>) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: &str| ConfigError::Invalid {
            key: key.to_string(),
            origin: origin(from_env, key),
            message: message.to_string(),
        };
        let url = self.database_url.as_str();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "database_url",
                "must start with sqlite: or postgres:// (for example sqlite://tokentally.db)",
            ));
        }
        if self
            .github
            .webhook_secrets
            .iter()
            .any(|s| s.expose().trim().is_empty())
        {
            return Err(invalid(
                "github.webhook_secrets",
                "a secret must not be empty",
            ));
        }
        for pattern in &self.github.repositories {
            if let Some(why) = crate::github::repositories::invalid_pattern(pattern) {
                return Err(invalid(
                    "github.repositories",
                    &format!("{pattern:?}: {why}"),
                ));
            }
        }
        let [min, max] = self.signals.value_range;
        if !(min.is_finite() && max.is_finite() && min <= max) {
            return Err(invalid(
                "signals.value_range",
                "must be [min, max] with finite numbers and min ≤ max",
            ));
        }
        if let Err(err) = CiRules::new(&self.signals.ci) {
            return Err(invalid("signals.ci", &err.to_string()));
        }
        let ci = &self.signals.ci;
        for (list, names) in [
            ("pass", &ci.pass),
            ("fail", &ci.fail),
            ("neutral", &ci.neutral),
        ] {
            if let Some(name) = names.iter().find(|n| !CONCLUSIONS.contains(&n.as_str())) {
                return Err(invalid(
                    &format!("signals.ci.{list}"),
                    &format!(
                        "{name:?} is not a conclusion GitHub sends (those are: {})",
                        CONCLUSIONS.join(", ")
                    ),
                ));
            }
        }
        if let Err(err) = tracing_subscriber::EnvFilter::try_new(&self.log) {
            return Err(invalid(
                "log",
                &format!(
                    "{:?} is not a log filter ({err}); examples: info, warn, info,tokentally=debug",
                    self.log
                ),
            ));
        }
        if let Err(err) = PathRules::new(&self.attribution.paths) {
            return Err(invalid("attribution.paths", &err.to_string()));
        }
        for (i, agent) in self.agents.iter().enumerate() {
            if agent.name.trim().is_empty() || agent.emails.is_empty() {
                return Err(invalid(
                    &format!("agents[{i}]"),
                    "an agent needs a name and at least one email pattern",
                ));
            }
        }
        for (i, person) in self.people.iter().enumerate() {
            if let Some(why) = crate::attribution::identity::invalid_person_name(&person.name) {
                return Err(invalid(&format!("people[{i}].name"), why));
            }
        }
        if let Some(problem) = self.scoring.problem() {
            return Err(invalid("scoring", &problem));
        }
        let tz = self.tz().map_err(|m| invalid("timezone", &m))?;
        if let Some(text) = &self.scoring.pay_from
            && crate::scoring::week::parse_time_in(text, tz).is_none()
        {
            return Err(invalid(
                "scoring.pay_from",
                &format!("{text:?} is not a date (YYYY-MM-DD) or an RFC 3339 time"),
            ));
        }
        for (key, expression) in [
            ("schedules.vesting", &self.schedules.vesting),
            ("schedules.calibration", &self.schedules.calibration),
            ("schedules.hygiene", &self.schedules.hygiene),
        ] {
            if let Err(e) = crate::jobs::schedule::parse_cron(expression) {
                return Err(invalid(key, &e));
            }
        }
        let p = &self.payout;
        if !(p.rate.is_finite()
            && p.rate >= 0.0
            && p.weekly_pool.is_finite()
            && p.weekly_pool >= 0.0)
        {
            return Err(invalid(
                "payout",
                "rate and weekly_pool must be numbers ≥ 0",
            ));
        }
        if p.pto_hours_per_token
            .is_some_and(|h| !(h.is_finite() && h >= 0.0))
        {
            return Err(invalid(
                "payout.pto_hours_per_token",
                "must be a number ≥ 0",
            ));
        }
        if p.currency.len() != 3 || !p.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(invalid(
                "payout.currency",
                "must be an ISO 4217 code such as USD",
            ));
        }
        let kinds: Vec<&str> = crate::attribution::kind::Kind::ALL
            .iter()
            .map(|k| k.as_str())
            .collect();
        if let Some(kind) = self
            .scoring
            .tiers
            .keys()
            .find(|k| !kinds.contains(&k.as_str()))
        {
            return Err(invalid(
                "scoring.tiers",
                &format!("{kind:?} is not a kind (those are: {})", kinds.join(", ")),
            ));
        }
        if self.api.rate_limit_per_minute == 0 {
            return Err(invalid("api.rate_limit_per_minute", "must be at least 1"));
        }
        if self.worker.max_attempts == 0 {
            return Err(invalid("worker.max_attempts", "must be at least 1"));
        }
        if self.worker.lease_seconds == 0 {
            return Err(invalid("worker.lease_seconds", "must be at least 1"));
        }
        if self.worker.poll_interval_ms == 0 {
            return Err(invalid("worker.poll_interval_ms", "must be at least 1"));
        }
        let at_least_one = [
            ("worker.concurrency", self.worker.concurrency as u64),
            (
                "worker.delivery_timeout_seconds",
                self.worker.delivery_timeout_seconds,
            ),
            (
                "mirrors.connect_timeout_seconds",
                self.mirrors.connect_timeout_seconds,
            ),
            ("mirrors.timeout_seconds", self.mirrors.timeout_seconds),
            (
                "http.header_timeout_seconds",
                self.http.header_timeout_seconds,
            ),
            ("http.body_timeout_seconds", self.http.body_timeout_seconds),
            ("http.max_connections", self.http.max_connections as u64),
            ("http.max_large_bodies", self.http.max_large_bodies as u64),
            (
                "database.acquire_timeout_ms",
                self.database.acquire_timeout_ms,
            ),
            (
                "database.max_connections",
                u64::from(self.database.max_connections),
            ),
        ];
        for (key, value) in at_least_one {
            if value == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        for remote in &self.mirrors.allowed_remotes {
            if remote.trim().is_empty() || remote.chars().any(char::is_whitespace) {
                return Err(invalid(
                    "mirrors.allowed_remotes",
                    "an entry must be a URL prefix such as https://github.com/ or file:///srv/git/",
                ));
            }
        }
        self.validate_output(&invalid)?;
        let api = self.github.api_url.as_str();
        if !(api.starts_with("https://") || api.starts_with("http://")) {
            return Err(invalid(
                "github.api_url",
                "must be an http(s) URL such as https://api.github.com",
            ));
        }
        Ok(())
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

/// Writes the environment's values into the table; returns key → variable for error messages.
fn overlay_env(
    table: &mut toml::Table,
    env: &HashMap<String, String>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut from_env = BTreeMap::new();
    for (var, key) in ENV_VARS {
        let Some(raw) = env.get(*var) else { continue };
        let value = match env_kind(key) {
            EnvKind::Text => toml::Value::String(raw.clone()),
            EnvKind::List => toml::Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| toml::Value::String(s.to_string()))
                    .collect(),
            ),
            EnvKind::Bool => match raw.trim().to_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => toml::Value::Boolean(true),
                "false" | "0" | "no" | "off" => toml::Value::Boolean(false),
                _ => {
                    return Err(ConfigError::Invalid {
                        key: key.to_string(),
                        origin: format!(" (from {var})"),
                        message: format!("expected true or false, got {raw:?}"),
                    });
                }
            },
            EnvKind::Integer => match raw.trim().parse::<i64>() {
                Ok(n) => toml::Value::Integer(n),
                Err(_) => {
                    return Err(ConfigError::Invalid {
                        key: key.to_string(),
                        origin: format!(" (from {var})"),
                        message: format!("expected a whole number, got {raw:?}"),
                    });
                }
            },
            EnvKind::Number => match raw.trim().parse::<f64>() {
                Ok(n) if n.is_finite() => toml::Value::Float(n),
                _ => {
                    return Err(ConfigError::Invalid {
                        key: key.to_string(),
                        origin: format!(" (from {var})"),
                        message: format!("expected a number, got {raw:?}"),
                    });
                }
            },
        };
        set_path(table, key, value);
        from_env.insert(key.to_string(), var.to_string());
    }
    Ok(from_env)
}

fn set_path(table: &mut toml::Table, dotted: &str, value: toml::Value) {
    let mut parts: Vec<&str> = dotted.split('.').collect();
    let last = parts.pop().expect("a key has at least one part");
    let mut current = table;
    for part in parts {
        let entry = current
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        current = entry.as_table_mut().expect("just made a table");
    }
    current.insert(last.to_string(), value);
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
            origin: origin(from_env, &key),
            key,
            message,
        }
    })
}

fn origin(from_env: &BTreeMap<String, String>, key: &str) -> String {
    from_env
        .iter()
        .find(|(k, _)| key == k.as_str() || key.starts_with(&format!("{k}[")))
        .map(|(_, var)| format!(" (from {var})"))
        .unwrap_or_default()
}

/// Creates a first-run config file with a random webhook secret, readable only by its owner.
///
/// Fails if the file already exists, so an existing secret is never replaced.
pub fn write_first_run_file(path: &Path) -> Result<(), ConfigError> {
    let secret = random_hex(32);
    let text = format!(
        "# tokentally configuration, written on first run.\n\
         # Every option and its TOKENTALLY_* environment variable is listed in the README.\n\
         listen = \"127.0.0.1:8080\"\n\
         database_url = \"sqlite://tokentally.db\"\n\
         \n\
         [github]\n\
         # Enter this value as the secret of the GitHub webhook. Add a second\n\
         # secret to the list to rotate it without downtime.\n\
         webhook_secrets = [\"{secret}\"]\n"
    );
    let write_err = |source| ConfigError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(write_err)?;
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(write_err)?;
    file.sync_all().map_err(write_err)
}

/// `bytes` random bytes from the operating system, hex-encoded.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the operating system's random source works");
    hex::encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn defaults_without_file_or_env() {
        let c = Config::load(None, &env(&[])).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url, "sqlite://tokentally.db");
        assert!(c.github.webhook_secrets.is_empty());
        assert_eq!(c.worker.max_attempts, 8);
        assert_eq!(c.sqlite_synchronous, SqliteSync::Normal);
        assert!(c.mirrors.enabled);
        let c = Config::load(None, &env(&[("TOKENTALLY_MIRRORS_ENABLED", "false")])).unwrap();
        assert!(!c.mirrors.enabled);
        assert!(Config::load(None, &env(&[("TOKENTALLY_MIRRORS_ENABLED", "maybe")])).is_err());
        assert_eq!(c.api.rate_limit_per_minute, 60);
        let c = Config::load(
            None,
            &env(&[("TOKENTALLY_API_RATE_LIMIT_PER_MINUTE", "600")]),
        )
        .unwrap();
        assert_eq!(c.api.rate_limit_per_minute, 600);
        let c = Config::load(None, &env(&[("TOKENTALLY_SQLITE_SYNCHRONOUS", "full")])).unwrap();
        assert_eq!(c.sqlite_synchronous, SqliteSync::Full);
    }

    #[test]
    fn env_overrides_file() {
        let f = file(
            "listen = \"127.0.0.1:9000\"\ndatabase_url = \"sqlite://a.db\"\n\
             [github]\nwebhook_secrets = [\"from-file\"]\n[worker]\nmax_attempts = 3\n",
        );
        let c = Config::load(
            Some(f.path()),
            &env(&[
                ("TOKENTALLY_LISTEN", "127.0.0.1:9100"),
                ("TOKENTALLY_GITHUB_WEBHOOK_SECRET", "new, old"),
                ("TOKENTALLY_WORKER_MAX_ATTEMPTS", "5"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9100");
        assert_eq!(
            c.database_url, "sqlite://a.db",
            "file value kept where env is silent"
        );
        let secrets: Vec<&str> = c
            .github
            .webhook_secrets
            .iter()
            .map(Secret::expose)
            .collect();
        assert_eq!(secrets, ["new", "old"]);
        assert_eq!(c.worker.max_attempts, 5);
    }

    #[test]
    fn unknown_key_is_named() {
        let f = file("lisen = \"127.0.0.1:1\"\n");
        let err = Config::load(Some(f.path()), &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`lisen`"), "{err}");

        let f = file("[worker]\nmax_attempt = 3\n");
        let err = Config::load(Some(f.path()), &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`worker.max_attempt`"), "{err}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let f = file("listen = \"not an address\"\n");
        let err = Config::load(Some(f.path()), &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`listen`"), "{err}");

        let f = file("[worker]\nmax_attempts = \"many\"\n");
        let err = Config::load(Some(f.path()), &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`worker.max_attempts`"), "{err}");

        let err = Config::load(None, &env(&[("TOKENTALLY_LISTEN", "nowhere")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`listen` (from TOKENTALLY_LISTEN)"), "{err}");

        let err = Config::load(
            None,
            &env(&[("TOKENTALLY_SQLITE_SYNCHRONOUS", "sometimes")]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("`sqlite_synchronous` (from TOKENTALLY_SQLITE_SYNCHRONOUS)"),
            "{err}"
        );

        let err = Config::load(None, &env(&[("TOKENTALLY_WORKER_MAX_ATTEMPTS", "x")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("TOKENTALLY_WORKER_MAX_ATTEMPTS"), "{err}");

        let err = Config::load(None, &env(&[("TOKENTALLY_DATABASE_URL", "mysql://x")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`database_url` (from TOKENTALLY_DATABASE_URL)"),
            "{err}"
        );

        let f = file("[worker]\nmax_attempts = 0\n");
        let err = Config::load(Some(f.path()), &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`worker.max_attempts`"), "{err}");
    }

    #[test]
    fn agents_people_and_paths() {
        let f = file(
            "[[agents]]\nname = \"internal-bot\"\nemails = [\"bot@corp.example\"]\n\
             [[people]]\nname = \"maria\"\nemails = [\"maria@corp.example\"]\ngithub = \"mgarcia\"\n\
             [attribution.paths]\ndocs = [\"handbook/**\"]\n",
        );
        let c = Config::load(Some(f.path()), &env(&[])).unwrap();
        assert_eq!(c.agents[0].name, "internal-bot");
        assert_eq!(c.people[0].github.as_deref(), Some("mgarcia"));
        assert_eq!(c.attribution.paths.docs, ["handbook/**"]);
        assert!(
            !c.attribution.paths.tests.is_empty(),
            "unset lists keep their defaults"
        );

        let f = file("[attribution.paths]\ntests = [\"a[\"]\n");
        let err = Config::load(Some(f.path()), &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`attribution.paths`"), "{err}");
        let f = file("[[people]]\nname = \"x\"\nmail = \"x@y\"\n");
        let err = Config::load(Some(f.path()), &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("people[0].mail"), "{err}");
    }

    #[test]
    fn mistakes_are_errors_that_say_what_to_write() {
        let err = Config::load(None, &env(&[("TOKENTALLY_LOGG", "debug")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("TOKENTALLY_LOGG") && err.contains("TOKENTALLY_LOG?"),
            "{err}"
        );
        let err = Config::load(None, &env(&[("TOKENTALLY_WORKER_LEASE_SECS", "5")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("TOKENTALLY_WORKER_LEASE_SECONDS"), "{err}");
        // The report command's and the tests' variables are known.
        assert!(
            Config::load(
                None,
                &env(&[
                    ("TOKENTALLY_URL", "https://x"),
                    ("TOKENTALLY_TOKEN", "tt_x")
                ])
            )
            .is_ok()
        );
        let err = Config::load(None, &env(&[("TOKENTALLY_LOG", "info,[[[")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`log` (from TOKENTALLY_LOG)"), "{err}");
        let f = file("[signals.ci]\nfail = [\"failed\"]\n");
        let err = Config::load(Some(f.path()), &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("signals.ci.fail") && err.contains("timed_out"),
            "{err}"
        );
        let c = Config::load(None, &env(&[("TOKENTALLY_LISTEN", "localhost:8080")])).unwrap();
        assert_eq!(c.listen.port(), 8080);
        assert!(c.listen.ip().is_loopback());
        let err = Config::load(None, &env(&[("TOKENTALLY_LISTEN", "localhost")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("localhost:8080"), "gives an example: {err}");
        let c = Config::load(None, &env(&[("TOKENTALLY_LOG_FORMAT", "json")])).unwrap();
        assert_eq!(c.log_format, LogFormat::Json);
    }

    #[test]
    fn scoring_rules_from_config() {
        let f = file(
            "[scoring]\nvesting_days = 7\n[scoring.tiers]\nfix = 12.0\n[scoring.signals.perf_budget]\nfail = 0.8\n",
        );
        let c = Config::load(Some(f.path()), &env(&[])).unwrap();
        assert_eq!(c.scoring.vesting_days, 7);
        assert_eq!(c.scoring.tier("fix"), 12.0);
        assert_eq!(
            c.scoring.tier("feature"),
            8.0,
            "kinds not given keep their default"
        );
        assert_eq!(c.scoring.signals["perf_budget"].pass, 1.0);
        assert_ne!(c.scoring.version(), Config::default().scoring.version());
        let f = file("[scoring.tiers]\nbugfix = 1.0\n");
        let err = Config::load(Some(f.path()), &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("scoring.tiers") && err.contains("revert"),
            "{err}"
        );
        let f = file("[scoring]\nvesting_dayz = 7\n");
        let err = Config::load(Some(f.path()), &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("scoring.vesting_dayz"), "{err}");
    }

    #[test]
    fn digest_discord_and_github_app_settings() {
        let c = Config::load(None, &env(&[])).unwrap();
        assert_eq!(c.digest.schedule, "0 0 9 * * Mon *");
        assert_eq!(c.digest.top, 10);
        assert_eq!(c.discord.api_url, "https://discord.com");
        assert!(c.discord.all_destinations().is_empty());
        assert!(c.github.pr_comments);
        assert_eq!(c.github.reconcile_interval_seconds, 600);
        let url = "https://discord.com/api/webhooks/42/the-token";
        let c = Config::load(
            None,
            &env(&[
                ("TOKENTALLY_DISCORD_WEBHOOK_URL", url),
                ("TOKENTALLY_DIGEST_TOP", "5"),
                ("TOKENTALLY_GITHUB_PR_COMMENTS", "false"),
            ]),
        )
        .unwrap();
        let all = c.discord.all_destinations();
        assert_eq!(
            (all[0].name.as_str(), all[0].webhook_url.expose()),
            ("team", url)
        );
        assert_eq!(c.digest.top, 5);
        assert!(!c.github.pr_comments);
        let f = file(&format!(
            "[[discord.destinations]]\nname = \"backend\"\nwebhook_url = {url:?}\nrepos = [\"acme/api\"]\n"
        ));
        let c = Config::load(Some(f.path()), &env(&[])).unwrap();
        assert_eq!(c.discord.all_destinations()[0].repos, ["acme/api"]);

        let error = |vars: &[(&str, &str)]| Config::load(None, &env(vars)).unwrap_err().to_string();
        let e = error(&[("TOKENTALLY_DIGEST_SCHEDULE", "0 9 * * 1")]);
        assert!(
            e.contains("digest.schedule") && e.contains("seconds first"),
            "{e}"
        );
        let e = error(&[("TOKENTALLY_TIMEZONE", "Mars/Olympus")]);
        assert!(e.contains("timezone"), "{e}");
        let e = error(&[(
            "TOKENTALLY_DISCORD_WEBHOOK_URL",
            "https://discord.com/api/hooks/secret-token",
        )]);
        assert!(
            e.contains("discord.webhook_url") && !e.contains("secret-token"),
            "{e}"
        );
        let e = error(&[("TOKENTALLY_GITHUB_APP_ID", "12")]);
        assert!(e.contains("private_key"), "{e}");
        let e = error(&[("TOKENTALLY_PUBLIC_URL", "tally.example.com")]);
        assert!(e.contains("public_url"), "{e}");
    }

    #[test]
    fn syntax_error_names_the_file() {
        let f = file("listen = \n");
        let err = Config::load(Some(f.path()), &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(&f.path().display().to_string()), "{err}");
    }

    #[test]
    fn secrets_never_print() {
        let f = file(
            "[github]\nwebhook_secrets = [\"hunter2-very-secret\"]\ntoken = \"ghp_tokenvalue\"\n",
        );
        let c = Config::load(Some(f.path()), &env(&[])).unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!format!("{c:?}").contains("ghp_tokenvalue"));
        assert_eq!(
            c.github.token.as_ref().map(Secret::expose),
            Some("ghp_tokenvalue")
        );
    }

    #[cfg(unix)]
    #[test]
    fn first_run_file_is_private_and_loadable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_CONFIG_FILE);
        write_first_run_file(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let c = Config::load(Some(&path), &env(&[])).unwrap();
        assert_eq!(c.github.webhook_secrets.len(), 1);
        assert_eq!(c.github.webhook_secrets[0].expose().len(), 64);
        assert!(
            write_first_run_file(&path).is_err(),
            "never overwrites a secret"
        );
    }
}
