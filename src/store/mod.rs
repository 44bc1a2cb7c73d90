//! The database: one pool over SQLite or PostgreSQL, migrations, and every SQL
//! statement of the project (one module per table group).
//!
//! Queries go through sqlx's `Any` driver with `$N` placeholders, which both
//! SQLite and PostgreSQL accept. Columns therefore use only the types `Any`
//! decodes: 64-bit integers (times are epoch milliseconds, amounts
//! milli-tokens) and text.

pub mod ci_lookups;
pub mod commits;
pub mod dashboard;
pub mod deliveries;
pub mod digest_posts;
pub mod dms;
pub mod job_runs;
pub mod ledger;
mod nodelay;
pub mod people;
pub mod pr_comments;
pub mod repositories;
pub mod rules;
pub mod scoring_inputs;
pub mod sessions;
pub mod signals;
pub mod statements;
mod text_enum;
pub mod tokens;
pub mod usage;
pub mod weeks;

use std::str::FromStr;
use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};

const SQLITE_CONNECTIONS: u32 = 1;
/// How long the first connection may take before the database counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// SQLite's `busy_timeout` (the pragma below says the same in milliseconds).
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `/readyz` waits for the database to answer.
const PING_TIMEOUT: Duration = Duration::from_secs(1);

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How SQLite makes a commit durable (ignored on PostgreSQL).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSync {
    /// The commit is in the write-ahead log before it returns: it survives a crash
    /// or kill of the process; the last commits may be lost if the machine loses power.
    #[default]
    Normal,
    /// Every commit waits for the disk (fsync): survives power loss, at a much
    /// higher latency per commit.
    Full,
}

/// How the pool hands out connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectOptions {
    pub sqlite_sync: SqliteSync,
    /// How long a caller waits for a connection before the database counts as
    /// unavailable (a request then answers 503 at once instead of hanging).
    pub acquire_timeout: Duration,
    /// PostgreSQL: connections in the request pool (SQLite has one writer connection).
    pub max_connections: u32,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            sqlite_sync: SqliteSync::default(),
            acquire_timeout: Duration::from_millis(2_000),
            max_connections: 16,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A statement failed; `statement` names the store function that ran it.
    #[error("database error{}: {source}", statement.map(|s| format!(" in {s}")).unwrap_or_default())]
    Database {
        statement: Option<&'static str>,
        #[source]
        source: sqlx::Error,
    },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL (expected sqlite:… or postgres://…)")]
    UnsupportedUrl,
    #[error("{0} did not answer within {1} s")]
    Unreachable(String, u64),
    /// A value that must not be stored (it would be wrong, or refused by the database).
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl From<sqlx::Error> for StoreError {
    fn from(source: sqlx::Error) -> Self {
        StoreError::Database {
            statement: None,
            source,
        }
    }
}

impl StoreError {
    /// True when no connection to the database could be had (down, unreachable,
    /// busy past the acquire timeout, the connection lost): retrying later can
    /// succeed. False when the database answered and refused the statement.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unreachable(..) => true,
            StoreError::Database { source, .. } => connection_failed(source),
            StoreError::Migrate(_) | StoreError::UnsupportedUrl | StoreError::Invalid(_) => false,
        }
    }

    /// The store function whose statement failed, when known.
    pub fn statement(&self) -> Option<&'static str> {
        match self {
            StoreError::Database { statement, .. } => *statement,
            _ => None,
        }
    }

    /// The same error, naming `statement` unless an inner call named it already.
    fn in_statement(self, name: &'static str) -> StoreError {
        match self {
            StoreError::Database {
                statement: None,
                source,
            } => StoreError::Database {
                statement: Some(name),
                source,
            },
            other => other,
        }
    }
}

/// What callers above the store ask of any error that came from the database:
/// could it be reached, and which statement failed.
pub trait DatabaseFailure: std::fmt::Display {
    /// No connection could be had: retrying later can succeed (503).
    fn is_unavailable(&self) -> bool;
    /// The store function whose statement the database refused or failed.
    fn statement(&self) -> Option<&'static str>;
}

impl DatabaseFailure for StoreError {
    fn is_unavailable(&self) -> bool {
        StoreError::is_unavailable(self)
    }
    fn statement(&self) -> Option<&'static str> {
        StoreError::statement(self)
    }
}

impl DatabaseFailure for crate::group_commit::NotStored {
    fn is_unavailable(&self) -> bool {
        self.failure().unavailable
    }
    fn statement(&self) -> Option<&'static str> {
        self.failure().statement
    }
}

impl From<&StoreError> for crate::group_commit::WriteFailure {
    fn from(err: &StoreError) -> Self {
        crate::group_commit::WriteFailure {
            message: err.to_string(),
            unavailable: err.is_unavailable(),
            statement: err.statement(),
        }
    }
}

/// Names the statement a database error came from (for logs and `/readyz`).
pub(crate) trait Named<T> {
    fn named(self, statement: &'static str) -> Result<T>;
}

impl<T, E: Into<StoreError>> Named<T> for std::result::Result<T, E> {
    fn named(self, statement: &'static str) -> Result<T> {
        self.map_err(|e| e.into().in_statement(statement))
    }
}

/// Whether `err` means the database could not be talked to, rather than that
/// it refused what it was asked.
fn connection_failed(err: &sqlx::Error) -> bool {
    match err {
        // A protocol error is what a connection cut during its handshake looks like.
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // PostgreSQL: class 08 (connection exception), 57P01–57P03 (the server
            // is shutting down or starting up). SQLite: BUSY and LOCKED (another
            // writer held the file past the busy timeout), extended codes too.
            code.starts_with("08")
                || matches!(code.as_ref(), "57P01" | "57P02" | "57P03")
                || code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
        }
        _ => false,
    }
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// PostgreSQL: connections with `synchronous_commit = off` for the worker's
    /// own bookkeeping (claims, lease renewals, outcomes). Losing one of those
    /// in a crash costs at most a delivery processed again (handlers are
    /// idempotent), and not waiting for the disk on each keeps the worker from
    /// slowing ingress down. WAL order keeps it safe: when an outcome is on disk,
    /// the handler's (synchronous) writes before it are too.
    worker_pool: Option<AnyPool>,
    backend: Backend,
}

impl Store {
    /// Connects to `url` with default options, creating a SQLite file if it does not exist yet.
    pub async fn connect(url: &str) -> Result<Store> {
        Store::connect_with(url, ConnectOptions::default()).await
    }

    /// Connects to `url` with `options` (pool size, acquire timeout, SQLite durability).
    pub async fn connect_with(url: &str, options: ConnectOptions) -> Result<Store> {
        let ConnectOptions {
            sqlite_sync,
            acquire_timeout,
            max_connections,
        } = options;
        sqlx::any::install_default_drivers();
        let (backend, url) = if url.starts_with("sqlite:") {
            (Backend::Sqlite, sqlite_url_with_create(url))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        let connect_options = AnyConnectOptions::from_str(&url)?;
        // A SQLite file cannot go away like a server; its one connection can be busy
        // with a long read, though, and turning webhooks away for that (GitHub does
        // not resend them) would be worse than making them wait as long as SQLite's
        // own busy timeout.
        let acquire_timeout = match backend {
            Backend::Sqlite => acquire_timeout.max(SQLITE_BUSY_TIMEOUT),
            Backend::Postgres => acquire_timeout,
        };
        let pool_options = match backend {
            // SQLite has a single writer. One connection makes writers queue in the
            // pool (first come, first served) instead of sleeping in SQLite's busy
            // handler; the inbox's group commit keeps that one connection efficient.
            Backend::Sqlite => AnyPoolOptions::new()
                .max_connections(SQLITE_CONNECTIONS)
                // An in-process connection does not drop: pinging it before
                // each use (a round trip to its thread) was a third of a
                // small request's database time.
                .test_before_acquire(false)
                .after_connect(move |conn, _meta| {
                    Box::pin(async move {
                        // WAL lets readers run beside the writer; the busy timeout makes
                        // another process's writers wait instead of failing.
                        let pragmas = match sqlite_sync {
                            SqliteSync::Normal => {
                                "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; \
                                 PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                                 PRAGMA wal_autocheckpoint = 16384;"
                            }
                            SqliteSync::Full => {
                                "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; \
                                 PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
                                 PRAGMA wal_autocheckpoint = 16384;"
                            }
                        };
                        sqlx::raw_sql(pragmas).execute(conn).await?;
                        Ok(())
                    })
                }),
            Backend::Postgres => {
                let port = postgres_port(&url);
                AnyPoolOptions::new()
                    .max_connections(max_connections.max(1))
                    .after_connect(move |conn, _meta| {
                        Box::pin(async move {
                            nodelay::no_delay_on_sockets_to(port);
                            // JIT compiling a small query costs more than running it
                            // (40 ms on a leaderboard query that runs in 10).
                            sqlx::raw_sql("SET jit = off").execute(conn).await?;
                            Ok(())
                        })
                    })
            }
        };
        let pool = pool_options
            .acquire_timeout(acquire_timeout)
            .connect_lazy_with(connect_options.clone());
        first_connection(&pool, &url).await?;
        let mut worker_pool = None;
        match backend {
            Backend::Sqlite => spawn_wal_checkpoints(pool.clone(), connect_options)
                .await
                .named("connect_with")?,
            Backend::Postgres => {
                let port = postgres_port(&url);
                let lazy = AnyPoolOptions::new()
                    .max_connections(max_connections.clamp(1, 8))
                    .acquire_timeout(acquire_timeout)
                    .after_connect(move |conn, _meta| {
                        Box::pin(async move {
                            nodelay::no_delay_on_sockets_to(port);
                            sqlx::raw_sql("SET synchronous_commit = off")
                                .execute(conn)
                                .await?;
                            Ok(())
                        })
                    })
                    .connect_lazy_with(connect_options);
                worker_pool = Some(lazy);
            }
        }
        Ok(Store {
            pool,
            worker_pool,
            backend,
        })
    }

    /// Connects to a database that must exist already: commands other than `serve`
    /// and `migrate` never create a new, empty SQLite file (a token stored in a
    /// stray database would never be accepted by the server).
    pub async fn open_existing(url: &str, options: ConnectOptions) -> anyhow::Result<Store> {
        if let Some(file) = sqlite_file(url)
            && !file.exists()
        {
            anyhow::bail!(
                "there is no database at {} (`database_url` = {url:?}): run this command in the \
                 directory where `tokentally serve` runs, or point TOKENTALLY_DATABASE_URL or \
                 --config at the server's database",
                file.display()
            );
        }
        Store::connect_with(url, options)
            .await
            .map_err(|e| anyhow::anyhow!("cannot open the database {}: {e}", describe_url(url)))
    }

    /// Applies every pending migration of this backend. Safe to run from several replicas.
    pub async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await.named("migrate")?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await.named("migrate")?,
        }
        // Entries not in `commit_balances` yet: all of them on the first start
        // after it was added (appends keep it current after that).
        let mut tx = self.begin_ledger_write().await?;
        tx.extend_balances().await?;
        tx.commit().await.named("migrate")?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// PostgreSQL: whether this process's connection is encrypted (`sslmode` in the
    /// URL); `None` on SQLite.
    pub async fn tls_in_use(&self) -> Result<Option<bool>> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let (ssl,): (bool,) = sqlx::query_as(
            "SELECT COALESCE((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)",
        )
        .fetch_one(&self.pool)
        .await
        .named("tls_in_use")?;
        Ok(Some(ssl))
    }

    /// Refreshes the planner's statistics (after bulk loads, as in benchmarks).
    pub async fn analyze(&self) -> Result<()> {
        sqlx::query("ANALYZE")
            .execute(&self.pool)
            .await
            .named("analyze")?;
        Ok(())
    }

    /// True when the database answers a trivial query within a second.
    pub async fn ping(&self) -> bool {
        let answer = sqlx::query("SELECT 1").execute(&self.pool);
        matches!(tokio::time::timeout(PING_TIMEOUT, answer).await, Ok(Ok(_)))
    }

    pub async fn close(&self) {
        self.pool.close().await;
        if let Some(pool) = &self.worker_pool {
            pool.close().await;
        }
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Where the worker's bookkeeping goes (see [`Store::worker_pool`]'s field).
    pub(crate) fn worker_pool(&self) -> &AnyPool {
        self.worker_pool.as_ref().unwrap_or(&self.pool)
    }

    /// Starts a transaction: what is written through it lands together, in one commit.
    pub async fn begin(&self) -> Result<StoreTx> {
        Ok(StoreTx {
            tx: self.pool.begin().await.named("begin")?,
            backend: self.backend,
        })
    }
}

/// Writes that commit together (one disk sync for many rows).
pub struct StoreTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
}

impl StoreTx {
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await.named("commit")?;
        Ok(())
    }

    pub(crate) fn conn(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }

    pub(crate) fn is_sqlite(&self) -> bool {
        self.backend == Backend::Sqlite
    }
}

/// Waits for the pool's first connection: a server that cannot be reached is said
/// within [`CONNECT_TIMEOUT`] (not after the pool's acquire timeout, which may be
/// shorter, and not never), while one that refuses the login is said at once.
async fn first_connection(pool: &AnyPool, url: &str) -> Result<()> {
    let unreachable = || StoreError::Unreachable(describe_url(url), CONNECT_TIMEOUT.as_secs());
    let deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
    loop {
        match tokio::time::timeout_at(deadline, pool.acquire()).await {
            Ok(Ok(_connection)) => return Ok(()),
            Ok(Err(err)) if connection_failed(&err) => {
                if tokio::time::Instant::now() >= deadline {
                    return Err(unreachable());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(Err(err)) => return Err(err.into()),
            Err(_) => return Err(unreachable()),
        }
    }
}

/// Copies the SQLite write-ahead log into the database file every half second from
/// a connection of its own. A checkpoint inside a commit (SQLite's default, every
/// 1,000 pages) would stall that commit, and every request waiting on it, for as
/// long as the copy and its disk sync take; a PASSIVE checkpoint here runs beside
/// the writer. `wal_autocheckpoint` stays on at 16,384 pages as a safety net.
async fn spawn_wal_checkpoints(pool: AnyPool, options: AnyConnectOptions) -> Result<()> {
    let checkpointer = AnyPoolOptions::new()
        .max_connections(1)
        // Twice a second, idle or not: no ping before each checkpoint.
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .named("spawn_wal_checkpoints")?;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !pool.is_closed() {
            tick.tick().await;
            if let Err(err) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&checkpointer)
                .await
            {
                tracing::debug!(error = %err, "WAL checkpoint did not run");
            }
        }
        checkpointer.close().await;
    });
    Ok(())
}

/// 7 to 40 hex digits: a full or abbreviated commit id (anything else names no
/// commit, so it never reaches a prefix comparison).
pub fn is_commit_prefix(sha: &str) -> bool {
    (7..=40).contains(&sha.len()) && sha.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The file a `sqlite:` URL names (`None` for other databases and `:memory:`).
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.contains(":memory:")).then(|| std::path::PathBuf::from(path))
}

/// A database URL for messages: the file, or the host and database without the
/// password (`postgres://user@host:5432/db`).
pub fn describe_url(url: &str) -> String {
    if let Some(file) = sqlite_file(url) {
        return format!("SQLite file {}", file.display());
    }
    match url::Url::parse(url) {
        Ok(parsed) => format!(
            "PostgreSQL at {}:{}{} (user {:?})",
            parsed.host_str().unwrap_or("?"),
            parsed.port().unwrap_or(5432),
            parsed.path(),
            parsed.username()
        ),
        Err(_) => "the configured database".to_string(),
    }
}

/// The TCP port of a PostgreSQL URL (5432 unless it says otherwise).
fn postgres_port(url: &str) -> u16 {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.port())
        .unwrap_or(5432)
}

/// sqlx opens SQLite files read-write but does not create them unless asked (`mode=rwc`).
fn sqlite_url_with_create(url: &str) -> String {
    if url.contains("mode=") || url.contains(":memory:") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_create_the_file() {
        assert_eq!(
            sqlite_url_with_create("sqlite://a.db"),
            "sqlite://a.db?mode=rwc"
        );
        assert_eq!(
            sqlite_url_with_create("sqlite://a.db?cache=shared"),
            "sqlite://a.db?cache=shared&mode=rwc"
        );
        assert_eq!(
            sqlite_url_with_create("sqlite://a.db?mode=ro"),
            "sqlite://a.db?mode=ro"
        );
    }
}
