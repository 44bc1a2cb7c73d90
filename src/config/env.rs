//! The `TOKENTALLY_*` environment variables: which key each sets, how its text
//! becomes a value, and the nearest known name for a misspelled one.

use std::collections::{BTreeMap, HashMap};

use super::ConfigError;

/// Variables named TOKENTALLY_* that are not configuration but are known: the
/// `report` command's and the test suite's.
const OTHER_VARS: &[&str] = &[
    "TOKENTALLY_URL",
    "TOKENTALLY_TOKEN",
    "TOKENTALLY_TEST_POSTGRES_URL",
    "TOKENTALLY_TEST_FIXTURES",
];

/// The known variable closest to `name` (by edit distance), to suggest.
pub(super) fn nearest_variable(name: &str) -> &'static str {
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
    /// A number (`2.5`).
    Number,
    /// An exact decimal (`0.015`), kept as text.
    Decimal,
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
    ("TOKENTALLY_SCHEDULES_CLOSE", "schedules.close"),
    ("TOKENTALLY_PAYOUT_MODE", "payout.mode"),
    ("TOKENTALLY_PAYOUT_CURRENCY", "payout.currency"),
    ("TOKENTALLY_PAYOUT_RATE", "payout.rate"),
    ("TOKENTALLY_PAYOUT_WEEKLY_POOL", "payout.weekly_pool"),
    (
        "TOKENTALLY_PAYOUT_CLOSE_AFTER_HOURS",
        "payout.close_after_hours",
    ),
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
    (
        "TOKENTALLY_DISCORD_APPLICATION_ID",
        "discord.application_id",
    ),
    ("TOKENTALLY_DISCORD_PUBLIC_KEY", "discord.public_key"),
    ("TOKENTALLY_DISCORD_BOT_TOKEN", "discord.bot_token"),
    ("TOKENTALLY_DISCORD_GUILD_ID", "discord.guild_id"),
    ("TOKENTALLY_DISCORD_DM", "discord.dm"),
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
        "mirrors.enabled" | "github.pr_comments" | "dashboard.public" | "discord.dm" => {
            EnvKind::Bool
        }
        "payout.rate" | "payout.weekly_pool" => EnvKind::Decimal,
        "payout.pto_hours_per_token" => EnvKind::Number,
        "payout.close_after_hours" => EnvKind::Integer,
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

/// A `TOKENTALLY_*` variable the service knows (configuration or not).
pub(super) fn is_known(name: &str) -> bool {
    ENV_VARS.iter().any(|(var, _)| *var == name) || OTHER_VARS.contains(&name)
}

/// Writes the environment's values into the table; returns key → variable for error messages.
pub(super) fn overlay_env(
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
            // Kept as text: a rate is exact, never a binary fraction.
            EnvKind::Decimal => match crate::scoring::money::decimal_from_text(raw) {
                Some(d) => toml::Value::String(d.to_string()),
                None => {
                    return Err(ConfigError::Invalid {
                        key: key.to_string(),
                        origin: format!(" (from {var})"),
                        message: format!("expected a decimal number, got {raw:?}"),
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
