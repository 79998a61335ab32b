//! What the engine asks the worker to do.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use lang::Lang;
use serde::{Deserialize, Serialize};

use crate::availability::Slot;
use crate::input::TimerKind;
use crate::outbound::OutboundMessage;
use crate::state::Turn;

/// One effect, performed by the worker in order. Hold, Book, CancelBooking and
/// RescheduleBooking are always last in a decision: the worker performs them and calls the
/// engine again with the [`crate::Outcome`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Send a message to the customer.
    Send(OutboundMessage),
    /// Mark the customer's message read (blue ticks), so they see it was received.
    MarkRead { message_id: String },
    /// Take the slot lock; answer with `Outcome::Held` or `Outcome::HoldRejected`.
    Hold {
        slot: Slot,
        /// Lock value; also the booking's idempotency key.
        token: String,
        /// Lock lifetime; slightly longer than the hold the customer is told about, so the
        /// expiry timer, not the lock, ends the hold.
        ttl_seconds: u64,
    },
    /// Release the slot lock if it still carries `token`.
    ReleaseHold { slot: Slot, token: String },
    /// Create the booking; answer with `Outcome::Booked` or `Outcome::BookFailed`.
    Book {
        slot: Slot,
        /// Idempotency key: a replay after a crash must not book twice.
        token: String,
        /// Attendee name for the calendar.
        customer_name: Option<String>,
        /// Attendee language, for the calendar's own e-mails.
        lang: Lang,
    },
    /// Cancel the booking; answer with `Outcome::Cancelled` or `Outcome::CancelFailed`.
    CancelBooking { booking_id: String },
    /// Move the booking to `slot`; answer with `Outcome::Rescheduled` or
    /// `Outcome::RescheduleFailed`.
    RescheduleBooking {
        booking_id: String,
        slot: Slot,
        /// Idempotency key for the move.
        token: String,
    },
    /// Fire `kind` at `due`. Scheduling an existing id replaces it.
    ScheduleTimer {
        id: String,
        due: DateTime<Utc>,
        kind: TimerKind,
    },
    /// Forget a timer; unknown ids are fine.
    CancelTimer { id: String },
    /// Tell a person to take over.
    Handoff {
        reason: HandoffReason,
        context: HandoffContext,
    },
    /// Count a funnel event.
    Metric {
        name: String,
        labels: BTreeMap<String, String>,
    },
}

impl Action {
    /// Whether the worker must feed an outcome back after performing this action.
    pub fn expects_outcome(&self) -> bool {
        matches!(
            self,
            Action::Hold { .. }
                | Action::Book { .. }
                | Action::CancelBooking { .. }
                | Action::RescheduleBooking { .. }
        )
    }
}

/// Why a person was asked to take over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum HandoffReason {
    /// The customer asked for a person.
    Requested,
    /// Two messages in a row were not understood.
    Misunderstood,
    /// The calendar failed to book, move or cancel.
    CalendarFailed,
    /// The calendar did not answer, even after retries: its times are unknown, and a
    /// booking attempt may or may not have gone through.
    CalendarUnreachable,
    /// No free time anywhere near what was asked.
    NoAvailability,
    /// WhatsApp refused a message permanently (Graph error code).
    DeliveryFailed { code: u32 },
}

impl HandoffReason {
    pub fn name(&self) -> &'static str {
        match self {
            HandoffReason::Requested => "requested",
            HandoffReason::Misunderstood => "misunderstood",
            HandoffReason::CalendarFailed => "calendar_failed",
            HandoffReason::CalendarUnreachable => "calendar_unreachable",
            HandoffReason::NoAvailability => "no_availability",
            HandoffReason::DeliveryFailed { .. } => "delivery_failed",
        }
    }
}

/// What a person needs to continue without asking the customer again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandoffContext {
    /// The recent conversation, oldest first.
    pub transcript: Vec<Turn>,
    /// One line on where the conversation stood.
    pub summary: String,
    /// What is known: service, requested time, held slot, booking, language, name.
    pub entities: BTreeMap<String, String>,
}
