//! The token ledger: applies what scoring makes of commits and signals as
//! append-only entries through the store.

pub mod plan;
