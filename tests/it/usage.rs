//! Verified usage through the real router on both databases: OTLP batches
//! built with the `opentelemetry-proto` types, sent as protobuf, JSON and
//! gzip, counted once, and read back from `GET /api/v1/usage`.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric,
    number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde_json::Value;
use tokentally::store::tokens::Role;

use crate::db_test;
use crate::support::scenario::{Scenario, config, token};
use crate::support::{TestDb, send};

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn number(
    kind: Option<&str>,
    value: number_data_point::Value,
    start: u64,
    time: u64,
) -> NumberDataPoint {
    let mut attributes = vec![kv("model", "claude-opus-4-5")];
    if let Some(kind) = kind {
        attributes.push(kv("type", kind));
    }
    NumberDataPoint {
        attributes,
        start_time_unix_nano: start,
        time_unix_nano: time,
        value: Some(value),
        ..Default::default()
    }
}

fn batch(
    email: Option<&str>,
    metrics: Vec<(&str, AggregationTemporality, Vec<NumberDataPoint>)>,
) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: email
                    .map(|e| vec![kv("user.email", e), kv("service.name", "claude-code")])
                    .unwrap_or_default(),
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: metrics
                    .into_iter()
                    .map(|(name, temporality, points)| Metric {
                        name: name.into(),
                        data: Some(metric::Data::Sum(Sum {
                            data_points: points,
                            aggregation_temporality: temporality as i32,
                            is_monotonic: true,
                        })),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

async fn export(
    s: &Scenario,
    token: &str,
    content_type: &str,
    gzip: bool,
    body: Vec<u8>,
) -> crate::support::Reply {
    let reply = acknowledge(s, token, content_type, gzip, body).await;
    // The service counts an acknowledged batch right after; here, now.
    s.app.count_usage().await.unwrap();
    reply
}

/// Sends an export and returns the answer, leaving the batch to be counted.
async fn acknowledge(
    s: &Scenario,
    token: &str,
    content_type: &str,
    gzip: bool,
    body: Vec<u8>,
) -> crate::support::Reply {
    let mut request = Request::post("/v1/metrics")
        .header("content-type", content_type)
        .header("authorization", format!("Bearer {token}"));
    let body = if gzip {
        use std::io::Write;
        request = request.header("content-encoding", "gzip");
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&body).unwrap();
        e.finish().unwrap()
    } else {
        body
    };
    send(&s.app, request.body(Body::from(body)).unwrap()).await
}

async fn usage_of(s: &Scenario, person: &str) -> Value {
    let reply = s
        .get(
            &format!("/api/v1/usage?week=current&person={person}"),
            &s.admin,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json["people"][0].clone()
}

async fn otlp_batches_are_counted_once(db: &TestDb) {
    let s = Scenario::new(config(db)).await;
    let otel = token(&s.app, "otel", Role::Telemetry).await;
    let now_ns = (s.now() as u64) * 1_000_000;
    let (start, t1, t2) = (now_ns - 120_000_000_000, now_ns - 60_000_000_000, now_ns);
    use number_data_point::Value::{AsDouble, AsInt};

    // Delta, protobuf: Claude Code's tokens and cost.
    let delta = batch(
        Some("alice@example.com"),
        vec![
            (
                "claude_code.token.usage",
                AggregationTemporality::Delta,
                vec![
                    number(Some("input"), AsInt(1200), start, t1),
                    // The same point twice in one batch: one window, counted once.
                    number(Some("input"), AsInt(1200), start, t1),
                    number(Some("output"), AsInt(300), start, t1),
                    number(Some("cacheRead"), AsInt(9000), start, t1),
                ],
            ),
            (
                "claude_code.cost.usage",
                AggregationTemporality::Delta,
                vec![number(None, AsDouble(0.0525), start, t1)],
            ),
            // Not usage: skipped, not refused.
            (
                "claude_code.lines_of_code.count",
                AggregationTemporality::Delta,
                vec![number(Some("added"), AsInt(40), start, t1)],
            ),
        ],
    );
    let reply = export(
        &s,
        &otel,
        "application/x-protobuf",
        false,
        delta.encode_to_vec(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let answer = ExportMetricsServiceResponse::decode(reply.bytes.as_slice()).unwrap();
    assert!(answer.partial_success.is_none(), "{answer:?}");
    // The same batch again (an exporter retry), gzip this time: counted once.
    let again = export(
        &s,
        &otel,
        "application/x-protobuf",
        true,
        delta.encode_to_vec(),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    let ada = usage_of(&s, "ada").await;
    assert_eq!(
        (ada["input"].as_i64(), ada["output"].as_i64()),
        (Some(1200), Some(300)),
        "{ada}"
    );
    assert_eq!(ada["cache_read"].as_i64(), Some(9000));
    assert!(
        (ada["cost_usd"].as_f64().unwrap() - 0.0525).abs() < 1e-9,
        "{ada}"
    );
    assert_eq!(ada["agents"]["claude-code"]["input"].as_i64(), Some(1200));

    // Cumulative, JSON: running totals, a duplicate, then a restart.
    let cumulative = |points: Vec<NumberDataPoint>| {
        let b = batch(
            Some("alice@example.com"),
            vec![(
                "gemini_cli.token.usage",
                AggregationTemporality::Cumulative,
                points,
            )],
        );
        serde_json::to_vec(&b).unwrap()
    };
    for points in [
        vec![number(Some("input"), AsInt(100), start, t1)],
        vec![number(Some("input"), AsInt(150), start, t2)],
        vec![number(Some("input"), AsInt(150), start, t2)],
        // The exporter restarted: a new start, a new running total.
        vec![number(Some("input"), AsInt(30), t2, t2 + 1_000)],
    ] {
        let reply = export(&s, &otel, "application/json", false, cumulative(points)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }
    let ada = usage_of(&s, "ada").await;
    assert_eq!(
        ada["agents"]["gemini-cli"]["input"].as_i64(),
        Some(180),
        "{ada}"
    );
    assert_eq!(ada["input"].as_i64(), Some(1380));

    // An unknown email is kept (by email); a point with none is refused.
    let stranger = batch(
        Some("sam@elsewhere.dev"),
        vec![(
            "claude_code.token.usage",
            AggregationTemporality::Delta,
            vec![number(Some("input"), AsInt(5), start, t1)],
        )],
    );
    assert_eq!(
        export(
            &s,
            &otel,
            "application/x-protobuf",
            false,
            stranger.encode_to_vec()
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        usage_of(&s, "sam@elsewhere.dev").await["input"].as_i64(),
        Some(5)
    );
    // … and listed as unmapped (`tokentally people unmapped`).
    let unmapped = crate::support::store(&s.app)
        .unmapped_authors()
        .await
        .unwrap();
    assert!(
        unmapped
            .iter()
            .any(|(email, landed, _, _)| email == "sam@elsewhere.dev" && *landed == 0),
        "{unmapped:?}"
    );
    let anonymous = batch(
        None,
        vec![(
            "claude_code.token.usage",
            AggregationTemporality::Delta,
            vec![number(Some("input"), AsInt(5), start, t1)],
        )],
    );
    let partial = export(
        &s,
        &otel,
        "application/json",
        false,
        serde_json::to_vec(&anonymous).unwrap(),
    )
    .await;
    assert_eq!(partial.status, StatusCode::OK, "{}", partial.text);
    assert_eq!(
        partial.json["partialSuccess"]["rejectedDataPoints"], 1,
        "{}",
        partial.text
    );
    assert!(
        partial.json["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("user.email")
    );

    // OTLP/JSON as an exporter writes it: int64 as strings, enums as integers.
    let written = format!(
        r#"{{"resourceMetrics":[{{"resource":{{"attributes":[{{"key":"user.email","value":{{"stringValue":"alice@example.com"}}}}]}},
        "scopeMetrics":[{{"scope":{{"name":"com.anthropic.claude_code"}},"metrics":[{{"name":"claude_code.session.count","unit":"count",
        "sum":{{"aggregationTemporality":1,"isMonotonic":true,"dataPoints":[{{"startTimeUnixNano":"{start}",
        "timeUnixNano":"{t2}","asInt":"2"}}]}}}}]}}]}}]}}"#
    );
    let reply = export(&s, &otel, "application/json", false, written.into_bytes()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(usage_of(&s, "ada").await["sessions"].as_i64(), Some(2));
}
db_test!(otlp_batches_are_counted_once);

async fn otlp_refusals(db: &TestDb) {
    let s = Scenario::new(config(db)).await;
    let otel = token(&s.app, "otel", Role::Telemetry).await;
    let body = batch(Some("alice@example.com"), vec![]).encode_to_vec();
    // No token, a report token: 401, 403.
    let none = send(
        &s.app,
        Request::post("/v1/metrics")
            .header("content-type", "application/x-protobuf")
            .body(Body::from(body.clone()))
            .unwrap(),
    )
    .await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    let report = export(
        &s,
        &s.reporter,
        "application/x-protobuf",
        false,
        body.clone(),
    )
    .await;
    assert_eq!(report.status, StatusCode::FORBIDDEN, "{}", report.text);
    // A telemetry token can do nothing else.
    let read = s.get("/api/v1/leaderboard", &otel).await;
    assert_eq!(read.status, StatusCode::FORBIDDEN, "{}", read.text);
    // Not OTLP: 400; another content type: 415; too large: 413.
    let garbage = export(&s, &otel, "application/x-protobuf", false, vec![0xff; 64]).await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST, "{}", garbage.text);
    assert_eq!(garbage.json["error"], "invalid_otlp");
    let text = export(&s, &otel, "text/plain", false, body).await;
    assert_eq!(text.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // A real exporter's batch of 1,000 points (well over 64 kB) is taken.
    let now_ns = (s.now() as u64) * 1_000_000;
    let points: Vec<NumberDataPoint> = (0..1000)
        .map(|i| {
            let mut p = number(
                Some("input"),
                number_data_point::Value::AsInt(i),
                now_ns - 2_000,
                now_ns - 1_000,
            );
            p.attributes.push(kv("session.id", &format!("session-{i}")));
            p
        })
        .collect();
    let many = batch(
        Some("alice@example.com"),
        vec![(
            "claude_code.token.usage",
            AggregationTemporality::Delta,
            points,
        )],
    )
    .encode_to_vec();
    assert!(many.len() > 64 * 1024, "{}", many.len());
    let taken = export(&s, &otel, "application/x-protobuf", false, many).await;
    assert_eq!(taken.status, StatusCode::OK, "{}", taken.text);
    let huge = export(
        &s,
        &otel,
        "application/x-protobuf",
        false,
        vec![0; 26 * 1024 * 1024],
    )
    .await;
    assert_eq!(huge.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", huge.text);
}
db_test!(otlp_refusals);

async fn efficiency_rests_on_verified_usage(db: &TestDb) {
    let s = Scenario::new(config(db)).await;
    let otel = token(&s.app, "otel", Role::Telemetry).await;
    let at = s.now() + crate::support::scenario::HOUR;
    // Two AI commits, one claiming a single usage token in its trailer.
    s.ai_commit("feat", "a.rs", 100);
    s.work
        .write("b.rs", crate::support::git::lines("b_rs", 100));
    s.work.commit(&format!(
        "feat: b\n\nAI-Tokens: 1\n{}",
        crate::support::scenario::CLAUDE
    ));
    let head = s.work.head();
    s.push(&head, at).await;
    s.settle().await;
    // The agent reports 18,000 input and 2,000 output tokens, and 50,000
    // cache reads (weighing 0.1): 25,000 verified usage tokens.
    let now_ns = (s.now() as u64) * 1_000_000;
    use number_data_point::Value::AsInt;
    let b = batch(
        Some("alice@example.com"),
        vec![(
            "claude_code.token.usage",
            AggregationTemporality::Delta,
            vec![
                number(Some("input"), AsInt(18_000), now_ns - 1_000, now_ns),
                number(Some("output"), AsInt(2_000), now_ns - 1_000, now_ns),
                number(Some("cacheRead"), AsInt(50_000), now_ns - 1_000, now_ns),
            ],
        )],
    );
    let reply = export(
        &s,
        &otel,
        "application/x-protobuf",
        false,
        b.encode_to_vec(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let board = s
        .get(
            "/api/v1/leaderboard?week=current&rank_by=efficiency",
            &s.admin,
        )
        .await
        .json;
    let ada = board["entries"][0].clone();
    assert_eq!(ada["person"], "ada", "{board}");
    assert_eq!(ada["efficiency_source"], "verified", "{board}");
    assert_eq!(ada["verified_usage"], 25_000, "{board}");
    // Everything ada earned this week per 1,000 verified usage tokens: the
    // trailer's "1" moves nothing.
    let expected = ada["earned"].as_f64().unwrap() / 25.0;
    assert!(
        (ada["efficiency"].as_f64().unwrap() - expected).abs() < 1e-3,
        "{board}"
    );
}
db_test!(efficiency_rests_on_verified_usage);

/// One delta point of `metric` (`…token.usage`, input) for `email` at `at_ms`.
fn one_point(email: &str, metric: &str, tokens: i64, at_ms: i64) -> Vec<u8> {
    let ns = (at_ms as u64) * 1_000_000;
    batch(
        Some(email),
        vec![(
            metric,
            AggregationTemporality::Delta,
            vec![number(
                Some("input"),
                number_data_point::Value::AsInt(tokens),
                ns - 1_000,
                ns,
            )],
        )],
    )
    .encode_to_vec()
}

async fn proof_of_assistance_requires_verified_usage(db: &TestDb) {
    let mut config = config(db);
    config.scoring.require_usage = true;
    let s = Scenario::new(config).await;
    let otel = token(&s.app, "otel", Role::Telemetry).await;
    let at = s.now() + crate::support::scenario::HOUR;
    let sha = s.ai_commit("feat", "a.rs", 100);
    let other = s.ai_commit("feat", "b.rs", 100);
    s.work.git(&["revert", "--no-edit", &other]);
    let head = s.work.head();
    s.push(&head, at).await;
    // Another agent's usage proves nothing about a Claude commit.
    let reply = export(
        &s,
        &otel,
        "application/x-protobuf",
        false,
        one_point(
            "alice@example.com",
            "gemini_cli.token.usage",
            5_000,
            s.now(),
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    s.settle().await;
    let t = s.tokens(&sha).await;
    assert_eq!(t["state"], "unverified", "{t}");
    assert_eq!(t["tokens"], 0.0, "{t}");
    let reason = t["unverified_reason"].as_str().unwrap();
    assert!(
        reason.contains("claude-code") && reason.contains("72 hours"),
        "{reason}"
    );
    assert!(t["entries"].as_array().unwrap().is_empty(), "{t}");
    // No tokens and no hygiene penalty: the revert of the other unverified
    // commit costs ada nothing.
    let board = s.leaderboard(at).await;
    assert!(
        board["entries"]
            .as_array()
            .unwrap()
            .iter()
            .chain(board["unranked"].as_array().unwrap())
            .all(|l| l["hygiene"] == 100 && l["earned"] == 0.0),
        "{board}"
    );
    // The why page says why.
    let session = crate::support::pages::login(&s.app, &s.admin).await;
    let page =
        crate::support::pages::page(&s.app, &format!("/commits/acme/api/{sha}"), &session).await;
    assert!(
        page.text.contains("unverified") && page.text.contains("no verified usage of claude-code"),
        "{}",
        page.text
    );
    // Claude Code's own usage the same day backs it: it earns.
    let reply = export(
        &s,
        &otel,
        "application/x-protobuf",
        false,
        one_point(
            "alice@example.com",
            "claude_code.token.usage",
            5_000,
            s.now(),
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    s.settle().await;
    let t = s.tokens(&sha).await;
    assert_eq!(t["state"], "pending", "{t}");
    assert!(t["tokens"].as_f64().unwrap() > 0.0, "{t}");
    assert!(t["unverified_reason"].is_null(), "{t}");
}
db_test!(proof_of_assistance_requires_verified_usage);

async fn a_repository_can_opt_out_of_proof_of_assistance(db: &TestDb) {
    let mut config = config(db);
    config.scoring.require_usage = true;
    config
        .scoring
        .require_usage_repositories
        .insert("acme/api".into(), false);
    let s = Scenario::new(config).await;
    let sha = s.ai_commit("feat", "a.rs", 100);
    s.push(&sha, s.now() + crate::support::scenario::HOUR).await;
    s.settle().await;
    let t = s.tokens(&sha).await;
    assert_eq!(t["state"], "pending", "{t}");
    assert!(t["tokens"].as_f64().unwrap() > 0.0, "{t}");
}
db_test!(a_repository_can_opt_out_of_proof_of_assistance);

async fn cost_taken_back_work_and_waste(db: &TestDb) {
    let mut config = config(db);
    config.scoring.hygiene.waste = 5;
    config
        .people
        .push(tokentally::attribution::identity::PersonConfig {
            name: "bo".into(),
            emails: vec!["bo@example.com".into()],
            github: None,
            discord: None,
            dm: true,
        });
    let s = Scenario::new(config).await;
    let otel = token(&s.app, "otel", Role::Telemetry).await;
    let ns = (s.now() as u64) * 1_000_000;
    use number_data_point::Value::{AsDouble, AsInt};
    // ada: 20,000 usage tokens that cost $4; bo: 30,000 for $6, and lands nothing.
    for (email, tokens, usd) in [
        ("alice@example.com", 20_000, 4.0),
        ("bo@example.com", 30_000, 6.0),
    ] {
        let b = batch(
            Some(email),
            vec![
                (
                    "claude_code.token.usage",
                    AggregationTemporality::Delta,
                    vec![number(Some("input"), AsInt(tokens), ns - 1_000, ns)],
                ),
                (
                    "claude_code.cost.usage",
                    AggregationTemporality::Delta,
                    vec![number(None, AsDouble(usd), ns - 1_000, ns)],
                ),
            ],
        );
        let reply = export(
            &s,
            &otel,
            "application/x-protobuf",
            false,
            b.encode_to_vec(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }
    // ada lands two AI commits the same day and reverts one of them.
    let at = s.now() + crate::support::scenario::HOUR;
    let kept = s.ai_commit("feat", "a.rs", 100);
    let reverted = s.ai_commit("feat", "b.rs", 100);
    s.work.git(&["revert", "--no-edit", &reverted]);
    let head = s.work.head();
    s.push(&head, at).await;
    s.settle().await;
    assert_eq!(s.tokens(&kept).await["state"], "pending");
    let board = s.leaderboard(at).await;
    let lines: Vec<&Value> = board["entries"]
        .as_array()
        .unwrap()
        .iter()
        .chain(board["unranked"].as_array().unwrap())
        .collect();
    let line = |p: &str| {
        *lines
            .iter()
            .find(|l| l["person"] == p)
            .unwrap_or_else(|| panic!("{p}: {board}"))
    };
    let ada = line("ada");
    assert_eq!(ada["cost_usd"], 4.0, "{board}");
    assert_eq!(ada["cost_per_commit_usd"], 2.0, "{board}");
    // The day's $4 went half to each commit: the reverted one's half was wasted.
    assert_eq!(ada["taken_back_cost_usd"], 2.0, "{board}");
    assert!(ada["waste"].is_null(), "{board}");
    assert_eq!(ada["hygiene"], 85, "one revert: {board}");
    // bo used $6 of tokens and landed nothing: waste, and with
    // `hygiene.waste = 5` five points off.
    let bo = line("bo");
    assert_eq!(bo["waste"], "nothing_landed", "{board}");
    assert_eq!(bo["cost_usd"], 6.0, "{board}");
    assert_eq!(bo["ai_commits"], 0, "{board}");
    assert_eq!(bo["hygiene"], 95, "{board}");
    assert_eq!(bo["hygiene_events"]["waste"], 1, "{board}");
    // The team: $10 in all, $5 per landed AI commit, $2 of it taken back.
    assert_eq!(board["team"]["cost_usd"], 10.0, "{board}");
    assert_eq!(board["team"]["cost_per_commit_usd"], 5.0, "{board}");
    assert_eq!(board["team"]["taken_back_cost_usd"], 2.0, "{board}");
    // Their pages show it: usage per agent and model, cost, what was taken
    // back, waste, and the 12-week chart.
    let session = crate::support::pages::login(&s.app, &s.admin).await;
    let week = board["week"].as_str().unwrap();
    let ada_page =
        crate::support::pages::page(&s.app, &format!("/people/ada?week={week}"), &session).await;
    let text = &ada_page.text;
    assert!(
        text.contains("id=\"usage\"") && text.contains("claude-opus-4-5"),
        "{text}"
    );
    assert!(text.contains("<td class=\"num\">20000</td>"), "{text}");
    assert!(
        text.contains("id=\"cost\">$4.00") && text.contains("id=\"taken-back-cost\">$2.00"),
        "{text}"
    );
    assert!(
        text.contains("id=\"usage-trend\"") && text.contains("20000 usage tokens, $4.00"),
        "{text}"
    );
    assert!(!text.contains("id=\"waste\""), "{text}");
    let bo_page =
        crate::support::pages::page(&s.app, &format!("/people/bo?week={week}"), &session).await;
    assert!(
        bo_page.text.contains("id=\"waste\"") && bo_page.text.contains("no landed AI commit"),
        "{}",
        bo_page.text
    );
}
db_test!(cost_taken_back_work_and_waste);

async fn telemetry_tokens_have_their_own_rate_limit(db: &TestDb) {
    let mut config = config(db);
    config.api.rate_limit_per_minute = 1;
    config.usage.rate_limit_per_minute = 2;
    let s = Scenario::new(config).await;
    let otel = token(&s.app, "otel", Role::Telemetry).await;
    // Two exports fit the telemetry budget although the API's is 1 a minute.
    for tokens in [100, 200] {
        // Each export its own window (a re-sent window counts once).
        s.clock.advance_ms(60_000);
        let body = one_point(
            "alice@example.com",
            "claude_code.token.usage",
            tokens,
            s.now(),
        );
        let reply = export(&s, &otel, "application/x-protobuf", false, body).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }
    let body = one_point("alice@example.com", "claude_code.token.usage", 300, s.now());
    let reply = export(&s, &otel, "application/x-protobuf", false, body).await;
    assert_eq!(
        reply.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        reply.text
    );
    assert!(
        reply.text.contains("2 requests per minute"),
        "{}",
        reply.text
    );
    // The admin token's own budget is untouched by the exports.
    let usage = usage_of(&s, "ada").await;
    assert_eq!(usage["input"], 300, "{usage}");
}
db_test!(telemetry_tokens_have_their_own_rate_limit);

async fn an_acknowledged_batch_is_counted_once_by_any_replica(db: &TestDb) {
    let s = Scenario::new(config(db)).await;
    let otel = token(&s.app, "otel", Role::Telemetry).await;
    let body = one_point("alice@example.com", "claude_code.token.usage", 500, s.now());
    let reply = acknowledge(&s, &otel, "application/x-protobuf", false, body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    // Acknowledged = stored: a second replica over the same database counts
    // it as well as the first; together, once.
    let other = tokentally::app::App::connect_with_clock(config(db), s.clock.clone())
        .await
        .unwrap();
    let (a, b) = tokio::join!(s.app.count_usage(), other.count_usage());
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    assert_eq!(s.app.count_usage().await.unwrap(), 0, "nothing left");
    assert_eq!(usage_of(&s, "ada").await["input"], 500);
}
db_test!(an_acknowledged_batch_is_counted_once_by_any_replica);

async fn batches_counted_together_add_up_as_one_by_one(db: &TestDb) {
    let s = Scenario::new(config(db)).await;
    let otel = token(&s.app, "otel", Role::Telemetry).await;
    let now_ns = (s.now() as u64) * 1_000_000;
    let (start, t1, t2) = (now_ns - 120_000_000_000, now_ns - 60_000_000_000, now_ns);
    use number_data_point::Value::AsInt;
    let delta = batch(
        Some("alice@example.com"),
        vec![(
            "claude_code.token.usage",
            AggregationTemporality::Delta,
            vec![number(Some("input"), AsInt(1200), start, t1)],
        )],
    )
    .encode_to_vec();
    let cumulative = |value, from, at| {
        batch(
            Some("alice@example.com"),
            vec![(
                "gemini_cli.token.usage",
                AggregationTemporality::Cumulative,
                vec![number(Some("input"), AsInt(value), from, at)],
            )],
        )
        .encode_to_vec()
    };
    // Acknowledged while the counter pauses: an exporter's retry of the same
    // window, a running total, its duplicate and its restart.
    let bodies = [
        delta.clone(),
        cumulative(100, start, t1),
        delta,
        cumulative(150, start, t2),
        cumulative(150, start, t2),
        cumulative(30, t2, t2 + 1_000),
    ];
    for body in bodies {
        let reply = acknowledge(&s, &otel, "application/x-protobuf", false, body).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }
    // Counted in one go: the window once, the running total by its growth.
    assert_eq!(s.app.count_usage().await.unwrap(), 4, "points that added");
    let ada = usage_of(&s, "ada").await;
    assert_eq!(ada["agents"]["claude-code"]["input"].as_i64(), Some(1200));
    assert_eq!(
        ada["agents"]["gemini-cli"]["input"].as_i64(),
        Some(180),
        "{ada}"
    );
    assert_eq!(s.app.count_usage().await.unwrap(), 0, "nothing left");
}
db_test!(batches_counted_together_add_up_as_one_by_one);

async fn a_batch_claimed_by_another_replica_is_not_counted_again(db: &TestDb) {
    let s = Scenario::new(config(db)).await;
    let store = crate::support::store(&s.app);
    let now_ns = s.now() * 1_000_000;
    let point = |series: &str, value| tokentally::scoring::usage::UsagePoint {
        series: series.into(),
        email: "alice@example.com".into(),
        agent: "claude-code".into(),
        model: "claude-opus-4-5".into(),
        kind: tokentally::scoring::usage::UsageKind::Input,
        start_ns: now_ns - 60_000_000_000,
        time_ns: now_ns,
        value,
        cumulative: false,
    };
    let (a, b) = (point("a", 100), point("b", 20));
    let dated = |p| tokentally::store::usage::DatedPoint {
        point: p,
        person: "ada".into(),
        day: tokentally::scoring::week::day_of(s.now(), chrono_tz::UTC),
    };
    let first = store.store_usage_batch(b"a", s.now()).await.unwrap();
    let second = store.store_usage_batch(b"b", s.now()).await.unwrap();
    // This replica read both batches, but another one counted the first
    // meanwhile: only the second adds anything (the claim skips the first,
    // and its window is known too).
    store
        .count_usage_batches(&[(first, vec![dated(&a)])], s.now())
        .await
        .unwrap();
    let stale = [(first, vec![dated(&a)]), (second, vec![dated(&b)])];
    assert_eq!(store.count_usage_batches(&stale, s.now()).await.unwrap(), 1);
    assert_eq!(store.count_usage_batches(&stale, s.now()).await.unwrap(), 0);
    assert_eq!(usage_of(&s, "ada").await["input"], 120);
}
db_test!(a_batch_claimed_by_another_replica_is_not_counted_again);
