#![forbid(unsafe_code)]
//! What every binary of the fleet shares: the event envelope, configuration, telemetry,
//! AMQP topology and publishing, and the clients of the outside world.

pub mod amqp;
pub mod calcom;
pub mod config;
pub mod envelope;
pub mod partition;
pub mod redis;
pub mod shutdown;
pub mod telemetry;
pub mod timers;
pub mod whatsapp;
