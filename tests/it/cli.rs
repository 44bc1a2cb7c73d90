//! The `tokentally` binary as a user runs it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::cli::tokentally;

/// Waits for the "listening on http://ADDR" log line and returns ADDR; keeps the
/// lines so far in `log`, and hands the later ones to [`wait_for_line`].
fn wait_listening(child: &mut Child, log: &mut Vec<String>) -> String {
    let (addr, lines) = wait_listening_with_lines(child, log);
    // Keep reading the server's stderr, so its pipe never fills up.
    std::thread::spawn(move || while lines.recv().is_ok() {});
    addr
}

/// [`wait_listening`], with the receiver of the lines that come after.
fn wait_listening_with_lines(
    child: &mut Child,
    log: &mut Vec<String>,
) -> (String, std::sync::mpsc::Receiver<String>) {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) else {
            break;
        };
        log.push(line.clone());
        if let Some(rest) = line.split("listening on http://").nth(1) {
            let addr = rest.split(';').next().unwrap().to_string();
            return (addr, rx);
        }
    }
    panic!("server did not start: {log:#?}");
}

/// Waits for a line of the server's log that contains `text` (a minute at most).
fn wait_for_line(lines: &std::sync::mpsc::Receiver<String>, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(text) => return line,
            Ok(_) => {}
            Err(_) => panic!("the server never logged {text:?}"),
        }
    }
}

/// SIGTERM, then the exit status; a server that has not stopped within 30 s is
/// killed and the test fails.
fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let (stopped, watchdog) = std::sync::mpsc::channel::<()>();
    let killer = std::thread::spawn(move || {
        let timed_out = watchdog.recv_timeout(Duration::from_secs(30)).is_err();
        if timed_out {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        }
        timed_out
    });
    let status = child.wait().unwrap();
    let _ = stopped.send(());
    assert!(!killer.join().unwrap(), "server did not stop on SIGTERM");
    status
}

/// `serve` in `dir` with no configuration at all, as on a fresh machine.
fn serve_unconfigured(dir: &std::path::Path) -> Child {
    tokentally()
        .current_dir(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_writes_a_private_config_serves_and_stops_on_sigterm() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mut child = serve_unconfigured(dir.path());
    let mut log = Vec::new();
    let addr = wait_listening(&mut child, &mut log);

    let config_path = dir.path().join("tokentally.toml");
    let mode = std::fs::metadata(&config_path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let config = std::fs::read_to_string(&config_path).unwrap();
    let secret = config
        .lines()
        .find_map(|l| l.strip_prefix("webhook_secrets = [\""))
        .and_then(|l| l.strip_suffix("\"]"))
        .expect("a generated secret");
    assert_eq!(secret.len(), 64);
    let all_log = log.join("\n");
    assert!(all_log.contains("tokentally.toml"), "{all_log}");
    assert!(!all_log.contains(secret), "the secret is never printed");
    assert!(
        dir.path().join("tokentally.db").exists(),
        "SQLite in the working directory"
    );

    let client = reqwest::Client::new();
    let health = client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // A delivery signed with the generated secret is accepted.
    let body = r#"{"action":"created"}"#;
    let reply = client
        .post(format!("http://{addr}/webhooks/github"))
        .header("x-github-event", "star")
        .header("x-github-delivery", "cli-1")
        .header(
            "x-hub-signature-256",
            tokentally::github::signature::sign(secret, body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 202);

    let status = terminate(&mut child);
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");

    // A second run reuses the file instead of writing a new secret.
    let mut child = serve_unconfigured(dir.path());
    let mut log = Vec::new();
    wait_listening(&mut child, &mut log);
    assert!(terminate(&mut child).success());
    assert_eq!(std::fs::read_to_string(&config_path).unwrap(), config);
}

#[test]
fn config_errors_name_the_key_and_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        "[github]\nwebhook_secret = \"x\"\n",
    )
    .unwrap();
    let out = tokentally()
        .current_dir(dir.path())
        .args(["serve", "--config", "bad.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("github.webhook_secret"), "{stderr}");

    let out = tokentally()
        .current_dir(dir.path())
        .args(["serve", "--config", "missing.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml does not exist"));

    let out = tokentally()
        .current_dir(dir.path())
        .env("TOKENTALLY_LISTEN", "here")
        .args(["migrate"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("TOKENTALLY_LISTEN"), "{stderr}");
    assert!(
        !dir.path().join("tokentally.toml").exists(),
        "only serve writes a first-run file"
    );
}

#[test]
fn migrate_creates_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let out = tokentally()
        .current_dir(dir.path())
        .env("TOKENTALLY_DATABASE_URL", "sqlite://m.db")
        .arg("migrate")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("m.db").exists());
}

#[test]
fn help_describes_every_option() {
    let out = tokentally().args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for option in ["--listen", "--config"] {
        assert!(help.contains(option), "{help}");
    }
    let out = tokentally().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for command in ["serve", "migrate"] {
        assert!(help.contains(command), "{help}");
    }
}

/// `serve` on a fresh SQLite database in `dir`, configured by environment.
fn spawn_serve(dir: &std::path::Path) -> (Child, String, std::sync::mpsc::Receiver<String>) {
    let mut child = tokentally()
        .current_dir(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("TOKENTALLY_GITHUB_WEBHOOK_SECRET", crate::support::SECRET)
        .env("TOKENTALLY_DATABASE_URL", "sqlite://crash.db")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, lines) = wait_listening_with_lines(&mut child, &mut Vec::new());
    (child, addr, lines)
}

fn signed_post(addr: &str, delivery: &str, body: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .post(format!("http://{addr}/webhooks/github"))
        .header("x-github-event", "push")
        .header("x-github-delivery", delivery)
        .header(
            "x-hub-signature-256",
            tokentally::github::signature::sign(crate::support::SECRET, body.as_bytes()),
        )
        .body(body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_deliveries_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr, _lines) = spawn_serve(dir.path());
    let body = r#"{"ref":"refs/heads/main","before":"a","after":"b","repository":{"full_name":"acme/api"}}"#;
    let posts = (0..100).map(|i| {
        let request = signed_post(&addr, &format!("k-{i}"), body);
        async move { request.send().await.unwrap().status() }
    });
    let statuses = futures_util::future::join_all(posts).await;
    assert!(statuses.iter().all(|s| *s == 202), "{statuses:?}");
    // No graceful anything: the process dies at once.
    child.kill().unwrap();
    child.wait().unwrap();

    let url = format!("sqlite://{}", dir.path().join("crash.db").display());
    let store = tokentally::store::Store::connect(&url).await.unwrap();
    assert_eq!(store.count_deliveries().await.unwrap(), 100);
    for i in 0..100 {
        assert!(
            store
                .delivery_status(&format!("k-{i}"))
                .await
                .unwrap()
                .is_some(),
            "k-{i} acknowledged but lost"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_in_flight_request_finish() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr, lines) = spawn_serve(dir.path());
    let body = r#"{"ref":"refs/heads/main","before":"a","after":"b","repository":{"full_name":"acme/api"}}"#;
    let signature = tokentally::github::signature::sign(crate::support::SECRET, body.as_bytes());
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "POST /webhooks/github HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         x-github-event: push\r\nx-github-delivery: in-flight\r\nx-hub-signature-256: {signature}\r\n\
         content-length: {}\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    // The handler asks for the body only once it is running: then the request is in flight.
    let mut continued = [0u8; 25];
    stream.read_exact(&mut continued).unwrap();
    assert!(
        continued.starts_with(b"HTTP/1.1 100 Continue"),
        "{continued:?}"
    );
    let (first, rest) = body.split_at(20);
    stream.write_all(first.as_bytes()).unwrap();
    stream.flush().unwrap();

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    wait_for_line(&lines, "shutting down");
    assert!(
        child.try_wait().unwrap().is_none(),
        "waits for the request in flight"
    );
    stream.write_all(rest.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 202"), "{response}");
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");

    let url = format!("sqlite://{}", dir.path().join("crash.db").display());
    let store = tokentally::store::Store::connect(&url).await.unwrap();
    assert!(store.delivery_status("in-flight").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_commands_show_a_token_once_and_store_only_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        tokentally()
            .current_dir(dir.path())
            .env("TOKENTALLY_DATABASE_URL", "sqlite://tokens.db")
            .args(args)
            .output()
            .unwrap()
    };
    // Only serve and migrate create a database: elsewhere a stray empty one would
    // hold tokens the server never sees.
    let out = run(&["token", "list"]);
    assert_eq!(out.status.code(), Some(2));
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(message.contains("no database at tokens.db"), "{message}");
    assert!(message.contains("TOKENTALLY_DATABASE_URL"), "{message}");
    assert!(!dir.path().join("tokens.db").exists());
    let out = run(&["migrate"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("created a new database at tokens.db"));
    let out = run(&[
        "token",
        "create",
        "--name",
        "github-ci",
        "--repo",
        "acme/api",
        "--repo",
        "acme/web",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("tt_") && token.len() == 67, "{token}");

    let again = run(&["token", "create", "--name", "github-ci", "--all-repos"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
    let bad = run(&["token", "create", "--name", "x", "--repo", "not-a-repo"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("owner/name"));
    assert!(
        run(&["token", "create", "--name", "x"]).status.code() == Some(2),
        "a scope is required"
    );

    let list = run(&["token", "list"]);
    let listing = String::from_utf8(list.stdout).unwrap();
    assert!(
        listing.contains("github-ci") && listing.contains("acme/api, acme/web"),
        "{listing}"
    );
    assert!(!listing.contains(&token[3..]));
    let db_bytes = std::fs::read(dir.path().join("tokens.db")).unwrap();
    let wal = std::fs::read(dir.path().join("tokens.db-wal")).unwrap_or_default();
    for bytes in [&db_bytes, &wal] {
        assert!(
            !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
            "the token itself is never stored"
        );
    }

    // The token works against the service over the same database, until revoked.
    let url = format!("sqlite://{}", dir.path().join("tokens.db").display());
    let db_config = tokentally::config::Config {
        database_url: url,
        ..tokentally::config::Config::default()
    };
    let app = tokentally::app::App::connect(db_config.clone())
        .await
        .unwrap();
    let post = |token: &str| {
        axum::http::Request::post("/api/v1/signals")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(
                r#"{"repo":"acme/web","sha":"0123abc","signal":"ci","status":"pass"}"#,
            ))
            .unwrap()
    };
    assert_eq!(crate::support::send(&app, post(&token)).await.status, 201);
    assert!(run(&["token", "revoke", "github-ci"]).status.success());
    assert_eq!(crate::support::send(&app, post(&token)).await.status, 401);
    let listing = String::from_utf8(run(&["token", "list"]).stdout).unwrap();
    assert!(listing.contains("revoked"), "{listing}");
    let gone = run(&["token", "revoke", "github-ci"]);
    assert_eq!(gone.status.code(), Some(2));
    // A revoked token's name can be given to a new token; the old one stays listed.
    let renewed = run(&["token", "create", "--name", "github-ci", "--all-repos"]);
    assert!(
        renewed.status.success(),
        "{}",
        String::from_utf8_lossy(&renewed.stderr)
    );
    let listing = String::from_utf8(run(&["token", "list"]).stdout).unwrap();
    assert!(listing.contains("github-ci (revoked #1)"), "{listing}");

    // Signal grants: a report token posts ci only, unless granted more.
    let oncall = run(&[
        "token",
        "create",
        "--name",
        "oncall",
        "--all-repos",
        "--signals",
        "incident,deploy",
    ]);
    assert!(
        oncall.status.success(),
        "{}",
        String::from_utf8_lossy(&oncall.stderr)
    );
    assert!(String::from_utf8_lossy(&oncall.stderr).contains("it may post incident, deploy"));
    let oncall = String::from_utf8(oncall.stdout).unwrap().trim().to_string();
    let post_as = |token: &str, signal: &str| {
        axum::http::Request::post("/api/v1/signals")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(format!(
                r#"{{"repo":"acme/web","sha":"0123abc","signal":"{signal}","status":"fail"}}"#
            )))
            .unwrap()
    };
    assert_eq!(
        crate::support::send(&app, post_as(&oncall, "incident"))
            .await
            .status,
        201
    );
    assert_eq!(
        crate::support::send(&app, post_as(&oncall, "ci"))
            .await
            .status,
        403
    );
    let renewed = String::from_utf8(renewed.stdout)
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(
        crate::support::send(&app, post_as(&renewed, "incident"))
            .await
            .status,
        403
    );
    let listing = String::from_utf8(run(&["token", "list"]).stdout).unwrap();
    assert!(listing.contains("incident,deploy"), "{listing}");
    let bad = run(&[
        "token",
        "create",
        "--name",
        "y",
        "--all-repos",
        "--signals",
        "reverted",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--signals \"reverted\""));
    // A telemetry token needs no repository scope; usage reads back.
    let otel = run(&["token", "create", "--name", "otel", "--role", "telemetry"]);
    assert!(
        otel.status.success(),
        "{}",
        String::from_utf8_lossy(&otel.stderr)
    );
    let usage = run(&["usage", "--week", "current"]);
    assert!(
        usage.status.success(),
        "{}",
        String::from_utf8_lossy(&usage.stderr)
    );
    assert!(String::from_utf8_lossy(&usage.stdout).contains("none reported"));
    // No commits yet: nobody unmapped.
    let unmapped = run(&["people", "unmapped"]);
    assert!(unmapped.status.success());
    assert!(String::from_utf8_lossy(&unmapped.stderr).contains("every author"));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A log shipper that restarted: stderr is a pipe nobody reads any more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stderr_pipe_never_stops_the_worker() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = tokentally()
        .current_dir(dir.path())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("TOKENTALLY_GITHUB_WEBHOOK_SECRET", crate::support::SECRET)
        .env("TOKENTALLY_DATABASE_URL", "sqlite://pipe.db")
        .env("TOKENTALLY_LOG", "debug")
        .env("TOKENTALLY_MIRRORS_ENABLED", "false")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take()); // the reader goes away: every log write now fails
    let addr = format!("127.0.0.1:{port}");
    let client = reqwest::Client::new();
    crate::support::eventually("the server answers", || {
        std::future::ready(std::net::TcpStream::connect(&addr).is_ok())
    })
    .await;
    let body = r#"{"sha":"6113728f27ae82c7b1a177c8d03f9e96e0adf246","state":"success","context":"ci","repository":{"full_name":"acme/api"}}"#;
    for i in 0..20 {
        let status = client
            .post(format!("http://{addr}/webhooks/github"))
            .header("x-github-event", "status")
            .header("x-github-delivery", format!("pipe-{i}"))
            .header(
                "x-hub-signature-256",
                tokentally::github::signature::sign(crate::support::SECRET, body.as_bytes()),
            )
            .body(body)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 202);
    }
    let url = format!("sqlite://{}", dir.path().join("pipe.db").display());
    let store = tokentally::store::Store::connect(&url).await.unwrap();
    crate::support::eventually("the deliveries are processed", || async {
        store.count_unfinished_deliveries().await.unwrap() == 0
    })
    .await;
    assert_eq!(
        store.count_unfinished_deliveries().await.unwrap(),
        0,
        "the worker kept processing"
    );
    let ready = client
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let status = terminate(&mut child);
    assert_eq!(status.code(), Some(0), "SIGTERM still stops it cleanly");
}

/// After kill -9 the delivery in flight is taken up again by the next start as
/// soon as its (short, renewed) lease runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_the_delivery_in_flight_within_its_lease() {
    let hang = crate::support::remotes::HangingRemote::start();
    let dir = tempfile::tempdir().unwrap();
    let spawn = || {
        let port = free_port();
        let child = tokentally()
            .current_dir(dir.path())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("TOKENTALLY_GITHUB_WEBHOOK_SECRET", crate::support::SECRET)
            .env("TOKENTALLY_DATABASE_URL", "sqlite://resume.db")
            .env("TOKENTALLY_MIRRORS_ALLOWED_REMOTES", hang.prefix())
            .env("TOKENTALLY_WORKER_LEASE_SECONDS", "2")
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        (child, format!("127.0.0.1:{port}"))
    };
    let answers = |addr: String| {
        crate::support::eventually("the server answers", move || {
            std::future::ready(std::net::TcpStream::connect(&addr).is_ok())
        })
    };
    let (mut first, addr) = spawn();
    answers(addr.clone()).await;
    let body = serde_json::json!({
        "ref": "refs/heads/main", "before": "a", "after": "b", "commits": [],
        "repository": { "full_name": "acme/big", "default_branch": "main",
                        "clone_url": hang.url("acme/big.git") },
    })
    .to_string();
    let status = signed_post(&addr, "in-flight", &body).send().await.unwrap();
    assert_eq!(status.status(), 202);
    crate::support::eventually("the first process is fetching", || {
        std::future::ready(hang.connections() >= 1)
    })
    .await;
    first.kill().unwrap();
    first.wait().unwrap();

    let (mut second, second_addr) = spawn();
    answers(second_addr).await;
    crate::support::eventually("the second process took the delivery up again", || {
        std::future::ready(hang.connections() >= 2)
    })
    .await;
    assert_eq!(terminate(&mut second).code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_list_and_retry_failed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ops.db").display());
    {
        let mut config = tokentally::config::Config {
            database_url: url.clone(),
            ..Default::default()
        };
        config.mirrors.enabled = false;
        config.github.webhook_secrets =
            vec![tokentally::secret::Secret::new(crate::support::SECRET)];
        let app = crate::support::app_with(config).await;
        let broken =
            r#"{"sha":"abc","state":"success","context":"ci","repository":{"full_name":7}}"#;
        for id in ["bad-1", "bad-2"] {
            crate::support::send(&app, crate::support::webhook("status", id, broken)).await;
        }
        app.worker.drain().await.unwrap();
        app.state.store.close().await;
    }
    let run = |args: &[&str]| {
        tokentally()
            .current_dir(dir.path())
            .env("TOKENTALLY_DATABASE_URL", &url)
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["deliveries", "list", "--failed"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.contains("bad-1") && listing.contains("bad-2"),
        "{listing}"
    );
    assert!(
        listing.contains("repository.full_name"),
        "shows the error: {listing}"
    );

    let out = run(&["deliveries", "retry", "bad-1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["deliveries", "retry", "bad-1"]);
    assert_eq!(out.status.code(), Some(2), "no longer failed");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no failed delivery"));
    let out = run(&["deliveries", "retry", "--failed"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("queued 1 failed delivery"));
    let out = run(&["deliveries", "list", "--failed"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("bad-"));
    let out = run(&["deliveries", "retry"]);
    assert_eq!(out.status.code(), Some(2), "an id or --failed is required");
}

/// First run with some TOKENTALLY_* variable set (a log level, a port) still
/// writes the config file with a secret; logs are JSON when asked, never carry
/// ANSI colours when stderr is not a terminal, and say what happened to each
/// delivery at `info`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_with_env_and_logs_an_operator_can_use() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokentally()
        .current_dir(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("TOKENTALLY_LOG", "info")
        .env("TOKENTALLY_LOG_FORMAT", "json")
        .env_remove("NO_COLOR")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let mut log = Vec::new();
    let next = |what: &str, log: &mut Vec<String>| -> String {
        loop {
            let line = lines
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("no log line {what}: {log:#?}"));
            log.push(line.clone());
            if line.contains(what) {
                return line;
            }
        }
    };
    let listening = next("listening on http://", &mut log);
    let addr = listening
        .split("listening on http://")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let config = std::fs::read_to_string(dir.path().join("tokentally.toml"))
        .expect("the first-run file is written although TOKENTALLY_LOG is set");
    let secret = config
        .lines()
        .find_map(|l| l.strip_prefix("webhook_secrets = [\""))
        .and_then(|l| l.strip_suffix("\"]"))
        .unwrap()
        .to_string();
    let body = r#"{"action":"created"}"#;
    let reply = reqwest::Client::new()
        .post(format!("http://{addr}/webhooks/github"))
        .header("x-github-event", "star")
        .header("x-github-delivery", "logged-1")
        .header(
            "x-hub-signature-256",
            tokentally::github::signature::sign(&secret, body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 202);
    let finished = next("delivery finished", &mut log);
    let finished: serde_json::Value = serde_json::from_str(&finished).unwrap();
    assert_eq!(finished["level"], "INFO");
    assert_eq!(finished["fields"]["delivery"], "logged-1");
    assert_eq!(finished["fields"]["outcome"], "ignored");
    assert!(terminate(&mut child).success());
    for line in &log {
        assert!(!line.contains('\u{1b}'), "no ANSI escapes: {line:?}");
        if line.starts_with('{') {
            serde_json::from_str::<serde_json::Value>(line).expect("each log line is JSON");
        }
    }
}

/// A database that does not answer is said within seconds, naming where it is.
#[test]
fn an_unreachable_database_is_named_within_seconds() {
    // Accepts connections and never speaks: a PostgreSQL behind a black hole.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let out = tokentally()
        .current_dir(dir.path())
        .env(
            "TOKENTALLY_DATABASE_URL",
            format!("postgres://tokentally:s3cret@127.0.0.1:{port}/prod"),
        )
        .arg("migrate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("PostgreSQL at 127.0.0.1:{port}/prod")),
        "{stderr}"
    );
    assert!(stderr.contains("did not answer within 5 s"), "{stderr}");
    assert!(
        !stderr.contains("s3cret"),
        "no password in messages: {stderr}"
    );
}

#[test]
fn the_config_command_prints_the_configuration_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokentally.toml");
    std::fs::write(
        &file,
        "database_url = \"postgres://u:pw123@127.0.0.1/x\"\nlisten = \"127.0.0.1:23080\"\n\
         [github]\nwebhook_secrets = [\"whsecret123\"]\ntoken = \"ghp_tok123\"\n\
         [discord]\nwebhook_url = \"https://discord.com/api/webhooks/1/discordtok123\"\n",
    )
    .unwrap();
    let (ok, out, err) = crate::support::cli::run_with_config(&file, &["config"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("127.0.0.1:23080") && out.contains("postgres://u:…@127.0.0.1/x"),
        "{out}"
    );
    for secret in ["pw123", "whsecret123", "ghp_tok123", "discordtok123"] {
        assert!(
            !out.contains(secret) && !err.contains(secret),
            "{secret} leaked: {out}"
        );
    }
}
