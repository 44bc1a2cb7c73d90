//! OTLP usage ingest through the real router on SQLite (in-process, no socket):
//! one batch of 1,000 data points (delta, distinct series), acknowledged only
//! once stored — median of 30 batches — and a small batch (10 points, what one
//! agent exports a minute) to estimate the load of 10 agents × 100 engineers
//! exporting every 60 s. Then that load for real: 10-point exports paced at
//! 16.7 a second for BENCH_SECONDS (default 20), counted each second as the
//! service's counter does after its pause, with the process's CPU time
//! (user + system, all threads, from `/proc/self/stat`) over the wall time.
//!
//! `cargo bench --bench usage` (env: BENCH_DATABASE_URL=postgres://… for PostgreSQL;
//! the database server's own CPU is then not in the figure).

use std::time::Instant;

use axum::body::Body;
use axum::http::Request;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric,
    number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use tower::ServiceExt;

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

/// `points` delta points in window `n` (distinct series: one model each).
fn batch(points: usize, n: u64, now_ns: u64) -> Vec<u8> {
    let data_points = (0..points)
        .map(|i| NumberDataPoint {
            attributes: vec![kv("type", "input"), kv("model", &format!("model-{i}"))],
            start_time_unix_nano: now_ns - 60_000_000_000 * (n + 1),
            time_unix_nano: now_ns - 60_000_000_000 * n,
            value: Some(number_data_point::Value::AsInt(1000 + i as i64)),
            ..Default::default()
        })
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![kv("user.email", "dev@example.com")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "claude_code.token.usage".into(),
                    data: Some(metric::Data::Sum(Sum {
                        data_points,
                        aggregation_temporality: AggregationTemporality::Delta as i32,
                        is_monotonic: true,
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// This process's CPU time so far (user + system, every thread), in clock ticks.
fn cpu_ticks() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()
}

/// Clock ticks per second (asked once, before anything is measured).
fn ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(100.0)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}/usage.db", dir.path().display()));
    let mut config = tokentally::config::Config {
        database_url: url,
        ..tokentally::config::Config::default()
    };
    // The bench measures ingest, not the per-token rate limit.
    config.api.rate_limit_per_minute = 1_000_000;
    let app = tokentally::app::App::connect(config).await.unwrap();
    let token = tokentally::api_token::generate();
    app.state
        .store
        .create_token(
            "otel",
            &tokentally::api_token::hash(&token),
            &["*".to_string()],
            tokentally::store::tokens::Role::Telemetry,
            0,
        )
        .await
        .unwrap();
    let now_ns = tokentally::clock::now_ms() as u64 * 1_000_000;
    let mut window = 0;
    // Built once, as the server does.
    let router = app.router();
    let mut post = |points: usize| {
        window += 1;
        let body = batch(points, window, now_ns);
        let router = router.clone();
        let token = token.clone();
        async move {
            let request = Request::post("/v1/metrics")
                .header("content-type", "application/x-protobuf")
                .header("authorization", format!("Bearer {token}"))
                .body(Body::from(body))
                .unwrap();
            let t = Instant::now();
            let response = router.oneshot(request).await.unwrap();
            assert!(response.status().is_success(), "{}", response.status());
            t.elapsed().as_secs_f64() * 1000.0
        }
    };
    // Warm-up: the first batch creates the rows.
    post(1000).await;
    app.count_usage().await.unwrap();
    let mut big = Vec::new();
    let mut counting = Vec::new();
    for _ in 0..30 {
        big.push(post(1000).await);
        // What the service does right after the answer: count the batch.
        let t = Instant::now();
        app.count_usage().await.unwrap();
        counting.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    // 10 agents × 100 engineers, one 10-point export each per 60 s.
    let exports_per_second = 10.0 * 100.0 / 60.0;
    let per_pause = f64::ceil(exports_per_second) as usize;
    let mut small = Vec::new();
    let mut small_counting = Vec::new();
    for _ in 0..20 {
        // What arrives while the counter pauses (1 s) after a batch is
        // counted together, in one transaction.
        for _ in 0..per_pause {
            small.push(post(10).await);
        }
        let t = Instant::now();
        app.count_usage().await.unwrap();
        small_counting.push(t.elapsed().as_secs_f64() * 1000.0 / per_pause as f64);
    }
    let small_counting = median(small_counting);
    let (big, small, counting) = (median(big), median(small), median(counting));
    println!(
        "one OTLP batch of 1,000 data points, stored before the answer: median {big:.2} ms (target < 5 ms); counted into usage after it: median {counting:.2} ms"
    );
    println!(
        "one 10-point export: median {small:.2} ms; 10 agents × 100 engineers every 60 s = {exports_per_second:.1} exports/s ≈ {:.2}% of one core (target < 2%)",
        exports_per_second * small / 1000.0 * 100.0
    );
    println!(
        "counting 10-point exports after the answer, {per_pause} at a time (what arrives in the 1 s pause): median {small_counting:.2} ms per export; answering and counting together ≈ {:.2}% of one core (target < 2%)",
        exports_per_second * (small + small_counting) / 1000.0 * 100.0
    );

    // The same load in real time: exports paced at their rate, counted each
    // second; CPU time over wall time is the share of one core.
    let seconds = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20u64);
    let interval = std::time::Duration::from_secs_f64(1.0 / exports_per_second);
    let per_second = ticks_per_second();
    let cpu_seconds = || cpu_ticks() / per_second;
    // The pacing alone (the bench's timer, the service's idle tasks): what
    // the figure below holds besides answering and counting.
    let mut tick = tokio::time::interval(interval);
    let (cpu_before, wall) = (cpu_seconds(), Instant::now());
    while wall.elapsed().as_secs() < seconds / 2 {
        tick.tick().await;
    }
    let idle = (cpu_seconds() - cpu_before) / wall.elapsed().as_secs_f64();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (cpu_before, wall) = (cpu_seconds(), Instant::now());
    let mut last_count = Instant::now();
    let mut exports = 0;
    while wall.elapsed().as_secs() < seconds {
        tick.tick().await;
        post(10).await;
        exports += 1;
        if last_count.elapsed().as_secs_f64() >= 1.0 {
            app.count_usage().await.unwrap();
            last_count = Instant::now();
        }
    }
    app.count_usage().await.unwrap();
    let (cpu, wall) = (cpu_seconds() - cpu_before, wall.elapsed().as_secs_f64());
    println!(
        "paced for {wall:.0} s ({exports} exports, counted each second): {cpu:.2} s of CPU = {:.2}% of one core, of which the pacing alone (no exports) {:.2}%: answering and counting {:.2}% (target < 2%)",
        cpu / wall * 100.0,
        idle * 100.0,
        (cpu / wall - idle) * 100.0
    );
}
