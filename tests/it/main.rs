//! The one integration-test binary: every module drives the real app.

mod support;

mod browser;
mod cli;
mod dashboard;
mod database;
mod digest;
mod discord_app;
mod edges;
mod fair_play;
mod http_limits;
mod layers;
mod ledger;
mod mirror;
mod openapi;
mod ops;
mod outcomes;
mod periods;
mod pr_comments;
mod reconcile;
mod remotes;
mod report;
mod scan;
mod signals;
mod usage;
mod webhooks;
mod worker;
