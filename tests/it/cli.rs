//! The `tokentally` binary as a user runs it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn tokentally() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tokentally"));
    // The test runner's own TOKENTALLY_* settings must not leak into the child.
    for (key, _) in std::env::vars() {
        if key.starts_with("TOKENTALLY_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("NO_COLOR", "1");
    cmd
}

/// Waits for the "listening on http://ADDR" log line and returns ADDR; keeps the rest of
/// stderr in `log`.
fn wait_listening(child: &mut Child, log: &mut Vec<String>) -> String {
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
            std::thread::spawn(move || while rx.recv().is_ok() {});
            return addr;
        }
    }
    panic!("server did not start: {log:#?}");
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_writes_a_private_config_serves_and_stops_on_sigterm() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokentally()
        .current_dir(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
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
    let mut child = tokentally()
        .current_dir(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
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
