#![forbid(unsafe_code)]
//! The worker: owns some conversation partitions, runs the pure booking engine for each event,
//! and performs its actions against Redis, the calendar and WhatsApp.

pub mod calendar;
pub mod convert;
pub mod holds;
pub mod keys;
pub mod membership;
pub mod outbound;
pub mod store;
pub mod processor;
pub mod handoff;
pub mod metrics;
pub mod consumer;
pub mod fleet;

pub use fleet::{WorkerError, run};
