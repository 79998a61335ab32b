//! Cal.com API v2 wire types and client.
//!
//! [`CalcomClient`] speaks to `/v2/slots`, `/v2/slots/reservations` and `/v2/bookings` with
//! the version header each family needs, paces itself below the per-key limit, retries
//! what is worth retrying within a bounded time, and turns every refusal into a
//! [`CalcomError`] that says what to do next.
//!
//! Invariants:
//! - The API key is a `SecretString`, sent as a sensitive header, and never formatted.
//!   Attendee contact details and query strings (which carry emails) never reach logs.
//! - `cached_slots` is for offering times; nothing is confirmed against it. The
//!   confirmation is `create_booking` itself, whose refusal (`SlotTaken`,
//!   `ReservedByOther`, …) is the authoritative "no".
//! - `fresh_slots` hides slots reserved by anyone, including our own reservation; do not
//!   use it to re-check a slot we reserved — book it with `reserved_slot_uid` instead.
//!
//! Booking exactly once, across retries and crashes:
//! 1. Derive the idempotency key from the hold (its token), so every replay has the same.
//! 2. On a redelivered confirmation, call `find_booking_by_idempotency_key` first; if it
//!    finds a booking, that is the result.
//! 3. Otherwise `create_booking(new, key)`. It already recovers its own ambiguous
//!    attempts (a timed-out attempt that landed followed by "slot taken").
//! 4. `SlotTaken`/`ReservedByOther`/`OutOfBounds`/`Past` → offer alternatives;
//!    `Transient`/`RateLimited` → retry the message later (back to step 2);
//!    `Permanent`/`NotFound` → dead-letter or hand off.

mod client;
mod error;
mod types;

pub use client::{
    BOOKINGS_API_VERSION, CalcomClient, CalcomConfig, CalcomConfigError, DEFAULT_BASE_URL,
    RateLimit, RetryPolicy, SLOTS_API_VERSION,
};
pub use error::CalcomError;
pub use types::{
    Attendee, Booking, BookingAttendee, BookingFilter, BookingLookup, BookingPage, BookingStatus,
    EventTypeRef, IDEMPOTENCY_METADATA_KEY, ListStatus, NewBooking, Reservation, Slot, SlotQuery,
};
