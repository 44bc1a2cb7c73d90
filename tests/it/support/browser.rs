//! A headless Chromium (Debian's `chromium`) driven over the DevTools
//! protocol: navigate, evaluate, screenshot, and collect console errors.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct Browser {
    child: Child,
    socket: Socket,
    next_id: u64,
    /// Console errors, uncaught exceptions and failed loads seen so far.
    pub errors: Vec<String>,
    /// Every URL the pages requested.
    pub requests: Vec<String>,
    /// Page loads completed so far (`Page.loadEventFired`).
    loads: u64,
    /// `loads` when the page was marked as left.
    left_at: u64,
    _profile: tempfile::TempDir,
}

/// The chromium binary, if installed.
pub fn chromium() -> Option<String> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find(|name| {
            Command::new(name)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .map(|s| s.to_string())
}

impl Browser {
    pub async fn start(binary: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(binary)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--disable-extensions",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1100,800",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium starts");
        // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID"
        let stderr = child.stderr.take().unwrap();
        let url = tokio::task::spawn_blocking(move || {
            let mut lines = BufReader::new(stderr).lines();
            let url = lines
                .by_ref()
                .map_while(Result::ok)
                .find_map(|l| l.split("DevTools listening on ").nth(1).map(str::to_string))
                .expect("chromium says where DevTools listen");
            // Keep draining, so chromium never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            url
        })
        .await
        .unwrap();
        let port = url.split(':').nth(2).unwrap().split('/').next().unwrap();
        let targets: Value = reqwest::get(format!("http://127.0.0.1:{port}/json/list"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let page = targets
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == "page")
            .expect("a page target");
        let ws = page["webSocketDebuggerUrl"].as_str().unwrap();
        let (socket, _) = tokio_tungstenite::connect_async(ws).await.unwrap();
        let mut browser = Browser {
            child,
            socket,
            next_id: 0,
            errors: Vec::new(),
            requests: Vec::new(),
            loads: 0,
            left_at: 0,
            _profile: profile,
        };
        for method in [
            "Page.enable",
            "Runtime.enable",
            "Log.enable",
            "Network.enable",
        ] {
            browser.call(method, json!({})).await;
        }
        browser
            .call(
                "Emulation.setDeviceMetricsOverride",
                json!({"width": 1100, "height": 800, "deviceScaleFactor": 1, "mobile": false}),
            )
            .await;
        browser
    }

    /// Sends one command and waits for its answer (recording events meanwhile).
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({"id": id, "method": method, "params": params}).to_string();
        self.socket.send(Message::text(message)).await.unwrap();
        loop {
            let value = self.next_message(method).await;
            if value["id"] == id {
                if let Some(error) = value.get("error") {
                    panic!("{method}: {error}");
                }
                return value["result"].clone();
            }
            self.observe(&value);
        }
    }

    /// The next message from the browser (an answer or an event).
    async fn next_message(&mut self, waiting_for: &str) -> Value {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(30), self.socket.next())
                .await
                .unwrap_or_else(|_| {
                    panic!("nothing from the browser while waiting for {waiting_for}")
                })
                .expect("the socket is open")
                .unwrap();
            if let Message::Text(text) = message {
                return serde_json::from_str(&text).unwrap();
            }
        }
    }

    fn observe(&mut self, event: &Value) {
        let params = &event["params"];
        match event["method"].as_str() {
            Some("Page.loadEventFired") => self.loads += 1,
            Some("Runtime.consoleAPICalled") if params["type"] == "error" => {
                self.errors
                    .push(format!("console.error: {}", params["args"]));
            }
            Some("Runtime.exceptionThrown") => {
                self.errors
                    .push(format!("exception: {}", params["exceptionDetails"]));
            }
            Some("Network.requestWillBeSent") => {
                if let Some(url) = params["request"]["url"].as_str() {
                    self.requests.push(url.to_string());
                }
            }
            Some("Log.entryAdded") if params["entry"]["level"] == "error" => {
                self.errors.push(format!(
                    "{}: {}",
                    params["entry"]["text"], params["entry"]["url"]
                ));
            }
            _ => {}
        }
    }

    /// Evaluates `expression` in the page; returns its value (JSON).
    pub async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        if let Some(e) = result.get("exceptionDetails") {
            panic!("{expression}: {e}");
        }
        result["result"]["value"].clone()
    }

    /// Waits until a page loads after the mark [`Browser::leaving`] set (on
    /// the browser's own load event, never a guess at a time), then checks it
    /// is at a path satisfying `is_there`.
    pub async fn wait_for(&mut self, what: &str, is_there: impl Fn(&str) -> bool) {
        while self.loads <= self.left_at {
            let event = self.next_message(what).await;
            self.observe(&event);
        }
        let at = self.eval("location.pathname + location.search").await;
        let at = at.as_str().unwrap_or_default();
        assert!(is_there(at), "expected {what}, the browser is at {at}");
    }

    /// Marks the current page, so [`Browser::wait_for`] waits for the next one.
    pub fn leaving(&mut self) {
        self.left_at = self.loads;
    }

    /// Loads `url` (wherever it redirects to).
    pub async fn goto(&mut self, url: &str) {
        self.leaving();
        self.call("Page.navigate", json!({"url": url})).await;
        self.wait_for(url, |_| true).await;
    }

    /// Saves a PNG of the page.
    pub async fn screenshot(&mut self, file: &std::path::Path) {
        use base64::Engine;
        let shot = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
