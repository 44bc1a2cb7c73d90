//! tokentally: pays engineers for AI-assisted work that holds up.
//!
//! Data flows one way: ingress (webhooks, CI signals) stores what arrives, a
//! worker processes the inbox, and later stages attribute, score and report.

pub mod api_token;
pub mod app;
pub mod attribution;
pub mod chat;
pub mod cli;
pub mod clock;
pub mod config;
pub mod dashboard;
pub mod digest;
pub mod git;
pub mod github;
pub mod group_commit;
pub mod health;
pub mod jobs;
pub mod ledger;
pub mod memory;
pub mod metrics;
pub mod notify;
pub mod scoring;
pub mod secret;
pub mod server;
pub mod store;
