//! The CI signal API and its tokens.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tokentally::api_token;
use tokentally::app::App;
use tokentally::clock::now_ms;

use crate::db_test;
use crate::support::{self, Reply, TestDb, send, store};
use tokentally::store::tokens::Role;

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

async fn token_for(app: &App, name: &str, repos: &[&str]) -> String {
    token_with_role(app, name, repos, Role::Report).await
}

async fn token_with_role(app: &App, name: &str, repos: &[&str], role: Role) -> String {
    let token = api_token::generate();
    let repos: Vec<String> = repos.iter().map(|r| r.to_string()).collect();
    assert!(
        store(app)
            .create_token(name, &api_token::hash(&token), &repos, role, now_ms())
            .await
            .unwrap()
    );
    token
}

fn post(token: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut builder = Request::post("/api/v1/signals").header("content-type", "application/json");
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    builder.body(body.into()).unwrap()
}

fn signal(repo: &str, sha: &str, key: Option<&str>) -> String {
    let mut body = serde_json::json!({
        "repo": repo, "sha": sha, "signal": "ci", "status": "pass",
        "url": "https://ci.example/run/1",
    });
    if let Some(key) = key {
        body["key"] = key.into();
    }
    body.to_string()
}

fn assert_error(reply: &Reply, status: StatusCode, code: &str, mentions: &str) {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert_eq!(reply.json["error"], code, "{}", reply.text);
    let message = reply.json["message"].as_str().unwrap();
    assert!(
        message.contains(mentions),
        "{message:?} should mention {mentions:?}"
    );
}

async fn every_error_path_answers_clearly_and_stores_nothing(db: &TestDb) {
    let app = support::app(db).await;
    let token = token_for(&app, "ci", &["acme/api"]).await;
    let revoked = token_for(&app, "old", &["acme/api"]).await;
    store(&app).revoke_token("old", now_ms()).await.unwrap();
    let good = signal("acme/api", SHA, None);

    let reply = send(&app, post(None, good.clone())).await;
    assert_error(&reply, StatusCode::UNAUTHORIZED, "unauthorized", "Bearer");
    let basic = Request::post("/api/v1/signals")
        .header("authorization", "Basic abc")
        .body(Body::from(good.clone()))
        .unwrap();
    assert_error(
        &send(&app, basic).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Bearer",
    );
    let reply = send(&app, post(Some("tt_not-a-token"), good.clone())).await;
    assert_error(
        &reply,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "unknown or revoked",
    );
    let reply = send(&app, post(Some(&revoked), good.clone())).await;
    assert_error(
        &reply,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "unknown or revoked",
    );

    let t = Some(token.as_str());
    assert_error(
        &send(&app, post(t, "not json")).await,
        StatusCode::BAD_REQUEST,
        "invalid_json",
        "JSON object",
    );
    // JSON that is not an object is a 400 too, as the README says.
    for body in ["[1]", "\"ci\"", "null", "{\"repo\": "] {
        let reply = send(&app, post(t, body)).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.text
        );
        assert_eq!(reply.json["error"], "invalid_json", "{body}");
    }
    let cases = [
        (
            r#"{"repo":"acme/api","sha":"0123abc","status":"pass"}"#,
            "signal",
        ),
        (&*signal("acme/api", "xyz", None), "`sha`"),
        (&*signal("acme/api", "0123ab", None), "`sha`"),
        (&*signal("acme", SHA, None), "`repo`"),
        (
            r#"{"repo":"acme/api","sha":"0123abc","signal":"ci","status":"green"}"#,
            "`status`",
        ),
        (
            r#"{"repo":"acme/api","sha":"0123abc","signal":"CI!","status":"pass"}"#,
            "`signal`",
        ),
        (
            r#"{"repo":"acme/api","sha":"0123abc","signal":"ci","status":"pass","url":"ftp://x"}"#,
            "`url`",
        ),
        (
            r#"{"repo":"acme/api","sha":"0123abc","signal":"ci","status":"pass","value":"high"}"#,
            "value",
        ),
        (
            r#"{"repo":"acme/api","sha":"0123abc","signal":"ci","status":"pass","colour":"red"}"#,
            "colour",
        ),
        // Names tokentally records itself from git history.
        (
            r#"{"repo":"acme/api","sha":"0123abc","signal":"reverted","status":"fail"}"#,
            "`signal`",
        ),
        (
            r#"{"repo":"acme/api","sha":"0123abc","signal":"fixed_later","status":"fail"}"#,
            "`signal`",
        ),
        // URLs must parse, with a host.
        (
            r#"{"repo":"acme/api","sha":"0123abc","signal":"ci","status":"pass","url":"https://"}"#,
            "`url`",
        ),
        (
            r#"{"repo":"acme/api","sha":"0123abc","signal":"ci","status":"pass","url":"http://exa mple.com/"}"#,
            "`url`",
        ),
        // Control characters, NUL included (PostgreSQL refuses NUL in text).
        (
            r#"{"repo":"acme/api","sha":"0123abc","signal":"ci","status":"pass","key":"run\u0000-1"}"#,
            "`key`",
        ),
        (
            r#"{"repo":"acme/api","sha":"0123abc","signal":"ci","status":"pass","url":"https://x.example/\n"}"#,
            "`url`",
        ),
    ];
    for (body, field) in cases {
        let reply = send(&app, post(t, body.to_string())).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            reply.text
        );
        assert!(
            reply.json["message"].as_str().unwrap().contains(field),
            "{body}: {}",
            reply.text
        );
    }
    let reply = send(&app, post(t, signal("acme/other", SHA, None))).await;
    assert_error(&reply, StatusCode::FORBIDDEN, "forbidden", "acme/other");
    let huge = format!(
        r#"{{"repo":"acme/api","sha":"{SHA}","signal":"ci","status":"pass","url":"https://x/{}"}}"#,
        "a".repeat(70_000)
    );
    assert_error(
        &send(&app, post(t, huge)).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "65536",
    );

    assert_eq!(store(&app).count_signals().await.unwrap(), 0);
    let reply = send(&app, post(t, good)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.json["signal"]["source"], "api:ci");
    assert_eq!(store(&app).count_signals().await.unwrap(), 1);
}
db_test!(every_error_path_answers_clearly_and_stores_nothing);

async fn keys_make_replays_idempotent_and_conflicts_loud(db: &TestDb) {
    let app = support::app(db).await;
    let token = token_for(&app, "ci", &["*"]).await;
    let t = Some(token.as_str());
    let first = send(&app, post(t, signal("acme/api", SHA, Some("run-1")))).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = send(&app, post(t, signal("acme/api", SHA, Some("run-1")))).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(
        again.json["signal"], first.json["signal"],
        "answers as the first time did"
    );
    let other = send(&app, post(t, signal("acme/api", &SHA[..8], Some("run-1")))).await;
    assert_error(
        &other,
        StatusCode::CONFLICT,
        "key_conflict",
        "different body",
    );
    // Without a key every report is a new signal; the same key in another repo is another signal.
    send(&app, post(t, signal("acme/api", SHA, None))).await;
    send(&app, post(t, signal("acme/api", SHA, None))).await;
    let elsewhere = send(&app, post(t, signal("acme/web", SHA, Some("run-1")))).await;
    assert_eq!(elsewhere.status, StatusCode::CREATED);
    assert_eq!(store(&app).count_signals().await.unwrap(), 4);
    let metrics = support::get(&app, "/metrics").await.text;
    for line in [
        "tokentally_signals_total{source=\"api\",result=\"created\"} 4",
        "tokentally_signals_total{source=\"api\",result=\"replayed\"} 1",
        "tokentally_signals_total{source=\"api\",result=\"conflict\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in {metrics}");
    }
}
db_test!(keys_make_replays_idempotent_and_conflicts_loud);

async fn signals_for_unknown_and_abbreviated_shas_are_kept_and_found(db: &TestDb) {
    let app = support::app(db).await;
    let token = token_for(&app, "ci", &["acme/api"]).await;
    let grants = ["ci".to_string(), "deploy".to_string()];
    store(&app).set_token_signals("ci", &grants).await.unwrap();
    let t = Some(token.as_str());
    // Reported by abbreviated sha before anything is known about the repository.
    let body =
        r#"{"repo":"acme/api","sha":"0123456789AB","signal":"deploy","status":"fail","value":2.5}"#;
    assert_eq!(send(&app, post(t, body)).await.status, StatusCode::CREATED);
    send(&app, post(t, signal("acme/api", SHA, Some("k")))).await;
    send(&app, post(t, signal("acme/api", "fedcba9876543210", None))).await;

    let get = |sha: &str, token: &str| {
        Request::get(format!("/api/v1/commits/acme/api/{sha}/signals"))
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    // Reading takes a read token: the reporting one is refused.
    let refused = send(&app, get(SHA, &token)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    let token = token_with_role(&app, "reader", &["acme/api"], Role::Read).await;
    let reply = send(&app, get(SHA, &token)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let signals = reply.json["signals"].as_array().unwrap();
    assert_eq!(signals.len(), 2, "{}", reply.text);
    assert_eq!(signals[0]["signal"], "deploy");
    assert_eq!(signals[0]["sha"], "0123456789ab");
    assert_eq!(signals[0]["value"], 2.5);
    assert_eq!(signals[1]["key"], "k");
    // By prefix too.
    let reply = send(&app, get("0123456", &token)).await;
    assert_eq!(reply.json["signals"].as_array().unwrap().len(), 2);

    let other = token_with_role(&app, "web", &["acme/web"], Role::Read).await;
    assert_eq!(
        send(&app, get(SHA, &other)).await.status,
        StatusCode::FORBIDDEN
    );
    let all = token_with_role(&app, "all", &["*"], Role::Read).await;
    let missing = Request::get(format!("/api/v1/commits/acme/nope/{SHA}/signals"))
        .header("authorization", format!("Bearer {all}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, missing).await.status, StatusCode::NOT_FOUND);
}
db_test!(signals_for_unknown_and_abbreviated_shas_are_kept_and_found);

async fn each_token_is_rate_limited(db: &TestDb) {
    let mut config = support::test_config(db);
    config.api.rate_limit_per_minute = 3;
    let app = support::app_with(config).await;
    let token = token_for(&app, "ci", &["*"]).await;
    let other = token_for(&app, "other", &["*"]).await;
    for _ in 0..3 {
        let reply = send(&app, post(Some(&token), signal("acme/api", SHA, None))).await;
        assert_eq!(reply.status, StatusCode::CREATED);
    }
    let request = post(Some(&token), signal("acme/api", SHA, None));
    let response = tower::ServiceExt::oneshot(app.router(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after));
    let reply = send(&app, post(Some(&other), signal("acme/api", SHA, None))).await;
    assert_eq!(
        reply.status,
        StatusCode::CREATED,
        "another token has its own budget"
    );
    assert_eq!(store(&app).count_signals().await.unwrap(), 4);
}
db_test!(each_token_is_rate_limited);

async fn concurrent_clients_store_each_signal_once(db: &TestDb) {
    let mut config = support::test_config(db);
    config.api.rate_limit_per_minute = 100_000;
    let app = std::sync::Arc::new(support::app_with(config).await);
    let token = token_for(&app, "ci", &["*"]).await;
    let mut clients = Vec::new();
    for client in 0..20 {
        let app = app.clone();
        let token = token.clone();
        clients.push(tokio::spawn(async move {
            for i in 0..50 {
                let key = format!("c{client}-{i}");
                // Every signal is sent twice: the replay must not store it again.
                for _ in 0..2 {
                    let reply = send(
                        &app,
                        post(Some(&token), signal("acme/api", SHA, Some(&key))),
                    )
                    .await;
                    assert!(
                        reply.status == StatusCode::CREATED || reply.status == StatusCode::OK,
                        "{}",
                        reply.text
                    );
                }
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    assert_eq!(store(&app).count_signals().await.unwrap(), 1000);
}
db_test!(concurrent_clients_store_each_signal_once);

async fn github_events_become_signals_once(db: &TestDb) {
    if !support::fixtures_available() {
        return;
    }
    let app = support::app(db).await;
    let completed = |conclusion: &'static str| {
        move |v: &serde_json::Value| {
            v["action"] == "completed"
                && v["check_run"]["conclusion"] == conclusion
                && support::plain(v)
        }
    };
    let deliveries = [
        (
            "check_run",
            support::fixture_where("check_run", completed("success")),
        ),
        (
            "check_run",
            support::fixture_where("check_run", completed("failure")),
        ),
        (
            "check_run",
            support::fixture_where("check_run", |v| {
                v["action"] == "created" && support::plain(v)
            }),
        ),
        (
            "status",
            support::fixture_where("status", |v| v["id"] == 6805126730u64 && support::plain(v)),
        ),
        (
            "deployment_status",
            support::fixture_where("deployment_status", |v| {
                v["deployment_status"]["environment"] == "production"
                    && v["deployment_status"]["state"] == "success"
                    && support::plain(v)
            }),
        ),
        (
            "deployment_status",
            support::fixture_where("deployment_status", |v| {
                v["deployment_status"]["environment"] == "github-pages"
            }),
        ),
        (
            "workflow_run",
            support::fixture_where("workflow_run", |v| {
                v["action"] == "completed"
                    && v["workflow_run"]["pull_requests"]
                        .as_array()
                        .is_some_and(Vec::is_empty)
                    && v["repository"]["full_name"] == "octo-org/octo-repo"
            }),
        ),
    ];
    for (i, (event, body)) in deliveries.into_iter().enumerate() {
        let reply = send(&app, support::webhook(event, &format!("{event}-{i}"), body)).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED);
    }
    app.worker.drain().await.unwrap();
    // GitHub redelivering an event under a new delivery id adds nothing.
    let body = support::fixture_where("check_run", completed("success"));
    send(&app, support::webhook("check_run", "redelivered", body)).await;
    app.worker.drain().await.unwrap();

    let repo = store(&app)
        .repository("Codertocat/Hello-World")
        .await
        .unwrap()
        .unwrap();
    let summary = |rows: Vec<tokentally::store::signals::SignalRow>| -> Vec<(String, String, Option<String>, Option<i64>)> {
        rows.into_iter().map(|s| (s.name.to_string(), s.status.to_string(), s.context, s.attempt)).collect()
    };
    let checks = store(&app)
        .signals_for_commit(repo.id, "ec26c3e57ca3a959ca5aad62de7213c562f8c821")
        .await
        .unwrap();
    assert_eq!(
        summary(checks),
        [
            (
                "ci".into(),
                "pass".into(),
                Some("Octocoders-linter".into()),
                None
            ),
            (
                "ci".into(),
                "fail".into(),
                Some("Octocoders-linter".into()),
                None
            ),
        ],
        "check runs carry no attempt number: their payload times order them"
    );
    let status = store(&app)
        .signals_for_commit(repo.id, "6113728f27ae82c7b1a177c8d03f9e96e0adf246")
        .await
        .unwrap();
    assert_eq!(
        summary(status),
        [("ci".into(), "pass".into(), Some("default".into()), None)]
    );
    let deploy = store(&app)
        .signals_for_commit(repo.id, "f95f852bd8fca8fcc58a9a2d6c842781e32a215e")
        .await
        .unwrap();
    assert_eq!(
        summary(deploy),
        [(
            "deploy".into(),
            "pass".into(),
            Some("production".into()),
            None
        )]
    );
}
db_test!(github_events_become_signals_once);

async fn keys_belong_to_their_token_and_replays_compare_the_request(db: &TestDb) {
    let app = support::app(db).await;
    let a = token_for(&app, "pipeline-a", &["*"]).await;
    let b = token_for(&app, "pipeline-b", &["*"]).await;
    let first = send(&app, post(Some(&a), signal("acme/api", SHA, Some("run-1")))).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(first.json["signal"]["key"], "run-1", "shown as sent");
    // Another token's key is its own: a new signal, not a replay of A's.
    let other = send(&app, post(Some(&b), signal("acme/api", SHA, Some("run-1")))).await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.text);
    // The same request written differently (field order, spacing, case) is a replay.
    let reordered = format!(
        r#"{{ "key" : "run-1", "url": "https://ci.example/run/1", "status":"pass",
             "signal":"ci", "sha":"{}", "repo":"Acme/API" }}"#,
        SHA.to_uppercase()
    );
    let replay = send(&app, post(Some(&a), reordered)).await;
    assert_eq!(replay.status, StatusCode::OK, "{}", replay.text);
    assert_eq!(replay.json["replayed"], true);
    assert_eq!(replay.json["signal"], first.json["signal"]);
    assert_eq!(store(&app).count_signals().await.unwrap(), 2);
}
db_test!(keys_belong_to_their_token_and_replays_compare_the_request);

async fn repository_names_are_case_insensitive(db: &TestDb) {
    let app = support::app(db).await;
    let token = token_for(&app, "scoped", &["Acme/API"]).await;
    for repo in ["acme/api", "ACME/Api"] {
        let reply = send(&app, post(Some(&token), signal(repo, SHA, None))).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{repo}: {}", reply.text);
    }
    for (i, name) in ["Acme/Api", "acme/API"].iter().enumerate() {
        let body = serde_json::json!({
            "sha": SHA, "state": "success", "context": format!("ci-{i}"),
            "repository": { "full_name": name },
        });
        send(
            &app,
            support::webhook("status", &format!("case-{i}"), body.to_string()),
        )
        .await;
    }
    app.worker.drain().await.unwrap();
    let repos = store(&app).repositories().await.unwrap();
    assert_eq!(repos.len(), 1, "one repository: {repos:?}");
    let found = store(&app)
        .signals_for_commit(repos[0].id, SHA)
        .await
        .unwrap();
    assert_eq!(found.len(), 4);
    let reply = support::get(&app, "/nothing").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}
db_test!(repository_names_are_case_insensitive);

async fn prefix_lookups_have_no_wildcards(db: &TestDb) {
    let app = support::app(db).await;
    let token = token_for(&app, "ci", &["*"]).await;
    send(&app, post(Some(&token), signal("acme/api", SHA, None))).await;
    let repo = store(&app).repository("acme/api").await.unwrap().unwrap();
    for pattern in ["%", "_______", "0123%", "%cdef", ""] {
        let found = store(&app)
            .signals_for_commit(repo.id, pattern)
            .await
            .unwrap();
        assert!(found.is_empty(), "{pattern:?} matched {found:?}");
    }
    assert_eq!(
        store(&app)
            .signals_for_commit(repo.id, &SHA[..7])
            .await
            .unwrap()
            .len(),
        1
    );
}
db_test!(prefix_lookups_have_no_wildcards);

async fn one_bad_signal_never_fails_its_batch(db: &TestDb) {
    use tokentally::store::signals::{NewSignal, SignalInsert};
    let app = support::app(db).await;
    let repository_id = store(&app)
        .ensure_repository("acme/api", now_ms())
        .await
        .unwrap();
    let signal = |repository_id: i64, i: usize| NewSignal {
        repository_id,
        sha: SHA.to_string(),
        name: "ci".parse().unwrap(),
        status: "pass".parse().unwrap(),
        value: None,
        url: None,
        source: "api:test".into(),
        context: None,
        attempt: None,
        idempotency_key: Some(format!("k-{i}")),
        body_hash: None,
        occurred_at: now_ms(),
        received_at: now_ms(),
        token_id: None,
    };
    // 40 submitted together, so they share transactions; one names a repository
    // that does not exist, which the database refuses.
    let submits = (0..40).map(|i| {
        let intake = app.state.signals.clone();
        let item = signal(if i == 17 { 999_999 } else { repository_id }, i);
        async move { intake.submit(item).await }
    });
    let results = futures_util::future::join_all(submits).await;
    for (i, result) in results.iter().enumerate() {
        if i == 17 {
            assert!(result.is_err(), "the bad item fails");
        } else {
            assert!(
                matches!(result, Ok(SignalInsert::Created(_))),
                "item {i}: {result:?}"
            );
        }
    }
    assert_eq!(store(&app).count_signals().await.unwrap(), 39);
}
db_test!(one_bad_signal_never_fails_its_batch);

/// GitLab projects in nested groups are repositories like any other: scoped
/// tokens, signals and reads work for them.
async fn nested_gitlab_groups_work_end_to_end(db: &TestDb) {
    let app = support::app(db).await;
    let token = token_for(&app, "gitlab", &["acme/backend/api"]).await;
    let t = Some(token.as_str());
    let reply = send(
        &app,
        post(t, signal("acme/backend/api", SHA, Some("job-1"))),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let elsewhere = send(&app, post(t, signal("acme/frontend/api", SHA, None))).await;
    assert_eq!(
        elsewhere.status,
        StatusCode::FORBIDDEN,
        "scoped to its project"
    );
    let reader = token_with_role(&app, "reader", &["acme/backend/api"], Role::Read).await;
    let read = send(
        &app,
        Request::get(format!("/api/v1/commits/acme/backend/api/{SHA}/signals"))
            .header("authorization", format!("Bearer {reader}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    assert_eq!(read.json["repo"], "acme/backend/api");
    assert_eq!(read.json["signals"].as_array().unwrap().len(), 1);
    for bad in ["acme", "acme//api", "acme/../api"] {
        let reply = send(&app, post(t, signal(bad, SHA, None))).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
}
db_test!(nested_gitlab_groups_work_end_to_end);
