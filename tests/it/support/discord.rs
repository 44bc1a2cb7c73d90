//! A mock Discord: a local HTTP server (wiremock) answering webhook executions,
//! and a reader of the multipart bodies it received.

use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const WEBHOOK_ID: u64 = 112233;
pub const WEBHOOK_TOKEN: &str = "webhook-token-secret";

/// The webhook URL a destination is configured with (the host is replaced by `discord.api_url`).
pub fn webhook_url() -> String {
    format!("https://discord.com/api/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}")
}

/// What serenity's route asks for.
pub fn webhook_path() -> String {
    format!("/api/v10/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}")
}

pub async fn start() -> MockServer {
    MockServer::start().await
}

/// Answers `first` to the first `times` executions (higher priority than [`accept`]).
pub async fn answer_first(server: &MockServer, times: u64, first: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path(webhook_path()))
        .respond_with(first)
        .up_to_n_times(times)
        .with_priority(1)
        .mount(server)
        .await;
}

/// Answers every execution with a created message (`wait=true` asked for).
pub async fn accept(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path(webhook_path()))
        .and(query_param("wait", "true"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "998877665544", "type": 0, "content": ""})),
        )
        .with_priority(5)
        .mount(server)
        .await;
}

/// The webhook executions received so far.
pub async fn executions(server: &MockServer) -> Vec<wiremock::Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == webhook_path())
        .collect()
}

/// One part of a multipart body: its name, file name and bytes.
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub body: Vec<u8>,
}

/// The parts of a `multipart/form-data` request.
pub fn parts(request: &wiremock::Request) -> Vec<Part> {
    let content_type = request
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let boundary = content_type
        .split("boundary=")
        .nth(1)
        .unwrap_or_else(|| panic!("not multipart: {content_type}"))
        .trim_matches('"')
        .to_string();
    let delimiter = format!("--{boundary}").into_bytes();
    let body = &request.body;
    let mut starts = Vec::new();
    let mut i = 0;
    while i + delimiter.len() <= body.len() {
        if body[i..].starts_with(&delimiter) {
            starts.push(i);
            i += delimiter.len();
        } else {
            i += 1;
        }
    }
    let mut out = Vec::new();
    for pair in starts.windows(2) {
        let chunk = &body[pair[0] + delimiter.len()..pair[1]];
        let chunk = chunk.strip_prefix(b"\r\n").unwrap_or(chunk);
        let split = chunk
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("part headers end");
        let headers = String::from_utf8_lossy(&chunk[..split]).to_string();
        let mut content = chunk[split + 4..].to_vec();
        if content.ends_with(b"\r\n") {
            content.truncate(content.len() - 2);
        }
        let field = |key: &str| {
            headers
                .split(';')
                .map(str::trim)
                .find_map(|kv| kv.strip_prefix(&format!("{key}=\"")))
                .map(|v| v.split('"').next().unwrap_or_default().to_string())
        };
        out.push(Part {
            name: field("name").unwrap_or_default(),
            filename: field("filename"),
            body: content,
        });
    }
    out
}

/// The message of an execution: its `payload_json` part when multipart (a
/// chart attached), else the JSON body.
pub fn payload(request: &wiremock::Request) -> Value {
    let multipart = request
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/"));
    if !multipart {
        return serde_json::from_slice(&request.body).expect("a JSON body");
    }
    let parts = parts(request);
    let part = parts
        .iter()
        .find(|p| p.name == "payload_json")
        .expect("a payload_json part");
    serde_json::from_slice(&part.body).expect("payload_json is JSON")
}
