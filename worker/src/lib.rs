#![forbid(unsafe_code)]
//! The worker: owns some conversation partitions, runs the pure booking engine for each event,
//! and performs its actions against Redis, the calendar and WhatsApp.

pub mod calendar;
pub mod consumer;
pub mod control;
pub mod convert;
pub mod deadletters;
pub mod fleet;
pub mod handoff;
pub mod holds;
pub mod keys;
pub mod lease;
pub mod membership;
pub mod metrics;
pub mod outbound;
pub mod processor;
pub mod store;

pub use fleet::{WorkerError, run};
