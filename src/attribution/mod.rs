//! Attribution: which commits are AI-assisted, by which agent, of what kind,
//! how large, and which earlier commits they revert or fix.

pub mod agents;
pub mod blame;
pub mod commit;
pub mod diff;
pub mod history;
pub mod identity;
pub mod kind;
pub mod links;
pub mod mirror;
pub mod paths;
pub mod scan;
pub mod trailers;
