//! The fake's calendar: bookings and reservations of one owner, and the availability
//! rules that decide which times are free. No HTTP here; every operation is checked and
//! applied under one lock by the caller, so racing requests can never double-book.

use chrono::{DateTime, Datelike, Duration as ChronoDuration, NaiveDate, TimeZone, Utc};
use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Map, Value};

use super::config::EventTypeConfig;

/// Lowercase like the v2 booking output (`accepted|pending|cancelled|rejected`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BookingStatus {
    Accepted,
    Pending,
    Cancelled,
    Rejected,
}

impl BookingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Pending => "pending",
            Self::Cancelled => "cancelled",
            Self::Rejected => "rejected",
        }
    }

    /// Whether a booking in this status occupies the owner's time.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Accepted | Self::Pending)
    }
}

/// Who created a booking, so audits can tell the bot's bookings from the web page's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookingOrigin {
    /// Through `POST /v2/bookings` or a reschedule.
    Api,
    /// Through the `/_sim` door or `FakeCalcom::book_from_outside`: Cal.com's own booking
    /// page, or the owner typing into their calendar.
    Outside,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoredAttendee {
    pub name: String,
    pub email: String,
    pub time_zone: String,
    pub language: String,
    pub phone_number: Option<String>,
}

/// A booking as the fake remembers it; the audit API hands these out.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredBooking {
    pub id: u64,
    pub uid: String,
    pub event_type_id: u64,
    pub title: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub status: BookingStatus,
    pub attendee: StoredAttendee,
    pub guests: Vec<String>,
    pub metadata: Map<String, Value>,
    pub booking_fields_responses: Map<String, Value>,
    pub location: String,
    pub origin: BookingOrigin,
    pub cancellation_reason: Option<String>,
    pub rescheduling_reason: Option<String>,
    pub rescheduled_from_uid: Option<String>,
    pub rescheduled_to_uid: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl StoredBooking {
    pub fn overlaps(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        self.start < end && start < self.end
    }
}

/// A slot reservation (`/v2/slots/reservations`).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReservation {
    pub uid: String,
    pub event_type_id: u64,
    pub slot_start: DateTime<Utc>,
    pub slot_end: DateTime<Utc>,
    pub slot_duration: u32,
    pub reservation_duration: u32,
    pub until: DateTime<Utc>,
    /// Reservation order decides who is "first in line" when several name the same slot.
    pub created_at: DateTime<Utc>,
}

impl StoredReservation {
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.until > now
    }

    pub fn overlaps(&self, event_type_id: u64, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        self.event_type_id == event_type_id && self.slot_start < end && start < self.slot_end
    }
}

/// Why a time cannot be booked, mapped by the HTTP layer onto Cal.com's messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unbookable {
    Past,
    OutOfBounds,
    /// Outside working hours or overlapping an active booking.
    NotAvailable,
    /// Someone else's reservation is active on this slot.
    ReservedByOther {
        seconds_left: i64,
    },
}

#[derive(Debug, Default)]
pub struct Calendar {
    pub bookings: Vec<StoredBooking>,
    pub reservations: Vec<StoredReservation>,
    pub next_booking_id: u64,
}

impl Calendar {
    pub fn booking(&self, uid: &str) -> Option<&StoredBooking> {
        self.bookings.iter().find(|booking| booking.uid == uid)
    }

    pub fn booking_mut(&mut self, uid: &str) -> Option<&mut StoredBooking> {
        self.bookings.iter_mut().find(|booking| booking.uid == uid)
    }

    pub fn active_reservation(&self, uid: &str, now: DateTime<Utc>) -> Option<&StoredReservation> {
        self.reservations
            .iter()
            .find(|reservation| reservation.uid == uid && reservation.is_active(now))
    }

    pub fn forget_expired_reservations(&mut self, now: DateTime<Utc>) {
        self.reservations
            .retain(|reservation| reservation.is_active(now));
    }

    /// Whether any active booking of the owner overlaps, ignoring `except_uid` (the booking
    /// being rescheduled, whose own time is free for itself).
    pub fn is_busy(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        except_uid: Option<&str>,
    ) -> bool {
        self.bookings.iter().any(|booking| {
            booking.status.is_active()
                && booking.overlaps(start, end)
                && Some(booking.uid.as_str()) != except_uid
        })
    }

    pub fn reserved_by_other(
        &self,
        event_type_id: u64,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        own_reservation: Option<&str>,
        now: DateTime<Utc>,
    ) -> Option<&StoredReservation> {
        let own_created_at = own_reservation
            .and_then(|uid| self.reservations.iter().find(|r| r.uid == uid))
            .map(|r| r.created_at);
        self.reservations.iter().find(|reservation| {
            reservation.is_active(now)
                && reservation.overlaps(event_type_id, start, end)
                && Some(reservation.uid.as_str()) != own_reservation
                // Only reservations made before ours are "first in line".
                && own_created_at.is_none_or(|own| reservation.created_at < own)
        })
    }

    /// Full availability check for booking `[start, start + length)`.
    pub fn check_bookable(
        &self,
        event_type: &EventTypeConfig,
        start: DateTime<Utc>,
        now: DateTime<Utc>,
        rescheduling_uid: Option<&str>,
    ) -> Result<(), Unbookable> {
        let end = start + minutes(event_type.length_minutes);
        if start < now {
            return Err(Unbookable::Past);
        }
        if !within_notice_and_window(event_type, start, now) {
            return Err(Unbookable::OutOfBounds);
        }
        if !within_working_hours(event_type, start, end)
            || self.is_busy(start, end, rescheduling_uid)
        {
            return Err(Unbookable::NotAvailable);
        }
        Ok(())
    }

    /// Free slot starts of `event_type` whose start lies in `[from, to]`.
    pub fn free_slots(
        &self,
        event_type: &EventTypeConfig,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
        rescheduling_uid: Option<&str>,
    ) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let length = minutes(event_type.length_minutes);
        schedule_slots(event_type, from, to)
            .into_iter()
            .filter(|start| *start >= now && within_notice_and_window(event_type, *start, now))
            .filter(|start| !self.is_busy(*start, *start + length, rescheduling_uid))
            .filter(|start| {
                !self.reservations.iter().any(|reservation| {
                    reservation.is_active(now)
                        && reservation.overlaps(event_type.id, *start, *start + length)
                })
            })
            .map(|start| (start, start + length))
            .collect()
    }

    /// Pairs of active bookings that overlap: each one is a double booking.
    pub fn double_bookings(&self) -> Vec<(StoredBooking, StoredBooking)> {
        let active: Vec<&StoredBooking> = self
            .bookings
            .iter()
            .filter(|booking| booking.status.is_active())
            .collect();
        let mut pairs = Vec::new();
        for (index, first) in active.iter().enumerate() {
            for second in &active[index + 1..] {
                if first.overlaps(second.start, second.end) {
                    pairs.push(((*first).clone(), (*second).clone()));
                }
            }
        }
        pairs
    }
}

pub fn minutes(count: u32) -> ChronoDuration {
    ChronoDuration::minutes(i64::from(count))
}

fn within_notice_and_window(
    event_type: &EventTypeConfig,
    start: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    let notice =
        ChronoDuration::from_std(event_type.minimum_booking_notice).unwrap_or(ChronoDuration::MAX);
    if start < now + notice {
        return false;
    }
    match event_type.booking_window {
        Some(window) => {
            let window = ChronoDuration::from_std(window).unwrap_or(ChronoDuration::MAX);
            start <= now + window
        }
        None => true,
    }
}

fn within_working_hours(
    event_type: &EventTypeConfig,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> bool {
    let local_start = start.with_timezone(&event_type.time_zone);
    let local_end = end.with_timezone(&event_type.time_zone);
    if local_start.date_naive() != local_end.date_naive()
        && local_end.time() != chrono::NaiveTime::MIN
    {
        return false;
    }
    event_type
        .schedule
        .hours_on(local_start.weekday())
        .iter()
        .any(|(open, close)| {
            let Some(open) = localize(event_type, local_start.date_naive(), *open) else {
                return false;
            };
            let Some(close) = localize(event_type, local_start.date_naive(), *close) else {
                return false;
            };
            open <= start && end <= close
        })
}

fn localize(
    event_type: &EventTypeConfig,
    date: NaiveDate,
    time: chrono::NaiveTime,
) -> Option<DateTime<Utc>> {
    event_type
        .time_zone
        .from_local_datetime(&date.and_time(time))
        .earliest()
        .map(|local| local.with_timezone(&Utc))
}

/// Slot grid of the schedule: from each opening, every `length` minutes while the whole
/// slot fits before closing. Stepping in local time keeps "9:00, 9:30, …" across DST.
fn schedule_slots(
    event_type: &EventTypeConfig,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    let zone = event_type.time_zone;
    let length = minutes(event_type.length_minutes.max(1));
    let mut day = from.with_timezone(&zone).date_naive() - ChronoDuration::days(1);
    let last_day = to.with_timezone(&zone).date_naive() + ChronoDuration::days(1);
    let mut starts = Vec::new();
    while day <= last_day {
        for (open, close) in event_type.schedule.hours_on(day.weekday()) {
            let mut local = day.and_time(*open);
            let closing = day.and_time(*close);
            while local + length <= closing {
                if let Some(start) = zone.from_local_datetime(&local).earliest() {
                    let start = start.with_timezone(&Utc);
                    if start >= from && start <= to {
                        starts.push(start);
                    }
                }
                local += length;
            }
        }
        match day.succ_opt() {
            Some(next) => day = next,
            None => break,
        }
    }
    starts.sort();
    starts.dedup();
    starts
}

/// Cal.com booking uids are 22 base62-ish characters (`eS6BZvpsXtP1LKMbr1esZM`).
pub fn booking_uid(rng: &mut StdRng) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0123456789";
    (0..22)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// Reservation uids are UUIDs (`0d4dcf88-4be1-463c-818b-cbf00652e154`).
pub fn reservation_uid(rng: &mut StdRng) -> String {
    let bytes: [u8; 16] = rng.random();
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}
