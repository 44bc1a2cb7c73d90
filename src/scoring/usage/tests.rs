use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use proptest::prelude::*;

use super::*;

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn point(kind: &str, value: i64, start: u64, time: u64) -> NumberDataPoint {
    NumberDataPoint {
        attributes: vec![kv("type", kind), kv("model", "claude-opus-4-5")],
        start_time_unix_nano: start,
        time_unix_nano: time,
        value: Some(number_data_point::Value::AsInt(value)),
        ..Default::default()
    }
}

fn request(
    name: &str,
    temporality: AggregationTemporality,
    points: Vec<NumberDataPoint>,
    email: Option<&str>,
) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: email.map(|e| vec![kv("user.email", e)]).unwrap_or_default(),
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: name.into(),
                    data: Some(metric::Data::Sum(Sum {
                        data_points: points,
                        aggregation_temporality: temporality as i32,
                        is_monotonic: true,
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[test]
fn token_usage_of_known_agents_becomes_points() {
    let r = request(
        "claude_code.token.usage",
        AggregationTemporality::Delta,
        vec![
            point("input", 1200, 1, 2),
            point("cacheRead", 5000, 1, 2),
            point("thought", 9, 1, 2),
        ],
        Some("ada@example.com"),
    );
    let d = decode(&r, &default_agents());
    assert_eq!(d.rejected, 0);
    let kinds: Vec<(UsageKind, i64)> = d.points.iter().map(|p| (p.kind, p.value)).collect();
    // An unknown `type` is not usage (skipped, not refused).
    assert_eq!(
        kinds,
        [(UsageKind::Input, 1200), (UsageKind::CacheRead, 5000)]
    );
    assert!(
        d.points
            .iter()
            .all(|p| p.agent == "claude-code" && p.model == "claude-opus-4-5" && !p.cumulative)
    );
    assert_ne!(
        d.points[0].series, d.points[1].series,
        "one series per attributes"
    );
    // Cost in USD becomes micro-USD; an unknown agent's metrics are skipped.
    let mut cost = request(
        "gemini_cli.cost.usage",
        AggregationTemporality::Delta,
        vec![],
        Some("ada@example.com"),
    );
    if let Some(metric::Data::Sum(sum)) =
        &mut cost.resource_metrics[0].scope_metrics[0].metrics[0].data
    {
        sum.data_points.push(NumberDataPoint {
            value: Some(number_data_point::Value::AsDouble(0.0421)),
            ..Default::default()
        });
    }
    let d = decode(&cost, &default_agents());
    assert_eq!(
        (d.points[0].kind, d.points[0].value),
        (UsageKind::CostMicroUsd, 42_100)
    );
    let other = request(
        "vim.token.usage",
        AggregationTemporality::Delta,
        vec![point("input", 1, 1, 2)],
        Some("a@b"),
    );
    assert!(decode(&other, &default_agents()).points.is_empty());
}

#[test]
fn a_point_without_an_email_is_refused() {
    let r = request(
        "claude_code.token.usage",
        AggregationTemporality::Delta,
        vec![point("input", 5, 1, 2)],
        None,
    );
    let d = decode(&r, &default_agents());
    assert_eq!((d.points.len(), d.rejected), (0, 1));
    assert!(d.message.contains("user.email"));
    // The receiver's check says the same, without building points.
    let mut mixed = r.clone();
    mixed.resource_metrics.extend(
        request(
            "claude_code.token.usage",
            AggregationTemporality::Delta,
            vec![point("input", 5, 1, 2), point("output", 7, 1, 2)],
            Some("ada@example.com"),
        )
        .resource_metrics,
    );
    let (full, checked) = (
        decode(&mixed, &default_agents()),
        check(&mixed, &default_agents()),
    );
    assert_eq!((full.accepted, full.points.len(), full.rejected), (2, 2, 1));
    assert_eq!((checked.accepted, checked.rejected), (2, 1));
    assert!(checked.points.is_empty());
    assert_eq!(checked.message, full.message);
}

#[test]
fn cumulative_series_count_growth_restarts_and_never_twice() {
    let at = |value, start, time| UsagePoint {
        series: "s".into(),
        email: "a@b".into(),
        agent: "claude-code".into(),
        model: String::new(),
        kind: UsageKind::Input,
        start_ns: start,
        time_ns: time,
        value,
        cumulative: true,
    };
    assert_eq!(added(&at(100, 1, 10), None, false), Some(100));
    assert_eq!(added(&at(150, 1, 20), Some((1, 10, 100)), false), Some(50));
    // The same point again (a re-sent batch): nothing.
    assert_eq!(added(&at(150, 1, 20), Some((1, 20, 150)), false), None);
    // A restart (new start time): its total counts from zero.
    assert_eq!(added(&at(30, 25, 30), Some((1, 20, 150)), false), Some(30));
    // A delta point counts once per window.
    let delta = UsagePoint {
        cumulative: false,
        ..at(7, 1, 2)
    };
    assert_eq!(added(&delta, None, false), Some(7));
    assert_eq!(added(&delta, None, true), None);
}

proptest! {
    /// However a cumulative series' points are re-sent (duplicates, in order),
    /// what is counted is its last total, plus the last totals of earlier runs.
    #[test]
    fn a_cumulative_series_is_counted_exactly_once(
        runs in prop::collection::vec(prop::collection::vec(0i64..1000, 1..6), 1..4),
        resend in prop::collection::vec(any::<bool>(), 0..20),
    ) {
        let mut last: Option<(i64, i64, i64)> = None;
        let mut counted = 0i64;
        let mut expected = 0i64;
        let mut time = 0i64;
        let mut k = 0;
        for (run, growths) in runs.iter().enumerate() {
            let start = (run as i64 + 1) * 1_000_000;
            let mut total = 0;
            for g in growths {
                total += g;
                time = time.max(start) + 1;
                let p = UsagePoint {
                    series: "s".into(), email: "a@b".into(), agent: "x".into(), model: String::new(),
                    kind: UsageKind::Input, start_ns: start, time_ns: time, value: total, cumulative: true,
                };
                let times = 1 + usize::from(resend.get(k).copied().unwrap_or(false));
                k += 1;
                for _ in 0..times {
                    if let Some(add) = added(&p, last, false) {
                        counted += add;
                        last = Some((p.start_ns, p.time_ns, p.value));
                    }
                }
            }
            expected += total;
        }
        prop_assert_eq!(counted, expected);
    }
}

#[test]
fn otlp_json_as_exporters_write_it() {
    let written = r#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"user.email","value":{"stringValue":"alice@example.com"}}]},
        "scopeMetrics":[{"scope":{"name":"com.anthropic.claude_code"},"metrics":[{"name":"claude_code.session.count","unit":"count",
        "sum":{"aggregationTemporality":1,"isMonotonic":true,"dataPoints":[{"startTimeUnixNano":"1796700000000000000",
        "timeUnixNano":"1796700060000000000","asInt":"2"}]}}]}]}]}"#;
    let request: ExportMetricsServiceRequest = serde_json::from_str(written).unwrap();
    let d = decode(&request, &default_agents());
    assert_eq!(d.points.len(), 1, "{request:?}");
    assert_eq!(
        (d.points[0].kind, d.points[0].value),
        (UsageKind::Sessions, 2)
    );
}
