//! Background work: the inbox worker, the handlers it dispatches events to,
//! the mirror sync they share with the reconcile loop, and the scheduler.

pub mod context;
pub mod handlers;
pub mod outcome;
pub mod reconcile;
pub mod schedule;
pub mod sync;
pub mod usage;
pub mod worker;
