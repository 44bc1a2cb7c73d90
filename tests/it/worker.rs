//! The inbox worker: crash recovery, exactly-once processing with several
//! workers, retries with back-off, permanent failures.

use std::sync::Arc;

use axum::http::StatusCode;
use tokentally::clock::now_ms;
use tokentally::jobs::worker::Step;

use crate::db_test;
use crate::support::{self, TestDb, send, store, webhook};

fn push_body(full_name: &str, after: &str) -> String {
    serde_json::json!({
        "ref": "refs/heads/main",
        "before": "0000000000000000000000000000000000000000",
        "after": after,
        "commits": [],
        "head_commit": null,
        "repository": { "id": 7, "full_name": full_name, "default_branch": "main" },
    })
    .to_string()
}

async fn deliveries_left_by_a_crash_are_processed_after_restart(db: &TestDb) {
    // First instance: stores deliveries, then "crashes" before its worker ran.
    let first = support::app(db).await;
    for i in 0..5 {
        let reply = send(
            &first,
            webhook("push", &format!("p-{i}"), push_body("acme/api", "a")),
        )
        .await;
        assert_eq!(reply.status, StatusCode::ACCEPTED);
    }
    // One delivery was claimed by a worker that died mid-way: its lease has run out.
    let dead = store(&first)
        .claim_delivery("dead-worker", now_ms(), now_ms() - 1)
        .await
        .unwrap()
        .expect("a delivery to claim");
    assert_eq!(dead.delivery_id, "p-0");
    first.state.store.close().await;
    drop(first);

    // Second instance over the same database picks everything up.
    let second = support::app(db).await;
    assert_eq!(
        store(&second).count_unfinished_deliveries().await.unwrap(),
        5
    );
    assert_eq!(second.worker.drain().await.unwrap(), 5);
    for i in 0..5 {
        let status = store(&second)
            .delivery_status(&format!("p-{i}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status.state, "processed", "p-{i}");
        assert_eq!(status.processed_by.as_deref(), Some(second.worker.owner()));
    }
    assert_eq!(
        store(&second).count_unfinished_deliveries().await.unwrap(),
        0
    );
    assert!(
        store(&second)
            .repository("acme/api")
            .await
            .unwrap()
            .is_some()
    );
}
db_test!(deliveries_left_by_a_crash_are_processed_after_restart);

async fn a_live_lease_is_not_taken_over(db: &TestDb) {
    let app = support::app(db).await;
    send(&app, webhook("push", "only", push_body("acme/api", "a"))).await;
    let held = store(&app)
        .claim_delivery("other-worker", now_ms(), now_ms() + 60_000)
        .await
        .unwrap();
    assert!(held.is_some());
    assert_eq!(app.worker.step().await.unwrap(), Step::Idle);
    // The holder finishes; a stale worker cannot overwrite its outcome.
    let ok = store(&app)
        .finish_delivery(
            held.unwrap().id,
            "someone-else",
            tokentally::store::deliveries::Finished::Failed,
            Some("x"),
            now_ms(),
        )
        .await
        .unwrap();
    assert!(!ok, "only the lease holder records the outcome");
}
db_test!(a_live_lease_is_not_taken_over);

async fn two_workers_process_each_delivery_exactly_once(db: &TestDb) {
    let app_a = support::app(db).await;
    let app_b = support::app(db).await;
    for i in 0..200 {
        let event = if i % 4 == 0 { "star" } else { "push" };
        let body = push_body(&format!("acme/repo-{}", i % 10), "b");
        let reply = send(&app_a, webhook(event, &format!("d-{i}"), body)).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED);
    }
    let (a, b) = tokio::join!(
        tokio::spawn({
            let worker = app_a.worker.clone();
            async move { worker.drain().await.unwrap() }
        }),
        tokio::spawn({
            let worker = app_b.worker.clone();
            async move { worker.drain().await.unwrap() }
        }),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        a + b,
        200,
        "every delivery processed once in total (a={a}, b={b})"
    );

    let statuses = store(&app_a).all_delivery_statuses().await.unwrap();
    assert_eq!(statuses.len(), 200);
    for s in &statuses {
        assert_eq!(s.attempts, 1, "{} claimed once", s.delivery_id);
        let expected = if s.event == "star" {
            "ignored"
        } else {
            "processed"
        };
        assert_eq!(s.state, expected, "{}", s.delivery_id);
    }
    let by_a = statuses
        .iter()
        .filter(|s| s.processed_by.as_deref() == Some(app_a.worker.owner()))
        .count();
    assert_eq!(
        by_a, a,
        "worker a's count matches what the database says it processed"
    );
    assert_eq!(store(&app_a).repositories().await.unwrap().len(), 10);
}
db_test!(two_workers_process_each_delivery_exactly_once);

async fn malformed_payload_fails_at_once_with_the_place_it_broke(db: &TestDb) {
    let app = support::app(db).await;
    let body = r#"{"ref": 5, "before": "a", "after": "b", "repository": {"full_name": "x/y"}}"#;
    assert_eq!(
        send(&app, webhook("push", "bad", body)).await.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(app.worker.step().await.unwrap(), Step::Finished("failed"));
    let status = store(&app).delivery_status("bad").await.unwrap().unwrap();
    assert_eq!(status.state, "failed");
    assert_eq!(status.attempts, 1, "retrying cannot fix a payload");
    let error = status.last_error.unwrap();
    assert!(
        error.contains("push payload does not parse at `ref`"),
        "{error}"
    );
}
db_test!(malformed_payload_fails_at_once_with_the_place_it_broke);

/// Makes writes to the repositories table fail the way they do when the database
/// has trouble, or lets them through again.
async fn break_repositories(db: &TestDb, broken: bool) {
    let sql = match (db.is_postgres(), broken) {
        (false, true) => {
            "CREATE TRIGGER tt_break BEFORE INSERT ON repositories \
             BEGIN SELECT RAISE(ABORT, 'repositories unavailable'); END;"
        }
        (false, false) => "DROP TRIGGER tt_break",
        (true, true) => {
            "CREATE OR REPLACE FUNCTION tt_break() RETURNS trigger AS $$ \
             BEGIN RAISE EXCEPTION 'repositories unavailable'; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER tt_break BEFORE INSERT ON repositories \
             FOR EACH ROW EXECUTE FUNCTION tt_break();"
        }
        (true, false) => "DROP TRIGGER tt_break ON repositories",
    };
    db.exec(sql).await;
}

async fn transient_failures_are_retried_with_backoff_then_given_up(db: &TestDb) {
    let mut config = support::test_config(db);
    config.worker.max_attempts = 3;
    config.worker.retry_base_ms = 0;
    let app = support::app_with(config).await;
    send(&app, webhook("push", "r-1", push_body("acme/api", "a"))).await;
    send(&app, webhook("push", "r-2", push_body("acme/web", "a"))).await;

    break_repositories(db, true).await;
    // r-1 fails, is put back and retried (back-off of 0 ms in this test) …
    assert_eq!(app.worker.step().await.unwrap(), Step::Retrying);
    let r1 = store(&app).delivery_status("r-1").await.unwrap().unwrap();
    assert_eq!((r1.state.as_str(), r1.attempts), ("pending", 1));
    assert!(r1.last_error.unwrap().contains("repositories"));
    // … and once the database is healthy again it is processed.
    break_repositories(db, false).await;
    app.worker.drain().await.unwrap();
    let r1 = store(&app).delivery_status("r-1").await.unwrap().unwrap();
    assert_eq!((r1.state.as_str(), r1.attempts), ("processed", 2));

    // A failure that persists ends as failed after max_attempts.
    send(&app, webhook("push", "r-3", push_body("acme/ops", "a"))).await;
    break_repositories(db, true).await;
    let mut steps = Vec::new();
    loop {
        let step = app.worker.step().await.unwrap();
        if step == Step::Idle {
            break;
        }
        steps.push(step);
    }
    break_repositories(db, false).await;
    assert_eq!(
        steps,
        [Step::Retrying, Step::Retrying, Step::Finished("failed")]
    );
    let r3 = store(&app).delivery_status("r-3").await.unwrap().unwrap();
    assert_eq!((r3.state.as_str(), r3.attempts), ("failed", 3));
}
db_test!(transient_failures_are_retried_with_backoff_then_given_up);

async fn backoff_delays_the_next_attempt(db: &TestDb) {
    let mut config = support::test_config(db);
    config.worker.retry_base_ms = 60_000;
    let app = support::app_with(config).await;
    send(&app, webhook("push", "slow", push_body("acme/api", "a"))).await;
    break_repositories(db, true).await;
    assert_eq!(app.worker.step().await.unwrap(), Step::Retrying);
    break_repositories(db, false).await;
    // Not ready again for a minute.
    assert_eq!(app.worker.step().await.unwrap(), Step::Idle);
    let status = store(&app).delivery_status("slow").await.unwrap().unwrap();
    assert_eq!(status.state, "pending");
}
db_test!(backoff_delays_the_next_attempt);

async fn running_service_processes_deliveries_as_they_arrive(db: &TestDb) {
    let app = support::app(db).await;
    let store = app.state.store.clone();
    let router_app = Arc::new(support::app(db).await);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = tokio::spawn(app.run(listener, shutdown.clone()));

    // Another instance stores; the running worker (polling) picks it up.
    send(
        &router_app,
        webhook("push", "live", push_body("acme/live", "a")),
    )
    .await;
    let mut state = tokentally::store::deliveries::DeliveryState::Pending;
    for _ in 0..100 {
        state = store.delivery_status("live").await.unwrap().unwrap().state;
        if state == "processed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(state, "processed");
    shutdown.cancel();
    running.await.unwrap().unwrap();
}
db_test!(running_service_processes_deliveries_as_they_arrive);

async fn a_renewed_lease_is_not_taken_over(db: &TestDb) {
    let clock = tokentally::clock::ManualClock::starting_now();
    let app = tokentally::app::App::connect_with_clock(support::test_config(db), clock.clone())
        .await
        .unwrap();
    send(&app, webhook("push", "slow", push_body("acme/api", "a"))).await;
    clock.advance_ms(1_000); // past the moment ingress stored it (on the real clock)
    let now = tokentally::clock::Clock::now_ms(&*clock);
    let claimed = store(&app)
        .claim_delivery("slow-worker", now, now + 200)
        .await
        .unwrap()
        .unwrap();
    assert!(
        store(&app)
            .extend_lease(claimed.id, "slow-worker", now + 60_000)
            .await
            .unwrap()
    );
    assert!(
        !store(&app)
            .extend_lease(claimed.id, "someone-else", now + 60_000)
            .await
            .unwrap(),
        "only the holder renews"
    );
    clock.advance_ms(300);
    assert_eq!(
        app.worker.step().await.unwrap(),
        Step::Idle,
        "the original lease has run out, the renewed one has not"
    );
    clock.advance_ms(60_000);
    assert_ne!(
        app.worker.step().await.unwrap(),
        Step::Idle,
        "once the renewed lease runs out too, another worker takes it over"
    );
}
db_test!(a_renewed_lease_is_not_taken_over);

/// `sslmode` in the URL encrypts the PostgreSQL connection (the local server has
/// TLS on with a self-signed certificate: `require` encrypts without verifying).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_use_tls_when_the_url_asks() {
    let Some(db) = TestDb::postgres().await else {
        crate::support::db::postgres_not_configured();
        return;
    };
    let separator = if db.url.contains('?') { '&' } else { '?' };
    let store = tokentally::store::Store::connect(&format!("{}{separator}sslmode=require", db.url))
        .await
        .expect("TLS connection (is ssl on in postgresql.conf?)");
    assert_eq!(store.tls_in_use().await.unwrap(), Some(true));
    store.close().await;
    let plain = tokentally::store::Store::connect(&format!("{}{separator}sslmode=disable", db.url))
        .await
        .unwrap();
    assert_eq!(plain.tls_in_use().await.unwrap(), Some(false));
    plain.close().await;
    db.cleanup().await;
}

async fn a_batch_stores_each_delivery_once_in_input_order(db: &TestDb) {
    use tokentally::store::deliveries::{Inserted, NewDelivery};
    let app = support::app(db).await;
    let delivery = |id: &str| {
        NewDelivery::live(
            id.to_string(),
            "push".into(),
            None,
            None,
            format!("{{\"id\":\"{id}\"}}"),
            now_ms(),
        )
    };
    let batch: Vec<NewDelivery> = ["a", "b", "a", "c"].iter().map(|id| delivery(id)).collect();
    let results = store(&app).insert_deliveries(&batch).await.unwrap();
    assert_eq!(
        results,
        [
            Inserted::Stored,
            Inserted::Stored,
            Inserted::Duplicate,
            Inserted::Stored
        ]
    );
    // 300 at once span two multi-row statements; "b" again is a duplicate.
    let mut big: Vec<NewDelivery> = (0..300).map(|i| delivery(&format!("n-{i}"))).collect();
    big.push(delivery("b"));
    let results = store(&app).insert_deliveries(&big).await.unwrap();
    assert_eq!(
        results.iter().filter(|r| **r == Inserted::Stored).count(),
        300
    );
    assert_eq!(results[300], Inserted::Duplicate);
    assert_eq!(store(&app).count_deliveries().await.unwrap(), 303);
    let claimed = store(&app)
        .claim_delivery("w", now_ms() + 1, now_ms() + 60_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        claimed.payload, "{\"id\":\"a\"}",
        "each payload with its own row"
    );
}
db_test!(a_batch_stores_each_delivery_once_in_input_order);

async fn a_repository_upsert_changes_only_what_changed(db: &TestDb) {
    use tokentally::store::repositories::RepositoryUpdate;
    let app = support::app(db).await;
    let update = |branch: Option<&'static str>, url: Option<&'static str>| RepositoryUpdate {
        full_name: "Acme/API",
        github_id: Some(7),
        default_branch: branch,
        clone_url: url,
    };
    let s = store(&app);
    s.upsert_repository(
        &update(Some("main"), Some("https://github.com/acme/api.git")),
        1,
    )
    .await
    .unwrap();
    // The same facts again (most events): nothing changes; a new branch: it is kept.
    s.upsert_repository(&update(Some("main"), None), 2)
        .await
        .unwrap();
    s.upsert_repository(&update(Some("trunk"), None), 3)
        .await
        .unwrap();
    let repo = s.repository("acme/api").await.unwrap().unwrap();
    assert_eq!(repo.default_branch.as_deref(), Some("trunk"));
    assert_eq!(
        repo.clone_url.as_deref(),
        Some("https://github.com/acme/api.git"),
        "a missing value leaves the stored one"
    );
    assert_eq!(repo.full_name, "acme/api");
    assert_eq!(s.repositories().await.unwrap().len(), 1);
}
db_test!(a_repository_upsert_changes_only_what_changed);
