//! `POST /discord/interactions`: Discord's calls to the application. Every
//! request's Ed25519 signature (over timestamp + body, with
//! `discord.public_key`) is checked before anything else is read; a
//! timestamp more than 5 minutes off is refused too (a replayed request).
//! An answer not ready within `discord.answer_within_ms` is deferred and
//! sent as an edit of the original response when it is.

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serenity::http::{LightMethod, Route};
use serenity::interactions_endpoint::Verifier;
use serenity::model::id::ApplicationId;

use super::AppState;
use super::error::ApiError;
use super::rate_limit::RateLimiter;
use crate::chat::Chat;
use crate::chat::commands::{answer, is_private};
use crate::chat::interaction::{Interaction, PING, Reply, deferred, pong};
use crate::notify::discord::Called;

/// Interactions are small; Discord's are a few KiB.
const MAX_INTERACTION_BODY: usize = 64 * 1024;
/// How far a request's timestamp may be from now.
const MAX_SKEW_SECONDS: i64 = 300;

/// The endpoint: who answers, the key that signs, and the per-user limit.
pub struct Endpoint {
    pub chat: Chat,
    verifier: Verifier,
    limiter: RateLimiter,
}

impl Endpoint {
    /// The endpoint, when `discord.public_key` is set (checked when config loads).
    pub fn from_config(chat: Chat) -> Option<Endpoint> {
        let key = chat.config.discord.public_key.as_deref()?;
        let bytes = <[u8; 32]>::try_from(hex::decode(key.trim()).ok()?).ok()?;
        let verifier = Verifier::try_new(bytes).ok()?;
        let limiter = RateLimiter::new(chat.config.discord.interactions_per_minute);
        Some(Endpoint {
            chat,
            verifier,
            limiter,
        })
    }
}

pub async fn interactions(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match interaction(&state, &headers, body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "bad_signature", message)
}

async fn interaction(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let Some(endpoint) = state.discord.clone() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "the Discord application is not set up here (discord.public_key)",
        ));
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let (signature, timestamp) = (
        header("x-signature-ed25519"),
        header("x-signature-timestamp"),
    );
    if signature.is_empty() || timestamp.is_empty() {
        return Err(unauthorized(
            "X-Signature-Ed25519 and X-Signature-Timestamp are required",
        ));
    }
    let read = state
        .body_limits
        .read(headers, body, MAX_INTERACTION_BODY)
        .await?;
    if endpoint
        .verifier
        .verify(signature, timestamp, &read.bytes)
        .is_err()
    {
        return Err(unauthorized(
            "the signature does not match the application's public key",
        ));
    }
    let now_seconds = state.clock.now_ms().div_euclid(1000);
    match timestamp.parse::<i64>() {
        Ok(t) if (now_seconds - t).abs() <= MAX_SKEW_SECONDS => {}
        _ => {
            return Err(unauthorized(
                "the request's timestamp is more than 5 minutes off",
            ));
        }
    }
    let value: serde_json::Value = serde_json::from_slice(&read.bytes)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("not an interaction: {e}")))?;
    let Some(i) = Interaction::parse(&value) else {
        return Err(ApiError::bad_request(
            "invalid_interaction",
            "an interaction has a type",
        ));
    };
    if i.kind == PING {
        return Ok(Json(pong()).into_response());
    }
    let user = i.user_id.clone().unwrap_or_default();
    if let Err(wait) = endpoint.limiter.check(&user) {
        let reply = Reply::private(format!("Slow down: try again in {wait} s."));
        return Ok(Json(reply.response()).into_response());
    }
    let private = is_private(&i);
    let worker = {
        let (endpoint, i) = (endpoint.clone(), i.clone());
        tokio::spawn(async move { reply_to(&endpoint.chat, &i).await })
    };
    let within = Duration::from_millis(endpoint.chat.config.discord.answer_within_ms);
    // A button's answer replaces its message: always answered in place.
    let mut worker = worker;
    let finished = if i.command.is_none() {
        Some((&mut worker).await)
    } else if within.is_zero() {
        // No budget: always deferred (a timeout of zero would still take an
        // answer that happened to be ready at once).
        None
    } else {
        tokio::time::timeout(within, &mut worker).await.ok()
    };
    match finished {
        Some(done) => {
            let reply = done.unwrap_or_else(|_| failed());
            Ok(Json(reply.response()).into_response())
        }
        None => {
            // Too slow for Discord's 3 s: "thinking…" now, the answer when ready.
            tokio::spawn(async move {
                let reply = worker.await.unwrap_or_else(|_| failed());
                follow_up(&endpoint.chat, &i, &reply).await;
            });
            Ok(Json(deferred(private)).into_response())
        }
    }
}

/// The answer, or a private apology when the ledger could not be read.
async fn reply_to(chat: &Chat, i: &Interaction) -> Reply {
    match answer(chat, i).await {
        Ok(reply) => reply,
        Err(e) => {
            tracing::error!(error = %e, command = ?i.command, "a Discord command could not be answered");
            failed()
        }
    }
}

fn failed() -> Reply {
    Reply::private("tokentally could not read its ledger just now; try again in a minute.")
}

/// Edits the deferred response into the answer.
async fn follow_up(chat: &Chat, i: &Interaction, reply: &Reply) {
    let application = chat
        .config
        .discord
        .application_id
        .clone()
        .unwrap_or_else(|| i.application_id.clone());
    let Ok(application) = application.parse::<u64>() else {
        tracing::error!("a deferred Discord answer has no application id to go under");
        return;
    };
    let route = Route::WebhookOriginalInteractionResponse {
        application_id: ApplicationId::new(application),
        token: &i.token,
    };
    match chat
        .client
        .call(LightMethod::Patch, route, Some(&reply.message()), "")
        .await
    {
        Called::Done(_) => {}
        Called::Retry { error, .. } | Called::Rejected(error) => {
            tracing::warn!(error = %error, "a deferred Discord answer could not be sent");
        }
    }
}
