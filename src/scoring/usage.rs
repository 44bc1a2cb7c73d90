//! Verified usage: what coding agents report about themselves as OpenTelemetry
//! metrics (`claude_code.token.usage`, `gemini_cli.token.usage`,
//! `opencode.cost.usage`, …), turned into usage points. Pure: the request in,
//! points out; counting each point once is the store's business.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{AggregationTemporality, metric, number_data_point};
use sha2::{Digest, Sha256};

/// What a usage point counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum UsageKind {
    Input,
    Output,
    CacheRead,
    CacheCreation,
    /// Cost in micro-USD.
    CostMicroUsd,
    Sessions,
    Commits,
    ActiveSeconds,
}

impl UsageKind {
    pub const ALL: [UsageKind; 8] = [
        UsageKind::Input,
        UsageKind::Output,
        UsageKind::CacheRead,
        UsageKind::CacheCreation,
        UsageKind::CostMicroUsd,
        UsageKind::Sessions,
        UsageKind::Commits,
        UsageKind::ActiveSeconds,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UsageKind::Input => "input",
            UsageKind::Output => "output",
            UsageKind::CacheRead => "cache_read",
            UsageKind::CacheCreation => "cache_creation",
            UsageKind::CostMicroUsd => "cost_micro_usd",
            UsageKind::Sessions => "sessions",
            UsageKind::Commits => "commits",
            UsageKind::ActiveSeconds => "active_seconds",
        }
    }

    pub fn parse(text: &str) -> Option<UsageKind> {
        UsageKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// Verified usage summed: weighted model tokens (input, output and cache
/// creation weigh 1, cache reads `cache_read_weight`) and cost.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spent {
    pub tokens: f64,
    pub cost_micro_usd: i64,
}

impl Spent {
    /// Adds `amount` of `kind` (kinds that are neither tokens nor cost add nothing).
    pub fn add(&mut self, kind: UsageKind, amount: i64, cache_read_weight: f64) {
        match kind {
            UsageKind::Input | UsageKind::Output | UsageKind::CacheCreation => {
                self.tokens += amount as f64
            }
            UsageKind::CacheRead => self.tokens += amount as f64 * cache_read_weight,
            UsageKind::CostMicroUsd => self.cost_micro_usd += amount,
            UsageKind::Sessions | UsageKind::Commits | UsageKind::ActiveSeconds => {}
        }
    }
}

/// One data point, as the store counts it.
#[derive(Debug, Clone, PartialEq)]
pub struct UsagePoint {
    /// The series it belongs to: resource, scope, metric and attributes, hashed.
    pub series: String,
    pub email: String,
    pub agent: String,
    pub model: String,
    pub kind: UsageKind,
    /// Epoch nanoseconds: the series' start and this point's time.
    pub start_ns: i64,
    pub time_ns: i64,
    /// In the kind's unit (tokens, micro-USD, seconds, …).
    pub value: i64,
    /// A running total since `start_ns` (else the change since the last point).
    pub cumulative: bool,
}

/// What a request holds: the points to count, and the data points refused
/// (with why), for OTLP's partial success.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decoded {
    /// The points to count (left empty by [`check`]).
    pub points: Vec<UsagePoint>,
    /// How many points are accepted.
    pub accepted: usize,
    pub rejected: i64,
    pub message: String,
}

/// The default metric prefixes and the agents they name (`[usage.agents]`
/// adds to or overrides these).
pub fn default_agents() -> BTreeMap<String, String> {
    [
        ("claude_code", "claude-code"),
        ("gemini_cli", "gemini-cli"),
        ("opencode", "opencode"),
        ("codex", "codex"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn text(value: &Option<AnyValue>) -> Option<String> {
    match value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        any_value::Value::IntValue(i) => Some(i.to_string()),
        any_value::Value::BoolValue(b) => Some(b.to_string()),
        any_value::Value::DoubleValue(d) => Some(d.to_string()),
        _ => None,
    }
}

fn attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| text(&kv.value))
}

/// The kind a metric (without its prefix) and its `type` attribute count.
fn kind_of(metric: &str, kind_attribute: Option<&str>) -> Option<UsageKind> {
    match metric {
        "token.usage" => match kind_attribute? {
            "input" => Some(UsageKind::Input),
            "output" => Some(UsageKind::Output),
            "cacheRead" | "cache_read" | "cache" => Some(UsageKind::CacheRead),
            "cacheCreation" | "cache_creation" => Some(UsageKind::CacheCreation),
            _ => None,
        },
        "cost.usage" => Some(UsageKind::CostMicroUsd),
        "session.count" => Some(UsageKind::Sessions),
        "commit.count" => Some(UsageKind::Commits),
        "active_time.total" => Some(UsageKind::ActiveSeconds),
        _ => None,
    }
}

/// The usage points of `request`: sums of the known metrics of the known
/// agents. Other metrics are not usage and are skipped (not refused); a data
/// point with no `user.email` (on the point or its resource) is refused.
pub fn decode(request: &ExportMetricsServiceRequest, agents: &BTreeMap<String, String>) -> Decoded {
    read(request, agents, true)
}

/// What [`decode`] would accept and refuse, without building the points:
/// what a receiver answers before the points are counted.
pub fn check(request: &ExportMetricsServiceRequest, agents: &BTreeMap<String, String>) -> Decoded {
    read(request, agents, false)
}

fn read(
    request: &ExportMetricsServiceRequest,
    agents: &BTreeMap<String, String>,
    build: bool,
) -> Decoded {
    let mut out = Decoded::default();
    for resource_metrics in &request.resource_metrics {
        let resource = resource_metrics
            .resource
            .as_ref()
            .map(|r| r.attributes.as_slice())
            .unwrap_or_default();
        for scope_metrics in &resource_metrics.scope_metrics {
            let scope = scope_metrics
                .scope
                .as_ref()
                .map(|s| s.name.as_str())
                .unwrap_or_default();
            for m in &scope_metrics.metrics {
                let Some((prefix, rest)) = m.name.split_once('.') else {
                    continue;
                };
                let Some(agent) = agents.get(prefix) else {
                    continue;
                };
                let sum = match &m.data {
                    Some(metric::Data::Sum(sum)) => sum,
                    // A known agent's metric with no data it could read (an
                    // enum written by name in JSON, say): refused, so the
                    // exporter hears of it.
                    None => {
                        out.rejected += 1;
                        continue;
                    }
                    Some(_) => continue,
                };
                let cumulative =
                    sum.aggregation_temporality == AggregationTemporality::Cumulative as i32;
                for p in &sum.data_points {
                    let kind_attribute = attribute(&p.attributes, "type");
                    let Some(kind) = kind_of(rest, kind_attribute.as_deref()) else {
                        continue;
                    };
                    let email = attribute(&p.attributes, "user.email")
                        .or_else(|| attribute(resource, "user.email"));
                    let Some(email) = email.filter(|e| e.contains('@')) else {
                        out.rejected += 1;
                        continue;
                    };
                    let raw = match p.value {
                        Some(number_data_point::Value::AsInt(i)) => i as f64,
                        Some(number_data_point::Value::AsDouble(d)) => d,
                        None => {
                            out.rejected += 1;
                            continue;
                        }
                    };
                    if !raw.is_finite() || raw < 0.0 {
                        out.rejected += 1;
                        continue;
                    }
                    out.accepted += 1;
                    if !build {
                        continue;
                    }
                    let value = match kind {
                        UsageKind::CostMicroUsd => (raw * 1_000_000.0).round() as i64,
                        _ => raw.round() as i64,
                    };
                    out.points.push(UsagePoint {
                        series: series_key(resource, scope, &m.name, &p.attributes),
                        email,
                        agent: agent.clone(),
                        model: attribute(&p.attributes, "model").unwrap_or_default(),
                        kind,
                        start_ns: p.start_time_unix_nano as i64,
                        time_ns: p.time_unix_nano as i64,
                        value,
                        cumulative,
                    });
                }
            }
        }
    }
    if out.rejected > 0 {
        out.message = format!(
            "{} data point(s) or metric(s) refused: each point needs a user.email attribute (on the point or its resource) and a non-negative value, each metric readable data (OTLP/JSON enums are integers)",
            out.rejected
        );
    }
    out
}

/// A series' identity: its resource and point attributes (sorted), scope and metric.
fn series_key(resource: &[KeyValue], scope: &str, metric: &str, attributes: &[KeyValue]) -> String {
    let sorted = |kvs: &[KeyValue]| {
        let mut pairs: Vec<(String, String)> = kvs
            .iter()
            .map(|kv| (kv.key.clone(), text(&kv.value).unwrap_or_default()))
            .collect();
        pairs.sort();
        pairs
    };
    let mut h = Sha256::new();
    for (k, v) in sorted(resource) {
        h.update(format!("r\0{k}\0{v}\0"));
    }
    h.update(format!("s\0{scope}\0m\0{metric}\0"));
    for (k, v) in sorted(attributes) {
        h.update(format!("a\0{k}\0{v}\0"));
    }
    hex::encode(&h.finalize()[..16])
}

/// What a point adds, given its series' last point (start, time, value):
/// a delta point its value unless its window was counted (`seen_window`); a
/// cumulative point the growth since the last point of the same start, or
/// its whole value when the series restarted. `None`: counted already.
pub fn added(point: &UsagePoint, last: Option<(i64, i64, i64)>, seen_window: bool) -> Option<i64> {
    if !point.cumulative {
        return (!seen_window).then_some(point.value);
    }
    match last {
        None => Some(point.value),
        // A restart of the series: a new start time, a new running total.
        Some((start, _, _)) if point.start_ns > start => Some(point.value),
        Some((start, _, _)) if point.start_ns < start => None,
        Some((_, time, _)) if point.time_ns <= time => None,
        // A total that shrank without a new start: the exporter restarted.
        Some((_, _, value)) if point.value < value => Some(point.value),
        Some((_, _, value)) => Some(point.value - value),
    }
}

#[cfg(test)]
mod tests;
