//! `tokentally report` against a running server, as CI pipelines call it.

use std::process::{Command, Output};
use std::time::Duration;

use tokentally::api_token;
use tokentally::app::App;
use tokentally::clock::now_ms;
use tokio_util::sync::CancellationToken;

use crate::support::{self, TestDb, store};

const SHA: &str = "89abcdef0123456789abcdef0123456789abcdef";

/// Serves `app` on `listener` until the returned token is cancelled.
fn serve(app: App, listener: tokio::net::TcpListener) -> CancellationToken {
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run(listener, shutdown.clone()));
    shutdown
}

async fn app_with_token(db: &TestDb) -> (App, String) {
    let app = support::app(db).await;
    let token = api_token::generate();
    let scope = vec!["*".to_string()];
    store(&app)
        .create_token(
            "ci",
            &api_token::hash(&token),
            &scope,
            tokentally::store::tokens::Role::Report,
            now_ms(),
        )
        .await
        .unwrap();
    // This pipeline reports deploys as well as CI.
    let grants = ["ci".to_string(), "deploy".to_string()];
    store(&app).set_token_signals("ci", &grants).await.unwrap();
    (app, token)
}

/// The service with a token for every repository, serving on a local port:
/// (its URL, the token, its store, what stops it).
async fn running_with_token(
    db: &TestDb,
) -> (String, String, tokentally::store::Store, CancellationToken) {
    let (app, token) = app_with_token(db).await;
    let store = app.state.store.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (url, token, store, serve(app, listener))
}

/// Runs `tokentally report` with only the given environment.
async fn report(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tokentally"));
    cmd.env_clear().arg("report").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_from_github_actions_and_gitlab_environments() {
    let db = TestDb::sqlite();
    let (url, token, store, shutdown) = running_with_token(&db).await;

    let github = [
        ("TOKENTALLY_URL", url.as_str()),
        ("TOKENTALLY_TOKEN", token.as_str()),
        ("GITHUB_REPOSITORY", "acme/api"),
        ("GITHUB_SHA", SHA),
        ("GITHUB_RUN_ID", "4242"),
        ("GITHUB_RUN_ATTEMPT", "1"),
        ("GITHUB_JOB", "test"),
        ("GITHUB_SERVER_URL", "https://github.com"),
    ];
    let out = report(
        &github,
        &[
            "--signal",
            "ci",
            "--status",
            "pass",
            "--value",
            "93.5",
            "--context",
            "linux",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    // The job reports again (a retried step): recorded once.
    let again = report(
        &github,
        &[
            "--signal",
            "ci",
            "--status",
            "pass",
            "--value",
            "93.5",
            "--context",
            "linux",
        ],
    )
    .await;
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("already recorded"),
        "{}",
        stderr(&again)
    );

    let repo = store.repository("acme/api").await.unwrap().unwrap();
    let signals = store.signals_for_commit(repo.id, SHA).await.unwrap();
    assert_eq!(signals.len(), 1);
    assert_eq!(signals[0].name, "ci");
    assert_eq!(signals[0].value, Some(93.5));
    assert_eq!(
        signals[0].url.as_deref(),
        Some("https://github.com/acme/api/actions/runs/4242")
    );
    // Stored under the token's id: keys belong to the token that used them.
    let key = signals[0].idempotency_key.as_deref().unwrap();
    assert!(
        key.starts_with("api:") && key.contains(":github-4242-1-test-ci-"),
        "{key}"
    );
    assert_eq!(signals[0].context.as_deref(), Some("linux"));

    let gitlab = [
        ("TOKENTALLY_URL", url.as_str()),
        ("TOKENTALLY_TOKEN", token.as_str()),
        ("CI_PROJECT_PATH", "group/project"),
        ("CI_COMMIT_SHA", SHA),
        ("CI_JOB_ID", "9"),
        (
            "CI_JOB_URL",
            "https://gitlab.example/group/project/-/jobs/9",
        ),
    ];
    let out = report(&gitlab, &["--signal", "deploy", "--status", "fail"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let repo = store.repository("group/project").await.unwrap().unwrap();
    let signals = store.signals_for_commit(repo.id, SHA).await.unwrap();
    assert_eq!(
        (signals[0].name.as_str(), signals[0].status.as_str()),
        ("deploy", "fail")
    );

    // Nothing in the environment: the error says which variables were looked for.
    let bare = [
        ("TOKENTALLY_URL", url.as_str()),
        ("TOKENTALLY_TOKEN", token.as_str()),
    ];
    let out = report(
        &bare,
        &["--signal", "ci", "--status", "pass", "--repo", "acme/api"],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("GITHUB_SHA, CI_COMMIT_SHA"),
        "{}",
        stderr(&out)
    );
    // The server's refusal is shown, and the exit code is non-zero.
    let bad = [
        ("TOKENTALLY_URL", url.as_str()),
        ("TOKENTALLY_TOKEN", "tt_wrong"),
    ];
    let out = report(
        &bad,
        &[
            "--signal", "ci", "--status", "pass", "--repo", "acme/api", "--sha", SHA,
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown or revoked API token"),
        "{}",
        stderr(&out)
    );
    let out = report(&github, &["--signal", "ci", "--status", "green"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("`status`"), "{}", stderr(&out));
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_until_the_server_is_up() {
    let db = TestDb::sqlite();
    let (app, token) = app_with_token(&db).await;
    let store = app.state.store.clone();
    // Reserve a port, then leave it closed while the report starts.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{addr}");
    // The report starts while nothing listens; once it says it is retrying, the
    // server comes up (a condition, not a guessed delay).
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tokentally"))
        .env_clear()
        .args([
            "report",
            "--signal",
            "ci",
            "--status",
            "pass",
            "--attempts",
            "8",
        ])
        .env("TOKENTALLY_URL", &url)
        .env("TOKENTALLY_TOKEN", &token)
        .env("GITHUB_REPOSITORY", "acme/api")
        .env("GITHUB_SHA", SHA)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr_pipe = child.stderr.take().unwrap();
    let (said_tx, said) = tokio::sync::oneshot::channel();
    let log = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut said_tx = Some(said_tx);
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr_pipe).lines() {
            let line = line.unwrap_or_default();
            if line.contains("retrying")
                && let Some(tx) = said_tx.take()
            {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    tokio::time::timeout(Duration::from_secs(60), said)
        .await
        .expect("the report says it is retrying")
        .unwrap();
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let shutdown = serve(app, listener);
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let log = log.join().unwrap();
    assert!(status.success(), "{log}");
    assert!(log.contains("retrying"), "{log}");
    let repo = store.repository("acme/api").await.unwrap().unwrap();
    assert_eq!(
        store.signals_for_commit(repo.id, SHA).await.unwrap().len(),
        1
    );
    shutdown.cancel();
}

/// Three legs of one matrix job (same run, attempt and job): each records its
/// own signal, the failing one included — with a context or without.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_matrix_leg_records_its_own_signal() {
    let db = TestDb::sqlite();
    let (url, token, store, shutdown) = running_with_token(&db).await;
    let job = [
        ("TOKENTALLY_URL", url.as_str()),
        ("TOKENTALLY_TOKEN", token.as_str()),
        ("GITHUB_REPOSITORY", "acme/api"),
        ("GITHUB_SHA", SHA),
        ("GITHUB_RUN_ID", "31"),
        ("GITHUB_RUN_ATTEMPT", "1"),
        ("GITHUB_JOB", "test"),
    ];
    for (os, status) in [("linux", "pass"), ("macos", "pass"), ("windows", "fail")] {
        let context = format!("{{\"os\":\"{os}\"}}");
        let out = report(
            &job,
            &["--signal", "ci", "--status", status, "--context", &context],
        )
        .await;
        assert!(out.status.success(), "{os}: {}", stderr(&out));
    }
    for status in ["pass", "fail"] {
        let out = report(&job, &["--signal", "ci", "--status", status]).await;
        assert!(out.status.success(), "no context: {}", stderr(&out));
    }
    let repo = store.repository("acme/api").await.unwrap().unwrap();
    let signals = store.signals_for_commit(repo.id, SHA).await.unwrap();
    assert_eq!(signals.len(), 5, "no leg lost");
    assert_eq!(signals.iter().filter(|s| s.status == "fail").count(), 2);
    shutdown.cancel();
}

/// A `pull_request` workflow reports for the pull request's head, not for
/// GITHUB_SHA (GitHub's temporary merge commit, which never lands).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_request_workflows_report_the_head_commit() {
    let db = TestDb::sqlite();
    let (url, token, store, shutdown) = running_with_token(&db).await;
    let head = "1111111111111111111111111111111111111111";
    let dir = tempfile::tempdir().unwrap();
    let event = dir.path().join("event.json");
    std::fs::write(
        &event,
        serde_json::json!({ "pull_request": { "head": { "sha": head } } }).to_string(),
    )
    .unwrap();
    let env = [
        ("TOKENTALLY_URL", url.as_str()),
        ("TOKENTALLY_TOKEN", token.as_str()),
        ("GITHUB_REPOSITORY", "acme/api"),
        ("GITHUB_SHA", SHA),
        ("GITHUB_EVENT_NAME", "pull_request"),
        ("GITHUB_EVENT_PATH", event.to_str().unwrap()),
    ];
    let out = report(&env, &["--signal", "ci", "--status", "pass"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let repo = store.repository("acme/api").await.unwrap().unwrap();
    assert_eq!(
        store.signals_for_commit(repo.id, head).await.unwrap().len(),
        1
    );
    assert!(
        store
            .signals_for_commit(repo.id, SHA)
            .await
            .unwrap()
            .is_empty()
    );
    shutdown.cancel();
}

/// Mistakes a pipeline makes get messages that say what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_mistakes_say_what_to_do() {
    let base = [("GITHUB_REPOSITORY", "acme/api"), ("GITHUB_SHA", SHA)];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut env: Vec<(&str, &str)> = base.to_vec();
        env.extend_from_slice(extra);
        env
    };
    let out = report(
        &with(&[
            ("TOKENTALLY_URL", "tokentally.example.com"),
            ("TOKENTALLY_TOKEN", "tt_x"),
        ]),
        &["--signal", "ci", "--status", "pass"],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("must start with https://"),
        "{}",
        stderr(&out)
    );
    let out = report(
        &with(&[
            ("TOKENTALLY_URL", "http://127.0.0.1:1"),
            ("TOKENTALLY_TOKEN", ""),
        ]),
        &["--signal", "ci", "--status", "pass"],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("token is empty"), "{}", stderr(&out));
    assert!(stderr(&out).contains("forks"), "{}", stderr(&out));
    let out = report(
        &with(&[
            ("TOKENTALLY_URL", "http://127.0.0.1:1"),
            ("TOKENTALLY_TOKEN", "tt_x"),
        ]),
        &["--signal", "ci", "--status", "pass", "--attempts", "1"],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).to_lowercase().contains("connection refused"),
        "the cause is shown: {}",
        stderr(&out)
    );
}

/// A 429 is waited out as its Retry-After says, then the report goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_report_waits_and_retries() {
    let db = TestDb::sqlite();
    let mut config = crate::support::test_config(&db);
    config.api.rate_limit_per_minute = 1;
    let app = crate::support::app_with(config).await;
    let token = tokentally::api_token::generate();
    app.state
        .store
        .create_token(
            "limited",
            &tokentally::api_token::hash(&token),
            &["*".to_string()],
            tokentally::store::tokens::Role::Report,
            tokentally::clock::now_ms(),
        )
        .await
        .unwrap();
    let store = app.state.store.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = serve(app, listener);
    let env = [
        ("TOKENTALLY_URL", url.as_str()),
        ("TOKENTALLY_TOKEN", token.as_str()),
        ("GITHUB_REPOSITORY", "acme/api"),
        ("GITHUB_SHA", SHA),
    ];
    let first = report(&env, &["--signal", "ci", "--status", "pass"]).await;
    assert!(first.status.success(), "{}", stderr(&first));
    // The second is over the limit: with --max-wait too short it gives up, saying why.
    let out = report(
        &env,
        &["--signal", "deploy", "--status", "pass", "--max-wait", "1"],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("429"), "{}", stderr(&out));
    assert!(stderr(&out).contains("--max-wait"), "{}", stderr(&out));
    let repo = store.repository("acme/api").await.unwrap().unwrap();
    assert_eq!(
        store.signals_for_commit(repo.id, SHA).await.unwrap().len(),
        1
    );
    shutdown.cancel();
}

/// A server that answers 429 (Retry-After: 1) once, then accepts: the report waits and succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_honoured_then_the_report_succeeds() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for (i, stream) in listener.incoming().take(2).enumerate() {
            let mut stream = stream.unwrap();
            let mut buf = vec![0u8; 65536];
            let n = stream.read(&mut buf).unwrap();
            seen.push(std::time::Instant::now());
            let _ = &buf[..n];
            let answer = if i == 0 {
                "HTTP/1.1 429 Too Many Requests\r\nretry-after: 1\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}"
            } else {
                "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}"
            };
            stream.write_all(answer.as_bytes()).unwrap();
        }
        seen
    });
    let env = [
        ("TOKENTALLY_URL", url.as_str()),
        ("TOKENTALLY_TOKEN", "tt_x"),
        ("GITHUB_REPOSITORY", "acme/api"),
        ("GITHUB_SHA", SHA),
    ];
    let out = report(&env, &["--signal", "ci", "--status", "pass"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Retry-After"),
        "says what it waits for: {}",
        stderr(&out)
    );
    let seen = server.join().unwrap();
    assert!(
        seen[1].duration_since(seen[0]) >= std::time::Duration::from_millis(900),
        "waited as Retry-After said"
    );
}

/// 503 (the server's database is away) is retried as its Retry-After says; a 500
/// (a fault the same request meets again) ends the report with the server's message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_is_retried_and_a_500_fails_with_the_server_message() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/signals"))
        .respond_with(
            ResponseTemplate::new(503)
                .insert_header("retry-after", "1")
                .set_body_json(serde_json::json!({
                    "error": "unavailable",
                    "message": "the database is unavailable; nothing was stored, retry later",
                })),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/signals"))
        .respond_with(ResponseTemplate::new(500).set_body_json(serde_json::json!({
            "error": "database_error",
            "message": "the database refused the service's statement (signals::insert_signal)",
        })))
        .mount(&server)
        .await;
    let env = [
        ("TOKENTALLY_URL", server.uri()),
        ("TOKENTALLY_TOKEN", "tt_x".to_string()),
        ("GITHUB_REPOSITORY", "acme/api".to_string()),
        ("GITHUB_SHA", SHA.to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = report(&env, &["--signal", "ci", "--status", "pass"]).await;
    assert!(!out.status.success(), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(said.contains("503"), "{said}");
    assert!(
        said.contains("500") && said.contains("signals::insert_signal"),
        "the server's message: {said}"
    );
    // Once for the 503, once for the 500: a 500 is not retried.
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}
