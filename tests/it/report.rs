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
        .create_token("ci", &api_token::hash(&token), &scope, now_ms())
        .await
        .unwrap();
    (app, token)
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
    let (app, token) = app_with_token(&db).await;
    let store = app.state.store.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = serve(app, listener);

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
        &["--signal", "ci", "--status", "pass", "--value", "93.5"],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    // The job reports again (a retried step): recorded once.
    let again = report(
        &github,
        &["--signal", "ci", "--status", "pass", "--value", "93.5"],
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
        key.starts_with("api:") && key.ends_with(":github-4242-1-test-ci"),
        "{key}"
    );

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
