//! Attribution: which commits are AI-assisted, by which agent, of what kind,
//! how large, and which earlier commits they revert or fix.

pub mod agents;
pub mod kind;
pub mod trailers;
