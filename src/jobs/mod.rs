//! Background work: the inbox worker and the handlers it dispatches events to.

pub mod handlers;
pub mod worker;
pub mod schedule;
