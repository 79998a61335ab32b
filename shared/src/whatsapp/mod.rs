//! WhatsApp Cloud API wire types and client (WIRE.md section A).
//!
//! Outbound only: inbound webhooks travel as raw JSON from ingress to the worker.

mod client;
mod error;
mod pacing;
pub mod types;

pub use client::{
    BuildError, ClientConfig, DEFAULT_API_BASE, NO_GRAPH_CODE, RetryPolicy, Sent, WhatsAppClient,
};
pub use error::{ErrorClass, GraphFailure, OUTSIDE_WINDOW, SendError, TransientCause, classify};
pub use pacing::{PacingConfig, TokioClock, TokioInstant};
pub use types::*;
