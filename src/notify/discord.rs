//! Sends a webhook message to Discord. serenity builds the request (the
//! webhook route, `wait=true`, the multipart body with `payload_json` and
//! `files[0]`) against `discord.api_url`; this module sends it and reads the
//! answer itself, because serenity's errors drop `retry_after` and carry the
//! webhook URL, which is a secret.
//!
//! - 2xx: sent, with the message id.
//! - 429: waits `retry_after` (float seconds, body or `Retry-After` header,
//!   global or not) and tries again.
//! - 5xx and network errors: retried with back-off, a few times per call.
//! - 404 / 401: the webhook is gone or its token wrong: the destination is
//!   disabled, never retried.
//! - other 4xx: rejected, with Discord's message.

use std::time::Duration;

use serenity::builder::{CreateAttachment, ExecuteWebhook};
use serenity::http::{LightMethod, Multipart, MultipartUpload, Request, Route};
use serenity::model::id::WebhookId;

use crate::config::WebhookTarget;
use crate::metrics::Metrics;

/// Attempts within one send (the outbox retries later beyond these).
const ATTEMPTS_PER_SEND: u32 = 4;
/// A `retry_after` longer than this is left to the outbox's next attempt.
const LONGEST_WAIT: Duration = Duration::from_secs(60);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq)]
pub enum Sent {
    /// Discord's id of the new message.
    Message(String),
    /// Not sent yet: try again after the wait.
    Retry { after: Duration, error: String },
    /// 404/401: the webhook does not exist (any more) or its token is wrong.
    Disabled(String),
    /// Another 4xx: Discord refused the message.
    Rejected(String),
}

#[derive(Clone)]
pub struct DiscordClient {
    http: reqwest012::Client,
    api_url: String,
    retry_base: Duration,
    metrics: std::sync::Arc<Metrics>,
}

impl DiscordClient {
    pub fn new(
        api_url: &str,
        retry_base: Duration,
        metrics: std::sync::Arc<Metrics>,
    ) -> DiscordClient {
        let http = reqwest012::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            // A redirect would carry the webhook token elsewhere.
            .redirect(reqwest012::redirect::Policy::none())
            .build()
            .expect("the HTTP client's settings are valid");
        DiscordClient {
            http,
            api_url: api_url.trim_end_matches('/').to_string(),
            retry_base,
            metrics,
        }
    }

    /// Sends `payload` (with `png` as `files[0]` when given) to `target`.
    pub async fn send(
        &self,
        target: &WebhookTarget,
        payload: &ExecuteWebhook,
        png: Option<&[u8]>,
    ) -> Sent {
        self.send_or_edit(target, payload, png, None).await
    }

    /// Edits the webhook's message `message_id` in place (`PATCH
    /// /webhooks/{id}/{token}/messages/{message_id}`): its embeds, and its
    /// chart replaced by `png` when given.
    pub async fn edit(
        &self,
        target: &WebhookTarget,
        payload: &ExecuteWebhook,
        png: Option<&[u8]>,
        message_id: &str,
    ) -> Sent {
        self.send_or_edit(target, payload, png, Some(message_id))
            .await
    }

    async fn send_or_edit(
        &self,
        target: &WebhookTarget,
        payload: &ExecuteWebhook,
        png: Option<&[u8]>,
        edit: Option<&str>,
    ) -> Sent {
        let mut value = match serde_json::to_value(payload) {
            Ok(value) => value,
            Err(e) => return Sent::Rejected(format!("the message could not be encoded: {e}")),
        };
        if let (Some(_), Some(map)) = (edit, value.as_object_mut()) {
            // An edit keeps only the attachments listed: the new chart alone.
            let keep = match png {
                Some(_) => {
                    serde_json::json!([{"id": 0, "filename": crate::digest::discord::CHART_FILE}])
                }
                None => serde_json::json!([]),
            };
            map.insert("attachments".to_string(), keep);
        }
        let json = value.to_string();
        let mut last_error = String::new();
        let mut backoff = self.retry_base;
        for attempt in 1..=ATTEMPTS_PER_SEND {
            let wait = match self.attempt(target, &json, png, edit).await {
                Attempt::Done(sent) => return sent,
                Attempt::RateLimited(after, error) => {
                    if after > LONGEST_WAIT {
                        return Sent::Retry { after, error };
                    }
                    last_error = error;
                    after
                }
                Attempt::Failed(error) => {
                    last_error = error;
                    let wait = backoff;
                    backoff *= 2;
                    wait
                }
            };
            if attempt < ATTEMPTS_PER_SEND {
                tokio::time::sleep(wait).await;
            }
        }
        Sent::Retry {
            after: backoff,
            error: last_error,
        }
    }

    async fn attempt(
        &self,
        target: &WebhookTarget,
        json: &str,
        png: Option<&[u8]>,
        edit: Option<&str>,
    ) -> Attempt {
        let webhook_id = WebhookId::new(target.id);
        let token = target.token.expose();
        let mut request = match edit
            .and_then(|id| id.parse::<u64>().ok())
            .filter(|id| *id != 0)
        {
            Some(message_id) => Request::new(
                Route::WebhookMessage {
                    webhook_id,
                    token,
                    message_id: serenity::model::id::MessageId::new(message_id),
                },
                LightMethod::Patch,
            ),
            None if edit.is_some() => {
                return Attempt::Done(Sent::Rejected(
                    "the posted message's id is unknown: it cannot be edited".into(),
                ));
            }
            None => Request::new(
                Route::WebhookWithToken { webhook_id, token },
                LightMethod::Post,
            )
            .params(Some(vec![("wait", "true".to_string())])),
        };
        request = match png {
            Some(png) => request.multipart(Some(Multipart {
                upload: MultipartUpload::Attachments(vec![CreateAttachment::bytes(
                    png.to_vec(),
                    crate::digest::discord::CHART_FILE,
                )]),
                payload_json: Some(json.to_string()),
                fields: vec![],
            })),
            None => request.body(Some(json.as_bytes().to_vec())),
        };
        // No bot token: a webhook's own token (in its path) authorises it.
        let built = match request.build(&self.http, "", Some(&self.api_url)) {
            Ok(b) => b,
            Err(_) => {
                return Attempt::Done(Sent::Rejected("the request could not be built".into()));
            }
        };
        let response = match built.send().await {
            Ok(r) => r,
            Err(e) => {
                self.metrics.discord_request("network");
                // Without the URL: it holds the webhook token.
                return Attempt::Failed(format!("Discord did not answer: {}", e.without_url()));
            }
        };
        let status = response.status();
        let (header_wait, body) = read_answer(response).await;
        let message = body["message"].as_str().unwrap_or("").to_string();
        match status.as_u16() {
            200..=299 => {
                self.metrics.discord_request("sent");
                match body["id"].as_str() {
                    Some(id) => Attempt::Done(Sent::Message(id.to_string())),
                    // wait=true makes Discord answer with the message; a 204 has none.
                    None => Attempt::Done(Sent::Message(String::new())),
                }
            }
            429 => {
                self.metrics.discord_request("rate_limited");
                let seconds = retry_after(&body, header_wait);
                let scope = if body["global"].as_bool() == Some(true) {
                    "global"
                } else {
                    "webhook"
                };
                Attempt::RateLimited(
                    Duration::from_secs_f64(seconds),
                    format!("rate limited ({scope}) for {seconds} s"),
                )
            }
            404 | 401 => {
                self.metrics.discord_request("disabled");
                Attempt::Done(Sent::Disabled(format!(
                    "Discord answered {status} for this webhook ({})",
                    if message.is_empty() {
                        "no message"
                    } else {
                        &message
                    }
                )))
            }
            500..=599 => {
                self.metrics.discord_request("server_error");
                Attempt::Failed(format!("Discord answered {status}"))
            }
            _ => {
                self.metrics.discord_request("rejected");
                Attempt::Done(Sent::Rejected(format!(
                    "Discord answered {status}: {}",
                    if message.is_empty() {
                        body.to_string()
                    } else {
                        format!("{message} {}", body["errors"])
                    }
                )))
            }
        }
    }
}

/// An answer's `Retry-After` header (seconds) and its JSON body (null when none).
async fn read_answer(response: reqwest012::Response) -> (Option<f64>, serde_json::Value) {
    let header_wait = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok());
    let body = match response.bytes().await {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        Err(_) => serde_json::Value::Null,
    };
    (header_wait, body)
}

/// How long a 429 asks to wait: the body's `retry_after` (float seconds),
/// else the header, else a second; never negative, at most a day.
fn retry_after(body: &serde_json::Value, header_wait: Option<f64>) -> f64 {
    body["retry_after"]
        .as_f64()
        .or(header_wait)
        .unwrap_or(1.0)
        .clamp(0.0, 86_400.0)
}

enum Attempt {
    Done(Sent),
    RateLimited(Duration, String),
    Failed(String),
}

/// What a call of Discord's API with the bot token (or an interaction's
/// token) came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Called {
    /// 2xx, with the answer's JSON (null for a 204).
    Done(serde_json::Value),
    /// Rate limited or failing: try again after the wait.
    Retry { after: Duration, error: String },
    /// Discord refused it (4xx other than 429), with its message.
    Rejected(String),
}

impl DiscordClient {
    /// `method route` with a JSON `body`, authorised by `authorization`
    /// (`Bot …`, or empty where the route's token authorises it). A 429 is
    /// waited out (up to a minute) and retried, as are 5xx and network
    /// errors, a few times; the token never appears in an error.
    pub async fn call(
        &self,
        method: LightMethod,
        route: Route<'_>,
        body: Option<&serde_json::Value>,
        authorization: &str,
    ) -> Called {
        let bytes = body.map(|b| b.to_string().into_bytes());
        let mut backoff = self.retry_base;
        let mut last_error = String::new();
        for attempt in 1..=ATTEMPTS_PER_SEND {
            let request = Request::new(route, method).body(bytes.clone());
            let built = match request.build(&self.http, authorization, Some(&self.api_url)) {
                Ok(b) => b,
                Err(_) => return Called::Rejected("the request could not be built".into()),
            };
            let wait = match built.send().await {
                Err(e) => {
                    self.metrics.discord_request("network");
                    last_error = format!("Discord did not answer: {}", e.without_url());
                    let wait = backoff;
                    backoff *= 2;
                    wait
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    let (header_wait, body) = read_answer(response).await;
                    match status {
                        200..=299 => {
                            self.metrics.discord_request("sent");
                            return Called::Done(body);
                        }
                        429 => {
                            self.metrics.discord_request("rate_limited");
                            let seconds = retry_after(&body, header_wait);
                            let after = Duration::from_secs_f64(seconds);
                            last_error = format!("rate limited for {seconds} s");
                            if after > LONGEST_WAIT {
                                return Called::Retry {
                                    after,
                                    error: last_error,
                                };
                            }
                            after
                        }
                        500..=599 => {
                            self.metrics.discord_request("server_error");
                            last_error = format!("Discord answered {status}");
                            let wait = backoff;
                            backoff *= 2;
                            wait
                        }
                        _ => {
                            self.metrics.discord_request("rejected");
                            return Called::Rejected(format!(
                                "Discord answered {status}: {}",
                                body["message"].as_str().unwrap_or("no message")
                            ));
                        }
                    }
                }
            };
            if attempt < ATTEMPTS_PER_SEND {
                tokio::time::sleep(wait).await;
            }
        }
        Called::Retry {
            after: backoff,
            error: last_error,
        }
    }
}
