//! The HTTP client: pacing, retries, availability cache, idempotent writes.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, SecondsFormat, Utc};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use tokio::time::Instant;
use tracing::Instrument;

use super::error::{CalcomError, classify};
use super::types::{
    Booking, BookingFilter, BookingLookup, BookingPage, IDEMPOTENCY_METADATA_KEY, ListAnswer,
    NewBooking, OneOrMany, Reservation, Slot, SlotQuery, SlotsByDay, Success,
};

pub const DEFAULT_BASE_URL: &str = "https://api.cal.com";
/// Required by `/v2/slots*`; other values silently select an older shape.
pub const SLOTS_API_VERSION: &str = "2024-09-04";
/// Long-standing bookings version, used by the live captures; its list endpoint still uses
/// offset pagination, which the recovery lookup relies on.
pub const BOOKINGS_API_VERSION: &str = "2024-08-13";

/// Most list pages the recovery lookup reads before giving up (100 bookings each).
const LOOKUP_MAX_PAGES: u32 = 10;
const LOOKUP_PAGE_SIZE: u32 = 100;
/// Entries kept in the availability cache before it is cleared wholesale.
const CACHE_CAPACITY: usize = 1024;

/// Everything the client is configured with; `CalcomConfig::new` gives production defaults.
#[derive(Debug, Clone)]
pub struct CalcomConfig {
    /// Without `/v2`; `CALCOM_API_BASE`.
    pub base_url: String,
    pub api_key: SecretString,
    /// Whole request, connection included.
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    pub rate_limit: RateLimit,
    pub retry: RetryPolicy,
    /// How long `cached_slots` may answer from memory.
    pub availability_ttl: Duration,
}

impl CalcomConfig {
    pub fn new(api_key: SecretString) -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            api_key,
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            rate_limit: RateLimit::default(),
            retry: RetryPolicy::default(),
            availability_ttl: Duration::from_secs(5),
        }
    }

    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }
}

/// Cal.com's per-key budget as the client paces itself to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests Cal.com allows per `window` (120 per minute for API keys).
    pub max_requests: u32,
    pub window: Duration,
    /// Requests that may go out back to back. The steady rate is lowered to
    /// `(max_requests - burst) / window` so that burst plus refill never exceeds
    /// `max_requests` in any window, whatever way the server counts.
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            max_requests: 120,
            window: Duration::from_secs(60),
            burst: 20,
        }
    }
}

/// Retries of transient failures (5xx, timeouts, connection errors, 429 that fits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Attempts in total, the first included.
    pub max_attempts: usize,
    /// No retry starts after this much time has passed since the first attempt, so a
    /// customer waiting on WhatsApp gets an answer (or a handoff) in bounded time.
    pub max_total: Duration,
    /// After a call gave up on a retryable failure, calls fail at once for this long without
    /// reaching Cal.com. During an outage every waiting customer then hears (and is handed to
    /// a person) in milliseconds instead of after a whole retry budget each, one after the
    /// other in their partition, and a recovering Cal.com is not hammered. The first call
    /// after the pause tries again. Zero turns the pause off.
    pub outage_pause: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(3),
            max_attempts: 4,
            max_total: Duration::from_secs(15),
            outage_pause: Duration::from_secs(15),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CalcomConfigError {
    #[error("CALCOM_API_BASE is not a URL: {0}")]
    BaseUrl(String),
    #[error("rate limit must allow at least one request per window beyond the burst")]
    RateLimit,
    #[error("HTTP client could not be built: {0}")]
    Http(#[from] reqwest::Error),
}

/// Cal.com API v2 client. Cheap to clone; clones share the rate limiter and the cache, which
/// is what makes the per-key limit hold across a process.
#[derive(Clone)]
pub struct CalcomClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    api_key: SecretString,
    limiter: DefaultDirectRateLimiter,
    retry: RetryPolicy,
    availability_ttl: Duration,
    cache: Mutex<HashMap<SlotQuery, CachedSlots>>,
    /// Until when calls fail without being made (see `RetryPolicy::outage_pause`).
    paused_until: Mutex<Option<Instant>>,
}

struct CachedSlots {
    fetched: Instant,
    slots: Arc<[Slot]>,
}

#[derive(Clone, Copy)]
enum Family {
    Slots,
    Bookings,
}

impl Family {
    fn version(self) -> &'static str {
        match self {
            Self::Slots => SLOTS_API_VERSION,
            Self::Bookings => BOOKINGS_API_VERSION,
        }
    }
}

/// One call as the retry loop sees it. `route` is the path template, safe to log.
struct Call<'a> {
    route: &'static str,
    family: Family,
    method: Method,
    path: String,
    query: Vec<(&'static str, String)>,
    body: Option<&'a Value>,
}

/// A failed call, remembering whether any attempt may have reached Cal.com and changed
/// something (timeouts, 5xx): writes then need to look before they report failure.
struct Failure {
    error: CalcomError,
    may_have_landed: bool,
}

impl From<Failure> for CalcomError {
    fn from(failure: Failure) -> Self {
        failure.error
    }
}

fn iso(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl CalcomClient {
    pub fn new(config: CalcomConfig) -> Result<Self, CalcomConfigError> {
        let base = Url::parse(config.base_url.trim_end_matches('/'))
            .map_err(|error| CalcomConfigError::BaseUrl(error.to_string()))?;
        if base.cannot_be_a_base() {
            return Err(CalcomConfigError::BaseUrl(config.base_url));
        }
        let limiter = RateLimiter::direct(quota(config.rate_limit)?);
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!(
                "whatsapp-booking-fleet/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base,
                api_key: config.api_key,
                limiter,
                retry: config.retry,
                availability_ttl: config.availability_ttl,
                cache: Mutex::new(HashMap::new()),
                paused_until: Mutex::new(None),
            }),
        })
    }

    // -------------------------------------------------------------------------------------
    // Availability

    /// Free slots straight from Cal.com; refreshes the cache on the way. Use this when the
    /// answer decides something (holding, confirming).
    pub async fn fresh_slots(&self, query: &SlotQuery) -> Result<Arc<[Slot]>, CalcomError> {
        if query.end < query.start {
            return Err(CalcomError::invalid_input(
                "slot query ends before it starts",
            ));
        }
        let mut params = vec![
            ("eventTypeId", query.event_type_id.to_string()),
            ("start", iso(query.start)),
            ("end", iso(query.end)),
            ("timeZone", "UTC".to_owned()),
            ("format", "range".to_owned()),
        ];
        if let Some(uid) = &query.booking_uid_to_reschedule {
            params.push(("bookingUidToReschedule", uid.clone()));
        }
        let call = Call {
            route: "GET /v2/slots",
            family: Family::Slots,
            method: Method::GET,
            path: "/v2/slots".to_owned(),
            query: params,
            body: None,
        };
        let days: SlotsByDay = self.execute(&call).await?;
        let slots: Arc<[Slot]> = days.into_slots().into();
        self.remember(query, slots.clone());
        Ok(slots)
    }

    /// Free slots, possibly up to `availability_ttl` old: for offering times in a reply,
    /// never for confirming one — the confirmation is the booking call itself.
    pub async fn cached_slots(&self, query: &SlotQuery) -> Result<Arc<[Slot]>, CalcomError> {
        {
            let cache = self
                .inner
                .cache
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(cached) = cache.get(query)
                && cached.fetched.elapsed() < self.inner.availability_ttl
            {
                return Ok(cached.slots.clone());
            }
        }
        self.fresh_slots(query).await
    }

    fn remember(&self, query: &SlotQuery, slots: Arc<[Slot]>) {
        let ttl = self.inner.availability_ttl;
        let mut cache = self
            .inner
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        cache.retain(|_, cached| cached.fetched.elapsed() < ttl);
        if cache.len() >= CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(
            query.clone(),
            CachedSlots {
                fetched: Instant::now(),
                slots,
            },
        );
    }

    /// Drops cached availability of an event type after we changed its calendar.
    fn forget_availability(&self, event_type_id: Option<u64>) {
        let mut cache = self
            .inner
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match event_type_id {
            Some(id) => cache.retain(|query, _| query.event_type_id != id),
            None => cache.clear(),
        }
    }

    // -------------------------------------------------------------------------------------
    // Reservations

    /// Reserves a slot in Cal.com itself, so its own booking page stops offering it.
    /// `minutes` defaults to Cal.com's 5. A retried reserve whose first attempt landed
    /// answers `ReservedByOther` (our own phantom reservation, which expires by itself).
    pub async fn reserve_slot(
        &self,
        event_type_id: u64,
        slot_start: DateTime<Utc>,
        minutes: Option<u32>,
    ) -> Result<Reservation, CalcomError> {
        let body = reservation_body(event_type_id, slot_start, minutes);
        let call = Call {
            route: "POST /v2/slots/reservations",
            family: Family::Slots,
            method: Method::POST,
            path: "/v2/slots/reservations".to_owned(),
            query: Vec::new(),
            body: Some(&body),
        };
        let reservation = self.execute(&call).await?;
        self.forget_availability(Some(event_type_id));
        Ok(reservation)
    }

    /// `None` when unknown, expired or released (Cal.com answers 200 with null data).
    pub async fn get_reservation(&self, uid: &str) -> Result<Option<Reservation>, CalcomError> {
        let call = Call {
            route: "GET /v2/slots/reservations/{uid}",
            family: Family::Slots,
            method: Method::GET,
            path: format!("/v2/slots/reservations/{}", path_segment(uid)?),
            query: Vec::new(),
            body: None,
        };
        self.execute(&call).await
    }

    /// Moves or extends a reservation (PATCH); `NotFound` once it has expired.
    pub async fn update_reservation(
        &self,
        uid: &str,
        event_type_id: u64,
        slot_start: DateTime<Utc>,
        minutes: Option<u32>,
    ) -> Result<Reservation, CalcomError> {
        let body = reservation_body(event_type_id, slot_start, minutes);
        let call = Call {
            route: "PATCH /v2/slots/reservations/{uid}",
            family: Family::Slots,
            method: Method::PATCH,
            path: format!("/v2/slots/reservations/{}", path_segment(uid)?),
            query: Vec::new(),
            body: Some(&body),
        };
        let reservation = self.execute(&call).await?;
        self.forget_availability(Some(event_type_id));
        Ok(reservation)
    }

    /// Releases a reservation. Already gone counts as released.
    pub async fn release_reservation(&self, uid: &str) -> Result<(), CalcomError> {
        let call = Call {
            route: "DELETE /v2/slots/reservations/{uid}",
            family: Family::Slots,
            method: Method::DELETE,
            path: format!("/v2/slots/reservations/{}", path_segment(uid)?),
            query: Vec::new(),
            body: None,
        };
        match self.execute_raw(&call).await {
            Ok(_) => {}
            Err(Failure {
                error: CalcomError::NotFound { .. },
                ..
            }) => {}
            Err(failure) => return Err(failure.error),
        }
        self.forget_availability(None);
        Ok(())
    }

    // -------------------------------------------------------------------------------------
    // Bookings

    /// Books `new`, recording `idempotency_key` in the booking metadata.
    ///
    /// Cal.com has no idempotency of its own. What this method guarantees: if one of its
    /// own attempts may have landed (timeout, 5xx) and a later attempt is refused because
    /// the slot is now taken, or every attempt failed, it looks the booking up by key and
    /// returns it when found. What the caller adds, for crashes between this call and
    /// recording its result: on a redelivered confirmation, call
    /// [`find_booking_by_idempotency_key`](Self::find_booking_by_idempotency_key) first and
    /// only book when it finds nothing. Use a key that is stable for the hold (the hold
    /// token), so every replay carries the same one.
    pub async fn create_booking(
        &self,
        new: &NewBooking,
        idempotency_key: &str,
    ) -> Result<Booking, CalcomError> {
        let body = booking_body(new, idempotency_key)?;
        let call = Call {
            route: "POST /v2/bookings",
            family: Family::Bookings,
            method: Method::POST,
            path: "/v2/bookings".to_owned(),
            query: Vec::new(),
            body: Some(&body),
        };
        let outcome = self.execute_raw(&call).await;
        self.forget_availability(Some(new.event_type_id));
        match outcome {
            Ok((_, bytes)) => parse_booking(&bytes),
            Err(Failure {
                error,
                may_have_landed: true,
            }) if error.wants_alternatives() || error.is_retryable() => {
                let lookup = BookingLookup::for_new_booking(new);
                match self
                    .find_booking_by_idempotency_key(&lookup, idempotency_key)
                    .await
                {
                    Ok(Some(booking)) => {
                        tracing::info!(
                            message = "Booking recovered by idempotency key after an ambiguous attempt.",
                            booking_uid = %booking.uid,
                        );
                        Ok(booking)
                    }
                    Ok(None) => Err(error),
                    // The lookup's own failure says less than the original one.
                    Err(_) => Err(error),
                }
            }
            Err(failure) => Err(failure.error),
        }
    }

    /// Finds the booking created with `idempotency_key`, if any, among the bookings that
    /// match `lookup` (Cal.com cannot search by metadata). Prefers an active booking when,
    /// against all expectations, several carry the key.
    pub async fn find_booking_by_idempotency_key(
        &self,
        lookup: &BookingLookup,
        idempotency_key: &str,
    ) -> Result<Option<Booking>, CalcomError> {
        let mut filter = BookingFilter {
            attendee_email: lookup.attendee_email.clone(),
            event_type_id: Some(lookup.event_type_id),
            after_start: Some(lookup.after_start),
            before_end: Some(lookup.before_end),
            take: Some(LOOKUP_PAGE_SIZE),
            skip: Some(0),
            ..BookingFilter::default()
        };
        let mut found: Option<Booking> = None;
        for _ in 0..LOOKUP_MAX_PAGES {
            let page = self.list_bookings(&filter).await?;
            let returned = u32::try_from(page.bookings.len()).unwrap_or(u32::MAX);
            for booking in page.bookings {
                if booking.idempotency_key() != Some(idempotency_key) {
                    continue;
                }
                if booking.status.is_active() {
                    return Ok(Some(booking));
                }
                found.get_or_insert(booking);
            }
            if !page.has_next_page || returned == 0 {
                break;
            }
            filter.skip = Some(filter.skip.unwrap_or(0).saturating_add(returned));
        }
        Ok(found)
    }

    pub async fn get_booking(&self, uid: &str) -> Result<Booking, CalcomError> {
        let call = Call {
            route: "GET /v2/bookings/{uid}",
            family: Family::Bookings,
            method: Method::GET,
            path: format!("/v2/bookings/{}", path_segment(uid)?),
            query: Vec::new(),
            body: None,
        };
        let (_, bytes) = self.execute_raw(&call).await?;
        parse_booking(&bytes)
    }

    /// One page of `GET /v2/bookings`. Items of shapes this client does not model (seated,
    /// recurring) are skipped rather than failing the page.
    pub async fn list_bookings(&self, filter: &BookingFilter) -> Result<BookingPage, CalcomError> {
        let mut params = Vec::new();
        if let Some(email) = &filter.attendee_email {
            params.push(("attendeeEmail", email.clone()));
        }
        if let Some(id) = filter.event_type_id {
            params.push(("eventTypeId", id.to_string()));
        }
        if !filter.status.is_empty() {
            let statuses: Vec<&str> = filter.status.iter().map(|status| status.as_str()).collect();
            params.push(("status", statuses.join(",")));
        }
        if let Some(after) = filter.after_start {
            params.push(("afterStart", iso(after)));
        }
        if let Some(before) = filter.before_end {
            params.push(("beforeEnd", iso(before)));
        }
        if let Some(take) = filter.take {
            params.push(("take", take.to_string()));
        }
        if let Some(skip) = filter.skip {
            params.push(("skip", skip.to_string()));
        }
        let call = Call {
            route: "GET /v2/bookings",
            family: Family::Bookings,
            method: Method::GET,
            path: "/v2/bookings".to_owned(),
            query: params,
            body: None,
        };
        let (_, bytes) = self.execute_raw(&call).await?;
        let answer: ListAnswer =
            serde_json::from_slice(&bytes).map_err(|error| unexpected(StatusCode::OK, &error))?;
        let bookings = answer
            .data
            .into_iter()
            .filter_map(|item| serde_json::from_value::<Booking>(item).ok())
            .collect();
        let (total_items, has_next_page) = answer.pagination.map_or((None, false), |page| {
            (page.total_items, page.has_next_page.unwrap_or(false))
        });
        Ok(BookingPage {
            bookings,
            total_items,
            has_next_page,
        })
    }

    /// Cancels a booking. Cancelling an already cancelled booking succeeds (with the
    /// booking as it is), so a replayed cancellation is harmless.
    pub async fn cancel_booking(&self, uid: &str, reason: &str) -> Result<Booking, CalcomError> {
        // A live certification found the reason required for owner cancellations.
        let body = json!({ "cancellationReason": reason });
        let call = Call {
            route: "POST /v2/bookings/{uid}/cancel",
            family: Family::Bookings,
            method: Method::POST,
            path: format!("/v2/bookings/{}/cancel", path_segment(uid)?),
            query: Vec::new(),
            body: Some(&body),
        };
        let outcome = self.execute_raw(&call).await;
        self.forget_availability(None);
        match outcome {
            Ok((_, bytes)) => parse_booking(&bytes),
            Err(Failure { error, .. })
                if matches!(
                    error,
                    CalcomError::Permanent { .. } | CalcomError::Transient { .. }
                ) =>
            {
                match self.get_booking(uid).await {
                    Ok(booking) if booking.status == super::types::BookingStatus::Cancelled => {
                        Ok(booking)
                    }
                    _ => Err(error),
                }
            }
            Err(failure) => Err(failure.error),
        }
    }

    /// Moves a booking: Cal.com creates a new booking (new uid, `rescheduled_from_uid` =
    /// `uid`) and cancels the old one. Replays are harmless: when the call fails but the old
    /// booking already points to a booking at `new_start`, that booking is returned.
    pub async fn reschedule_booking(
        &self,
        uid: &str,
        new_start: DateTime<Utc>,
        reason: Option<&str>,
        reserved_slot_uid: Option<&str>,
    ) -> Result<Booking, CalcomError> {
        let mut body = Map::new();
        body.insert("start".into(), json!(iso(new_start)));
        if let Some(reason) = reason {
            body.insert("reschedulingReason".into(), json!(reason));
        }
        if let Some(reservation) = reserved_slot_uid {
            body.insert("reservedSlotUid".into(), json!(reservation));
        }
        let body = Value::Object(body);
        let call = Call {
            route: "POST /v2/bookings/{uid}/reschedule",
            family: Family::Bookings,
            method: Method::POST,
            path: format!("/v2/bookings/{}/reschedule", path_segment(uid)?),
            query: Vec::new(),
            body: Some(&body),
        };
        let outcome = self.execute_raw(&call).await;
        self.forget_availability(None);
        match outcome {
            Ok((_, bytes)) => parse_booking(&bytes),
            Err(Failure { error, .. })
                if !matches!(
                    error,
                    CalcomError::RateLimited { .. } | CalcomError::NotFound { .. }
                ) =>
            {
                match self.already_rescheduled(uid, new_start).await {
                    Some(booking) => Ok(booking),
                    None => Err(error),
                }
            }
            Err(failure) => Err(failure.error),
        }
    }

    async fn already_rescheduled(&self, uid: &str, new_start: DateTime<Utc>) -> Option<Booking> {
        let old = self.get_booking(uid).await.ok()?;
        let successor = old.rescheduled_to_uid?;
        let new = self.get_booking(&successor).await.ok()?;
        (new.start == new_start && new.status.is_active()).then_some(new)
    }

    // -------------------------------------------------------------------------------------
    // Transport

    async fn execute<T: DeserializeOwned>(&self, call: &Call<'_>) -> Result<T, CalcomError> {
        let (status, bytes) = self.execute_raw(call).await?;
        serde_json::from_slice::<Success<T>>(&bytes)
            .map(|success| success.data)
            .map_err(|error| unexpected(status, &error))
    }

    /// Paced, retried call. Retries only what `CalcomError::is_retryable` says, waits at
    /// least what a 429 asks, and never starts an attempt past the total budget.
    async fn execute_raw(&self, call: &Call<'_>) -> Result<(StatusCode, Vec<u8>), Failure> {
        let span = tracing::info_span!("calcom.call", route = call.route);
        self.execute_with_retries(call).instrument(span).await
    }

    async fn execute_with_retries(
        &self,
        call: &Call<'_>,
    ) -> Result<(StatusCode, Vec<u8>), Failure> {
        let policy = self.inner.retry;
        let began = Instant::now();
        if let Some(until) = self.paused_until().filter(|until| *until > began) {
            return Err(Failure {
                error: CalcomError::Transient {
                    status: None,
                    message: format!(
                        "not called: Cal.com failed a whole retry budget just before; calls resume in {} ms",
                        (until - began).as_millis()
                    ),
                },
                may_have_landed: false,
            });
        }
        let mut delays = ExponentialBuilder::default()
            .with_min_delay(policy.min_delay)
            .with_max_delay(policy.max_delay)
            .with_max_times(policy.max_attempts.saturating_sub(1))
            .with_jitter()
            .build();
        let mut may_have_landed = false;
        let mut attempt = 1_u32;
        loop {
            match self.attempt(call).await {
                Ok(answer) => {
                    self.set_paused_until(None);
                    return Ok(answer);
                }
                Err((error, landed)) => {
                    may_have_landed |= landed;
                    let delay = match (&error, delays.next()) {
                        (_, None) => None,
                        (CalcomError::RateLimited { retry_after }, Some(delay)) => {
                            Some(delay.max(*retry_after))
                        }
                        (error, Some(delay)) if error.is_retryable() => Some(delay),
                        _ => None,
                    };
                    let within_budget =
                        delay.is_some_and(|delay| began.elapsed() + delay <= policy.max_total);
                    let Some(delay) = delay.filter(|_| within_budget) else {
                        if error.is_retryable() {
                            tracing::warn!(
                                message = "Cal.com call failed; giving up, and pausing calls.",
                                route = call.route,
                                attempt,
                                error = error.kind(),
                                pause_ms = u64::try_from(policy.outage_pause.as_millis())
                                    .unwrap_or(u64::MAX),
                            );
                            if !policy.outage_pause.is_zero() {
                                self.set_paused_until(Some(Instant::now() + policy.outage_pause));
                            }
                        }
                        return Err(Failure {
                            error,
                            may_have_landed,
                        });
                    };
                    tracing::warn!(
                        message = "Cal.com call failed; retrying.",
                        route = call.route,
                        attempt,
                        error = error.kind(),
                        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }

    fn paused_until(&self) -> Option<Instant> {
        *self
            .inner
            .paused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn set_paused_until(&self, until: Option<Instant>) {
        *self
            .inner
            .paused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = until;
    }

    /// One request. The flag says whether a failure may have changed state at Cal.com.
    async fn attempt(&self, call: &Call<'_>) -> Result<(StatusCode, Vec<u8>), (CalcomError, bool)> {
        self.inner.limiter.until_ready().await;
        let mut url = self.inner.base.clone();
        url.set_path(&format!(
            "{}{}",
            self.inner.base.path().trim_end_matches('/'),
            call.path
        ));
        if !call.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in &call.query {
                pairs.append_pair(name, value);
            }
        }
        let mut authorization =
            HeaderValue::from_str(&format!("Bearer {}", self.inner.api_key.expose_secret()))
                .map_err(|_| {
                    (
                        CalcomError::invalid_input(
                            "API key contains characters not allowed in a header",
                        ),
                        false,
                    )
                })?;
        authorization.set_sensitive(true);
        let mut request = self
            .inner
            .http
            .request(call.method.clone(), url)
            .header(AUTHORIZATION, authorization)
            .header("cal-api-version", call.family.version());
        // Runs inside this call's `calcom.call` span, so Cal.com sees it as the parent.
        let mut trace_headers = reqwest::header::HeaderMap::new();
        crate::telemetry::inject_http_headers(&mut trace_headers);
        request = request.headers(trace_headers);
        if let Some(body) = call.body {
            request = request.json(body);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                // A request that never connected cannot have been processed.
                let landed = !error.is_connect();
                return Err((
                    CalcomError::Transient {
                        status: None,
                        message: transport_message(&error),
                    },
                    landed,
                ));
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .map(|bytes| bytes.to_vec())
            .map_err(|error| {
                (
                    CalcomError::Transient {
                        status: Some(status.as_u16()),
                        message: transport_message(&error),
                    },
                    true,
                )
            })?;
        tracing::debug!(
            message = "Cal.com answered.",
            route = call.route,
            status = status.as_u16()
        );
        if status.is_success() {
            return Ok((status, bytes));
        }
        let error = classify(status, &headers, &bytes);
        Err((error, status.is_server_error()))
    }
}

fn quota(limit: RateLimit) -> Result<Quota, CalcomConfigError> {
    let burst = NonZeroU32::new(limit.burst.max(1)).ok_or(CalcomConfigError::RateLimit)?;
    let steady = limit
        .max_requests
        .checked_sub(burst.get())
        .filter(|steady| *steady > 0)
        .ok_or(CalcomConfigError::RateLimit)?;
    let period = limit.window / steady;
    Quota::with_period(period)
        .map(|quota| quota.allow_burst(burst))
        .ok_or(CalcomConfigError::RateLimit)
}

fn reservation_body(event_type_id: u64, slot_start: DateTime<Utc>, minutes: Option<u32>) -> Value {
    let mut body = Map::new();
    body.insert("eventTypeId".into(), json!(event_type_id));
    body.insert("slotStart".into(), json!(iso(slot_start)));
    if let Some(minutes) = minutes {
        body.insert("reservationDuration".into(), json!(minutes));
    }
    Value::Object(body)
}

fn booking_body(new: &NewBooking, idempotency_key: &str) -> Result<Value, CalcomError> {
    if idempotency_key.is_empty() || idempotency_key.chars().count() > 500 {
        return Err(CalcomError::invalid_input(
            "idempotency key must have 1 to 500 characters",
        ));
    }
    if new.attendee.email.is_empty() {
        return Err(CalcomError::invalid_input(
            "attendee email is required: Cal.com's booking form needs it and recovery searches by it",
        ));
    }
    let mut metadata = Map::new();
    for (key, value) in &new.metadata {
        if key == IDEMPOTENCY_METADATA_KEY {
            continue;
        }
        if key.chars().count() > 40 || value.chars().count() > 500 {
            return Err(CalcomError::invalid_input(
                "metadata keys must have at most 40 characters and values at most 500",
            ));
        }
        metadata.insert(key.clone(), json!(value));
    }
    metadata.insert(IDEMPOTENCY_METADATA_KEY.into(), json!(idempotency_key));
    if metadata.len() > 50 {
        return Err(CalcomError::invalid_input(
            "metadata can have at most 50 keys",
        ));
    }
    let mut body = Map::new();
    body.insert("start".into(), json!(iso(new.start)));
    body.insert("eventTypeId".into(), json!(new.event_type_id));
    body.insert(
        "attendee".into(),
        serde_json::to_value(&new.attendee)
            .map_err(|error| CalcomError::invalid_input(error.to_string()))?,
    );
    body.insert("metadata".into(), Value::Object(metadata));
    if let Some(length) = new.length_in_minutes {
        body.insert("lengthInMinutes".into(), json!(length));
    }
    if !new.guests.is_empty() {
        body.insert("guests".into(), json!(new.guests));
    }
    if let Some(reservation) = &new.reserved_slot_uid {
        body.insert("reservedSlotUid".into(), json!(reservation));
    }
    if let Some(fields) = &new.booking_fields_responses {
        body.insert(
            "bookingFieldsResponses".into(),
            Value::Object(fields.clone()),
        );
    }
    Ok(Value::Object(body))
}

fn parse_booking(bytes: &[u8]) -> Result<Booking, CalcomError> {
    let answer: Success<OneOrMany<Booking>> =
        serde_json::from_slice(bytes).map_err(|error| unexpected(StatusCode::OK, &error))?;
    answer
        .data
        .into_first()
        .ok_or_else(|| CalcomError::Permanent {
            status: Some(200),
            message: "Cal.com answered with an empty booking list".to_owned(),
        })
}

fn unexpected(status: StatusCode, error: &serde_json::Error) -> CalcomError {
    CalcomError::Permanent {
        status: Some(status.as_u16()),
        message: format!("unexpected answer shape: {error}"),
    }
}

/// Uids come from Cal.com answers and customers' state; never let one change the path.
fn path_segment(uid: &str) -> Result<&str, CalcomError> {
    let safe = !uid.is_empty()
        && uid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
    if safe {
        Ok(uid)
    } else {
        Err(CalcomError::invalid_input(
            "uid has characters Cal.com never uses",
        ))
    }
}

/// reqwest's error text can contain the URL, whose query may hold an email: keep the kind.
fn transport_message(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "request timed out".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else if error.is_body() || error.is_decode() {
        "answer body could not be read".to_owned()
    } else {
        "request failed".to_owned()
    }
}
