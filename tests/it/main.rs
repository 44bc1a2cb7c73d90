//! The one integration-test binary: every module drives the real app.

mod support;

mod cli;
mod ops;
mod webhooks;
mod worker;
