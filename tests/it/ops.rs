//! Health, readiness and metrics endpoints.

use axum::http::StatusCode;

use crate::db_test;
use crate::support::{self, TestDb, get, send, webhook};

async fn health_and_readiness(db: &TestDb) {
    let app = support::app(db).await;
    let health = get(&app, "/healthz").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json["status"], "ok");
    let ready = get(&app, "/readyz").await;
    assert_eq!(ready.status, StatusCode::OK);

    app.state.store.close().await;
    let ready = get(&app, "/readyz").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.json["error"], "database_unreachable");
    assert_eq!(get(&app, "/healthz").await.status, StatusCode::OK);
}
db_test!(health_and_readiness);

fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn metrics_count_deliveries_outcomes_and_latency(db: &TestDb) {
    let app = support::app(db).await;
    for i in 0..3 {
        send(&app, webhook("push", &format!("m-{i}"), r#"{"ref":1}"#)).await;
    }
    send(&app, webhook("star", "m-star", "{}")).await;
    send(&app, webhook("star", "m-star", "{}")).await; // duplicate
    send(&app, webhook("star", "m-bad", "nope")).await; // rejected

    let text = get(&app, "/metrics").await.text;
    let v = |series: &str| metric_value(&text, series);
    assert_eq!(
        v("tokentally_webhook_deliveries_total{result=\"stored\"}"),
        Some(4.0),
        "{text}"
    );
    assert_eq!(
        v("tokentally_webhook_deliveries_total{result=\"duplicate\"}"),
        Some(1.0)
    );
    assert_eq!(
        v("tokentally_webhook_deliveries_total{result=\"rejected\"}"),
        Some(1.0)
    );
    assert_eq!(v("tokentally_inbox_pending"), Some(4.0));

    app.worker.drain().await.unwrap();
    let text = get(&app, "/metrics").await.text;
    let v = |series: &str| metric_value(&text, series);
    assert_eq!(v("tokentally_inbox_pending"), Some(0.0), "{text}");
    assert_eq!(
        v("tokentally_inbox_processed_total{outcome=\"failed\"}"),
        Some(3.0)
    );
    assert_eq!(
        v("tokentally_inbox_processed_total{outcome=\"ignored\"}"),
        Some(1.0)
    );
    let count = v(
        "tokentally_http_request_duration_seconds_count{method=\"POST\",route=\"/webhooks/github\",status=\"202\"}",
    );
    assert_eq!(count, Some(4.0), "{text}");
}
db_test!(metrics_count_deliveries_outcomes_and_latency);

#[tokio::test]
async fn unknown_routes_answer_json_404() {
    let db = TestDb::sqlite();
    let app = support::app(&db).await;
    let reply = get(&app, "/nowhere").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json["error"], "not_found");
}

async fn readyz_reports_background_problems_and_fails_when_fatal(db: &TestDb) {
    let app = support::app(db).await;
    let ready = support::get(&app, "/readyz").await;
    assert_eq!(ready.status, axum::http::StatusCode::OK, "{}", ready.text);
    app.state
        .health
        .set_problem("worker", "worker loop 1 restarted after: boom");
    let ready = support::get(&app, "/readyz").await;
    assert_eq!(ready.status, axum::http::StatusCode::OK);
    assert!(
        ready.json["problems"]["worker"]
            .as_str()
            .unwrap()
            .contains("boom")
    );
    app.state.health.fail("signal writer", "died: panic");
    let ready = support::get(&app, "/readyz").await;
    assert_eq!(ready.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.json["error"], "not_ready");
    assert!(
        ready.json["message"]
            .as_str()
            .unwrap()
            .contains("signal writer")
    );
}
db_test!(readyz_reports_background_problems_and_fails_when_fatal);
