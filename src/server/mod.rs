//! The HTTP side: router, shared state, handlers. Handlers verify, store and answer;
//! everything slow happens in the worker.

pub mod access;
pub mod body;
pub mod commits;
pub mod discord;
pub mod error;
pub mod extract;
pub mod headers;
pub mod ledger;
pub mod listener;
pub mod openapi;
pub mod ops;
pub mod rate_limit;
pub mod signals;
pub mod usage;
pub mod webhook;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::config::Config;
use crate::group_commit::GroupCommit;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::store::deliveries::{Inserted, NewDelivery};
use crate::store::signals::{NewSignal, SignalInsert};
use rate_limit::RateLimiter;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    /// Durable intake of webhook deliveries.
    pub inbox: GroupCommit<NewDelivery, Inserted>,
    /// Durable intake of CI signals.
    pub signals: GroupCommit<NewSignal, SignalInsert>,
    pub rate_limiter: Arc<RateLimiter>,
    /// Wakes the counting of stored OTLP batches.
    pub usage_wake: Arc<tokio::sync::Notify>,
    /// Telemetry tokens' own limit (`usage.rate_limit_per_minute`).
    pub telemetry_rate_limiter: Arc<RateLimiter>,
    /// Size, time and concurrency limits for request bodies.
    pub body_limits: body::BodyLimits,
    /// Background tasks' problems, for `/readyz`.
    pub health: Arc<crate::health::Health>,
    pub ledger: crate::ledger::Ledger,
    pub clock: Arc<dyn crate::clock::Clock>,
    /// Keeps pull requests' comments (none without GitHub credentials or with them off).
    pub pr_comments: Option<Arc<crate::notify::pr_comment::PrCommenter>>,
    /// This instance's name on the leases it takes.
    pub lease_owner: String,
    /// The Discord application's endpoint (none without `discord.public_key`).
    pub discord: Option<Arc<discord::Endpoint>>,
}

/// The webhook, API and operational routes. (`app.rs` puts the dashboard's
/// pages beside them and wraps both in [`with_limits`].)
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/webhooks/github", post(webhook::receive))
        .route("/discord/interactions", post(discord::interactions))
        .route("/api/v1/signals", post(signals::post_signal))
        .route("/api/v1/commits/{*path}", get(commits::commits_route))
        .route("/api/v1/repos/{*path}", get(commits::repos_route))
        .route("/api/v1/leaderboard", get(ledger::leaderboard))
        .route("/api/v1/payouts", get(ledger::payouts))
        .route("/api/v1/statements", get(ledger::statements))
        .route("/api/v1/people/{person}/balance", get(ledger::balance))
        .route("/api/v1/people/{person}/ledger", get(ledger::person_ledger))
        .route("/api/v1/redemptions", post(ledger::redeem))
        .route("/v1/metrics", post(usage::receive_metrics))
        .route("/api/v1/usage", get(usage::usage))
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
}

/// What every request meets, whichever route answers it: body limits and the
/// body timeout, security headers, and latency metrics per route.
pub fn with_limits(routes: Router<AppState>, state: AppState) -> Router {
    routes
        // Bodies are limited by `body::guard_bodies` (per route, with a timeout),
        // not by the framework's fixed 2 MB.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(
            state.body_limits.clone(),
            body::guard_bodies,
        ))
        .layer(axum::middleware::from_fn_with_state(
            headers::Https(
                state
                    .config
                    .public_url
                    .as_deref()
                    .is_some_and(|u| u.starts_with("https://")),
            ),
            headers::security_headers,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ops::record_latency,
        ))
        .with_state(state)
}
