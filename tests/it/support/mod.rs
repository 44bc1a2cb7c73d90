//! Test helpers: databases on both backends, an app driven through its real router,
//! signed webhook requests.

pub mod browser;
pub mod cli;
pub mod db;
pub mod discord;
pub mod git;
pub mod github;
pub mod pages;
pub mod proxy;
pub mod remotes;
pub mod scenario;

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tokentally::app::App;
use tokentally::config::Config;
use tokentally::github::signature::sign;
use tokentally::secret::Secret;
use tokentally::store::Store;
use tower::ServiceExt;

pub use db::TestDb;

pub const SECRET: &str = "test-webhook-secret";

pub fn test_config(db: &TestDb) -> Config {
    let mut config = Config {
        database_url: db.url.clone(),
        data_dir: db.data_dir(),
        ..Config::default()
    };
    // Fixture payloads name repositories on github.com, which tests never reach;
    // tests of mirrors turn them on with local remotes.
    config.mirrors.enabled = false;
    config.github.webhook_secrets = vec![Secret::new("rotated-out"), Secret::new(SECRET)];
    config.worker.retry_base_ms = 0;
    config
}

/// [`test_config`] with mirrors on, allowed to fetch the test's bare remotes
/// (made in the temp directory).
pub fn mirrors_on(db: &TestDb) -> Config {
    let mut config = test_config(db);
    config.mirrors.enabled = true;
    config.mirrors.allowed_remotes = vec![format!("file://{}/", std::env::temp_dir().display())];
    config
}

/// The service over `db`, with the schema migrated; its worker runs only when a test says so.
pub async fn app(db: &TestDb) -> App {
    app_with(test_config(db)).await
}

pub async fn app_with(config: Config) -> App {
    App::connect(config).await.expect("app starts")
}

pub struct Reply {
    pub status: StatusCode,
    pub json: serde_json::Value,
    pub text: String,
    /// The body as sent (protobuf answers are not text).
    pub bytes: Vec<u8>,
}

/// Sends one request through the app's router (no socket needed).
pub async fn send(app: &App, request: Request<Body>) -> Reply {
    let response = app.router().oneshot(request).await.expect("router answers");
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).to_string();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Reply {
        status,
        json,
        text,
        bytes: bytes.to_vec(),
    }
}

/// A webhook request as GitHub sends it, signed with the test secret.
pub fn webhook(event: &str, delivery: &str, body: impl Into<Vec<u8>>) -> Request<Body> {
    let body = body.into();
    Request::post("/webhooks/github")
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", sign(SECRET, &body))
        .body(Body::from(body))
        .unwrap()
}

pub async fn get(app: &App, path: &str) -> Reply {
    send(app, Request::get(path).body(Body::empty()).unwrap()).await
}

pub fn store(app: &App) -> &Store {
    &app.state.store
}

/// Where the real GitHub webhook payloads are: `TOKENTALLY_TEST_FIXTURES` (a
/// directory of `<event>/<name>.json` files, or the `index.json` of the npm
/// package `@octokit/webhooks-examples`, or that package's folder), else the
/// shared fixture directory beside the repository.
pub fn fixtures_source() -> PathBuf {
    match std::env::var_os("TOKENTALLY_TEST_FIXTURES") {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/github-webhooks"),
    }
}

/// False (and a message) when the real payloads are not on this machine — a
/// fresh clone without the shared fixtures; under CI that is a failure.
pub fn fixtures_available() -> bool {
    let source = fixtures_source();
    if source.exists() {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(
        !ci,
        "the webhook fixtures are missing at {} and CI is set: set TOKENTALLY_TEST_FIXTURES",
        source.display()
    );
    eprintln!(
        "webhook fixtures not found at {} (set TOKENTALLY_TEST_FIXTURES to the payload \
         directory or the npm package @octokit/webhooks-examples): test not run",
        source.display()
    );
    false
}

/// True when the fixtures are the shared set of 273 payloads (exact counts hold).
pub fn fixtures_are_the_shared_set() -> bool {
    std::env::var_os("TOKENTALLY_TEST_FIXTURES").is_none()
}

/// Every fixture payload as (event name, a name for it, body), in a stable order.
pub fn fixtures() -> Vec<(String, String, Vec<u8>)> {
    let source = fixtures_source();
    let index = if source.is_file() {
        Some(source.clone())
    } else {
        Some(source.join("api.github.com/index.json")).filter(|p| p.is_file())
    };
    match index {
        Some(index) => fixtures_from_index(&index),
        None => fixtures_from_dir(&source),
    }
}

/// The npm package's `index.json`: `[{"name": event, "examples": [payload, …]}, …]`.
fn fixtures_from_index(index: &Path) -> Vec<(String, String, Vec<u8>)> {
    let text = std::fs::read_to_string(index)
        .unwrap_or_else(|e| panic!("fixtures at {}: {e}", index.display()));
    let events: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let mut all = Vec::new();
    for event in events {
        let name = event["name"].as_str().unwrap().to_string();
        for (i, example) in event["examples"].as_array().unwrap().iter().enumerate() {
            let action = example["action"].as_str().unwrap_or("payload");
            all.push((
                name.clone(),
                format!("{action}.{i}.json"),
                serde_json::to_vec(example).unwrap(),
            ));
        }
    }
    all
}

fn fixtures_from_dir(root: &Path) -> Vec<(String, String, Vec<u8>)> {
    let mut all = Vec::new();
    let mut events: Vec<_> = std::fs::read_dir(root)
        .unwrap_or_else(|e| {
            panic!(
                "fixtures at {}: {e} (set TOKENTALLY_TEST_FIXTURES to the payload directory \
                 or to the index.json of the npm package @octokit/webhooks-examples)",
                root.display()
            )
        })
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    events.sort();
    for dir in events {
        let event = dir.file_name().unwrap().to_string_lossy().to_string();
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for file in files {
            let name = file.file_name().unwrap().to_string_lossy().to_string();
            all.push((event.clone(), name, std::fs::read(&file).unwrap()));
        }
    }
    all
}

/// The body of the last fixture payload of `event` that `matches` (payloads are
/// picked by content, so the shared directory and the npm package's `index.json`,
/// which names nothing and adds newer examples first, give the same one).
pub fn fixture_where(event: &str, matches: impl Fn(&serde_json::Value) -> bool) -> Vec<u8> {
    fixtures()
        .into_iter()
        .filter(|(e, _, _)| e == event)
        .map(|(_, _, body)| body)
        .rfind(|body| matches(&serde_json::from_slice(body).unwrap()))
        .unwrap_or_else(|| panic!("no {event} fixture matches"))
}

/// No organization or installation block: the plain example of its kind.
pub fn plain(v: &serde_json::Value) -> bool {
    v.get("organization").is_none() && v.get("installation").is_none()
}

/// Waits until `check` holds, asking again every 25 ms; fails after a minute.
/// A wait on a condition, never a guess at how long something takes.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(25));
    loop {
        tick.tick().await;
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
    }
}
