//! Loopback fake of Cal.com API v2, written from the public wire formats (WIRE.md section
//! B and the live captures in `fixtures/calcom`), not from the project's client, so that it
//! catches the client's mistakes instead of sharing them.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use fakes::calcom::{EventTypeConfig, FakeCalcom, FakeCalcomConfig, WeeklySchedule};
//! let config = FakeCalcomConfig::default().with_event_type(EventTypeConfig::new(
//!     7, "haircut", 30, chrono_tz::Europe::Madrid, WeeklySchedule::weekdays(9, 18),
//! ));
//! let running = FakeCalcom::start(config).await?;
//! // point the client at running.base_url(), use the key "cal_test_fake_key"
//! let everything = running.fake().bookings();
//! # drop(everything); running.shutdown().await; Ok(()) }
//! ```
//!
//! What is served: `GET /v2/slots`, `/v2/slots/reservations[/{uid}]` (POST/GET/PATCH/
//! DELETE), `POST|GET /v2/bookings`, `GET /v2/bookings/{uid}`, `POST
//! /v2/bookings/{uid}/cancel|reschedule`, each with Cal.com's version header rules, error
//! envelope, bearer auth and per-key throttling. Under `/_sim/` (no auth, no throttling, no
//! faults): `POST /_sim/bookings` books "from outside" (Cal.com's own booking page racing
//! the bot), `GET /_sim/bookings` and `GET /_sim/double-bookings` are for audits,
//! `GET /_sim/reservations`, `POST /_sim/clock/advance`.
//!
//! Invariant: every check-then-change of the calendar happens under one lock, so the fake
//! itself never double-books unless told to (`OutsideBooking::force`).

mod config;
mod handlers;
mod model;
mod wire;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

pub use config::{
    EventTypeConfig, FakeCalcomConfig, Fault, Faults, Owner, RateLimitConfig, WeeklySchedule,
};
pub use model::{
    BookingOrigin, BookingStatus, StoredAttendee, StoredBooking, StoredReservation, Unbookable,
};

use model::Calendar;
use wire::ApiError;

/// Handle on a fake Cal.com account. Cheap to clone; every clone sees the same calendar.
#[derive(Clone)]
pub struct FakeCalcom {
    shared: Arc<Shared>,
}

struct Shared {
    config: FakeCalcomConfig,
    inner: Mutex<Inner>,
    /// Flipped on shutdown so hanging requests give up and graceful shutdown can finish.
    stopping: watch::Sender<bool>,
}

struct Inner {
    calendar: Calendar,
    rng: StdRng,
    /// Added to the wall clock, so tests can jump past reservations and bookings.
    clock_offset: ChronoDuration,
    faults: Faults,
    latency: Duration,
    injected: VecDeque<InjectedFault>,
    windows: HashMap<String, RateWindow>,
    requests: Vec<RequestRecord>,
}

struct InjectedFault {
    method: Option<Method>,
    path_prefix: Option<String>,
    fault: Fault,
}

/// Throttler window in the style of NestJS: starts at the first request, counts up.
struct RateWindow {
    started: tokio::time::Instant,
    reset_at: DateTime<Utc>,
    count: u32,
}

/// One request seen on `/v2`, for tests that check pacing, retries and headers.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub api_version: Option<String>,
    pub authenticated: bool,
    /// `0` for a request that was never answered (an injected hang).
    pub status: u16,
    pub at: DateTime<Utc>,
}

/// The caller as authentication decided, handed to handlers through request extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Caller {
    ApiKey(String),
    Anonymous,
}

/// A booking made outside the API client: Cal.com's web booking page or the owner.
#[derive(Debug, Clone)]
pub struct OutsideBooking {
    pub event_type_id: u64,
    pub start: DateTime<Utc>,
    pub attendee_name: String,
    pub attendee_email: String,
    pub attendee_time_zone: String,
    /// Book even if the time is taken or closed, as an owner editing their calendar can;
    /// this is how tests plant a double booking for the audit to find.
    pub force: bool,
}

impl OutsideBooking {
    pub fn new(event_type_id: u64, start: DateTime<Utc>) -> Self {
        Self {
            event_type_id,
            start,
            attendee_name: "Walk-in Web Booker".to_owned(),
            attendee_email: "web-booker@example.invalid".to_owned(),
            attendee_time_zone: "UTC".to_owned(),
            force: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutsideBookingError {
    #[error("event type {0} does not exist")]
    UnknownEventType(u64),
    #[error("the time cannot be booked: {0:?}")]
    Unbookable(Unbookable),
}

impl FakeCalcom {
    pub fn new(config: FakeCalcomConfig) -> Self {
        let (stopping, _) = watch::channel(false);
        let inner = Inner {
            calendar: Calendar {
                next_booking_id: 24_000_000,
                ..Calendar::default()
            },
            rng: StdRng::seed_from_u64(config.seed),
            clock_offset: ChronoDuration::zero(),
            faults: config.faults.clone(),
            latency: config.latency,
            injected: VecDeque::new(),
            windows: HashMap::new(),
            requests: Vec::new(),
        };
        Self {
            shared: Arc::new(Shared {
                config,
                inner: Mutex::new(inner),
                stopping,
            }),
        }
    }

    /// Binds `127.0.0.1:0`, serves in a background task and returns the running fake.
    pub async fn start(config: FakeCalcomConfig) -> io::Result<RunningFake> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let fake = Self::new(config);
        let (stop, stopped) = oneshot::channel::<()>();
        let server = fake.clone();
        let task = tokio::spawn(async move {
            server
                .serve(listener, async move {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(RunningFake {
            fake,
            address,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// Serves until `shutdown` resolves, then drains. Hanging requests are released at once.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        let stopping = self.shared.stopping.clone();
        let app = self
            .router()
            .into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                stopping.send_replace(true);
            })
            .await
    }

    /// The whole HTTP surface, for callers that bring their own server.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v2/slots", get(handlers::get_slots))
            .route("/v2/slots/reservations", post(handlers::reserve_slot))
            .route(
                "/v2/slots/reservations/{uid}",
                get(handlers::get_reservation)
                    .patch(handlers::update_reservation)
                    .delete(handlers::delete_reservation),
            )
            .route(
                "/v2/bookings",
                post(handlers::create_booking).get(handlers::list_bookings),
            )
            .route("/v2/bookings/{uid}", get(handlers::get_booking))
            .route("/v2/bookings/{uid}/cancel", post(handlers::cancel_booking))
            .route(
                "/v2/bookings/{uid}/reschedule",
                post(handlers::reschedule_booking),
            )
            .route(
                "/_sim/bookings",
                post(handlers::sim_book).get(handlers::sim_bookings),
            )
            .route("/_sim/double-bookings", get(handlers::sim_double_bookings))
            .route("/_sim/reservations", get(handlers::sim_reservations))
            .route("/_sim/clock/advance", post(handlers::sim_advance_clock))
            .fallback(handlers::no_route)
            .method_not_allowed_fallback(handlers::no_route)
            .layer(middleware::from_fn_with_state(self.shared.clone(), gateway))
            .with_state(self.shared.clone())
    }

    /// The fake's notion of now: wall clock plus whatever `advance_clock` added.
    pub fn now(&self) -> DateTime<Utc> {
        self.shared.now()
    }

    /// Moves the fake's clock forward (reservations expire, bookings become past).
    pub fn advance_clock(&self, by: ChronoDuration) {
        self.shared.lock().clock_offset += by;
    }

    pub fn set_faults(&self, faults: Faults) {
        self.shared.lock().faults = faults;
    }

    pub fn set_latency(&self, latency: Duration) {
        self.shared.lock().latency = latency;
    }

    /// Queues a fault for the next `/v2` request, whatever it is.
    pub fn inject(&self, fault: Fault) {
        self.shared.lock().injected.push_back(InjectedFault {
            method: None,
            path_prefix: None,
            fault,
        });
    }

    /// Queues a fault for the next `/v2` request with this method and path prefix.
    pub fn inject_on(&self, method: Method, path_prefix: &str, fault: Fault) {
        self.shared.lock().injected.push_back(InjectedFault {
            method: Some(method),
            path_prefix: Some(path_prefix.to_owned()),
            fault,
        });
    }

    /// Books as Cal.com's public booking page would: existing bookings are respected,
    /// reservations are not (they rank below bookings), unless `force` ignores everything.
    pub fn book_from_outside(
        &self,
        request: OutsideBooking,
    ) -> Result<StoredBooking, OutsideBookingError> {
        self.shared.book_from_outside(request)
    }

    /// Every booking ever made, in creation order, whatever its status.
    pub fn bookings(&self) -> Vec<StoredBooking> {
        self.shared.lock().calendar.bookings.clone()
    }

    pub fn booking(&self, uid: &str) -> Option<StoredBooking> {
        self.shared.lock().calendar.booking(uid).cloned()
    }

    /// Active bookings that overlap each other; an empty list is the audit passing.
    pub fn double_bookings(&self) -> Vec<(StoredBooking, StoredBooking)> {
        self.shared.lock().calendar.double_bookings()
    }

    /// Reservations still active at the fake's now.
    pub fn reservations(&self) -> Vec<StoredReservation> {
        let now = self.now();
        self.shared
            .lock()
            .calendar
            .reservations
            .iter()
            .filter(|reservation| reservation.is_active(now))
            .cloned()
            .collect()
    }

    /// Free slot starts as `GET /v2/slots` would compute them, without spending budget.
    pub fn free_slots(
        &self,
        event_type_id: u64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<DateTime<Utc>> {
        let Some(event_type) = self.shared.event_type(event_type_id) else {
            return Vec::new();
        };
        let now = self.now();
        self.shared
            .lock()
            .calendar
            .free_slots(event_type, from, to, now, None)
            .into_iter()
            .map(|(start, _)| start)
            .collect()
    }

    /// `/v2` requests seen so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.lock().requests.clone()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking handler must not take the whole fake down with it.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.lock().clock_offset
    }

    fn event_type(&self, id: u64) -> Option<&EventTypeConfig> {
        self.config.event_types.iter().find(|et| et.id == id)
    }

    fn event_type_by_slug(&self, slug: &str) -> Option<&EventTypeConfig> {
        self.config.event_types.iter().find(|et| et.slug == slug)
    }

    fn book_from_outside(
        &self,
        request: OutsideBooking,
    ) -> Result<StoredBooking, OutsideBookingError> {
        let event_type = self
            .event_type(request.event_type_id)
            .ok_or(OutsideBookingError::UnknownEventType(request.event_type_id))?;
        let now = self.now();
        let mut inner = self.lock();
        if !request.force {
            inner
                .calendar
                .check_bookable(event_type, request.start, now, None)
                .map_err(OutsideBookingError::Unbookable)?;
        }
        let attendee = StoredAttendee {
            name: request.attendee_name,
            email: request.attendee_email,
            time_zone: request.attendee_time_zone,
            language: "en".to_owned(),
            phone_number: None,
        };
        let booking = handlers::new_booking(
            &mut inner,
            &self.config.owner,
            event_type,
            request.start,
            attendee,
            handlers::BookingExtras::default(),
            BookingOrigin::Outside,
            now,
        );
        Ok(booking)
    }
}

/// A fake serving on loopback; shuts down when dropped or on `shutdown()`.
pub struct RunningFake {
    fake: FakeCalcom,
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl RunningFake {
    pub fn fake(&self) -> &FakeCalcom {
        &self.fake
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://127.0.0.1:<port>`, without `/v2`, like `CALCOM_API_BASE`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningFake {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl std::ops::Deref for RunningFake {
    type Target = FakeCalcom;

    fn deref(&self) -> &FakeCalcom {
        &self.fake
    }
}

/// In front of every handler: authentication, throttling, injected faults, latency, and
/// the error envelope (which needs the path, unknown to handlers).
async fn gateway(State(shared): State<Arc<Shared>>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    if path.starts_with("/_sim/") {
        let response = next.run(request).await;
        return render_error(response, &path, shared.now());
    }

    let api_version = header_text(request.headers(), "cal-api-version");
    let caller = match authenticate(&shared.config, request.headers()) {
        Ok(caller) => caller,
        Err(error) => {
            let response = render_error(error.into_response(), &path, shared.now());
            shared.record(&method, &path, api_version, false, Some(response.status()));
            return response;
        }
    };
    let authenticated = matches!(caller, Caller::ApiKey(_));
    let bucket = match &caller {
        Caller::ApiKey(key) => format!("key:{key}"),
        Caller::Anonymous => request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(
                || "ip:unknown".to_owned(),
                |info| format!("ip:{}", info.0.ip()),
            ),
    };

    let throttle = shared.throttle(&bucket);
    let response = if !throttle.allowed {
        too_many_requests(throttle.retry_after_secs)
    } else {
        let (fault, latency, hang_for) = shared.roll_fault(&method, &path);
        match fault {
            Some(Fault::ServerError(status)) => server_error(status),
            Some(Fault::RateLimited(seconds)) => too_many_requests(seconds),
            Some(Fault::Hang) => {
                // Recorded now: the client gives up first and the connection drops this
                // future, so nothing after the wait is guaranteed to run.
                shared.record(&method, &path, api_version.clone(), authenticated, None);
                let mut stopping = shared.stopping.subscribe();
                tokio::select! {
                    _ = tokio::time::sleep(hang_for) => {}
                    _ = stopping.wait_for(|stopping| *stopping) => {}
                }
                return server_error(504);
            }
            other => {
                if let Some(Fault::Slow(delay)) = other {
                    tokio::time::sleep(delay).await;
                }
                if !latency.is_zero() {
                    tokio::time::sleep(latency).await;
                }
                request.extensions_mut().insert(caller);
                let response = next.run(request).await;
                match other {
                    Some(Fault::LostResponse(status)) => server_error(status),
                    _ => response,
                }
            }
        }
    };

    let mut response = render_error(response, &path, shared.now());
    throttle.write_headers(response.headers_mut());
    shared.record(
        &method,
        &path,
        api_version,
        authenticated,
        Some(response.status()),
    );
    response
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

fn authenticate(config: &FakeCalcomConfig, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(Caller::Anonymous);
    };
    let presented = value
        .to_str()
        .ok()
        .and_then(|text| text.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(key) if config.api_keys.iter().any(|known| known == key) => {
            Ok(Caller::ApiKey(key.to_owned()))
        }
        _ => Err(ApiError::unauthorized(
            "ApiAuthStrategy - api key - Invalid API Key",
        )),
    }
}

struct Throttle {
    allowed: bool,
    limit: u32,
    remaining: u32,
    reset_epoch: i64,
    retry_after_secs: u64,
}

impl Throttle {
    fn write_headers(&self, headers: &mut HeaderMap) {
        headers.insert("x-ratelimit-limit-default", HeaderValue::from(self.limit));
        headers.insert(
            "x-ratelimit-remaining-default",
            HeaderValue::from(self.remaining),
        );
        headers.insert(
            "x-ratelimit-reset-default",
            HeaderValue::from(self.reset_epoch),
        );
        if !self.allowed {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(self.retry_after_secs),
            );
        }
    }
}

impl Shared {
    fn throttle(&self, bucket: &str) -> Throttle {
        let limit = self.config.rate_limit.limit;
        let window = self.config.rate_limit.window;
        let now_instant = tokio::time::Instant::now();
        let now = self.now();
        let mut inner = self.lock();
        let entry = inner
            .windows
            .entry(bucket.to_owned())
            .or_insert_with(|| RateWindow {
                started: now_instant,
                reset_at: now,
                count: 0,
            });
        if entry.count == 0 || now_instant.duration_since(entry.started) >= window {
            entry.started = now_instant;
            entry.reset_at = now + ChronoDuration::from_std(window).unwrap_or_default();
            entry.count = 0;
        }
        let allowed = entry.count < limit;
        if allowed {
            entry.count += 1;
        }
        let left = window.saturating_sub(now_instant.duration_since(entry.started));
        Throttle {
            allowed,
            limit,
            remaining: limit.saturating_sub(entry.count),
            reset_epoch: entry.reset_at.timestamp(),
            retry_after_secs: left.as_secs() + u64::from(left.subsec_nanos() > 0),
        }
    }

    /// Injected faults first (deterministic tests), then the dice (soak tests).
    fn roll_fault(&self, method: &Method, path: &str) -> (Option<Fault>, Duration, Duration) {
        let mut inner = self.lock();
        let latency = inner.latency;
        let hang_for = inner.faults.hang_for;
        let position = inner.injected.iter().position(|injected| {
            injected.method.as_ref().is_none_or(|m| m == method)
                && injected
                    .path_prefix
                    .as_deref()
                    .is_none_or(|prefix| path.starts_with(prefix))
        });
        if let Some(injected) = position.and_then(|index| inner.injected.remove(index)) {
            return (Some(injected.fault), latency, hang_for);
        }
        let faults = inner.faults.clone();
        let rng = &mut inner.rng;
        let fault = if roll(rng, faults.server_error_rate) {
            let statuses = [500, 502, 503];
            Some(Fault::ServerError(
                statuses[rng.random_range(0..statuses.len())],
            ))
        } else if roll(rng, faults.timeout_rate) {
            Some(Fault::Hang)
        } else if roll(rng, faults.lost_response_rate) {
            Some(Fault::LostResponse(502))
        } else if roll(rng, faults.slow_rate) {
            Some(Fault::Slow(faults.slow_by))
        } else {
            None
        };
        (fault, latency, hang_for)
    }

    fn record(
        &self,
        method: &Method,
        path: &str,
        api_version: Option<String>,
        authenticated: bool,
        status: Option<StatusCode>,
    ) {
        let at = self.now();
        self.lock().requests.push(RequestRecord {
            method: method.to_string(),
            path: path.to_owned(),
            api_version,
            authenticated,
            status: status.map_or(0, |status| status.as_u16()),
            at,
        });
    }
}

fn roll(rng: &mut StdRng, rate: f64) -> bool {
    rate > 0.0 && rng.random_bool(rate.clamp(0.0, 1.0))
}

fn too_many_requests(retry_after_secs: u64) -> Response {
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "ThrottlerException: Too Many Requests",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    response
}

/// 500 is Cal.com's own envelope; anything else comes from the CDN in front, as HTML.
fn server_error(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        return ApiError::new(status, "Internal server error").into_response();
    }
    let body = format!(
        "<!DOCTYPE html><html><head><title>api.cal.com | {code}</title></head>\
         <body><h1>Error {code}</h1><p>The origin web server is not answering.</p></body></html>",
        code = status.as_u16()
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=UTF-8")],
        body,
    )
        .into_response()
}

fn render_error(response: Response, path: &str, now: DateTime<Utc>) -> Response {
    let Some(error) = response.extensions().get::<ApiError>().cloned() else {
        return response;
    };
    let (mut parts, _) = response.into_parts();
    parts.extensions.remove::<ApiError>();
    let body = wire::error_envelope(&error, path, now).to_string();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}
