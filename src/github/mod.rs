//! GitHub: webhook signatures and payloads turned into the project's own events.

pub mod client;
pub mod events;
pub mod outcomes;
pub mod repositories;
pub mod settings;
pub mod signature;
