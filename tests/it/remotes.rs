//! Remotes a signed payload names: only allowed ones are fetched, the GitHub
//! token goes nowhere else (and never over plain HTTP), a hung remote or a slow
//! delivery never holds the worker, and a lost lease stops the work.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokentally::git::fetch::{FetchRequest, fetch_mirror};
use tokentally::jobs::worker::Step;
use tokentally::secret::Secret;

use crate::db_test;
use crate::support::remotes::{CredentialTrap, HangingRemote, RedirectingRemote, trust_test_ca};
use crate::support::{self, TestDb, eventually, send, store, webhook};

const ZERO: &str = "0000000000000000000000000000000000000000";

fn push(name: &str, clone_url: &str) -> String {
    serde_json::json!({
        "ref": "refs/heads/main", "before": ZERO, "after": ZERO, "commits": [],
        "repository": { "full_name": name, "default_branch": "main", "clone_url": clone_url },
    })
    .to_string()
}

async fn a_remote_outside_the_allow_list_fails_at_once(db: &TestDb) {
    let mut config = support::test_config(db);
    config.mirrors.enabled = true; // default allow-list: https://github.com/ only
    let app = support::app_with(config).await;
    let refused = [
        ("acme/etc", "file:///etc/"),
        ("acme/local", "/srv/git/acme.git"),
        ("acme/plain", "http://github.com/acme/plain.git"),
        ("acme/evil", "https://github.com.evil.example/acme/evil.git"),
    ];
    for (i, (name, url)) in refused.iter().enumerate() {
        let id = format!("refused-{i}");
        send(&app, webhook("push", &id, push(name, url))).await;
        assert_eq!(
            app.worker.step().await.unwrap(),
            Step::Finished("failed"),
            "{url}: no retries"
        );
        let status = store(&app).delivery_status(&id).await.unwrap().unwrap();
        assert_eq!(status.attempts, 1, "{url}");
        let error = status.last_error.unwrap();
        assert!(error.contains("mirrors.allowed_remotes"), "{url}: {error}");
    }
    assert!(
        !db.data_dir().join("mirrors/acme/etc.git").exists(),
        "nothing was mirrored"
    );
}
db_test!(a_remote_outside_the_allow_list_fails_at_once);

/// A mirror URL on the allowed host that redirects to another https host: the
/// fetch fails for good, saying so, and the other host never sees the token.
async fn a_redirect_off_the_allowed_host_gets_no_token(db: &TestDb) {
    trust_test_ca();
    let logger = CredentialTrap::start_tls(); // https://localhost:B/
    let redirector = RedirectingRemote::start_tls(&logger.prefix()); // https://127.0.0.1:A/
    let mut config = support::test_config(db);
    config.mirrors.enabled = true; // the default allow-list: the GitHub web host only
    config.github.api_url = format!("{}api/v3", redirector.prefix());
    config.github.pr_comments = false;
    config.github.token = Some(Secret::new("ghp_follows_no_redirect_0123456789"));
    let app = support::app_with(config).await;
    let url = format!("{}acme/api.git", redirector.prefix());
    send(&app, webhook("push", "redirect", push("acme/api", &url))).await;
    assert_eq!(
        app.worker.step().await.unwrap(),
        Step::Finished("failed"),
        "failed for good, not retried"
    );
    let status = store(&app)
        .delivery_status("redirect")
        .await
        .unwrap()
        .unwrap();
    let error = status.last_error.unwrap();
    assert!(error.contains("mirrors.allowed_remotes"), "{error}");
    assert!(
        error.contains("localhost"),
        "names where it was sent: {error}"
    );
    for request in logger.requests() {
        assert!(
            !request.to_ascii_lowercase().contains("authorization"),
            "the token followed the redirect: {request}"
        );
    }
}
db_test!(a_redirect_off_the_allowed_host_gets_no_token);

async fn the_token_is_never_sent_over_plain_http(db: &TestDb) {
    let trap = CredentialTrap::start();
    let mut config = support::test_config(db);
    config.mirrors.enabled = true;
    config.mirrors.allowed_remotes = vec![trap.prefix()];
    config.github.token = Some(Secret::new("ghp_never_leaves_0123456789"));
    let app = support::app_with(config).await;
    let url = format!("{}acme/api.git", trap.prefix());
    send(&app, webhook("push", "trap", push("acme/api", &url))).await;
    let step = app.worker.step().await.unwrap();
    assert_eq!(step, Step::Retrying, "an auth failure may pass");
    let requests = trap.requests();
    assert!(!requests.is_empty(), "the remote was asked");
    for request in requests {
        let lower = request.to_ascii_lowercase();
        assert!(!lower.contains("authorization"), "{request}");
        assert!(!request.contains("ghp_never_leaves"), "{request}");
    }
}
db_test!(the_token_is_never_sent_over_plain_http);

/// Where the token may go (here: a local https server standing in for the
/// GitHub host), a refusal ends the fetch after one try instead of an endless loop.
#[test]
fn a_refused_token_is_offered_once() {
    trust_test_ca();
    let trap = CredentialTrap::start_tls();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}acme/api.git", trap.prefix());
    let prefix = trap.prefix();
    let err = fetch_mirror(&FetchRequest {
        path: &dir.path().join("acme/api.git"),
        url: &url,
        credentials: Some(("ghp_revoked", &prefix)),
        allowed_hosts: &["localhost".to_string()],
        default_branch: "main",
        pull_requests: &[],
        cancel: &Arc::new(AtomicBool::new(false)),
    })
    .err()
    .expect("the fetch fails");
    let with_credentials = trap
        .requests()
        .iter()
        .filter(|r| r.to_ascii_lowercase().contains("authorization: basic"))
        .count();
    assert_eq!(with_credentials, 1, "{err}");
    assert!(!err.to_string().contains("ghp_revoked"), "{err}");
}

async fn a_hung_remote_times_out(db: &TestDb) {
    let hang = HangingRemote::start();
    let mut config = support::mirrors_on(db);
    config.mirrors.allowed_remotes.push(hang.prefix());
    config.mirrors.timeout_seconds = 2;
    let app = support::app_with(config).await;
    send(
        &app,
        webhook("push", "hung", push("acme/hung", &hang.url("a.git"))),
    )
    .await;
    let step = tokio::time::timeout(Duration::from_secs(60), app.worker.step())
        .await
        .expect("the worker is not held by a remote that never answers")
        .unwrap();
    assert_eq!(step, Step::Retrying);
    let status = store(&app).delivery_status("hung").await.unwrap().unwrap();
    assert!(
        status.last_error.as_deref().unwrap().contains("acme/hung"),
        "{:?}",
        status.last_error
    );
}
db_test!(a_hung_remote_times_out);

async fn a_delivery_past_its_deadline_is_stopped_and_retried(db: &TestDb) {
    let hang = HangingRemote::start();
    let mut config = support::mirrors_on(db);
    config.mirrors.allowed_remotes.push(hang.prefix());
    config.worker.delivery_timeout_seconds = 1;
    let app = support::app_with(config).await;
    send(
        &app,
        webhook("push", "slow", push("acme/slow", &hang.url("a.git"))),
    )
    .await;
    let step = tokio::time::timeout(Duration::from_secs(60), app.worker.step())
        .await
        .expect("the deadline stops the work")
        .unwrap();
    assert_eq!(step, Step::Retrying);
    let status = store(&app).delivery_status("slow").await.unwrap().unwrap();
    assert!(
        status
            .last_error
            .as_deref()
            .unwrap()
            .contains("delivery_timeout_seconds"),
        "{:?}",
        status.last_error
    );
}
db_test!(a_delivery_past_its_deadline_is_stopped_and_retried);

async fn a_renewed_lease_keeps_a_slow_delivery_from_other_workers(db: &TestDb) {
    let hang = HangingRemote::start();
    let mut config = support::mirrors_on(db);
    config.mirrors.allowed_remotes.push(hang.prefix());
    // Renewed every third of the lease: 10 s leaves over 6 s for a renewal
    // that a busy test machine (the whole suite, the browser and PostgreSQL
    // on two cores) delays; the delivery outlives two lease lengths, so only
    // renewals keep it.
    config.worker.lease_seconds = 10;
    config.worker.delivery_timeout_seconds = 22;
    // The retry the deadline records must not be claimable at once: between
    // that record and the task's end the other worker steps once more.
    config.worker.retry_base_ms = 600_000;
    let slow = Arc::new(support::app_with(config.clone()).await);
    let other = support::app_with(config).await;
    send(
        &slow,
        webhook("push", "held", push("acme/held", &hang.url("a.git"))),
    )
    .await;
    let holder = slow.clone();
    let working = tokio::spawn(async move { holder.worker.step().await.unwrap() });
    eventually("the slow worker is fetching", || {
        std::future::ready(hang.connections() > 0)
    })
    .await;
    // Two lease lengths pass while the delivery is processed; renewals keep it.
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while !working.is_finished() {
        assert_eq!(
            other.worker.step().await.unwrap(),
            Step::Idle,
            "a renewed lease is never taken over"
        );
        tick.tick().await;
    }
    assert_eq!(
        working.await.unwrap(),
        Step::Retrying,
        "stopped by its deadline"
    );
}
db_test!(a_renewed_lease_keeps_a_slow_delivery_from_other_workers);

async fn a_lost_lease_stops_the_work(db: &TestDb) {
    let hang = HangingRemote::start();
    let mut config = support::mirrors_on(db);
    config.mirrors.allowed_remotes.push(hang.prefix());
    config.worker.lease_seconds = 1;
    let app = Arc::new(support::app_with(config).await);
    send(
        &app,
        webhook("push", "stolen", push("acme/stolen", &hang.url("a.git"))),
    )
    .await;
    let holder = app.clone();
    let working = tokio::spawn(async move { holder.worker.step().await.unwrap() });
    eventually("the worker is fetching", || {
        std::future::ready(hang.connections() > 0)
    })
    .await;
    // Another worker took the delivery over (as after a stall past the lease).
    db.exec("UPDATE deliveries SET lease_owner = 'another-worker' WHERE delivery_id = 'stolen'")
        .await;
    let step = tokio::time::timeout(Duration::from_secs(30), working)
        .await
        .expect("the work stops at the next renewal")
        .unwrap();
    assert_eq!(step, Step::LostLease);
    let status = store(&app)
        .delivery_status("stolen")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        status.state, "processing",
        "the new holder decides, not the old one"
    );
}
db_test!(a_lost_lease_stops_the_work);

async fn a_delivery_claimed_past_max_attempts_fails_at_claim(db: &TestDb) {
    let mut config = support::test_config(db);
    config.worker.max_attempts = 3;
    let app = support::app_with(config).await;
    send(&app, webhook("push", "crashy", push("acme/api", "x"))).await;
    // As after three crashes of the process while it handled this delivery.
    db.exec(
        "UPDATE deliveries SET state = 'processing', attempts = 3, lease_owner = 'dead',
         next_attempt_at = 0 WHERE delivery_id = 'crashy'",
    )
    .await;
    assert_eq!(app.worker.step().await.unwrap(), Step::Finished("failed"));
    let status = store(&app)
        .delivery_status("crashy")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.attempts, 4);
    assert!(
        status
            .last_error
            .unwrap()
            .contains("gave up after 3 attempts"),
        "says why"
    );
}
db_test!(a_delivery_claimed_past_max_attempts_fails_at_claim);

async fn ci_signals_do_not_wait_behind_a_long_clone(db: &TestDb) {
    let hang = HangingRemote::start();
    let mut config = support::mirrors_on(db);
    config.mirrors.allowed_remotes.push(hang.prefix());
    config.worker.concurrency = 2;
    let app = support::app_with(config).await;
    let state = app.state.clone();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let router = app.router();
    let running = tokio::spawn(app.run(listener, shutdown.clone()));

    let send_to = |request: axum::http::Request<axum::body::Body>| {
        let router = router.clone();
        async move {
            use tower::ServiceExt;
            router.oneshot(request).await.unwrap().status()
        }
    };
    send_to(webhook(
        "push",
        "clone",
        push("acme/big", &hang.url("big.git")),
    ))
    .await;
    eventually("the clone has started", || {
        std::future::ready(hang.connections() > 0)
    })
    .await;
    let status = serde_json::json!({
        "sha": "6113728f27ae82c7b1a177c8d03f9e96e0adf246", "state": "success",
        "context": "ci", "repository": { "full_name": "acme/api" },
    });
    send_to(webhook("status", "ci", status.to_string())).await;
    eventually(
        "the CI signal is processed while the clone hangs",
        || async {
            let ci = state.store.delivery_status("ci").await.unwrap().unwrap();
            ci.state == "processed"
        },
    )
    .await;
    let clone = state.store.delivery_status("clone").await.unwrap().unwrap();
    assert_eq!(clone.state, "processing");
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("shutdown does not wait for the hung clone")
        .unwrap()
        .unwrap();
}
db_test!(ci_signals_do_not_wait_behind_a_long_clone);
