#![forbid(unsafe_code)]
//! The booking conversation engine, as pure functions over data.
//!
//! [`step`] takes a conversation's state, one [`Input`], and a [`StepContext`] (the time, the
//! tenant, a view of availability, the event id) and returns a [`Decision`]: the new state and
//! the [`Action`]s the worker performs. Nothing here reads a clock, draws a random number or
//! touches the network or disk, so the same inputs always give the same decision: a redelivered
//! event replays to the same hold tokens and timer ids, and every behaviour is tested in
//! transcripts that run in microseconds.
//!
//! Invariants:
//! - An action with a business outcome (Hold, Book, CancelBooking, RescheduleBooking) is the
//!   last action of a decision; its result comes back as [`Input::Outcome`].
//! - A conversation holds at most one slot at a time.
//! - A free-form message is only produced inside the 24-hour customer-service window; outside
//!   it the tenant's template for that purpose is sent.
//! - Every [`outbound::OutboundMessage`] satisfies WhatsApp's limits by construction.

pub mod action;
pub mod availability;
pub mod config;
mod engine;
pub mod input;
pub mod outbound;
pub mod state;
pub mod texts;

pub use action::{Action, HandoffContext, HandoffReason};
pub use availability::{AvailabilityView, BuiltinAvailability, Busy, Slot};
pub use config::{ConfigError, ConfigProblem, Tenant, Tenants};
pub use engine::{Decision, StepContext, reminder_timer_id, slot_id, step};
pub use input::{
    CalendarChange, Content, DeliveryStatus, FailureReason, Input, Outcome, TimerKind,
};
pub use outbound::OutboundMessage;
pub use state::{ConversationState, Stage};
