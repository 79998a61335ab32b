//! Cal.com API v2 as a calendar.
//!
//! Cal.com is the authority on its own calendar: slots listed here only feed the engine's
//! offers (through the client's short-lived cache), and nothing is confirmed against them.
//! The confirmation is the booking call itself, whose refusal becomes
//! [`BookResult::SlotGone`] and so an "alternatives" reply, never a double booking.
//!
//! Effectively once, across redeliveries: every booking carries the hold token as its
//! idempotency key, and `book` looks for a booking with that key before creating one, so a
//! confirmation replayed after a crash finds the booking it already made. Moves are
//! recognised by the old booking's `rescheduledToUid`.
//!
//! Cal.com slot reservations (its own holds, which its public booking page respects) are
//! optional and taken through [`CalcomCalendar::reserve`]; see there for how the processor
//! uses them. They never replace the fleet's Redis hold, which stays the lock between
//! conversations.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};
use engine::config::Service;
use engine::{Slot, Tenant};
use sha2::{Digest, Sha256};
use shared::calcom::{
    Attendee, Booking, BookingLookup, CalcomClient, CalcomError, NewBooking as CalcomBooking,
    SlotQuery,
};

use super::{BookResult, CalendarError, NewBooking};

/// Shown as the attendee when WhatsApp gave no profile name.
const ANONYMOUS_ATTENDEE: &str = "WhatsApp customer";
/// Reserved top-level domain (RFC 2606): addresses under it can never be delivered to anyone.
const SYNTHETIC_EMAIL_DOMAIN: &str = "whatsapp.invalid";
/// Cal.com requires a reason for owner-side cancellations.
const CANCELLATION_REASON: &str = "Cancelled by the customer over WhatsApp";
const RESCHEDULING_REASON: &str = "Moved by the customer over WhatsApp";
/// How many `rescheduledToUid` links a replayed move follows before giving up; real chains
/// are one link long, the bound only stops a loop in corrupt data.
const MAX_MOVE_HOPS: usize = 5;

/// Resource id of a Cal.com event type in engine slots and Redis hold keys.
pub fn resource_for(event_type_id: u64) -> String {
    format!("calcom:{event_type_id}")
}

/// What [`CalcomCalendar::reserve`] achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveOutcome {
    /// Cal.com keeps the slot off its booking page until `until`; `book`/`reschedule` with
    /// the same token consume the reservation.
    Reserved { uid: String, until: DateTime<Utc> },
    /// Cal.com says the time is booked, reserved by someone else, or no longer bookable:
    /// release the Redis hold and offer alternatives.
    SlotGone,
}

/// A reservation this process took, remembered by hold token.
#[derive(Debug, Clone)]
struct Reserved {
    uid: String,
    event_type_id: u64,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    until: DateTime<Utc>,
}

#[derive(Clone)]
pub struct CalcomCalendar {
    client: CalcomClient,
    /// Hold token → reservation. In memory only: a reservation outlives nothing but the hold
    /// it shadows, and after a restart (or a partition move) the booking simply goes ahead
    /// without naming it, which Cal.com accepts; the orphan expires on its own.
    reservations: Arc<Mutex<HashMap<String, Reserved>>>,
}

impl CalcomCalendar {
    pub fn new(client: CalcomClient) -> Self {
        Self {
            client,
            reservations: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Free slots of every service of the tenant that has a Cal.com event type, starting in
    /// `[from, to)`, ordered by start. Answered from the client's short cache: good for
    /// offering times, never for confirming one.
    ///
    /// Slots this process has reserved are listed too. Cal.com hides every reserved slot from
    /// `/v2/slots`, ours included, which would make a customer's own held time vanish from
    /// their view; every reservation here shadows a live Redis hold, and the caller already
    /// subtracts other conversations' holds.
    pub async fn slots(
        &self,
        tenant: &Tenant,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Slot>, CalendarError> {
        let mut by_event_type: BTreeMap<u64, Vec<&Service>> = BTreeMap::new();
        for service in &tenant.services {
            if let Some(id) = service.calcom_event_type_id {
                by_event_type.entry(id).or_default().push(service);
            }
        }
        if by_event_type.is_empty() || to <= from {
            return Ok(Vec::new());
        }
        let answers = futures::future::join_all(by_event_type.keys().map(|id| {
            let query = SlotQuery::new(*id, from, to);
            async move { (*id, self.client.cached_slots(&query).await) }
        }))
        .await;
        let reserved = self.live_reservations();
        let mut slots = Vec::new();
        for (event_type_id, answer) in answers {
            let listed = match answer {
                Ok(listed) => listed,
                // One deleted event type must not take the tenant's other services down.
                Err(CalcomError::NotFound { .. }) => {
                    tracing::warn!(
                        message = "Cal.com event type not found; its service offers no times.",
                        event_type_id,
                    );
                    continue;
                }
                Err(error) => return Err(calendar_error(error)),
            };
            let resource = resource_for(event_type_id);
            let services = by_event_type
                .get(&event_type_id)
                .map(Vec::as_slice)
                .unwrap_or_default();
            for service in services {
                // Cal.com's `end` is authoritative (the event type's length); the service's
                // own minutes only stand in when the answer has no end.
                let length = Duration::minutes(i64::from(service.minutes));
                let mut seen = Vec::new();
                for listed in listed.iter().filter(|s| s.start >= from && s.start < to) {
                    seen.push(listed.start);
                    slots.push(Slot {
                        service: service.id.clone(),
                        resource: resource.clone(),
                        start: listed.start,
                        end: listed.end.unwrap_or(listed.start + length),
                    });
                }
                for ours in reserved.iter().filter(|r| {
                    r.event_type_id == event_type_id
                        && r.start >= from
                        && r.start < to
                        && !seen.contains(&r.start)
                }) {
                    slots.push(Slot {
                        service: service.id.clone(),
                        resource: resource.clone(),
                        start: ours.start,
                        end: ours.end,
                    });
                }
            }
        }
        slots.sort_by(|a, b| {
            (a.start, &a.service, &a.resource).cmp(&(b.start, &b.service, &b.resource))
        });
        slots.dedup();
        Ok(slots)
    }

    /// Books the slot, with the hold token as idempotency key.
    ///
    /// Always looks for a booking carrying the token first: the confirmation may be a
    /// redelivery after a crash that came after Cal.com booked but before the outcome was
    /// recorded, and Cal.com has no idempotency of its own. The lookup is one list call
    /// narrowed by attendee email, event type and a window around the start.
    pub async fn book(
        &self,
        tenant: &Tenant,
        request: &NewBooking<'_>,
    ) -> Result<BookResult, CalendarError> {
        let event_type_id = event_type_of(tenant, &request.slot.service)?;
        let new = new_booking(tenant, event_type_id, request);
        let lookup = BookingLookup::for_new_booking(&new);
        let earlier = self
            .client
            .find_booking_by_idempotency_key(&lookup, request.token)
            .await
            .map_err(calendar_error)?;
        if let Some(booking) = earlier {
            self.forget_reservation(request.token);
            return Ok(replayed(&booking));
        }
        let reservation = self.reservation_for(request.token, event_type_id, request.slot.start);
        let mut attempt = new.clone();
        attempt.reserved_slot_uid = reservation.clone();
        let mut outcome = self.client.create_booking(&attempt, request.token).await;
        if reservation.is_some() && matches!(outcome, Err(CalcomError::NotFound { .. })) {
            // Our reservation is unknown to Cal.com (expired and purged): book without it,
            // as a customer would whose reservation ran out.
            self.forget_reservation(request.token);
            outcome = self.client.create_booking(&new, request.token).await;
        }
        match outcome {
            Ok(booking) => {
                self.forget_reservation(request.token);
                Ok(BookResult::Booked {
                    booking_id: booking.uid,
                })
            }
            Err(error) if error.wants_alternatives() => {
                tracing::info!(
                    message = "Cal.com refused the booking; the slot is gone.",
                    event_type_id,
                    reason = error.kind(),
                );
                Ok(BookResult::SlotGone)
            }
            Err(error) => Err(calendar_error(error)),
        }
    }

    /// Cancels a booking. `Ok(true)` when it was cancelled now or already was; an unknown
    /// booking is a `Permanent` error, since the fleet only cancels bookings it made.
    pub async fn cancel(&self, _tenant: &Tenant, booking_id: &str) -> Result<bool, CalendarError> {
        // The client turns "already cancelled" into success by reading the booking back.
        let booking = self
            .client
            .cancel_booking(booking_id, CANCELLATION_REASON)
            .await
            .map_err(calendar_error)?;
        if booking.status.is_active() {
            return Err(CalendarError::Permanent(format!(
                "Cal.com answered the cancellation of {booking_id} with an active booking"
            )));
        }
        Ok(true)
    }

    /// Moves a booking to `request.slot` with Cal.com's reschedule (new uid, old one
    /// cancelled and pointing to it). A replay finds the move through the old booking's
    /// `rescheduledToUid` and answers the same new uid without moving again.
    ///
    /// A move to a service with another event type cannot be a Cal.com reschedule (it keeps
    /// the event type), so it is a new booking followed by cancelling the old one, in that
    /// order, so that a failure leaves the customer with their original appointment.
    pub async fn reschedule(
        &self,
        tenant: &Tenant,
        booking_id: &str,
        request: &NewBooking<'_>,
    ) -> Result<BookResult, CalendarError> {
        let event_type_id = event_type_of(tenant, &request.slot.service)?;
        let start = request.slot.start;
        let old = self
            .client
            .get_booking(booking_id)
            .await
            .map_err(calendar_error)?;
        if let Some(next) = old.rescheduled_to_uid.as_deref() {
            return self.follow_move(booking_id, next, start).await;
        }
        if !old.status.is_active() {
            // A replayed move to another service finds the old booking cancelled by its own
            // first run, and the new one under the move's token.
            let new = new_booking(tenant, event_type_id, request);
            let made = self
                .client
                .find_booking_by_idempotency_key(
                    &BookingLookup::for_new_booking(&new),
                    request.token,
                )
                .await
                .map_err(calendar_error)?;
            if let Some(made) = made.filter(|made| made.status.is_active()) {
                return Ok(BookResult::Booked {
                    booking_id: made.uid,
                });
            }
            return Err(CalendarError::Permanent(format!(
                "booking {booking_id} is no longer active and cannot be moved"
            )));
        }
        if old.event_type().is_some_and(|id| id != event_type_id) {
            let result = self.book(tenant, request).await?;
            if matches!(result, BookResult::Booked { .. }) {
                self.cancel(tenant, booking_id).await?;
            }
            return Ok(result);
        }
        let reservation = self.reservation_for(request.token, event_type_id, start);
        let mut outcome = self
            .client
            .reschedule_booking(
                booking_id,
                start,
                Some(RESCHEDULING_REASON),
                reservation.as_deref(),
            )
            .await;
        if reservation.is_some() && matches!(outcome, Err(CalcomError::NotFound { .. })) {
            // Either our reservation or the booking is unknown; retrying without the
            // reservation tells which, and moves the booking in the first case.
            self.forget_reservation(request.token);
            outcome = self
                .client
                .reschedule_booking(booking_id, start, Some(RESCHEDULING_REASON), None)
                .await;
        }
        match outcome {
            Ok(moved) => {
                self.forget_reservation(request.token);
                Ok(BookResult::Booked {
                    booking_id: moved.uid,
                })
            }
            Err(error) if error.wants_alternatives() => Ok(BookResult::SlotGone),
            Err(error) => Err(calendar_error(error)),
        }
    }

    /// Takes a Cal.com reservation on the slot, so Cal.com's own booking page stops
    /// offering it while the WhatsApp customer decides.
    ///
    /// How the processor uses it, for Cal.com tenants only:
    /// 1. On `Action::Hold`, take the Redis hold first (`Holds::hold`): it is the lock
    ///    between conversations and stays so. Only when it answers `Held`, call `reserve`
    ///    with the same slot, token and TTL.
    /// 2. `Ok(Reserved)`: answer `Outcome::Held`. `Ok(SlotGone)`: Cal.com says the time is
    ///    booked or someone on its page is booking it; release the Redis hold and answer
    ///    `Outcome::HoldRejected`. `Err(_)`: log it and answer `Outcome::Held` anyway; the
    ///    reservation is a courtesy, and the booking call still decides.
    /// 3. Nothing to pass at confirmation: `book` and `reschedule` with the same token use
    ///    the reservation found here. When the hold is extended, call `extend_reservation`;
    ///    when it is released or expires (`Action::ReleaseHold`, the expiry timer), call
    ///    `release_reservation` with the token. Failing to release is harmless: the
    ///    reservation lasts no longer than the hold.
    ///
    /// A replay with the same token while the reservation lives returns it again without a
    /// call. A reserve whose answer was lost and is retried by the client can meet its own
    /// first attempt and answer `SlotGone` (Cal.com cannot tell reservations apart); the
    /// customer is then offered alternatives and the time frees itself within the TTL.
    pub async fn reserve(
        &self,
        tenant: &Tenant,
        slot: &Slot,
        token: &str,
        ttl: std::time::Duration,
    ) -> Result<ReserveOutcome, CalendarError> {
        let event_type_id = event_type_of(tenant, &slot.service)?;
        if let Some(existing) = self.reservation_entry(token)
            && existing.event_type_id == event_type_id
            && existing.start == slot.start
        {
            return Ok(ReserveOutcome::Reserved {
                uid: existing.uid,
                until: existing.until,
            });
        }
        match self
            .client
            .reserve_slot(event_type_id, slot.start, Some(reservation_minutes(ttl)))
            .await
        {
            Ok(reservation) => {
                let end = reservation
                    .slot_end
                    .filter(|end| *end > reservation.slot_start)
                    .unwrap_or(slot.end);
                self.lock_reservations().insert(
                    token.to_owned(),
                    Reserved {
                        uid: reservation.uid.clone(),
                        event_type_id,
                        start: reservation.slot_start,
                        end,
                        until: reservation.reservation_until,
                    },
                );
                Ok(ReserveOutcome::Reserved {
                    uid: reservation.uid,
                    until: reservation.reservation_until,
                })
            }
            Err(error) if error.wants_alternatives() => Ok(ReserveOutcome::SlotGone),
            Err(error) => Err(calendar_error(error)),
        }
    }

    /// Extends the reservation taken with `token` to `ttl` from now, alongside
    /// `Holds::extend`. `Ok(false)` when there is none (never taken here, expired, consumed).
    pub async fn extend_reservation(
        &self,
        token: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, CalendarError> {
        let Some(existing) = self.reservation_entry(token) else {
            return Ok(false);
        };
        match self
            .client
            .update_reservation(
                &existing.uid,
                existing.event_type_id,
                existing.start,
                Some(reservation_minutes(ttl)),
            )
            .await
        {
            Ok(updated) => {
                if let Some(entry) = self.lock_reservations().get_mut(token) {
                    entry.until = updated.reservation_until;
                }
                Ok(true)
            }
            Err(CalcomError::NotFound { .. }) => {
                self.forget_reservation(token);
                Ok(false)
            }
            Err(error) => Err(calendar_error(error)),
        }
    }

    /// Releases the reservation taken with `token`, if this process holds one. `Ok(true)`
    /// when one was released (or had already gone at Cal.com).
    pub async fn release_reservation(&self, token: &str) -> Result<bool, CalendarError> {
        let Some(existing) = self.lock_reservations().remove(token) else {
            return Ok(false);
        };
        self.client
            .release_reservation(&existing.uid)
            .await
            .map_err(calendar_error)?;
        Ok(true)
    }

    /// Where a replayed move ended: the booking at `start` reached from the old booking's
    /// `rescheduledToUid`. Anything else means someone else moved or cancelled it since, and
    /// a person should look.
    async fn follow_move(
        &self,
        booking_id: &str,
        first: &str,
        start: DateTime<Utc>,
    ) -> Result<BookResult, CalendarError> {
        let mut next = first.to_owned();
        for _ in 0..MAX_MOVE_HOPS {
            let booking = self
                .client
                .get_booking(&next)
                .await
                .map_err(calendar_error)?;
            if booking.start == start && booking.status.is_active() {
                return Ok(BookResult::Booked {
                    booking_id: booking.uid,
                });
            }
            match booking.rescheduled_to_uid {
                Some(further) => next = further,
                None => break,
            }
        }
        Err(CalendarError::Permanent(format!(
            "booking {booking_id} was already moved elsewhere"
        )))
    }

    fn lock_reservations(&self) -> std::sync::MutexGuard<'_, HashMap<String, Reserved>> {
        // The map holds plain data; a panic elsewhere cannot leave it half-updated.
        self.reservations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The live reservation of `token`, dropping every expired one on the way.
    fn reservation_entry(&self, token: &str) -> Option<Reserved> {
        let now = Utc::now();
        let mut reservations = self.lock_reservations();
        reservations.retain(|_, reserved| reserved.until > now);
        reservations.get(token).cloned()
    }

    fn reservation_for(
        &self,
        token: &str,
        event_type_id: u64,
        start: DateTime<Utc>,
    ) -> Option<String> {
        self.reservation_entry(token)
            .filter(|r| r.event_type_id == event_type_id && r.start == start)
            .map(|r| r.uid)
    }

    fn live_reservations(&self) -> Vec<Reserved> {
        let now = Utc::now();
        let mut reservations = self.lock_reservations();
        reservations.retain(|_, reserved| reserved.until > now);
        reservations.values().cloned().collect()
    }

    fn forget_reservation(&self, token: &str) {
        self.lock_reservations().remove(token);
    }
}

/// The booking a replay found. One that no longer holds its time was cancelled or
/// rejected since it was made (by the owner, or the customer through another channel);
/// booking again would undo that decision, so the time counts as gone.
fn replayed(booking: &Booking) -> BookResult {
    if booking.status.is_active() {
        BookResult::Booked {
            booking_id: booking.uid.clone(),
        }
    } else {
        tracing::info!(
            message = "A replayed confirmation found its booking no longer active.",
            status = ?booking.status,
        );
        BookResult::SlotGone
    }
}

fn event_type_of(tenant: &Tenant, service_id: &str) -> Result<u64, CalendarError> {
    tenant
        .service(service_id)
        .and_then(|service| service.calcom_event_type_id)
        .ok_or_else(|| {
            CalendarError::Permanent(format!(
                "service {service_id:?} has no Cal.com event type in tenant {}",
                tenant.phone_number_id
            ))
        })
}

fn new_booking(tenant: &Tenant, event_type_id: u64, request: &NewBooking<'_>) -> CalcomBooking {
    let name = request
        .customer_name
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .unwrap_or(ANONYMOUS_ATTENDEE);
    let attendee = Attendee {
        name: name.to_owned(),
        email: synthetic_email(request.customer),
        time_zone: tenant.time_zone.name().to_owned(),
        phone_number: phone_number(request.customer),
        language: Some(request.lang.code().to_owned()),
    };
    let mut new = CalcomBooking::new(event_type_id, request.slot.start, attendee);
    new.metadata
        .insert("source".to_owned(), "whatsapp".to_owned());
    new
}

/// Cal.com's booking form requires an email and WhatsApp gives none. The address must be
/// stable per customer, because crash recovery finds earlier bookings by attendee email
/// (Cal.com cannot search metadata); and it must be undeliverable, because Cal.com mails
/// attendees and nobody should receive this customer's confirmations: `.invalid` is a
/// reserved top-level domain that never resolves. The WhatsApp id is used as is when it is
/// a phone number; other ids (business-scoped user ids) are hashed, since their characters
/// are not all valid in an address.
pub fn synthetic_email(customer: &str) -> String {
    if is_phone_like(customer) {
        format!("{customer}@{SYNTHETIC_EMAIL_DOMAIN}")
    } else {
        let digest = Sha256::digest(customer.as_bytes());
        format!("u{}@{SYNTHETIC_EMAIL_DOMAIN}", hex::encode(&digest[..16]))
    }
}

/// E.164 from a WhatsApp id, when it is one (a business-scoped user id is not a number).
fn phone_number(customer: &str) -> Option<String> {
    is_phone_like(customer).then(|| format!("+{customer}"))
}

fn is_phone_like(customer: &str) -> bool {
    (6..=15).contains(&customer.len()) && customer.bytes().all(|b| b.is_ascii_digit())
}

/// Whole minutes covering `ttl`, at least one: Cal.com counts reservations in minutes, and
/// rounding down would free the slot at Cal.com before the hold ends.
fn reservation_minutes(ttl: std::time::Duration) -> u32 {
    u32::try_from(ttl.as_secs().div_ceil(60))
        .unwrap_or(u32::MAX)
        .max(1)
}

/// The client has already retried what is retryable, within its time budget: what is still
/// retryable here means Cal.com is not answering.
fn calendar_error(error: CalcomError) -> CalendarError {
    if error.is_retryable() {
        CalendarError::Unreachable(error.to_string())
    } else {
        CalendarError::Permanent(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_emails_are_stable_and_undeliverable() {
        assert_eq!(
            synthetic_email("34600111222"),
            "34600111222@whatsapp.invalid"
        );
        let hashed = synthetic_email("US.abc/+1");
        assert_eq!(hashed, synthetic_email("US.abc/+1"));
        assert!(hashed.ends_with("@whatsapp.invalid"));
        assert!(
            hashed
                .split('@')
                .next()
                .is_some_and(|local| local.bytes().all(|b| b.is_ascii_alphanumeric()))
        );
        assert_eq!(phone_number("34600111222").as_deref(), Some("+34600111222"));
        assert_eq!(phone_number("US.abc"), None);
    }

    #[test]
    fn reservations_cover_the_whole_hold() {
        assert_eq!(reservation_minutes(std::time::Duration::from_secs(0)), 1);
        assert_eq!(reservation_minutes(std::time::Duration::from_secs(60)), 1);
        assert_eq!(reservation_minutes(std::time::Duration::from_secs(61)), 2);
        assert_eq!(reservation_minutes(std::time::Duration::from_secs(960)), 16);
    }

    #[test]
    fn refusals_that_may_pass_mean_cal_com_is_not_answering() {
        let unanswered = calendar_error(CalcomError::RateLimited {
            retry_after: std::time::Duration::from_secs(1),
        });
        assert!(matches!(unanswered, CalendarError::Unreachable(_)));
        let permanent = calendar_error(CalcomError::NotFound {
            message: "gone".to_owned(),
        });
        assert!(matches!(permanent, CalendarError::Permanent(_)));
    }
}
