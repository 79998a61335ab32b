//! Typed requests and answers of the Cal.com API v2 endpoints the fleet uses, tolerant of
//! what the live API does beyond its schema: nulls where strings are documented, extra
//! fields, `{start}` objects where the schema says strings, arrays where one booking is
//! expected (recurring series).

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Booking metadata key that carries the caller's idempotency key (≤ 40 characters, as
/// Cal.com requires).
pub const IDEMPOTENCY_METADATA_KEY: &str = "idempotencyKey";

/// A range of availability to ask for. Also the availability cache key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SlotQuery {
    pub event_type_id: u64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Makes that booking's own time count as free, for offering a move.
    pub booking_uid_to_reschedule: Option<String>,
}

impl SlotQuery {
    pub fn new(event_type_id: u64, start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        Self {
            event_type_id,
            start,
            end,
            booking_uid_to_reschedule: None,
        }
    }
}

/// One free slot. `end` is present because the client always asks for `format=range`, but
/// stays optional because the default format (and older deployments) omit it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot {
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
}

/// `data` of `GET /v2/slots`: day → items, each a bare string (the schema) or an object
/// with `start` (what the live API sends).
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub(crate) struct SlotsByDay(pub BTreeMap<String, Vec<SlotItem>>);

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum SlotItem {
    Bare(DateTime<chrono::FixedOffset>),
    Object {
        start: DateTime<chrono::FixedOffset>,
        #[serde(default)]
        end: Option<DateTime<chrono::FixedOffset>>,
    },
}

impl SlotsByDay {
    pub(crate) fn into_slots(self) -> Vec<Slot> {
        let mut slots: Vec<Slot> = self
            .0
            .into_values()
            .flatten()
            .map(|item| match item {
                SlotItem::Bare(start) => Slot {
                    start: start.with_timezone(&Utc),
                    end: None,
                },
                SlotItem::Object { start, end } => Slot {
                    start: start.with_timezone(&Utc),
                    end: end.map(|end| end.with_timezone(&Utc)),
                },
            })
            .collect();
        slots.sort();
        slots.dedup();
        slots
    }
}

/// A slot reservation (Cal.com's own hold, seen by its booking page too).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    #[serde(rename = "reservationUid")]
    pub uid: String,
    pub event_type_id: u64,
    pub slot_start: DateTime<Utc>,
    #[serde(default)]
    pub slot_end: Option<DateTime<Utc>>,
    #[serde(default)]
    pub slot_duration: Option<u32>,
    /// Absent from `GET` answers.
    #[serde(default)]
    pub reservation_duration: Option<u32>,
    pub reservation_until: DateTime<Utc>,
}

/// Who the booking is for. `Debug` hides contact details: they must not reach logs.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attendee {
    pub name: String,
    /// Cal.com's default booking form requires it, and crash recovery searches by it.
    pub email: String,
    /// IANA zone of the attendee.
    pub time_zone: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// `en`, `es`, … (Cal.com's enum).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

impl fmt::Debug for Attendee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attendee")
            .field("name", &"<redacted>")
            .field("email", &"<redacted>")
            .field("time_zone", &self.time_zone)
            .field(
                "phone_number",
                &self.phone_number.as_ref().map(|_| "<redacted>"),
            )
            .field("language", &self.language)
            .finish()
    }
}

/// What to book. The idempotency key is passed separately to `create_booking`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewBooking {
    pub event_type_id: u64,
    /// Start in UTC, as taken from `/v2/slots`.
    pub start: DateTime<Utc>,
    pub attendee: Attendee,
    /// Only for event types with several lengths.
    pub length_in_minutes: Option<u32>,
    /// String values only (Cal.com rejects others); ≤ 49 keys, since one is ours.
    pub metadata: BTreeMap<String, String>,
    pub guests: Vec<String>,
    /// Consumes this reservation; Cal.com then refuses (409) if someone reserved first.
    pub reserved_slot_uid: Option<String>,
    pub booking_fields_responses: Option<serde_json::Map<String, Value>>,
}

impl NewBooking {
    pub fn new(event_type_id: u64, start: DateTime<Utc>, attendee: Attendee) -> Self {
        Self {
            event_type_id,
            start,
            attendee,
            length_in_minutes: None,
            metadata: BTreeMap::new(),
            guests: Vec::new(),
            reserved_slot_uid: None,
            booking_fields_responses: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BookingStatus {
    Accepted,
    Pending,
    Cancelled,
    Rejected,
    /// A status this client does not know yet; treated as not holding the time.
    #[serde(other)]
    Unknown,
}

impl BookingStatus {
    /// Whether the booking holds its time in the calendar.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Accepted | Self::Pending)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct EventTypeRef {
    pub id: u64,
    #[serde(default)]
    pub slug: Option<String>,
}

#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BookingAttendee {
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub phone_number: Option<String>,
}

impl fmt::Debug for BookingAttendee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BookingAttendee")
            .field("time_zone", &self.time_zone)
            .field("language", &self.language)
            .finish_non_exhaustive()
    }
}

/// `BookingOutput_2024_08_13`, keeping what the fleet acts on. Everything but identity,
/// status and times is optional because the live API nulls or omits it at will.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Booking {
    pub id: u64,
    pub uid: String,
    pub status: BookingStatus,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub duration: Option<u32>,
    /// Deprecated by Cal.com in favour of `event_type`, and null once the type is deleted.
    #[serde(default)]
    pub event_type_id: Option<u64>,
    #[serde(default)]
    pub event_type: Option<EventTypeRef>,
    #[serde(default)]
    pub attendees: Vec<BookingAttendee>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: BTreeMap<String, Value>,
    #[serde(default)]
    pub cancellation_reason: Option<String>,
    #[serde(default)]
    pub rescheduling_reason: Option<String>,
    #[serde(default)]
    pub rescheduled_from_uid: Option<String>,
    #[serde(default)]
    pub rescheduled_to_uid: Option<String>,
    /// A URL string live, but typed loosely: other location kinds exist.
    #[serde(default)]
    pub location: Option<Value>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
}

impl Booking {
    pub fn idempotency_key(&self) -> Option<&str> {
        self.metadata
            .get(IDEMPOTENCY_METADATA_KEY)
            .and_then(Value::as_str)
    }

    pub fn event_type(&self) -> Option<u64> {
        self.event_type
            .as_ref()
            .map(|event_type| event_type.id)
            .or(self.event_type_id)
    }
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// One booking, or the first of a recurring series (`data` is then an array).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    pub(crate) fn into_first(self) -> Option<T> {
        match self {
            Self::One(item) => Some(item),
            Self::Many(items) => items.into_iter().next(),
        }
    }
}

/// `status` filter values of `GET /v2/bookings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListStatus {
    Upcoming,
    Recurring,
    Past,
    Cancelled,
    Unconfirmed,
}

impl ListStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upcoming => "upcoming",
            Self::Recurring => "recurring",
            Self::Past => "past",
            Self::Cancelled => "cancelled",
            Self::Unconfirmed => "unconfirmed",
        }
    }
}

/// Filters of `GET /v2/bookings` (2024-08-13, offset pagination).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct BookingFilter {
    pub attendee_email: Option<String>,
    pub event_type_id: Option<u64>,
    pub status: Vec<ListStatus>,
    /// Bookings starting at or after this instant.
    pub after_start: Option<DateTime<Utc>>,
    /// Bookings ending at or before this instant.
    pub before_end: Option<DateTime<Utc>>,
    /// Page size; Cal.com's default is 100.
    pub take: Option<u32>,
    pub skip: Option<u32>,
}

impl fmt::Debug for BookingFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BookingFilter")
            .field(
                "attendee_email",
                &self.attendee_email.as_ref().map(|_| "<redacted>"),
            )
            .field("event_type_id", &self.event_type_id)
            .field("status", &self.status)
            .field("after_start", &self.after_start)
            .field("before_end", &self.before_end)
            .field("take", &self.take)
            .field("skip", &self.skip)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BookingPage {
    pub bookings: Vec<Booking>,
    pub total_items: Option<u64>,
    pub has_next_page: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListAnswer {
    #[serde(default)]
    pub data: Vec<Value>,
    #[serde(default)]
    pub pagination: Option<Pagination>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Pagination {
    #[serde(default)]
    pub total_items: Option<u64>,
    #[serde(default)]
    pub has_next_page: Option<bool>,
}

/// Where to look for a booking this process may have created before it crashed: the
/// attendee and a window around the booked start. Cal.com cannot search by metadata, so
/// the client lists what matches this and compares the idempotency key itself.
#[derive(Clone, PartialEq, Eq)]
pub struct BookingLookup {
    pub event_type_id: u64,
    pub attendee_email: Option<String>,
    pub after_start: DateTime<Utc>,
    pub before_end: DateTime<Utc>,
}

impl BookingLookup {
    /// A window wide enough for the booking that `new` would have created: from a minute
    /// before its start (the API's "after" is not documented as inclusive) to a day after.
    pub fn for_new_booking(new: &NewBooking) -> Self {
        Self::around(
            new.event_type_id,
            Some(new.attendee.email.clone()),
            new.start,
        )
    }

    pub fn around(
        event_type_id: u64,
        attendee_email: Option<String>,
        start: DateTime<Utc>,
    ) -> Self {
        Self {
            event_type_id,
            attendee_email: attendee_email.filter(|email| !email.is_empty()),
            after_start: start - chrono::Duration::minutes(1),
            before_end: start + chrono::Duration::days(1),
        }
    }
}

impl fmt::Debug for BookingLookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BookingLookup")
            .field("event_type_id", &self.event_type_id)
            .field("after_start", &self.after_start)
            .field("before_end", &self.before_end)
            .finish_non_exhaustive()
    }
}

/// Envelope of successful answers: `{"status":"success","data":…}`.
#[derive(Debug, Deserialize)]
pub(crate) struct Success<T> {
    pub data: T,
}

/// Envelope of error answers, as far as the client needs it.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<Value>,
}
