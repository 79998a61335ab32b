//! Per-conversation state, as stored between messages.
//!
//! Stored as JSON under the conversation key. Decoding is tolerant in both directions of a
//! deploy: unknown fields (written by a newer release) are ignored, missing fields (written by
//! an older one) take their defaults, and a stage this release does not know decodes as
//! [`Stage::Unknown`], which the engine treats as idle. Removing or retyping a field needs a new
//! `SCHEMA_VERSION` and a test decoding the previous shape.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use lang::Lang;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::action::HandoffReason;
use crate::availability::Slot;

/// Version of the stored shape written by this release.
pub const SCHEMA_VERSION: u32 = 1;
/// Turns kept for context handed to a person.
pub const TRANSCRIPT_TURNS: usize = 16;
/// Characters kept per transcript turn.
pub const TRANSCRIPT_TURN_CHARS: usize = 500;
/// WhatsApp redelivers for up to seven days; ids older than that cannot come back.
pub const DEDUP_HORIZON_DAYS: i64 = 7;
/// Upper bound on remembered event ids, so a chatty conversation's state stays small.
pub const DEDUP_MAX_IDS: usize = 256;

/// Everything the engine remembers about one conversation (tenant + customer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConversationState {
    /// Shape version of this record, for migrations after a deploy.
    pub schema: u32,
    /// Incremented by every step; the worker saves with compare-and-set on it.
    pub version: u64,
    /// Where the conversation is in the booking flow.
    pub stage: Stage,
    /// The customer's upcoming bookings, soonest first, so a returning customer is recognised
    /// and reminders for each still find their booking; a conversation is "booked" when this is
    /// non-empty and the stage is idle.
    pub bookings: Vec<Booking>,
    /// The customer's language once known; replies use it.
    pub lang: Option<Lang>,
    /// The customer's own zone when known (set by the worker, for example from the number's
    /// country); confirmations echo local time there too when it differs from the business's.
    pub customer_tz: Option<Tz>,
    /// The WhatsApp profile name, for greetings and for the calendar attendee.
    pub profile_name: Option<String>,
    /// When the customer last wrote: free-form replies are allowed for 24 hours after it.
    pub last_customer_message_at: Option<DateTime<Utc>>,
    /// Recent turns, handed to a person on handoff.
    pub transcript: Vec<Turn>,
    /// Consecutive messages the bot could not understand; two hand the conversation off.
    pub misunderstandings: u32,
    /// The service last discussed, so a later "tomorrow at 5" needs no repeat.
    pub service: Option<String>,
    /// Events already processed, so a redelivery has no effect.
    pub processed: Vec<Processed>,
}

impl Default for ConversationState {
    fn default() -> Self {
        ConversationState {
            schema: SCHEMA_VERSION,
            version: 0,
            stage: Stage::Idle,
            bookings: Vec::new(),
            lang: None,
            customer_tz: None,
            profile_name: None,
            last_customer_message_at: None,
            transcript: Vec::new(),
            misunderstandings: 0,
            service: None,
            processed: Vec::new(),
        }
    }
}

/// Where the conversation is.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Stage {
    /// Nothing in progress (booked, if `ConversationState::bookings` is non-empty).
    #[default]
    Idle,
    /// The tenant offers several services and the customer has not said which.
    ChoosingService {
        /// A time the customer already asked for, applied once the service is known.
        #[serde(default)]
        requested: Option<RequestedTime>,
    },
    /// Free times were shown; waiting for a pick.
    ChoosingTime {
        /// The service the times are for.
        service: String,
        /// The slots shown, in display order, so "the second one" can be resolved.
        #[serde(default)]
        options: Vec<Slot>,
    },
    /// One slot is held for this customer, awaiting confirmation.
    Held {
        /// The held slot and how to release it.
        hold: Hold,
    },
    /// Moving an existing booking to a new time; the booking stays until the move is confirmed.
    Rescheduling {
        /// The booking being moved.
        booking_id: String,
        /// The slots shown for the new time.
        #[serde(default)]
        options: Vec<Slot>,
        /// The new slot, held while the customer confirms; the old booking stays until then.
        #[serde(default)]
        hold: Option<Hold>,
    },
    /// The customer asked to cancel; waiting for "yes" once.
    ConfirmingCancel {
        /// The booking to cancel.
        booking_id: String,
    },
    /// A person is answering; the bot is silent until released.
    HandedOff {
        /// Why the bot stepped back.
        reason: HandoffReason,
        /// When it did.
        since: DateTime<Utc>,
    },
    /// The customer sent STOP; only START is answered.
    OptedOut {
        /// When consent was withdrawn.
        since: DateTime<Utc>,
    },
    /// A stage written by a newer release; treated as idle.
    #[serde(other)]
    Unknown,
}

impl Stage {
    /// The hold this stage keeps, if any.
    pub fn hold(&self) -> Option<&Hold> {
        match self {
            Stage::Held { hold } => Some(hold),
            Stage::Rescheduling { hold, .. } => hold.as_ref(),
            _ => None,
        }
    }

    /// A short machine name for metrics and handoff summaries.
    pub fn name(&self) -> &'static str {
        match self {
            Stage::Idle | Stage::Unknown => "idle",
            Stage::ChoosingService { .. } => "choosing_service",
            Stage::ChoosingTime { .. } => "choosing_time",
            Stage::Held { .. } => "held",
            Stage::Rescheduling { .. } => "rescheduling",
            Stage::ConfirmingCancel { .. } => "confirming_cancel",
            Stage::HandedOff { .. } => "handed_off",
            Stage::OptedOut { .. } => "opted_out",
        }
    }
}

/// A time the customer asked for, kept while the service is being chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestedTime {
    /// Start of what was asked.
    pub start: DateTime<Utc>,
    /// End of a range ("tomorrow afternoon"); None for an exact time.
    #[serde(default)]
    pub end: Option<DateTime<Utc>>,
}

/// A slot held for this conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// The slot, including its resource (holds are per resource).
    pub slot: Slot,
    /// Proves ownership of the Redis lock and is the booking's idempotency key.
    pub token: String,
    /// When the engine will tell the customer the hold is over.
    pub expires_at: DateTime<Utc>,
}

impl Hold {
    /// The id of the timer that reports this hold's expiry.
    pub fn timer_id(&self) -> String {
        format!("hold:{}", self.token)
    }
}

/// A booking in the calendar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Booking {
    /// The calendar's id (Cal.com uid or built-in id); named in timers and template buttons.
    pub id: String,
    /// The booked service id.
    pub service: String,
    /// The resource serving it.
    pub resource: String,
    /// Appointment start.
    pub start: DateTime<Utc>,
    /// Appointment end (without buffer).
    pub end: DateTime<Utc>,
    /// Whether the customer confirmed attendance from a reminder.
    #[serde(default)]
    pub attendance_confirmed: bool,
}

impl Booking {
    pub fn slot(&self) -> Slot {
        Slot {
            service: self.service.clone(),
            resource: self.resource.clone(),
            start: self.start,
            end: self.end,
        }
    }
}

/// Who said something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    Customer,
    Bot,
}

/// One line of the recent conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    /// When it was said.
    pub at: DateTime<Utc>,
    /// Who said it.
    pub speaker: Speaker,
    /// What was said (or tapped), shortened.
    pub text: String,
}

/// An event already applied to this state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Processed {
    /// The event id (WhatsApp message id, timer event id, ...).
    pub id: String,
    /// When it was processed, to forget it after WhatsApp's redelivery horizon.
    pub at: DateTime<Utc>,
}

/// A stored state that could not be read at all.
#[derive(Debug, Error)]
#[error("conversation state is not valid JSON of any known schema: {0}")]
pub struct StateError(#[from] serde_json::Error);

impl ConversationState {
    /// A fresh conversation.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serialises for storage.
    pub fn encode(&self) -> String {
        // Every field is plain data with string keys; serialisation cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a stored state written by this, the previous or the next release. A stage that
    /// cannot be read is dropped (the conversation restarts as idle) rather than losing the
    /// booking, language and dedup memory with it.
    pub fn decode(stored: &str) -> Result<Self, StateError> {
        match serde_json::from_str::<ConversationState>(stored) {
            Ok(mut state) => {
                state.schema = SCHEMA_VERSION;
                Ok(state)
            }
            Err(first) => {
                let mut value: serde_json::Value = serde_json::from_str(stored)?;
                match value.as_object_mut() {
                    Some(object) => {
                        object.remove("stage");
                    }
                    None => return Err(first.into()),
                }
                let mut state: ConversationState = serde_json::from_value(value)?;
                state.schema = SCHEMA_VERSION;
                Ok(state)
            }
        }
    }

    /// Whether a free-form message may be sent now. A margin keeps a reply computed in the
    /// last minutes of the window from arriving after it closed.
    pub fn in_service_window(&self, now: DateTime<Utc>) -> bool {
        self.last_customer_message_at
            .is_some_and(|at| now - at < Duration::hours(24) - Duration::minutes(5))
    }

    pub fn booking(&self, id: &str) -> Option<&Booking> {
        self.bookings.iter().find(|b| b.id == id)
    }

    /// The soonest upcoming booking: the one "my booking" or "cancel" means by default.
    pub fn next_booking(&self) -> Option<&Booking> {
        self.bookings.iter().min_by_key(|b| b.start)
    }

    pub fn was_processed(&self, event_id: &str) -> bool {
        self.processed.iter().any(|p| p.id == event_id)
    }

    pub(crate) fn remember_processed(&mut self, event_id: &str, now: DateTime<Utc>) {
        let horizon = now - Duration::days(DEDUP_HORIZON_DAYS);
        self.processed.retain(|p| p.at > horizon);
        self.processed.push(Processed {
            id: event_id.to_string(),
            at: now,
        });
        if self.processed.len() > DEDUP_MAX_IDS {
            let excess = self.processed.len() - DEDUP_MAX_IDS;
            self.processed.drain(..excess);
        }
    }

    pub(crate) fn push_turn(&mut self, at: DateTime<Utc>, speaker: Speaker, text: &str) {
        let text: String = text.chars().take(TRANSCRIPT_TURN_CHARS).collect();
        self.transcript.push(Turn { at, speaker, text });
        if self.transcript.len() > TRANSCRIPT_TURNS {
            let excess = self.transcript.len() - TRANSCRIPT_TURNS;
            self.transcript.drain(..excess);
        }
    }
}
