//! Ingress load test: starts `tokentally serve` on SQLite in a temporary directory
//! and posts signed webhook deliveries, then CI signals with a bearer token, to it
//! over loopback.
//!
//! Two runs:
//! - saturation: N deliveries from C concurrent clients, as fast as they are answered;
//! - fixed rate: R requests/s offered for S seconds (open loop), for latency under load.
//!
//! `cargo bench --bench ingress` (env: BENCH_N, BENCH_CONCURRENCY, BENCH_RATE, BENCH_SECONDS,
//! BENCH_SQLITE_SYNCHRONOUS=normal|full, BENCH_DATABASE_URL=postgres://… to load PostgreSQL instead;
//! point it at an empty database).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokentally::github::signature::sign;

const SECRET: &str = "bench-secret";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Server {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn start_server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tokentally"))
        .current_dir(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("TOKENTALLY_GITHUB_WEBHOOK_SECRET", SECRET)
        .env("TOKENTALLY_DATABASE_URL", database_url())
        .env("TOKENTALLY_API_RATE_LIMIT_PER_MINUTE", "100000000")
        .env(
            "TOKENTALLY_SQLITE_SYNCHRONOUS",
            std::env::var("BENCH_SQLITE_SYNCHRONOUS").unwrap_or_else(|_| "normal".into()),
        )
        .env("TOKENTALLY_LOG", "warn,tokentally=info")
        // The fixture payload names a github.com repository: never fetch it.
        .env("TOKENTALLY_MIRRORS_ENABLED", "false")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tokentally serve");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("server exited before listening")
            .unwrap();
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.split(';').next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Server {
        child,
        addr,
        _dir: dir,
    }
}

fn payload() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/fixtures/github-webhooks/push/payload.json"
    );
    std::fs::read(path).unwrap_or_else(|_| {
        br#"{"ref":"refs/heads/main","before":"a","after":"b","repository":{"full_name":"acme/api"}}"#
            .to_vec()
    })
}

enum Mode {
    /// Signed `push` deliveries to `/webhooks/github`.
    Webhook { body: Vec<u8>, signature: String },
    /// CI signals to `/api/v1/signals` with a bearer token.
    Signal { token: String },
}

struct Poster {
    client: reqwest::Client,
    base: String,
    mode: Mode,
}

impl Poster {
    async fn post(&self, id: &str) -> Duration {
        let started = Instant::now();
        let request = match &self.mode {
            Mode::Webhook { body, signature } => self
                .client
                .post(format!("{}/webhooks/github", self.base))
                .header("content-type", "application/json")
                .header("x-github-event", "push")
                .header("x-github-delivery", id)
                .header("x-hub-signature-256", signature)
                .body(body.clone()),
            Mode::Signal { token } => self
                .client
                .post(format!("{}/api/v1/signals", self.base))
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(format!(
                    r#"{{"repo":"acme/api","sha":"0123456789abcdef0123456789abcdef01234567","signal":"ci","status":"pass","key":"{id}"}}"#
                )),
        };
        let response = request.send().await.expect("request sent");
        assert!(
            response.status().is_success(),
            "{id}: {}",
            response.status()
        );
        started.elapsed()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn report(name: &str, mut latencies: Vec<Duration>, elapsed: Duration) {
    latencies.sort();
    let n = latencies.len();
    println!(
        "{name}: {n} deliveries in {:.2} s = {:.0} deliveries/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        latencies[n - 1].as_secs_f64() * 1000.0,
    );
}

/// 500/s offered (open loop), then saturation; prints both.
async fn run_phases(
    name: &str,
    poster: Arc<Poster>,
    total: u64,
    concurrency: u64,
    rate: u64,
    seconds: u64,
) {
    // Warm-up: connections, page cache, prepared statements.
    for i in 0..200 {
        poster.post(&format!("{name}-warm-{i}")).await;
    }

    // Fixed offered rate (open loop: requests are sent on schedule, not when the last one ended).
    let count = rate * seconds;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(count as usize);
    for i in 0..count {
        ticker.tick().await;
        let poster = poster.clone();
        let id = format!("{name}-rate-{i}");
        tasks.push(tokio::spawn(async move { poster.post(&id).await }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.push(task.await.unwrap());
    }
    report(
        &format!("{name}: fixed rate ({rate}/s offered)"),
        latencies,
        started.elapsed(),
    );

    // Saturation.
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..concurrency {
        let poster = poster.clone();
        let next = next.clone();
        let name = name.to_string();
        clients.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    break latencies;
                }
                latencies.push(poster.post(&format!("{name}-sat-{i}")).await);
            }
        }));
    }
    let mut latencies = Vec::new();
    for client in clients {
        latencies.extend(client.await.unwrap());
    }
    report(
        &format!("{name}: saturation ({concurrency} clients, after the fixed-rate run)"),
        latencies,
        started.elapsed(),
    );
}

#[tokio::main]
async fn main() {
    let total = env_or("BENCH_N", 20_000);
    let concurrency = env_or("BENCH_CONCURRENCY", 32);
    let rate = env_or("BENCH_RATE", 500);
    let seconds = env_or("BENCH_SECONDS", 10);

    let server = start_server();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency as usize * 2)
        .build()
        .unwrap();
    let base = format!("http://{}", server.addr);
    let body = payload();
    println!(
        "payload {} bytes, database {}, SQLite synchronous={}, server pid {}",
        body.len(),
        database_url(),
        std::env::var("BENCH_SQLITE_SYNCHRONOUS").unwrap_or_else(|_| "normal".into()),
        server.child.id()
    );
    let webhooks = Arc::new(Poster {
        client: client.clone(),
        base: base.clone(),
        mode: Mode::Webhook {
            signature: sign(SECRET, &body),
            body,
        },
    });
    run_phases("webhooks", webhooks, total, concurrency, rate, seconds).await;

    let token = create_token(&server);
    let signals = Arc::new(Poster {
        client,
        base,
        mode: Mode::Signal { token },
    });
    run_phases("signals", signals, total, concurrency, rate, seconds).await;
}

fn database_url() -> String {
    std::env::var("BENCH_DATABASE_URL").unwrap_or_else(|_| "sqlite://bench.db".into())
}

/// `tokentally token create` against the server's database, as an admin would.
fn create_token(server: &Server) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tokentally"))
        .current_dir(server._dir.path())
        .args(["token", "create", "--name", "bench", "--all-repos"])
        .env("TOKENTALLY_DATABASE_URL", database_url())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}
