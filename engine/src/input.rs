//! What happens to a conversation: everything the engine is told.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One event for one conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "input", rename_all = "snake_case")]
pub enum Input {
    /// The customer sent something.
    Customer {
        /// WhatsApp message id, marked read and deduplicated.
        message_id: String,
        /// WhatsApp profile name from the webhook's contacts, for greetings.
        profile_name: Option<String>,
        /// When WhatsApp says the customer sent it; opens the 24-hour window.
        at: DateTime<Utc>,
        /// What was sent.
        content: Content,
    },
    /// WhatsApp reports on a message the bot sent.
    Status {
        /// The id of the message the bot sent.
        message_id: String,
        /// What happened to it.
        status: DeliveryStatus,
    },
    /// A timer the engine scheduled is due.
    Timer {
        /// The id given in `Action::ScheduleTimer`.
        timer_id: String,
        /// What the timer is for.
        kind: TimerKind,
    },
    /// The result of an outcome-bearing action from the previous step of this same event.
    Outcome(Outcome),
    /// A person finished and hands the conversation back to the bot.
    AgentReleased,
    /// The calendar changed a booking outside the conversation (Cal.com page, staff).
    CalendarChanged {
        /// The booking that changed.
        booking_id: String,
        /// How it changed.
        change: CalendarChange,
    },
}

/// The payload of a customer message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Content {
    /// Typed text.
    Text { body: String },
    /// A tap on a reply button the bot sent.
    ButtonReply { id: String, title: String },
    /// A row picked from a list the bot sent.
    ListReply { id: String, title: String },
    /// A tap on a template's quick-reply button.
    TemplateButton { payload: String, text: String },
    /// A shared location.
    Location {
        latitude: f64,
        longitude: f64,
        name: Option<String>,
        address: Option<String>,
    },
    /// An image, video, audio, document or sticker.
    Media {
        kind: String,
        caption: Option<String>,
    },
    /// A reaction to a bot message; None when a reaction was removed.
    Reaction { emoji: Option<String> },
    /// A message type WhatsApp could not deliver to us (edits, polls, ...).
    Unsupported { kind: String },
}

/// Delivery progress of a message the bot sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum DeliveryStatus {
    Sent,
    Delivered,
    Read,
    /// Permanently failed with a Graph error code (WIRE.md A5).
    Failed {
        code: u32,
    },
}

/// What a timer is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "timer", rename_all = "snake_case")]
pub enum TimerKind {
    /// The hold with this token ran out.
    HoldExpiry { token: String },
    /// Remind the customer of a booking.
    Reminder {
        booking_id: String,
        minutes_before: u32,
    },
    /// Ask how the appointment went.
    FollowUp { booking_id: String },
    /// Shortly after the start: did the customer come?
    NoShowCheck { booking_id: String },
}

/// The result of Hold, Book, CancelBooking or RescheduleBooking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The hold with this token is ours.
    Held { token: String },
    /// Someone else holds that slot (or it is booked).
    HoldRejected { token: String },
    /// The booking exists.
    Booked { booking_id: String },
    /// The booking could not be made.
    BookFailed { reason: FailureReason },
    /// The booking was cancelled.
    Cancelled { booking_id: String },
    /// The calendar refused or failed to cancel.
    CancelFailed { booking_id: String },
    /// The booking moved; calendars may issue a new id for the moved booking.
    Rescheduled {
        booking_id: String,
        new_booking_id: String,
    },
    /// The booking could not be moved; the old one still stands.
    RescheduleFailed { reason: FailureReason },
}

/// Why a calendar write failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// The slot went to someone else between hold and booking.
    SlotGone,
    /// The calendar failed in a way retrying did not fix.
    Error,
    /// The calendar did not answer, even after retries: the booking may exist or not.
    Unreachable,
}

/// A change made to a booking outside the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum CalendarChange {
    Cancelled,
    Rescheduled {
        /// Id of the moved booking (may equal the old one).
        new_booking_id: String,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
}
