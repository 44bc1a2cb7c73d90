//! The database under the service: parameters that keep one type on a reused
//! PostgreSQL connection, errors classified honestly, and a database outage
//! answered at once instead of hanging.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tokentally::api_token;
use tokentally::app::App;
use tokentally::attribution::commit::CommitRecord;
use tokentally::attribution::identity::PersonConfig;
use tokentally::attribution::scan::{ScanOptions, scan};
use tokentally::clock::now_ms;
use tokentally::config::Config;
use tokentally::scoring::balance::EntryKind;
use tokentally::store::Store;
use tokentally::store::deliveries::{Finished, NewDelivery};
use tokentally::store::ledger::NewEntry;
use tokentally::store::repositories::RepositoryUpdate;
use tokentally::store::signals::{NewSignal, SignalInsert};
use tokentally::store::tokens::Role;
use tower::ServiceExt;

use crate::db_test;
use crate::support::git::TestRepo;
use crate::support::proxy::TcpProxy;
use crate::support::{self, TestDb, send, store, webhook};

/// The service with one database connection for requests, so every statement
/// runs again on the connection that prepared (and cached) it.
fn one_connection(db: &TestDb) -> Config {
    let mut config = support::test_config(db);
    config.database.max_connections = 1;
    config
}

async fn report_token(app: &App, repos: &[&str]) -> String {
    let token = api_token::generate();
    let repos: Vec<String> = repos.iter().map(|r| r.to_string()).collect();
    store(app)
        .create_token(
            "ci",
            &api_token::hash(&token),
            &repos,
            Role::Report,
            now_ms(),
        )
        .await
        .unwrap();
    token
}

fn post_signal(token: &str, body: serde_json::Value) -> Request<Body> {
    Request::post("/api/v1/signals")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn sha(n: u64) -> String {
    format!("{n:040x}")
}

fn signal(repository_id: i64, n: u64, value: Option<f64>) -> NewSignal {
    let some = value.is_some();
    NewSignal {
        repository_id,
        sha: sha(n),
        name: "ci".parse().unwrap(),
        status: "pass".parse().unwrap(),
        value,
        url: some.then(|| "https://ci.example/1".into()),
        source: "test".into(),
        context: some.then(|| "build".into()),
        attempt: some.then_some(1),
        idempotency_key: some.then(|| format!("key-{n}")),
        body_hash: some.then(|| format!("hash-{n}")),
        occurred_at: 1_000 + n as i64,
        received_at: 2_000 + n as i64,
        token_id: None,
    }
}

/// Two commits attributed from a real repository: one AI-assisted with a model
/// and usage (the nullable columns filled), one human (left empty).
fn two_commits() -> (CommitRecord, CommitRecord) {
    let repo = TestRepo::new();
    repo.write("a.rs", crate::support::git::lines("a", 10));
    repo.commit("fix: a\n\nAI-Assisted: claude-code (claude-opus-4.5)\nAI-Tokens: 12k");
    repo.write("b.rs", crate::support::git::lines("b", 10));
    repo.commit("feat: b");
    let mut records = Vec::new();
    scan(
        repo.path(),
        &ScanOptions {
            rev: "HEAD".into(),
            since: None,
            until: None,
            diff: true,
        },
        &Config::default().attributor(),
        |r| {
            records.push(r);
            Ok(())
        },
    )
    .unwrap();
    let human = records.pop().unwrap();
    let ai = records.pop().unwrap();
    assert!(ai.model.is_some() && ai.usage_tokens.is_some());
    assert!(human.model.is_none() && human.usage_tokens.is_none());
    (ai, human)
}

fn entry(n: i64, commit: Option<(i64, i64, &str)>) -> NewEntry {
    NewEntry {
        person: "alice".into(),
        kind: if commit.is_some() {
            EntryKind::Accrual
        } else {
            EntryKind::Redemption
        },
        repository_id: commit.map(|c| c.0),
        commit_id: commit.map(|c| c.1),
        sha: commit.map(|c| c.2.to_string()),
        amount: if commit.is_some() { 1_000 } else { -1 },
        rules_version: "v1-test".into(),
        at: 10_000 + n,
        landed_at: commit.map(|_| 9_000),
        idempotency_key: format!("entry-{n}"),
        explanation: "{}".into(),
        corrects: (n % 2 == 0).then(|| "2026-W01".to_string()),
        payout_factor_ppm: (n % 2 == 1).then_some(925_000),
        money_minor: (n % 3 == 0).then_some(17),
    }
}

/// Every insert and update that takes nullable parameters, run with NULL, then a
/// value, then NULL again, on one pooled connection: a statement prepared with a
/// NULL of one type must still take a value of its own type afterwards.
async fn nullable_parameters_keep_one_type_on_one_connection(db: &TestDb) {
    let app = support::app_with(one_connection(db)).await;
    let s = store(&app);
    let now = now_ms();

    // Signals: value, url, context, attempt, key and body hash.
    let repo = s.ensure_repository("acme/app", now).await.unwrap();
    for (n, value) in [(1, None), (2, Some(7.5)), (3, None), (4, Some(1e-3))] {
        let inserted = s.insert_signal(&signal(repo, n, value)).await.unwrap();
        let SignalInsert::Created(row) = inserted else {
            panic!("signal {n} not created: {inserted:?}");
        };
        assert_eq!(row.value, value);
    }

    // Repositories: github id, default branch, clone URL; installation.
    for (n, filled) in [(1, false), (2, true), (3, false)] {
        let name = format!("acme/r{n}");
        let update = RepositoryUpdate {
            full_name: &name,
            github_id: filled.then_some(n),
            default_branch: filled.then_some("main"),
            clone_url: filled.then_some("https://github.com/acme/r.git"),
        };
        s.upsert_repository(&update, now).await.unwrap();
        s.set_repository_installation(&name, filled.then_some(n), filled.then_some(7), now)
            .await
            .unwrap();
        let stored = s.repository(&name).await.unwrap().unwrap();
        assert_eq!(stored.default_branch.is_some(), filled);
        assert_eq!(stored.installation_id.is_some(), filled);
    }

    // Commits: model, usage, patch id, landing time, pull request; merges.
    let (ai, human) = two_commits();
    s.upsert_commit(repo, &human, None, None, now)
        .await
        .unwrap();
    s.upsert_commit(
        repo,
        &ai,
        Some(now),
        Some(&tokentally::attribution::commit::PullRequestLink::branch(5)),
        now,
    )
    .await
    .unwrap();
    let (_, human2) = two_commits();
    let mut human2 = human2;
    human2.sha = sha(99);
    s.upsert_commit(repo, &human2, None, None, now)
        .await
        .unwrap();
    s.record_merge(repo, 5, None, "bob", "bob").await.unwrap();
    s.record_merge(repo, 5, Some(&ai.sha), "bob", "bob")
        .await
        .unwrap();
    s.record_merge(repo, 6, None, "bob", "bob").await.unwrap();
    let commits = s.commits("acme/app").await.unwrap();
    assert_eq!(commits.len(), 3);
    let landed = commits.iter().find(|c| c.sha == ai.sha).unwrap();
    assert_eq!(landed.landed_at, Some(now));
    assert_eq!(landed.pull_request, Some(5));

    // Pull requests: merge sha and time.
    s.record_pull_request(repo, 1, &sha(1), None, now)
        .await
        .unwrap();
    s.record_pull_request(repo, 2, &sha(2), Some((&sha(3), now)), now)
        .await
        .unwrap();
    s.record_pull_request(repo, 3, &sha(4), None, now)
        .await
        .unwrap();

    // Ledger entries: repository, commit and sha are empty for a redemption.
    let commit_id = s.commits_by_prefix(repo, &ai.sha).await.unwrap()[0].id;
    let commit = Some((repo, commit_id, ai.sha.as_str()));
    s.ensure_person("alice", "alice", "alice@example.com", now)
        .await
        .unwrap();
    let appended = s
        .append_entries(
            &[entry(1, None), entry(2, commit), entry(3, None)],
            now,
            None,
        )
        .await
        .unwrap();
    assert_eq!(appended, tokentally::store::ledger::Appended::Done(3));
    s.append_entries(&[entry(4, None)], now, None)
        .await
        .unwrap();
    s.append_entries(&[entry(5, commit)], now, None)
        .await
        .unwrap();
    s.append_entries(&[entry(6, None)], now, None)
        .await
        .unwrap();

    // People: GitHub login and Discord id.
    for (n, filled) in [(1, false), (2, true), (3, false)] {
        let person = PersonConfig {
            name: format!("p{n}"),
            emails: vec![format!("p{n}@example.com")],
            github: filled.then(|| format!("p{n}")),
            discord: filled.then(|| "123".to_string()),
            dm: true,
        };
        s.sync_configured_people(&[person], now).await.unwrap();
    }

    // Deliveries: action and hook id; the last error of a finished delivery.
    let deliveries: Vec<NewDelivery> = [(1, false), (2, true), (3, false)]
        .into_iter()
        .map(|(n, filled)| {
            NewDelivery::live(
                format!("d{n}"),
                "push".into(),
                filled.then(|| "opened".into()),
                filled.then(|| "42".into()),
                "{}".into(),
                now,
            )
        })
        .collect();
    for delivery in &deliveries {
        s.insert_deliveries(std::slice::from_ref(delivery))
            .await
            .unwrap();
    }
    for error in [None, Some("boom"), None] {
        let claimed = s
            .claim_delivery("owner", now, now + 60_000)
            .await
            .unwrap()
            .expect("a delivery to claim");
        assert!(
            s.finish_delivery(claimed.id, "owner", Finished::Failed, error, now)
                .await
                .unwrap()
        );
    }
    let statuses = s.all_delivery_statuses().await.unwrap();
    assert_eq!(statuses.len(), 3);
    assert_eq!(
        statuses
            .iter()
            .filter(|d| d.last_error.as_deref() == Some("boom"))
            .count(),
        1
    );
    app.state.store.close().await;
}
db_test!(nullable_parameters_keep_one_type_on_one_connection);

/// Signals GitHub's checks derive (no value) and API signals with and without a
/// value, interleaved on one connection: every acknowledged signal is stored.
async fn mixed_signal_traffic_stores_every_acknowledged_signal(db: &TestDb) {
    if !support::fixtures_available() {
        return;
    }
    let app = support::app_with(one_connection(db)).await;
    let token = report_token(&app, &["acme/app"]).await;
    let check_run = support::fixture_where("check_run", |v| {
        v["action"] == "completed" && support::plain(v)
    });
    let check_suite = support::fixture_where("check_suite", |v| {
        v["action"] == "completed" && support::plain(v)
    });
    let mut acknowledged = 0;
    let mut webhook_signals = 0;
    for round in 0..6u64 {
        // A check run and a check suite of their own (ids and commit differ each round).
        for (event, body, key) in [
            ("check_run", &check_run, "check_run"),
            ("check_suite", &check_suite, "check_suite"),
        ] {
            let mut payload: serde_json::Value = serde_json::from_slice(body).unwrap();
            payload[key]["id"] = (1_000 + round).into();
            payload[key]["head_sha"] = sha(500 + round).into();
            let delivery = format!("{event}-{round}");
            let reply = send(
                &app,
                webhook(event, &delivery, serde_json::to_vec(&payload).unwrap()),
            )
            .await;
            assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
            webhook_signals += 1;
        }
        app.worker.drain().await.unwrap();
        for with_value in [true, false, true] {
            let n = acknowledged + 1;
            let mut body = serde_json::json!({
                "repo": "acme/app", "sha": sha(n), "signal": "ci", "status": "pass",
                "key": format!("v{n}"),
            });
            if with_value {
                body["value"] = (7.0 * n as f64).into();
            }
            let reply = send(&app, post_signal(&token, body)).await;
            assert_eq!(
                reply.status,
                StatusCode::CREATED,
                "signal {n}: {}",
                reply.text
            );
            acknowledged += 1;
        }
    }
    let stored = store(&app).count_signals().await.unwrap();
    assert_eq!(stored, acknowledged as i64 + webhook_signals);
    let repo = store(&app).repository("acme/app").await.unwrap().unwrap();
    for n in 1..=acknowledged {
        let signals = store(&app)
            .signals_for_commit(repo.id, &sha(n))
            .await
            .unwrap();
        assert_eq!(signals.len(), 1, "signal {n} stored once");
    }
}
db_test!(mixed_signal_traffic_stores_every_acknowledged_signal);

/// A statement the database refuses is a 500 that names it (not a 503 a client
/// would retry forever), and `/readyz` reports it.
async fn a_refused_statement_is_a_server_error_reported_by_readyz(db: &TestDb) {
    let app = support::app(db).await;
    let token = report_token(&app, &["acme/app"]).await;
    if db.is_postgres() {
        db.exec(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
                 $$ BEGIN RAISE EXCEPTION 'signals are refused'; END $$;
             CREATE TRIGGER refuse BEFORE INSERT ON signals FOR EACH ROW EXECUTE FUNCTION refuse();",
        )
        .await;
    } else {
        db.exec(
            "CREATE TRIGGER refuse BEFORE INSERT ON signals
             BEGIN SELECT RAISE(ABORT, 'signals are refused'); END;",
        )
        .await;
    }
    let body = serde_json::json!({
        "repo": "acme/app", "sha": sha(1), "signal": "ci", "status": "pass", "value": 3.0,
    });
    let reply = send(&app, post_signal(&token, body)).await;
    assert_eq!(
        reply.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        reply.text
    );
    assert_eq!(reply.json["error"], "database_error");
    assert!(
        reply.json["message"]
            .as_str()
            .unwrap()
            .contains("signals::insert_signal"),
        "{}",
        reply.text
    );
    let ready = support::get(&app, "/readyz").await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
    assert_eq!(ready.json["status"], "degraded");
    let problem = ready.json["problems"]["database statement signals::insert_signal"]
        .as_str()
        .unwrap_or_else(|| panic!("{}", ready.text));
    assert!(problem.contains("signals are refused"), "{problem}");
}
db_test!(a_refused_statement_is_a_server_error_reported_by_readyz);

fn delivery_request(n: u32) -> Request<Body> {
    let body = serde_json::json!({ "action": "created", "starred_at": n });
    webhook("star", &format!("outage-{n}"), body.to_string())
}

/// PostgreSQL goes away behind the service: requests answer 503 at once (with
/// Retry-After), `/readyz` says the database is unreachable, and everything
/// acknowledged before and after the outage is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_answered_at_once() {
    let Some(db) = TestDb::postgres().await else {
        support::db::postgres_not_configured();
        return;
    };
    let target = url::Url::parse(&db.url).unwrap();
    let proxy = TcpProxy::start(&format!(
        "{}:{}",
        target.host_str().unwrap(),
        target.port().unwrap_or(5432)
    ))
    .await;
    let mut via_proxy = target.clone();
    via_proxy.set_port(Some(proxy.port())).unwrap();
    let mut config = support::test_config(&db);
    config.database_url = via_proxy.to_string();
    let app = support::app_with(config).await;
    let token = report_token(&app, &["acme/app"]).await;

    let reply = send(&app, delivery_request(1)).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);

    proxy.pause();
    let started = Instant::now();
    let reply = send(&app, delivery_request(2)).await;
    let took = started.elapsed();
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.text
    );
    assert_eq!(reply.json["error"], "unavailable");
    assert!(
        took < Duration::from_secs(3),
        "webhook answered after {took:?}"
    );
    let with_header = app.router().oneshot(delivery_request(3)).await.unwrap();
    assert_eq!(with_header.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        with_header.headers()["retry-after"].to_str().unwrap(),
        "5",
        "503 says when to retry"
    );

    let started = Instant::now();
    let ready = support::get(&app, "/readyz").await;
    let took = started.elapsed();
    assert_eq!(
        ready.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        ready.text
    );
    assert_eq!(ready.json["error"], "database_unreachable");
    assert!(
        took < Duration::from_secs(2),
        "/readyz answered after {took:?}"
    );

    let started = Instant::now();
    let body = serde_json::json!({
        "repo": "acme/app", "sha": sha(1), "signal": "ci", "status": "pass", "key": "k1",
    });
    let reply = send(&app, post_signal(&token, body.clone())).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.text
    );
    assert!(started.elapsed() < Duration::from_secs(3));

    proxy.resume().await;
    let reply = send(&app, delivery_request(4)).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    let reply = send(&app, post_signal(&token, body)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let ready = support::get(&app, "/readyz").await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);

    // What was acknowledged is there, read past the proxy; what was refused is not.
    let direct = Store::connect(&db.url).await.unwrap();
    for (n, stored) in [(1, true), (2, false), (3, false), (4, true)] {
        let status = direct
            .delivery_status(&format!("outage-{n}"))
            .await
            .unwrap();
        assert_eq!(status.is_some(), stored, "delivery {n}");
    }
    assert_eq!(direct.count_signals().await.unwrap(), 1);
    direct.close().await;
    app.state.store.close().await;
    db.cleanup().await;
}
