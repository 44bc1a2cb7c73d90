//! Background work: the inbox worker and the handlers it dispatches events to.

pub mod handlers;
pub mod reconcile;
pub mod schedule;
pub mod worker;
