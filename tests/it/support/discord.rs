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

/// The tests' Discord application.
pub const APPLICATION_ID: &str = "5550001";
pub const BOT_TOKEN: &str = "bot-token-secret";

/// The test key interactions are signed with.
pub fn signing_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[7u8; 32])
}

/// Its public half, as `discord.public_key` takes it.
pub fn public_key() -> String {
    hex_of(signing_key().verifying_key().as_bytes())
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A request to the interactions endpoint as Discord signs it: Ed25519 over
/// the timestamp followed by the body.
pub fn signed(body: &Value, timestamp_s: i64) -> axum::http::Request<axum::body::Body> {
    use ed25519_dalek::Signer;
    let body = body.to_string();
    let timestamp = timestamp_s.to_string();
    let signature = signing_key().sign(format!("{timestamp}{body}").as_bytes());
    axum::http::Request::post("/discord/interactions")
        .header("content-type", "application/json")
        .header("x-signature-ed25519", hex_of(&signature.to_bytes()))
        .header("x-signature-timestamp", timestamp)
        .body(axum::body::Body::from(body))
        .unwrap()
}

/// A slash command `name` with `options` from Discord user `user` holding `roles`.
pub fn command(id: &str, name: &str, options: Value, user: &str, roles: &[&str]) -> Value {
    json!({
        "id": id, "type": 2, "token": format!("interaction-token-{id}"),
        "application_id": APPLICATION_ID,
        "member": {"user": {"id": user, "username": "someone"}, "roles": roles},
        "data": {"id": "1", "name": name, "type": 1, "options": options}
    })
}

/// A press of the button `custom_id`.
pub fn button(id: &str, custom_id: &str, user: &str, roles: &[&str]) -> Value {
    json!({
        "id": id, "type": 3, "token": format!("interaction-token-{id}"),
        "application_id": APPLICATION_ID,
        "member": {"user": {"id": user}, "roles": roles},
        "data": {"custom_id": custom_id, "component_type": 2}
    })
}

/// Answers one kind of request and tells the test each time it came.
pub struct Notifying {
    pub answer: ResponseTemplate,
    pub seen: tokio::sync::mpsc::UnboundedSender<wiremock::Request>,
}

impl wiremock::Respond for Notifying {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let _ = self.seen.send(request.clone());
        self.answer.clone()
    }
}
