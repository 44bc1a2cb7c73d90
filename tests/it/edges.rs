//! The edges the dashboard and later features opened: bodies limited on every
//! route, `next` after login, security headers, branch names from payloads,
//! one error shape for every refusal, and repositories only from allowed
//! sources (with reconcile work that never delays live deliveries).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tokentally::app::App;
use tokentally::clock::{Clock, ManualClock};
use tokentally::config::Config;
use tokentally::jobs::worker::Step;
use tokentally::store::repositories::RepositoryUpdate;
use tokentally::store::tokens::Role;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::db_test;
use crate::support::git::{Remote, TestRepo, lines};
use crate::support::pages::{request, token};
use crate::support::{self, TestDb, send, store, webhook};

/// The real server loop on a local port with a 1 s body timeout.
struct Running {
    addr: String,
    shutdown: CancellationToken,
}

async fn serve(app: App) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run(listener, shutdown.clone()));
    Running { addr, shutdown }
}

fn quick_bodies(db: &TestDb) -> Config {
    let mut config = support::test_config(db);
    config.http.body_timeout_seconds = 1;
    config
}

/// Sends `head` (request line and headers, without the blank line) and reads
/// the answer until the server closes the connection.
fn exchange(addr: &str, head: &str, body: &[u8]) -> String {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    conn.write_all(format!("{head}\r\n").as_bytes()).unwrap();
    conn.write_all(body).unwrap();
    let mut out = Vec::new();
    let _ = conn.read_to_end(&mut out);
    String::from_utf8_lossy(&out).to_string()
}

/// POST (or `method`) to `path` announcing `length` bytes of `content_type`.
fn head(method: &str, path: &str, length: u64, content_type: &str) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nhost: x\r\ncontent-type: {content_type}\r\n\
         authorization: Bearer tt_unknown\r\ncontent-length: {length}\r\n"
    )
}

const FAMILIES: &[(&str, &str, &str)] = &[
    ("POST", "/login", "application/x-www-form-urlencoded"),
    ("POST", "/logout", "application/x-www-form-urlencoded"),
    ("POST", "/api/v1/signals", "application/json"),
    ("POST", "/api/v1/redemptions", "application/json"),
    ("GET", "/api/v1/leaderboard", "application/json"),
    ("POST", "/nowhere", "application/json"),
    ("POST", "/webhooks/github", "application/json"),
];

/// A 200 MB body is refused before it is read, on every route family.
async fn a_huge_body_is_refused_unread_everywhere(db: &TestDb) {
    let server = serve(support::app_with(quick_bodies(db)).await).await;
    for (method, path, content_type) in FAMILIES {
        let addr = server.addr.clone();
        let head = head(method, path, 200_000_000, content_type);
        let started = Instant::now();
        // Nothing of the body is sent: the answer must come without it.
        let answer = tokio::task::spawn_blocking(move || exchange(&addr, &head, b""))
            .await
            .unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 413") || answer.starts_with("HTTP/1.1 401"),
            "{method} {path}: {answer}"
        );
        assert!(answer.contains("\"error\""), "JSON error: {answer}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{path} waited for the body"
        );
    }
    server.shutdown.cancel();
}
db_test!(a_huge_body_is_refused_unread_everywhere);

/// A body trickled a byte at a time is cut off at the body timeout on every
/// route family, while `/healthz` answers throughout.
async fn a_trickled_body_is_cut_off_while_healthz_answers(db: &TestDb) {
    let server = serve(support::app_with(quick_bodies(db)).await).await;
    let mut trickles = Vec::new();
    for (method, path, content_type) in FAMILIES {
        let addr = server.addr.clone();
        let head = head(method, path, 1_000, content_type);
        trickles.push(tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let mut conn = TcpStream::connect(&addr).unwrap();
            conn.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            conn.write_all(format!("{head}\r\n").as_bytes()).unwrap();
            let mut out = Vec::new();
            // 1,000 bytes at one per 200 ms would take over 3 minutes.
            for _ in 0..1_000 {
                if conn.write_all(b"a").is_err() {
                    break;
                }
                let mut buf = [0u8; 4096];
                match conn.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                    Err(_) => {}
                }
            }
            (started.elapsed(), String::from_utf8_lossy(&out).to_string())
        }));
    }
    for _ in 0..5 {
        let addr = server.addr.clone();
        let health = tokio::task::spawn_blocking(move || {
            exchange(
                &addr,
                "GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n",
                b"",
            )
        })
        .await
        .unwrap();
        assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    }
    for ((method, path, _), trickle) in FAMILIES.iter().zip(trickles) {
        let (took, answer) = trickle.await.unwrap();
        assert!(
            took < Duration::from_secs(30),
            "{method} {path} held the connection for {took:?}: {answer}"
        );
        assert!(
            answer.starts_with("HTTP/1.1 4"),
            "{method} {path}: {answer}"
        );
    }
    server.shutdown.cancel();
}
db_test!(a_trickled_body_is_cut_off_while_healthz_answers);

fn csrf_of(cookies: &[String]) -> String {
    cookies
        .iter()
        .find_map(|c| c.strip_prefix("tt_csrf="))
        .map(|c| c.split(';').next().unwrap().to_string())
        .unwrap()
}

/// `next` after login is a local path or `/`: never another site, never a 500.
async fn next_is_a_local_path_or_nothing(db: &TestDb) {
    let app = support::app(db).await;
    let reader = token(&app, "reader", Role::Read, &["*"]).await;
    let hostile = [
        "/%09/127.0.0.1:22199/pwned",
        "/%0d/x",
        "/%0a/x",
        "/%00/x",
        "/%5C127.0.0.1",
        "/%5C%5C127.0.0.1",
        "//127.0.0.1",
        "%2F%2F127.0.0.1",
        "/%2F127.0.0.1",
        "/%20x",
        "https://127.0.0.1/",
    ];
    for next in hostile {
        let form_page = request(
            &app,
            Request::get(format!("/login?next={next}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(form_page.status, StatusCode::OK, "{next}");
        assert!(
            form_page.text.contains(r#"name="next" value="/""#),
            "{next}: the form goes back to /"
        );
        let csrf = csrf_of(&form_page.cookies);
        let body = format!("token={reader}&csrf={csrf}&next={next}");
        let done = request(
            &app,
            Request::post("/login")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::COOKIE, format!("tt_csrf={csrf}"))
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{next}: {}", done.text);
        assert_eq!(done.location.as_deref(), Some("/"), "{next}");
    }
    // A local path is still followed.
    let form_page = request(&app, Request::get("/login").body(Body::empty()).unwrap()).await;
    let csrf = csrf_of(&form_page.cookies);
    let done = request(
        &app,
        Request::post("/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, format!("tt_csrf={csrf}"))
            .body(Body::from(format!(
                "token={reader}&csrf={csrf}&next=%2Frules%3Fx%3D1"
            )))
            .unwrap(),
    )
    .await;
    assert_eq!(done.location.as_deref(), Some("/rules?x=1"));
}
db_test!(next_is_a_local_path_or_nothing);

/// Security headers on every response; HTML cannot be framed; nothing that
/// shows pay is cached; HSTS behind https.
async fn every_response_carries_security_headers(db: &TestDb) {
    let mut config = support::test_config(db);
    config.public_url = Some("https://tally.example.com".into());
    let app = support::app_with(config).await;
    let reader = token(&app, "reader", Role::Read, &["*"]).await;
    let get = |path: &str, bearer: bool| {
        let mut r = Request::get(path);
        if bearer {
            r = r.header(header::AUTHORIZATION, format!("Bearer {reader}"));
        }
        r.body(Body::empty()).unwrap()
    };
    for (path, bearer, html) in [
        ("/login", false, true),
        ("/", false, false), // a redirect to the login
        ("/api/v1/leaderboard", true, false),
        ("/api/v1/people/nobody/balance", true, false),
        ("/healthz", false, false),
        ("/nowhere", false, false),
    ] {
        let response = app.router().oneshot(get(path, bearer)).await.unwrap();
        let h = response.headers();
        let value = |name: header::HeaderName| {
            h.get(&name)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default()
        };
        assert_eq!(value(header::X_CONTENT_TYPE_OPTIONS), "nosniff", "{path}");
        assert_eq!(value(header::REFERRER_POLICY), "same-origin", "{path}");
        assert_eq!(value(header::CACHE_CONTROL), "no-store", "{path}");
        assert!(
            value(header::STRICT_TRANSPORT_SECURITY).starts_with("max-age="),
            "{path}"
        );
        if html {
            let csp = value(header::CONTENT_SECURITY_POLICY);
            assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
            assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
            assert_eq!(value(header::X_FRAME_OPTIONS), "DENY", "{path}");
        }
    }
    // The stylesheet may be cached; without https there is no HSTS.
    let plain = support::app(db).await;
    let response = plain
        .router()
        .oneshot(
            Request::get("/static/style.css")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(
        response.headers()[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    assert!(
        response
            .headers()
            .get(header::STRICT_TRANSPORT_SECURITY)
            .is_none()
    );
}
db_test!(every_response_carries_security_headers);

fn push_with_branch(name: &str, clone_url: &str, branch: &str) -> String {
    serde_json::json!({
        "ref": "refs/heads/main", "before": "0000000000000000000000000000000000000000",
        "after": "0000000000000000000000000000000000000000", "commits": [],
        "repository": { "full_name": name, "default_branch": branch, "clone_url": clone_url },
    })
    .to_string()
}

/// A default branch from the payload that is not a branch name fails the
/// delivery for good and fetches nothing (`*` fetched every branch before).
async fn branch_names_from_payloads_are_validated(db: &TestDb) {
    let remote = Remote::new();
    let work = TestRepo::new();
    work.write("a.rs", lines("a", 5));
    work.commit("feat: a");
    work.git(&["remote", "add", "origin", &remote.url()]);
    work.git(&["push", "-q", "origin", "main"]);
    work.git(&["checkout", "-q", "-b", "secret-branch"]);
    work.write("secret.rs", lines("secret", 5));
    work.commit("feat: secret");
    work.git(&["push", "-q", "origin", "secret-branch"]);
    let app = support::app_with(support::mirrors_on(db)).await;
    for (i, branch) in ["*", "main:refs/heads/pwn", "../../../HEAD", "-x", "a b"]
        .iter()
        .enumerate()
    {
        let id = format!("branch-{i}");
        let payload = push_with_branch("acme/api", &remote.url(), branch);
        send(&app, webhook("push", &id, payload)).await;
        assert_eq!(
            app.worker.step().await.unwrap(),
            Step::Finished("failed"),
            "{branch}: failed for good"
        );
        let status = store(&app).delivery_status(&id).await.unwrap().unwrap();
        assert_eq!(status.attempts, 1, "{branch}: not retried");
        let error = status.last_error.unwrap();
        assert!(
            error.contains("not a valid branch name"),
            "{branch}: {error}"
        );
    }
    assert!(store(&app).commits("acme/api").await.unwrap().is_empty());
    let mirror = db
        .data_dir()
        .join("mirrors/acme/api.git/refs/heads/secret-branch");
    assert!(!mirror.exists(), "the secret branch was not fetched");
}
db_test!(branch_names_from_payloads_are_validated);

fn json_post(path: &str, token: &str, content_type: &str, body: &str) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// Every refusal has the `{error, message}` shape with the right status,
/// including the framework's own (path, query, form) and hyper's header parsing.
async fn every_refusal_has_one_shape(db: &TestDb) {
    let app = support::app(db).await;
    let reader = token(&app, "reader", Role::Read, &["*"]).await;
    let reporter = token(&app, "ci", Role::Report, &["*"]).await;
    let admin = token(&app, "root", Role::Admin, &["*"]).await;
    let check = |reply: &support::Reply, status: StatusCode, code: &str| {
        assert_eq!(reply.status, status, "{}", reply.text);
        assert_eq!(reply.json["error"], code, "{}", reply.text);
        assert!(reply.json["message"].is_string(), "{}", reply.text);
    };
    let get = |path: &str| {
        Request::get(path)
            .header(header::AUTHORIZATION, format!("Bearer {reader}"))
            .body(Body::empty())
            .unwrap()
    };
    check(
        &send(&app, get("/api/v1/people/%FF%FE/balance")).await,
        StatusCode::BAD_REQUEST,
        "invalid_path",
    );
    check(
        &send(&app, get("/api/v1/leaderboard?week=0000-W01")).await,
        StatusCode::BAD_REQUEST,
        "invalid_week",
    );
    check(
        &send(&app, get("/api/v1/leaderboard?limit=%FF")).await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    );
    check(
        &send(&app, get("/api/v1/repos/acme/api/commits?after=-1")).await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    );
    let signal = |extra: serde_json::Value| {
        let mut body = serde_json::json!({
            "repo": "acme/api", "sha": "0123456789abcdef0123456789abcdef01234567",
            "signal": "ci", "status": "pass",
        });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body.to_string()
    };
    for (extra, field) in [
        (serde_json::json!({"value": -1}), "value"),
        (serde_json::json!({"value": 1e308}), "value"),
        (serde_json::json!({"url": "http:///x"}), "url"),
        (serde_json::json!({"url": "https://"}), "url"),
    ] {
        let reply = send(
            &app,
            json_post(
                "/api/v1/signals",
                &reporter,
                "application/json",
                &signal(extra),
            ),
        )
        .await;
        check(&reply, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
        assert!(reply.text.contains(field), "{}", reply.text);
    }
    let fine = signal(serde_json::json!({"value": 12.5, "url": "https://ci.example/1"}));
    let reply = send(
        &app,
        json_post(
            "/api/v1/signals",
            &reporter,
            "application/json; charset=utf-8",
            &fine,
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        check(
            &send(
                &app,
                json_post("/api/v1/signals", &reporter, content_type, &fine),
            )
            .await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        );
        check(
            &send(
                &app,
                json_post(
                    "/api/v1/redemptions",
                    &admin,
                    content_type,
                    r#"{"person":"ada","tokens":1,"kind":"bonus"}"#,
                ),
            )
            .await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        );
    }
    assert_eq!(
        store(&app).count_signals().await.unwrap(),
        1,
        "refusals store nothing"
    );
    // The login form without its anti-forgery field.
    let reply = send(
        &app,
        Request::post("/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from("token=x"))
            .unwrap(),
    )
    .await;
    check(&reply, StatusCode::UNPROCESSABLE_ENTITY, "invalid_form");

    // A DEL in the Authorization header: hyper's parser, through the real loop.
    let server = serve(app).await;
    let addr = server.addr.clone();
    let answer = tokio::task::spawn_blocking(move || {
        exchange(
            &addr,
            "GET /api/v1/leaderboard HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\
             authorization: Bearer tt_\x7fx\r\n",
            b"",
        )
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains(r#""error":"unauthorized""#), "{answer}");
    server.shutdown.cancel();
}
db_test!(every_refusal_has_one_shape);

fn check_run(repo: &str, id: u64) -> Vec<u8> {
    let body = support::fixture_where("check_run", |v| {
        v["action"] == "completed" && support::plain(v)
    });
    let mut payload: serde_json::Value = serde_json::from_slice(&body).unwrap();
    payload["repository"]["full_name"] = repo.into();
    payload["check_run"]["id"] = id.into();
    serde_json::to_vec(&payload).unwrap()
}

/// A signed event for a repository outside `github.repositories` makes nothing
/// known; with a GitHub App and no list, only events through an installation do.
async fn repositories_come_from_allowed_sources(db: &TestDb) {
    if !support::fixtures_available() {
        return;
    }
    let mut config = support::test_config(db);
    config.github.repositories = vec!["acme/*".into(), "tools/cli".into()];
    let app = support::app_with(config).await;
    for (i, repo) in [
        "made/up",
        "acme-evil/api",
        "tools/other",
        "acme/api",
        "tools/cli",
    ]
    .iter()
    .enumerate()
    {
        let reply = send(
            &app,
            webhook("check_run", &format!("cr-{i}"), check_run(repo, i as u64)),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::ACCEPTED,
            "acknowledged all the same"
        );
    }
    app.worker.drain().await.unwrap();
    let mut known: Vec<String> = store(&app)
        .repositories()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.full_name)
        .collect();
    known.sort();
    assert_eq!(known, ["acme/api", "tools/cli"]);
    assert_eq!(store(&app).count_signals().await.unwrap(), 2);
    let ignored = store(&app).delivery_status("cr-0").await.unwrap().unwrap();
    assert_eq!(ignored.state, "ignored");

    // An App without a list: events that came through an installation only.
    let other = TestDb::sqlite();
    let mut config = support::test_config(&other);
    config.github.app_id = Some(1);
    config.github.private_key = Some(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/it/fixtures/github-app-test-key.pem"),
    );
    config.github.pr_comments = false;
    let app = support::app_with(config).await;
    send(&app, webhook("check_run", "plain", check_run("made/up", 1))).await;
    let mut through_app: serde_json::Value =
        serde_json::from_slice(&check_run("acme/app", 2)).unwrap();
    through_app["installation"] = serde_json::json!({"id": 42});
    send(
        &app,
        webhook(
            "check_run",
            "installed",
            serde_json::to_vec(&through_app).unwrap(),
        ),
    )
    .await;
    app.worker.drain().await.unwrap();
    let known: Vec<String> = store(&app)
        .repositories()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.full_name)
        .collect();
    assert_eq!(known, ["acme/app"]);
}
db_test!(repositories_come_from_allowed_sources);

/// Reconciling thousands of repositories spreads their fetches over the
/// interval, and a live delivery is claimed before every background one.
async fn reconcile_never_delays_live_deliveries(db: &TestDb) {
    if !support::fixtures_available() {
        return;
    }
    let clock = ManualClock::starting_now();
    let config = support::test_config(db);
    let interval = config.github.reconcile_interval_seconds as i64 * 1000;
    let app = App::connect_with_clock(config, clock.clone())
        .await
        .unwrap();
    let now = clock.now_ms();
    for i in 0..3_000 {
        let name = format!("many/repo-{i}");
        let url = format!("https://github.com/{name}.git");
        store(&app)
            .upsert_repository(
                &RepositoryUpdate {
                    full_name: &name,
                    github_id: None,
                    default_branch: Some("main"),
                    clone_url: Some(&url),
                },
                now,
            )
            .await
            .unwrap();
    }
    assert_eq!(app.reconciler().queue_fetches().await.unwrap(), 3_000);
    // Spread: about a tenth of them fall in the first tenth of the interval.
    clock.advance_ms(interval / 10);
    let mut due_early = 0;
    while let Step::Finished(_) = app.worker.step().await.unwrap() {
        due_early += 1;
    }
    assert!(
        (150..=450).contains(&due_early),
        "{due_early} of 3,000 fetches were due in the first tenth"
    );
    // All of the rest are due now; a check run arrives: it is taken first.
    clock.advance_ms(interval);
    let reply = send(
        &app,
        webhook("check_run", "live", check_run("many/repo-7", 99)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    let started = Instant::now();
    assert_eq!(
        app.worker.step().await.unwrap(),
        Step::Finished("processed")
    );
    let live = store(&app).delivery_status("live").await.unwrap().unwrap();
    assert_eq!(live.state, "processed", "the live delivery went first");
    eprintln!(
        "a check run became a signal {:?} after it was claimed, with {} reconcile fetches due",
        started.elapsed(),
        3_000 - due_early
    );
    assert_eq!(store(&app).count_signals().await.unwrap(), 1);
}
db_test!(reconcile_never_delays_live_deliveries);
