//! The service's own tables: `[database]`, `[schedules]`, `[payout]`,
//! `[attribution]`, `[signals]`, `[api]`, `[mirrors]`, `[http]`, `[worker]`,
//! and how `listen` and `log_format` are read.

use std::net::SocketAddr;

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::attribution::paths::PathGlobs;
use crate::github::outcomes::CiSignalConfig;
use crate::store::ConnectOptions;

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
    /// Closing the weeks that are due into statements (once across replicas).
    pub close: String,
}

impl Default for SchedulesConfig {
    fn default() -> Self {
        SchedulesConfig {
            vesting: "0 0 * * * *".to_string(),
            calibration: "0 0 0 * * Mon".to_string(),
            hygiene: "0 0 0 * * Mon".to_string(),
            close: "0 0 * * * *".to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PayoutMode {
    /// Each close pays every available vested token at `rate`.
    Rate,
    /// Each close splits `weekly_pool` pro rata over the available tokens' value.
    Pool,
    /// Nothing is paid at close: tokens are cashed out by redemptions.
    #[default]
    Redeem,
}

impl PayoutMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PayoutMode::Rate => "rate",
            PayoutMode::Pool => "pool",
            PayoutMode::Redeem => "redeem",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PayoutConfig {
    pub mode: PayoutMode,
    /// ISO 4217 code: amounts are in its minor units (USD cents, JPY yen).
    pub currency: String,
    /// Currency units per token, exact (`0.015` is 1.5 cents).
    #[serde(deserialize_with = "exact_decimal")]
    pub rate: Decimal,
    /// Currency units per week (pool mode), exact.
    #[serde(deserialize_with = "exact_decimal")]
    pub weekly_pool: Decimal,
    /// Optional: PTO hours per token.
    pub pto_hours_per_token: Option<f64>,
    /// Hours after a week ends before it closes into statements.
    pub close_after_hours: u32,
}

impl Default for PayoutConfig {
    fn default() -> Self {
        PayoutConfig {
            mode: PayoutMode::Redeem,
            currency: "USD".to_string(),
            rate: Decimal::ONE,
            weekly_pool: Decimal::ZERO,
            pto_hours_per_token: None,
            close_after_hours: 48,
        }
    }
}

impl PayoutConfig {
    /// Minor units per major unit of `currency` (validated when config loads).
    pub fn exponent(&self) -> u32 {
        crate::scoring::money::exponent(&self.currency).unwrap_or(2)
    }

    /// `weekly_pool` in minor units of the currency (rounded half to even).
    pub fn pool_minor(&self) -> i64 {
        crate::scoring::money::major_to_minor(self.weekly_pool, self.exponent())
    }

    /// What `milli` tokens at factor 1 are worth at `rate`, in minor units.
    pub fn rate_minor(&self, milli: i64) -> i64 {
        crate::scoring::money::value_minor(
            crate::scoring::money::value(milli, crate::scoring::money::FACTOR_ONE),
            self.rate,
            self.exponent(),
        )
    }
}

/// A decimal from TOML: a string (`"0.015"`), an integer, or a float read by
/// its shortest text (so `0.015` is exactly 0.015, never a binary fraction).
fn exact_decimal<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Number {
        Text(String),
        Integer(i64),
        Float(f64),
    }
    let text = match Number::deserialize(d)? {
        Number::Text(t) => t,
        Number::Integer(i) => i.to_string(),
        Number::Float(f) if f.is_finite() => format!("{f}"),
        Number::Float(_) => return Err(serde::de::Error::custom("must be a finite number")),
    };
    crate::scoring::money::decimal_from_text(&text)
        .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not a decimal number")))
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

pub(super) fn socket_address<'de, D: serde::Deserializer<'de>>(
    de: D,
) -> Result<SocketAddr, D::Error> {
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
