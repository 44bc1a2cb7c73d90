//! Test helpers: databases on both backends, an app driven through its real router,
//! signed webhook requests.

pub mod db;
pub mod git;
pub mod remotes;

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tokentally::app::App;
use tokentally::config::{Config, Secret};
use tokentally::github::signature::sign;
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
}

/// Sends one request through the app's router (no socket needed).
pub async fn send(app: &App, request: Request<Body>) -> Reply {
    let response = app.router().oneshot(request).await.expect("router answers");
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).to_string();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Reply { status, json, text }
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

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/github-webhooks")
}

/// Every fixture payload as (event name, file name, body).
pub fn fixtures() -> Vec<(String, String, Vec<u8>)> {
    let mut all = Vec::new();
    let root = fixtures_dir();
    let mut events: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("fixtures at {}: {e}", root.display()))
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
