//! Webhook ingress load test: starts `tokentally serve` on SQLite in a temporary
//! directory and posts signed deliveries to it over loopback.
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
        .env(
            "TOKENTALLY_DATABASE_URL",
            std::env::var("BENCH_DATABASE_URL").unwrap_or_else(|_| "sqlite://bench.db".into()),
        )
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

struct Poster {
    client: reqwest::Client,
    url: String,
    body: Vec<u8>,
    signature: String,
}

impl Poster {
    async fn post(&self, delivery: &str) -> Duration {
        let started = Instant::now();
        let response = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("x-github-event", "push")
            .header("x-github-delivery", delivery)
            .header("x-hub-signature-256", &self.signature)
            .body(self.body.clone())
            .send()
            .await
            .expect("request sent");
        assert_eq!(response.status(), 202, "delivery {delivery} not stored");
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

#[tokio::main]
async fn main() {
    let total = env_or("BENCH_N", 20_000);
    let concurrency = env_or("BENCH_CONCURRENCY", 32);
    let rate = env_or("BENCH_RATE", 500);
    let seconds = env_or("BENCH_SECONDS", 10);

    let server = start_server();
    let body = payload();
    let poster = Arc::new(Poster {
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency as usize * 2)
            .build()
            .unwrap(),
        url: format!("http://{}/webhooks/github", server.addr),
        signature: sign(SECRET, &body),
        body,
    });
    println!(
        "payload {} bytes, database {}, SQLite synchronous={}, server pid {}",
        poster.body.len(),
        std::env::var("BENCH_DATABASE_URL").unwrap_or_else(|_| "sqlite://bench.db".into()),
        std::env::var("BENCH_SQLITE_SYNCHRONOUS").unwrap_or_else(|_| "normal".into()),
        server.child.id()
    );

    // Warm-up: connections, page cache, prepared statements.
    for i in 0..200 {
        poster.post(&format!("warm-{i}")).await;
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
        tasks.push(tokio::spawn(async move {
            poster.post(&format!("rate-{i}")).await
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.push(task.await.unwrap());
    }
    report(
        &format!("fixed rate ({rate}/s offered)"),
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
        clients.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    break latencies;
                }
                latencies.push(poster.post(&format!("sat-{i}")).await);
            }
        }));
    }
    let mut latencies = Vec::new();
    for client in clients {
        latencies.extend(client.await.unwrap());
    }
    report(
        &format!("saturation ({concurrency} clients, after the fixed-rate run)"),
        latencies,
        started.elapsed(),
    );
}
