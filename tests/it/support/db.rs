//! Fresh databases for tests: a SQLite file in a temp dir, or a new PostgreSQL
//! database when `TOKENTALLY_TEST_POSTGRES_URL` is set.

use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::AssertSqlSafe;
use sqlx::any::AnyPoolOptions;
use tokio::sync::OnceCell;

pub const POSTGRES_ENV: &str = "TOKENTALLY_TEST_POSTGRES_URL";

pub struct TestDb {
    pub url: String,
    /// Holds the SQLite file and the service's data directory (mirrors).
    dir: tempfile::TempDir,
    pg: Option<(String, String)>, // (admin url, database name)
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        TestDb { url, dir, pg: None }
    }

    /// A new, empty PostgreSQL database, or `None` when no server is configured.
    pub async fn postgres() -> Option<TestDb> {
        let admin = std::env::var(POSTGRES_ENV).ok()?;
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        static SWEPT: OnceCell<()> = OnceCell::const_new();
        SWEPT.get_or_init(|| drop_stale_databases(&admin)).await;
        let name = format!(
            "tt_test_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        admin_exec(&admin, &format!("CREATE DATABASE {name}")).await;
        let (base, _) = admin
            .rsplit_once('/')
            .expect("postgres URL has a database path");
        Some(TestDb {
            url: format!("{base}/{name}"),
            dir: tempfile::tempdir().expect("temp dir"),
            pg: Some((admin, name)),
        })
    }

    /// Drops the PostgreSQL database (SQLite temp dirs go away on drop).
    pub async fn cleanup(self) {
        if let Some((admin, name)) = &self.pg {
            admin_exec(
                admin,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            )
            .await;
        }
    }
}

async fn connect(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot reach the test database {url}: {e}"))
}

async fn admin_exec(admin_url: &str, sql: &str) {
    let pool = connect(admin_url).await;
    sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
        .execute(&pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    pool.close().await;
}

/// Databases left by test processes that died before cleaning up.
async fn drop_stale_databases(admin_url: &str) {
    let pool = connect(admin_url).await;
    let names: Vec<(String,)> =
        sqlx::query_as("SELECT datname::text FROM pg_database WHERE datname LIKE 'tt_test_%'")
            .fetch_all(&pool)
            .await
            .expect("list test databases");
    pool.close().await;
    for (name,) in names {
        let pid = name.split('_').nth(2).unwrap_or_default();
        let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
        if !alive {
            admin_exec(
                admin_url,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            )
            .await;
        }
    }
}

/// Without `TOKENTALLY_TEST_POSTGRES_URL` the PostgreSQL variants are skipped on
/// a developer's machine, but fail under CI (`CI=true`): a CI run that silently
/// skipped half the tests would pass for the wrong reason.
pub fn postgres_not_configured() {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(
        !ci,
        "{POSTGRES_ENV} is not set but CI is: the PostgreSQL variants must run in CI"
    );
    eprintln!("{POSTGRES_ENV} is not set: PostgreSQL variant not run");
}

/// Runs a test body on SQLite, and on PostgreSQL as a second test when configured.
#[macro_export]
macro_rules! db_test {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::support::db::TestDb::sqlite();
                super::$name(&db).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = $crate::support::db::TestDb::postgres().await else {
                    $crate::support::db::postgres_not_configured();
                    return;
                };
                super::$name(&db).await;
                db.cleanup().await;
            }
        }
    };
}

impl TestDb {
    /// The service's data directory for this test.
    /// The test's own directory (beside the SQLite file).
    pub fn dir_path(&self) -> &std::path::Path {
        self.dir.path()
    }

    pub fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }

    /// Runs SQL on the test database from outside the app (to set up odd states).
    pub async fn exec(&self, sql: &str) {
        admin_exec(&self.url, sql).await;
    }
}
