//! Prometheus metrics of the process (OpenMetrics text at `GET /metrics`).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SignalLabels {
    source: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

/// What ingress did with a webhook request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryResult {
    Stored,
    Duplicate,
    /// A redelivery of a delivery that had failed for good: queued again.
    Requeued,
    /// GitHub's check that the hook works (nothing stored).
    Ping,
    Rejected,
}

pub struct Metrics {
    registry: Registry,
    deliveries: Family<ResultLabel, Counter>,
    inbox_processed: Family<OutcomeLabel, Counter>,
    inbox_pending: Gauge,
    request_duration: Family<RequestLabels, Histogram>,
    signals: Family<SignalLabels, Counter>,
    mirror_syncs: Family<OutcomeLabel, Counter>,
    mirror_sync_duration: Histogram,
    worker_restarts: Counter,
    discord_sends: Family<OutcomeLabel, Counter>,
    discord_disabled: Gauge,
    github_requests: Family<OutcomeLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let deliveries = Family::<ResultLabel, Counter>::default();
        registry.register(
            "tokentally_webhook_deliveries",
            "GitHub webhook requests by what ingress did with them",
            deliveries.clone(),
        );
        let inbox_processed = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "tokentally_inbox_processed",
            "Deliveries finished by this process's worker, by outcome",
            inbox_processed.clone(),
        );
        let inbox_pending = Gauge::default();
        registry.register(
            "tokentally_inbox_pending",
            "Deliveries stored and not yet processed (all replicas)",
            inbox_pending.clone(),
        );
        let request_duration = Family::<RequestLabels, Histogram>::new_with_constructor(
            new_latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "tokentally_http_request_duration_seconds",
            "HTTP request latency by route and status",
            request_duration.clone(),
        );
        let signals = Family::<SignalLabels, Counter>::default();
        registry.register(
            "tokentally_signals",
            "Outcome signals received, by source (api, github, git) and result (created, replayed, conflict)",
            signals.clone(),
        );
        let mirror_syncs = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "tokentally_mirror_syncs",
            "Repository mirror fetches and walks, by outcome (ok, failed)",
            mirror_syncs.clone(),
        );
        // 10 ms … ~10 min: a first clone of a long history takes minutes.
        let mirror_sync_duration = Histogram::new(exponential_buckets(0.01, 2.0, 16));
        registry.register(
            "tokentally_mirror_sync_duration_seconds",
            "Time to fetch a mirror, attribute what is new and store it",
            mirror_sync_duration.clone(),
        );
        let worker_restarts = Counter::default();
        registry.register(
            "tokentally_worker_restarts",
            "Worker loops restarted after they died",
            worker_restarts.clone(),
        );
        let discord_sends = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "tokentally_discord_requests",
            "Requests to Discord webhooks, by outcome (sent, rate_limited, server_error, disabled, rejected, network)",
            discord_sends.clone(),
        );
        let discord_disabled = Gauge::default();
        registry.register(
            "tokentally_discord_destinations_disabled",
            "Discord destinations disabled because their webhook answered 404 or 401",
            discord_disabled.clone(),
        );
        let github_requests = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "tokentally_github_requests",
            "Requests to GitHub's API, by outcome (ok, retried, failed)",
            github_requests.clone(),
        );
        Metrics {
            discord_sends,
            discord_disabled,
            github_requests,
            worker_restarts,
            registry,
            deliveries,
            inbox_processed,
            inbox_pending,
            request_duration,
            signals,
            mirror_syncs,
            mirror_sync_duration,
        }
    }

    pub fn delivery(&self, result: DeliveryResult) {
        let result = match result {
            DeliveryResult::Stored => "stored",
            DeliveryResult::Duplicate => "duplicate",
            DeliveryResult::Requeued => "requeued",
            DeliveryResult::Ping => "ping",
            DeliveryResult::Rejected => "rejected",
        };
        self.deliveries.get_or_create(&ResultLabel { result }).inc();
    }

    /// One request to a Discord webhook and how it ended.
    pub fn discord_request(&self, outcome: &'static str) {
        self.discord_sends
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    pub fn discord_disabled(&self, count: i64) {
        self.discord_disabled.set(count);
    }

    /// One request to GitHub's API: `ok`, `retried` or `failed`.
    pub fn github_request(&self, outcome: &'static str) {
        self.github_requests
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    pub fn worker_restart(&self) {
        self.worker_restarts.inc();
    }

    /// `outcome` is `processed`, `ignored` or `failed`.
    pub fn inbox_processed(&self, outcome: &'static str) {
        self.inbox_processed
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    /// `source`: api | github | git; `result`: created | replayed | conflict.
    pub fn signal(&self, source: &'static str, result: &'static str) {
        self.signals
            .get_or_create(&SignalLabels { source, result })
            .inc();
    }

    pub fn mirror_sync(&self, ok: bool, elapsed: Duration) {
        let outcome = if ok { "ok" } else { "failed" };
        self.mirror_syncs
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
        self.mirror_sync_duration.observe(elapsed.as_secs_f64());
    }

    pub fn request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.request_duration
            .get_or_create(&RequestLabels {
                method: method.to_string(),
                route: route.to_string(),
                status,
            })
            .observe(elapsed.as_secs_f64());
    }

    /// The metrics in OpenMetrics text format, with the inbox gauge set to `pending`.
    pub fn render(&self, pending: i64) -> String {
        self.inbox_pending.set(pending);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

fn new_latency_histogram() -> Histogram {
    // 0.5 ms … ~4 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 14))
}
