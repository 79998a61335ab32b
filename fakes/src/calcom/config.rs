//! What a test decides about the fake before it starts: who may call it, which event types
//! exist and when their owner works, and how unreliable the network in front of it is.

use std::time::Duration;

use chrono::{NaiveTime, Weekday};
use chrono_tz::Tz;

/// Everything the fake needs to answer like a Cal.com account with one owner.
#[derive(Debug, Clone)]
pub struct FakeCalcomConfig {
    /// Bearer keys accepted; any other key is answered 401 like Cal.com. Calls without an
    /// `Authorization` header are still allowed where Cal.com allows them (public slots,
    /// public booking).
    pub api_keys: Vec<String>,
    /// The single host every event type belongs to; their bookings block each other.
    pub owner: Owner,
    /// Event types known to the fake; anything else is a 404.
    pub event_types: Vec<EventTypeConfig>,
    /// Cal.com's per-key request budget.
    pub rate_limit: RateLimitConfig,
    /// Random misbehaviour, applied to every `/v2` request.
    pub faults: Faults,
    /// Added to every `/v2` answer, to make races and timeouts realistic.
    pub latency: Duration,
    /// Whether a booking that does not name a `reservedSlotUid` is refused while somebody
    /// else's reservation is active. The hosted behaviour is unconfirmed (WIRE B5); the
    /// Booker README says a reservation has lower priority than a booking, hence `false`.
    pub reservations_block_plain_bookings: bool,
    /// Seed of the fault dice, so a failing run can be replayed.
    pub seed: u64,
}

impl Default for FakeCalcomConfig {
    fn default() -> Self {
        Self {
            api_keys: vec!["cal_test_fake_key".to_owned()],
            owner: Owner::default(),
            event_types: Vec::new(),
            rate_limit: RateLimitConfig::default(),
            faults: Faults::default(),
            latency: Duration::ZERO,
            reservations_block_plain_bookings: false,
            seed: 0x00ca_1c0e,
        }
    }
}

impl FakeCalcomConfig {
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_keys.push(key.into());
        self
    }

    pub fn with_event_type(mut self, event_type: EventTypeConfig) -> Self {
        self.event_types.push(event_type);
        self
    }

    pub fn with_rate_limit(mut self, limit: u32, window: Duration) -> Self {
        self.rate_limit = RateLimitConfig { limit, window };
        self
    }

    pub fn with_faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }
}

/// The person whose calendar the fake is; shown as the booking's host.
#[derive(Debug, Clone)]
pub struct Owner {
    pub id: u64,
    pub name: String,
    pub email: String,
    pub username: String,
    /// Used only for the `hosts[].timeZone` field; schedules carry their own zone.
    pub time_zone: Tz,
}

impl Default for Owner {
    fn default() -> Self {
        Self {
            id: 3_209_949,
            name: "Fake Owner".to_owned(),
            email: "owner@example.invalid".to_owned(),
            username: "fake-owner".to_owned(),
            time_zone: chrono_tz::Europe::Madrid,
        }
    }
}

/// One bookable service.
#[derive(Debug, Clone)]
pub struct EventTypeConfig {
    pub id: u64,
    pub slug: String,
    pub title: String,
    /// Length of every booking, and also the slot interval, as in Cal.com's default.
    pub length_minutes: u32,
    /// Zone the weekly schedule is written in (the owner's), so slots move with DST.
    pub time_zone: Tz,
    pub schedule: WeeklySchedule,
    /// Cal.com's "minimum booking notice": earlier slots are not offered and booking them
    /// is answered with the out-of-bounds message.
    pub minimum_booking_notice: Duration,
    /// Cal.com's "limit future bookings": later slots are not offered.
    pub booking_window: Option<Duration>,
    /// New bookings are `pending` instead of `accepted`.
    pub requires_confirmation: bool,
    /// Rendered into `location` and `meetingUrl`.
    pub location: String,
}

impl EventTypeConfig {
    pub fn new(
        id: u64,
        slug: impl Into<String>,
        length_minutes: u32,
        time_zone: Tz,
        schedule: WeeklySchedule,
    ) -> Self {
        let slug = slug.into();
        Self {
            id,
            title: slug.replace('-', " "),
            location: format!("https://meet.example.invalid/{slug}"),
            slug,
            length_minutes,
            time_zone,
            schedule,
            minimum_booking_notice: Duration::ZERO,
            booking_window: None,
            requires_confirmation: false,
        }
    }

    pub fn with_minimum_booking_notice(mut self, notice: Duration) -> Self {
        self.minimum_booking_notice = notice;
        self
    }

    pub fn with_booking_window(mut self, window: Duration) -> Self {
        self.booking_window = Some(window);
        self
    }
}

/// Working hours per weekday, in the event type's zone. Ranges must not cross midnight.
#[derive(Debug, Clone, Default)]
pub struct WeeklySchedule {
    /// Indexed by `Weekday::num_days_from_monday`.
    days: [Vec<(NaiveTime, NaiveTime)>; 7],
}

impl WeeklySchedule {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds working hours on `day`; an empty or inverted range is ignored so a schedule can
    /// never produce nonsense slots.
    pub fn with_hours(mut self, day: Weekday, from: NaiveTime, to: NaiveTime) -> Self {
        if from < to {
            let index = day.num_days_from_monday() as usize;
            self.days[index].push((from, to));
            self.days[index].sort();
        }
        self
    }

    /// Same hours (whole hours, 24 h clock) on every day in `days`.
    pub fn on(mut self, days: &[Weekday], from_hour: u32, to_hour: u32) -> Self {
        let (Some(from), Some(to)) = (
            NaiveTime::from_hms_opt(from_hour, 0, 0),
            NaiveTime::from_hms_opt(to_hour.min(23), if to_hour >= 24 { 59 } else { 0 }, 0),
        ) else {
            return self;
        };
        for day in days {
            self = self.with_hours(*day, from, to);
        }
        self
    }

    /// Monday to Friday, same hours.
    pub fn weekdays(from_hour: u32, to_hour: u32) -> Self {
        use Weekday::*;
        Self::new().on(&[Mon, Tue, Wed, Thu, Fri], from_hour, to_hour)
    }

    /// Every day of the week, same hours.
    pub fn every_day(from_hour: u32, to_hour: u32) -> Self {
        use Weekday::*;
        Self::new().on(&[Mon, Tue, Wed, Thu, Fri, Sat, Sun], from_hour, to_hour)
    }

    pub fn hours_on(&self, day: Weekday) -> &[(NaiveTime, NaiveTime)] {
        &self.days[day.num_days_from_monday() as usize]
    }
}

/// Cal.com's throttler for one API key (or one IP when unauthenticated).
#[derive(Debug, Clone, Copy)]
pub struct RateLimitConfig {
    pub limit: u32,
    pub window: Duration,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            limit: 120,
            window: Duration::from_secs(60),
        }
    }
}

/// Random misbehaviour. Rates are probabilities in `0.0..=1.0`, rolled per request.
#[derive(Debug, Clone)]
pub struct Faults {
    /// Answered 5xx before anything happens: nothing changed.
    pub server_error_rate: f64,
    /// Handled (state changed!) and then answered 502: the "did it happen?" case that makes
    /// idempotency keys necessary.
    pub lost_response_rate: f64,
    /// Never answered within `hang_for`: the client's timeout must fire. Nothing changed.
    pub timeout_rate: f64,
    /// How long a timed-out request hangs before the connection is dropped.
    pub hang_for: Duration,
    /// Answered correctly but `slow_by` late.
    pub slow_rate: f64,
    pub slow_by: Duration,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            server_error_rate: 0.0,
            lost_response_rate: 0.0,
            timeout_rate: 0.0,
            hang_for: Duration::from_secs(30),
            slow_rate: 0.0,
            slow_by: Duration::from_millis(500),
        }
    }
}

/// One deterministic fault, queued with `FakeCalcom::inject`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status without handling. 500 comes as Cal.com's JSON envelope; other
    /// statuses come as the HTML page of the CDN in front of Cal.com, as in production.
    ServerError(u16),
    /// Handle the request, then answer this status instead of the real answer.
    LostResponse(u16),
    /// Hang without answering (until `Faults::hang_for` or shutdown).
    Hang,
    /// Answer correctly after this delay.
    Slow(Duration),
    /// Answer 429 as if the budget were spent, with this `Retry-After` in seconds.
    RateLimited(u64),
}
