//! Calendars behind one interface: the built-in one (Redis) and Cal.com (API v2).
//!
//! An enum rather than a trait object: two backends, async methods, and no boxing on the hot
//! path. The engine is pure and cannot wait on I/O, so a step first runs on
//! [`Availability::Deferred`]; only if it asked about free time is availability fetched and
//! the step run again on it (most messages, and every one while a person has the
//! conversation, never cost a calendar call). Availability is only ever advisory: at
//! confirmation the backend itself decides, atomically (built-in: one Lua script; Cal.com: its
//! own booking check), so a stale view can cause an "alternatives" reply but never a double
//! booking.

pub mod builtin;
pub mod calcom;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Duration, Utc};
use engine::{AvailabilityView, BuiltinAvailability, Busy, Slot, Tenant};
use lang::Lang;

pub use builtin::BuiltinCalendar;
pub use calcom::CalcomCalendar;

#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    /// Worth retrying the event later: Redis is unreachable or overloaded.
    #[error("calendar temporarily unavailable: {0}")]
    Transient(String),
    /// The calendar service did not answer even after its client's own retries. Retrying the
    /// event as well would keep the customer (and the partition) waiting for minutes, so the
    /// conversation goes to a person instead.
    #[error("calendar did not answer: {0}")]
    Unreachable(String),
    /// Retrying will not help; the conversation is handed to a person.
    #[error("calendar refused: {0}")]
    Permanent(String),
}

impl From<redis::RedisError> for CalendarError {
    fn from(error: redis::RedisError) -> Self {
        CalendarError::Transient(format!("Redis: {error}"))
    }
}

/// What a booking needs besides the slot.
#[derive(Debug, Clone)]
pub struct NewBooking<'a> {
    pub slot: &'a Slot,
    /// The hold token: the booking's idempotency key.
    pub token: &'a str,
    /// `tenant|customer`, the hold's owner.
    pub conversation: &'a str,
    /// The customer's WhatsApp id, for calendars that want a phone number.
    pub customer: &'a str,
    pub customer_name: Option<&'a str>,
    pub lang: Lang,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BookResult {
    Booked {
        booking_id: String,
    },
    /// The calendar says the time is no longer free.
    SlotGone,
    /// Our hold expired and someone else may have the slot: treated like a lost slot.
    HoldLost,
}

/// Free slots as an engine step sees them.
pub enum Availability {
    /// The built-in calendar's maths over a snapshot of bookings and other holds.
    Builtin {
        tenant: Arc<Tenant>,
        now: DateTime<Utc>,
        busy: Vec<Busy>,
    },
    /// Slots as a calendar service listed them.
    Listed(Vec<Slot>),
    /// Not fetched yet. Answers "nothing free" and remembers that it was asked, in which case
    /// the step's decision is thrown away and the step run again on fetched availability.
    Deferred { asked: AtomicBool },
    /// The calendar service did not answer; the engine hands the conversation to a person.
    Unreachable,
}

impl Availability {
    pub fn deferred() -> Self {
        Availability::Deferred {
            asked: AtomicBool::new(false),
        }
    }

    pub fn is_deferred(&self) -> bool {
        matches!(self, Availability::Deferred { .. })
    }

    /// True when this is a deferred view that a step asked about: that step must run again.
    pub fn was_asked(&self) -> bool {
        match self {
            Availability::Deferred { asked } => asked.load(Ordering::Relaxed),
            _ => false,
        }
    }
}

impl AvailabilityView for Availability {
    fn free_slots(&self, service: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Slot> {
        match self {
            Availability::Builtin { tenant, now, busy } => {
                BuiltinAvailability::new(tenant, *now, busy).free_slots(service, from, to)
            }
            Availability::Listed(slots) => slots
                .iter()
                .filter(|s| s.service == service && s.start >= from && s.start < to)
                .cloned()
                .collect(),
            Availability::Deferred { asked } => {
                asked.store(true, Ordering::Relaxed);
                Vec::new()
            }
            Availability::Unreachable => Vec::new(),
        }
    }

    fn reachable(&self) -> bool {
        match self {
            // Asking whether the calendar answers is asking about free time.
            Availability::Deferred { asked } => {
                asked.store(true, Ordering::Relaxed);
                true
            }
            Availability::Unreachable => false,
            Availability::Builtin { .. } | Availability::Listed(_) => true,
        }
    }
}

#[derive(Clone)]
pub enum Calendar {
    Builtin(BuiltinCalendar),
    Calcom(CalcomCalendar),
}

impl Calendar {
    /// Availability for the tenant's whole booking horizon, minus other conversations' holds
    /// (`holds_elsewhere`), which only the fleet knows about.
    pub async fn availability(
        &self,
        tenant: &Arc<Tenant>,
        now: DateTime<Utc>,
        holds_elsewhere: Vec<Busy>,
    ) -> Result<Availability, CalendarError> {
        let horizon = now + Duration::days(i64::from(tenant.horizon_days));
        match self {
            Calendar::Builtin(calendar) => {
                let mut busy = calendar.busy(tenant, now, horizon).await?;
                busy.extend(holds_elsewhere);
                Ok(Availability::Builtin {
                    tenant: tenant.clone(),
                    now,
                    busy,
                })
            }
            Calendar::Calcom(calendar) => {
                let slots = calendar.slots(tenant, now, horizon).await?;
                let free = slots
                    .into_iter()
                    .filter(|slot| {
                        !holds_elsewhere.iter().any(|held| {
                            held.start < slot.end
                                && slot.start < held.end
                                && held.resource == slot.resource
                        })
                    })
                    .collect();
                Ok(Availability::Listed(free))
            }
        }
    }

    pub async fn book(
        &self,
        tenant: &Tenant,
        request: &NewBooking<'_>,
    ) -> Result<BookResult, CalendarError> {
        match self {
            Calendar::Builtin(calendar) => calendar.book(tenant, request).await,
            Calendar::Calcom(calendar) => calendar.book(tenant, request).await,
        }
    }

    /// True when the booking was cancelled now or already was.
    pub async fn cancel(&self, tenant: &Tenant, booking_id: &str) -> Result<bool, CalendarError> {
        match self {
            Calendar::Builtin(calendar) => calendar.cancel(tenant, booking_id).await.map(|_| true),
            Calendar::Calcom(calendar) => calendar.cancel(tenant, booking_id).await,
        }
    }

    /// Moves a booking: the new time is booked first and the old one released only then, so
    /// a failure leaves the customer with their original appointment.
    pub async fn reschedule(
        &self,
        tenant: &Tenant,
        booking_id: &str,
        request: &NewBooking<'_>,
    ) -> Result<BookResult, CalendarError> {
        match self {
            Calendar::Builtin(calendar) => {
                let result = calendar.book(tenant, request).await?;
                if matches!(result, BookResult::Booked { .. }) {
                    calendar.cancel(tenant, booking_id).await?;
                }
                Ok(result)
            }
            Calendar::Calcom(calendar) => calendar.reschedule(tenant, booking_id, request).await,
        }
    }
}
