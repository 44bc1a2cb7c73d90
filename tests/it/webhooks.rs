//! Webhook ingress: every real GitHub payload is accepted and stored once; bad
//! requests get clear errors and store nothing.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tokentally::github::signature::sign;

use crate::db_test;
use crate::support::{self, SECRET, TestDb, fixtures, send, store, webhook};

async fn every_fixture_is_accepted_stored_once_and_processed(db: &TestDb) {
    if !support::fixtures_available() {
        return;
    }
    let app = support::app(db).await;
    let fixtures = fixtures();
    if support::fixtures_are_the_shared_set() {
        assert_eq!(fixtures.len(), 273, "the shared fixture set");
    } else {
        // The npm package's set (GitHub Actions) is newer and larger.
        assert!(fixtures.len() >= 273, "{} payloads", fixtures.len());
    }

    let mut stored = 0;
    for (event, file, body) in &fixtures {
        let delivery = format!("{event}/{file}");
        let reply = send(&app, webhook(event, &delivery, body.clone())).await;
        if event == "ping" {
            assert_eq!(reply.status, StatusCode::OK, "{delivery}: {}", reply.text);
            continue;
        }
        assert_eq!(
            reply.status,
            StatusCode::ACCEPTED,
            "{delivery}: {}",
            reply.text
        );
        assert_eq!(reply.json["status"], "stored");
        stored += 1;

        let again = send(&app, webhook(event, &delivery, body.clone())).await;
        assert_eq!(
            again.status,
            StatusCode::OK,
            "{delivery} redelivered: {}",
            again.text
        );
        assert_eq!(again.json["status"], "duplicate");
    }
    let pings = fixtures.iter().filter(|(e, _, _)| e == "ping").count();
    assert_eq!(stored, fixtures.len() - pings);
    let metrics = support::get(&app, "/metrics").await.text;
    assert!(
        metrics.contains(&format!(
            "tokentally_webhook_deliveries_total{{result=\"ping\"}} {pings}"
        )),
        "a ping is counted as a ping, not a duplicate: {metrics}"
    );
    assert_eq!(store(&app).count_deliveries().await.unwrap(), stored as i64);

    let steps = app.worker.drain().await.unwrap();
    assert_eq!(steps, stored);
    let statuses = store(&app).all_delivery_statuses().await.unwrap();
    let failed: Vec<_> = statuses
        .iter()
        .filter(|s| s.state != "processed" && s.state != "ignored")
        .map(|s| format!("{} {}: {:?}", s.delivery_id, s.state, s.last_error))
        .collect();
    assert!(failed.is_empty(), "not processed: {failed:#?}");
    for s in &statuses {
        assert_eq!(s.attempts, 1, "{} processed once", s.delivery_id);
        let handled = [
            "push",
            "pull_request",
            "check_suite",
            "check_run",
            "workflow_run",
            "status",
            "deployment_status",
            "installation",
            "installation_repositories",
        ];
        let expected = if handled.contains(&s.event.as_str()) {
            "processed"
        } else {
            "ignored"
        };
        assert_eq!(s.state, expected, "{}", s.delivery_id);
    }

    // Handlers ran: repositories named by the payloads are known, with their default branch.
    let repo = store(&app)
        .repository("Codertocat/Hello-World")
        .await
        .unwrap()
        .expect("repository recorded from the payloads");
    if support::fixtures_are_the_shared_set() {
        assert_eq!(repo.default_branch.as_deref(), Some("master"));
        assert_eq!(repo.github_id, Some(186853002));
    } else {
        // The npm set has more payloads naming it; the last one's values win.
        assert!(repo.default_branch.is_some() && repo.github_id.is_some());
    }
    assert!(
        repo.clone_url
            .unwrap()
            .ends_with("Codertocat/Hello-World.git")
    );
}
db_test!(every_fixture_is_accepted_stored_once_and_processed);

async fn installation_events_record_which_repositories_an_app_covers(db: &TestDb) {
    let app = support::app(db).await;
    let body = serde_json::json!({
        "action": "added",
        "installation": { "id": 42, "account": { "login": "acme" } },
        "repositories_added": [{ "id": 1, "full_name": "acme/api" }],
        "repositories_removed": [{ "id": 2, "full_name": "acme/old" }],
    });
    let reply = send(
        &app,
        webhook("installation_repositories", "i-1", body.to_string()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    app.worker.drain().await.unwrap();
    let api = store(&app).repository("acme/api").await.unwrap().unwrap();
    assert_eq!(api.installation_id, Some(42));
    let old = store(&app).repository("acme/old").await.unwrap().unwrap();
    assert_eq!(old.installation_id, None);
}
db_test!(installation_events_record_which_repositories_an_app_covers);

fn request(headers: &[(&str, &str)], body: impl Into<Body>) -> Request<Body> {
    let mut builder = Request::post("/webhooks/github");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(body.into()).unwrap()
}

async fn bad_requests_get_clear_errors_and_store_nothing(db: &TestDb) {
    let app = support::app(db).await;
    let body = br#"{"action":"opened"}"#.to_vec();
    let good_sig = sign(SECRET, &body);
    let wrong_sig = sign("not-the-secret", &body);
    let event = ("x-github-event", "issues");
    let delivery = ("x-github-delivery", "d-1");

    let cases: Vec<(&str, Request<Body>, StatusCode, &str)> = vec![
        (
            "unsigned",
            request(&[event, delivery], body.clone()),
            StatusCode::UNAUTHORIZED,
            "bad_signature",
        ),
        (
            "wrongly signed",
            request(
                &[event, delivery, ("x-hub-signature-256", &wrong_sig)],
                body.clone(),
            ),
            StatusCode::UNAUTHORIZED,
            "bad_signature",
        ),
        (
            "sha1 only",
            request(
                &[
                    event,
                    delivery,
                    (
                        "x-hub-signature",
                        "sha1=7d38cdd689735b008b3c702edd92eea23791c5f6",
                    ),
                ],
                body.clone(),
            ),
            StatusCode::UNAUTHORIZED,
            "bad_signature",
        ),
        (
            "signature of another body",
            request(
                &[event, delivery, ("x-hub-signature-256", &good_sig)],
                b"{}".to_vec(),
            ),
            StatusCode::UNAUTHORIZED,
            "bad_signature",
        ),
        (
            "no event header",
            request(
                &[delivery, ("x-hub-signature-256", &good_sig)],
                body.clone(),
            ),
            StatusCode::BAD_REQUEST,
            "missing_event",
        ),
        (
            "no delivery header",
            request(&[event, ("x-hub-signature-256", &good_sig)], body.clone()),
            StatusCode::BAD_REQUEST,
            "missing_delivery",
        ),
    ];
    for (name, req, status, code) in cases {
        let reply = send(&app, req).await;
        assert_eq!(reply.status, status, "{name}: {}", reply.text);
        assert_eq!(reply.json["error"], code, "{name}");
        assert!(reply.json["message"].as_str().unwrap().len() > 10, "{name}");
    }

    // Not JSON, and JSON that is not an object: 400 saying what failed.
    for bad in [
        b"this is not json".to_vec(),
        b"[1,2]".to_vec(),
        b"[null]".to_vec(),
        b"\"push\"".to_vec(),
        b"42".to_vec(),
        b"{\"a\":".to_vec(),
    ] {
        let reply = send(&app, webhook("issues", "d-2", bad)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
        assert_eq!(reply.json["error"], "invalid_json");
        assert!(
            reply.json["message"]
                .as_str()
                .unwrap()
                .contains("not a JSON object")
        );
    }

    // A delivery id is bounded: it is a key, not a payload.
    let long_id = "d".repeat(201);
    let reply = send(&app, webhook("issues", &long_id, body.clone())).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    assert_eq!(reply.json["error"], "invalid_delivery");
    let reply = send(&app, webhook("is sues", "d-9", body.clone())).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    assert_eq!(reply.json["error"], "invalid_event");

    // Over 25 MiB: 413, whether announced by Content-Length or not.
    let huge = vec![b' '; 25 * 1024 * 1024 + 1];
    let reply = send(&app, webhook("push", "d-3", huge.clone())).await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.text
    );
    assert_eq!(reply.json["error"], "payload_too_large");
    let streamed = Body::from_stream(futures_stream(huge));
    let reply = send(
        &app,
        request(
            &[event, delivery, ("x-hub-signature-256", &good_sig)],
            streamed,
        ),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.text
    );

    assert_eq!(store(&app).count_deliveries().await.unwrap(), 0);

    // The same delivery id, correctly signed, is still accepted afterwards.
    let reply = send(&app, webhook("issues", "d-1", body)).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
}
db_test!(bad_requests_get_clear_errors_and_store_nothing);

/// A body with no Content-Length, sent in 1 MiB chunks.
fn futures_stream(
    data: Vec<u8>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        data.chunks(1024 * 1024).map(|c| Ok(c.to_vec())).collect();
    futures_util::stream::iter(chunks)
}

async fn a_redelivered_failed_delivery_is_queued_again(db: &TestDb) {
    let app = support::app(db).await;
    // A payload this version cannot read fails for good …
    let body = r#"{"sha":"abc","state":"success","context":"ci","repository":{"full_name":7}}"#;
    send(&app, webhook("status", "fix-me", body)).await;
    app.worker.drain().await.unwrap();
    let failed = store(&app)
        .delivery_status("fix-me")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.state, "failed");

    // … and GitHub's "Redeliver" (the same delivery id) queues it again.
    let reply = send(&app, webhook("status", "fix-me", body)).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    assert_eq!(reply.json["status"], "requeued");
    let queued = store(&app)
        .delivery_status("fix-me")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((queued.state.as_str(), queued.attempts), ("pending", 0));
    assert!(queued.last_error.unwrap().starts_with("queued again after"));
    assert_eq!(store(&app).count_deliveries().await.unwrap(), 1);

    // A processed delivery stays a duplicate.
    let ok = r#"{"zen":"x","hook_id":1}"#;
    send(&app, webhook("star", "done", ok)).await;
    app.worker.drain().await.unwrap();
    let reply = send(&app, webhook("star", "done", ok)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json["status"], "duplicate");

    // Operators requeue from the store too (`tokentally deliveries retry`).
    assert_eq!(store(&app).failed_deliveries().await.unwrap().len(), 1);
    assert!(!store(&app).requeue_delivery("done", 0).await.unwrap());
    let metrics = support::get(&app, "/metrics").await.text;
    assert!(
        metrics.contains("tokentally_webhook_deliveries_total{result=\"requeued\"} 1"),
        "{metrics}"
    );
}
db_test!(a_redelivered_failed_delivery_is_queued_again);
