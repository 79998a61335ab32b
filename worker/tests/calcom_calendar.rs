//! The Cal.com calendar backend against the loopback fake of Cal.com, through the real
//! client over HTTP: slot mapping, idempotent booking, lost races, outages, cancellation,
//! moves and reservations.

use std::time::Duration;

use chrono::{DateTime, Duration as ChronoDuration, NaiveTime, Utc};
use engine::{Slot, Tenant, Tenants};
use fakes::calcom::{
    BookingStatus, EventTypeConfig, FakeCalcom, FakeCalcomConfig, Fault, OutsideBooking,
    RunningFake, WeeklySchedule,
};
use lang::Lang;
use reqwest::Method;
use secrecy::SecretString;
use shared::calcom::{CalcomClient, CalcomConfig, RateLimit, RetryPolicy};
use worker::calendar::calcom::ReserveOutcome;
use worker::calendar::{BookResult, CalcomCalendar, CalendarError, NewBooking};

const KEY: &str = "cal_test_fake_key";
const SHORT: u64 = 501;
const LONG: u64 = 502;
const CUSTOMER: &str = "34600111222";
const MAX_ATTEMPTS: usize = 4;

fn tenant_toml(extra_service: &str) -> String {
    format!(
        r#"
[[tenant]]
phone_number_id = "100000000000001"
name = "Test Clinic"
time_zone = "Europe/Madrid"
default_language = "en"
languages = ["en", "es"]
hold_minutes = 10
calendar = {{ backend = "calcom" }}

[tenant.hours]
mon = {{ open = "08:00", close = "20:00" }}
tue = {{ open = "08:00", close = "20:00" }}
wed = {{ open = "08:00", close = "20:00" }}
thu = {{ open = "08:00", close = "20:00" }}
fri = {{ open = "08:00", close = "20:00" }}
sat = {{ open = "08:00", close = "20:00" }}
sun = {{ open = "08:00", close = "20:00" }}

[[tenant.services]]
id = "short"
names = {{ en = "Short visit", es = "Visita corta" }}
minutes = 30
calcom_event_type_id = {SHORT}

[[tenant.services]]
id = "long"
names = {{ en = "Long visit", es = "Visita larga" }}
minutes = 60
calcom_event_type_id = {LONG}
{extra_service}
[[tenant.staff]]
id = "host"
name = "Host"

[tenant.templates.reminder]
en = {{ name = "appointment_reminder", language_code = "en_US", params = 3, buttons = ["confirm", "reschedule", "cancel"] }}
es = {{ name = "recordatorio_cita", language_code = "es", params = 3, buttons = ["confirm", "reschedule", "cancel"] }}

[tenant.templates.hold_expired]
en = {{ name = "hold_expired", language_code = "en_US", params = 2 }}
es = {{ name = "reserva_caducada", language_code = "es", params = 2 }}

[tenant.templates.follow_up]
en = {{ name = "visit_follow_up", language_code = "en_US", params = 2 }}
es = {{ name = "seguimiento_visita", language_code = "es", params = 2 }}

[tenant.templates.reopen]
en = {{ name = "conversation_update", language_code = "en_US", params = 1 }}
es = {{ name = "novedad_conversacion", language_code = "es", params = 1 }}
"#
    )
}

fn tenant_from(text: &str) -> Tenant {
    let tenants = Tenants::from_toml_str(text).expect("test tenant is valid");
    tenants
        .get("100000000000001")
        .cloned()
        .expect("test tenant exists")
}

fn tenant() -> Tenant {
    tenant_from(&tenant_toml(""))
}

fn fake_config() -> FakeCalcomConfig {
    FakeCalcomConfig::default()
        .with_rate_limit(10_000, Duration::from_secs(60))
        .with_event_type(EventTypeConfig::new(
            SHORT,
            "short-visit",
            30,
            chrono_tz::UTC,
            WeeklySchedule::every_day(8, 20),
        ))
        .with_event_type(EventTypeConfig::new(
            LONG,
            "long-visit",
            60,
            chrono_tz::UTC,
            WeeklySchedule::every_day(8, 20),
        ))
}

async fn fake_with(config: FakeCalcomConfig) -> RunningFake {
    FakeCalcom::start(config).await.expect("fake starts")
}

fn client(fake: &RunningFake) -> CalcomClient {
    let mut config = CalcomConfig::new(SecretString::from(KEY)).with_base_url(fake.base_url());
    config.retry = RetryPolicy {
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
        max_attempts: MAX_ATTEMPTS,
        max_total: Duration::from_secs(3),
        // Each test is about one call's retries; the pause has its own test.
        outage_pause: Duration::ZERO,
    };
    config.rate_limit = RateLimit {
        max_requests: 10_000,
        window: Duration::from_secs(60),
        burst: 1_000,
    };
    config.request_timeout = Duration::from_secs(2);
    config.availability_ttl = Duration::from_secs(30);
    CalcomClient::new(config).expect("client builds")
}

fn calendar(fake: &RunningFake) -> CalcomCalendar {
    CalcomCalendar::new(client(fake))
}

/// Tomorrow (UTC) at `hour:minute`: inside the fake's schedule and always in the future.
fn tomorrow(hour: u32, minute: u32) -> DateTime<Utc> {
    let date = (Utc::now() + ChronoDuration::days(1)).date_naive();
    let time = NaiveTime::from_hms_opt(hour, minute, 0).expect("valid time");
    date.and_time(time).and_utc()
}

fn slot(service: &str, start: DateTime<Utc>) -> Slot {
    let (event_type, minutes) = match service {
        "long" => (LONG, 60),
        _ => (SHORT, 30),
    };
    Slot {
        service: service.to_owned(),
        resource: format!("calcom:{event_type}"),
        start,
        end: start + ChronoDuration::minutes(minutes),
    }
}

fn request<'a>(slot: &'a Slot, token: &'a str) -> NewBooking<'a> {
    NewBooking {
        slot,
        token,
        conversation: "100000000000001|34600111222",
        customer: CUSTOMER,
        customer_name: Some("Ana"),
        lang: Lang::Es,
    }
}

fn booked(result: BookResult) -> String {
    match result {
        BookResult::Booked { booking_id } => booking_id,
        other => panic!("expected a booking, got {other:?}"),
    }
}

fn active_bookings(fake: &RunningFake) -> usize {
    fake.fake()
        .bookings()
        .iter()
        .filter(|booking| booking.status.is_active())
        .count()
}

#[tokio::test]
async fn slots_are_listed_per_service_with_cal_com_times() {
    let fake = fake_with(fake_config()).await;
    let calendar = calendar(&fake);
    let tenant = tenant();
    let from = tomorrow(0, 0);
    let to = from + ChronoDuration::days(1);

    let slots = calendar.slots(&tenant, from, to).await.expect("slots");

    for (service, event_type, minutes, count) in [("short", SHORT, 30, 24), ("long", LONG, 60, 12)]
    {
        let mine: Vec<&Slot> = slots.iter().filter(|s| s.service == service).collect();
        let expected: Vec<DateTime<Utc>> = fake
            .fake()
            .free_slots(event_type, from, to)
            .into_iter()
            .filter(|start| *start < to)
            .collect();
        assert_eq!(mine.len(), count, "{service}");
        assert_eq!(
            mine.iter().map(|s| s.start).collect::<Vec<_>>(),
            expected,
            "{service}"
        );
        for listed in mine {
            assert_eq!(listed.resource, format!("calcom:{event_type}"));
            assert_eq!(listed.end - listed.start, ChronoDuration::minutes(minutes));
        }
    }
    assert!(slots.windows(2).all(|pair| pair[0].start <= pair[1].start));
    assert!(slots.iter().all(|s| s.start >= from && s.start < to));
}

#[tokio::test]
async fn a_deleted_event_type_silences_its_service_only() {
    let fake = fake_with(fake_config()).await;
    let calendar = calendar(&fake);
    let tenant = tenant_from(&tenant_toml(
        r#"
[[tenant.services]]
id = "gone"
names = { en = "Gone", es = "Ya no" }
minutes = 30
calcom_event_type_id = 999
"#,
    ));
    let from = tomorrow(0, 0);
    let slots = calendar
        .slots(&tenant, from, from + ChronoDuration::days(1))
        .await
        .expect("slots");
    assert!(slots.iter().any(|s| s.service == "short"));
    assert!(!slots.iter().any(|s| s.service == "gone"));

    let gone = Slot {
        service: "gone".to_owned(),
        resource: "calcom:999".to_owned(),
        start: tomorrow(10, 0),
        end: tomorrow(10, 30),
    };
    let refused = calendar.book(&tenant, &request(&gone, "tok-gone")).await;
    assert!(
        matches!(refused, Err(CalendarError::Permanent(_))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn booking_lands_in_cal_com_with_the_customer_and_the_key() {
    let fake = fake_with(fake_config()).await;
    let calendar = calendar(&fake);
    let tenant = tenant();
    let chosen = slot("short", tomorrow(10, 0));

    let uid = booked(
        calendar
            .book(&tenant, &request(&chosen, "tok-book"))
            .await
            .expect("books"),
    );

    let stored = fake.fake().booking(&uid).expect("booking stored");
    assert_eq!(stored.event_type_id, SHORT);
    assert_eq!(stored.start, chosen.start);
    assert_eq!(stored.status, BookingStatus::Accepted);
    assert_eq!(stored.attendee.name, "Ana");
    assert_eq!(stored.attendee.email, "34600111222@whatsapp.invalid");
    assert_eq!(
        stored.attendee.phone_number.as_deref(),
        Some("+34600111222")
    );
    assert_eq!(stored.attendee.language, "es");
    assert_eq!(stored.attendee.time_zone, "Europe/Madrid");
    assert_eq!(
        stored
            .metadata
            .get("idempotencyKey")
            .and_then(|v| v.as_str()),
        Some("tok-book")
    );

    let later = slot("long", tomorrow(14, 0));
    let mut anonymous = request(&later, "tok-anon");
    anonymous.customer_name = None;
    anonymous.lang = Lang::En;
    let uid = booked(calendar.book(&tenant, &anonymous).await.expect("books"));
    let stored = fake.fake().booking(&uid).expect("booking stored");
    assert_eq!(stored.attendee.name, "WhatsApp customer");
    assert_eq!(stored.attendee.language, "en");
    assert_eq!(stored.event_type_id, LONG);
    assert!(fake.fake().double_bookings().is_empty());
}

#[tokio::test]
async fn a_replayed_confirmation_never_books_twice() {
    let fake = fake_with(fake_config()).await;
    let calendar = calendar(&fake);
    let tenant = tenant();
    let chosen = slot("short", tomorrow(11, 0));

    let first = booked(
        calendar
            .book(&tenant, &request(&chosen, "tok-replay"))
            .await
            .expect("books"),
    );
    // A fresh calendar, as after a restart: nothing in memory, only Cal.com knows.
    let restarted = CalcomCalendar::new(client(&fake));
    let second = booked(
        restarted
            .book(&tenant, &request(&chosen, "tok-replay"))
            .await
            .expect("replay"),
    );
    assert_eq!(first, second);
    assert_eq!(fake.fake().bookings().len(), 1);

    // The booking lands but its answer is lost; the retry and a later replay both find it.
    let other = slot("short", tomorrow(12, 0));
    fake.fake()
        .inject_on(Method::POST, "/v2/bookings", Fault::LostResponse(502));
    let recovered = booked(
        calendar
            .book(&tenant, &request(&other, "tok-lost"))
            .await
            .expect("recovered"),
    );
    let replayed = booked(
        calendar
            .book(&tenant, &request(&other, "tok-lost"))
            .await
            .expect("replay"),
    );
    assert_eq!(recovered, replayed);
    assert_eq!(fake.fake().bookings().len(), 2);
    assert!(fake.fake().double_bookings().is_empty());
}

#[tokio::test]
async fn a_slot_booked_from_outside_after_listing_is_gone() {
    let fake = fake_with(fake_config()).await;
    let calendar = calendar(&fake);
    let tenant = tenant();
    let from = tomorrow(0, 0);
    let listed = calendar
        .slots(&tenant, from, from + ChronoDuration::days(1))
        .await
        .expect("slots");
    let chosen = listed
        .iter()
        .find(|s| s.service == "short" && s.start == tomorrow(15, 0))
        .cloned()
        .expect("15:00 is offered");

    fake.fake()
        .book_from_outside(OutsideBooking::new(SHORT, chosen.start))
        .expect("web page books first");

    let result = calendar
        .book(&tenant, &request(&chosen, "tok-race"))
        .await
        .expect("answered");
    assert_eq!(result, BookResult::SlotGone);
    assert_eq!(fake.fake().bookings().len(), 1);
    assert!(fake.fake().double_bookings().is_empty());
}

#[tokio::test]
async fn a_server_error_storm_means_unreachable_after_the_retry_budget() {
    let fake = fake_with(fake_config()).await;
    let calendar = calendar(&fake);
    let tenant = tenant();
    let chosen = slot("short", tomorrow(9, 0));
    for _ in 0..MAX_ATTEMPTS {
        fake.fake()
            .inject_on(Method::POST, "/v2/bookings", Fault::ServerError(503));
    }

    let failed = calendar.book(&tenant, &request(&chosen, "tok-storm")).await;
    assert!(
        matches!(failed, Err(CalendarError::Unreachable(_))),
        "{failed:?}"
    );
    let posts = fake
        .fake()
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/v2/bookings")
        .collect::<Vec<_>>();
    assert_eq!(posts.len(), MAX_ATTEMPTS);
    assert!(posts.iter().all(|r| r.status == 503));
    assert!(fake.fake().bookings().is_empty());

    // Cal.com is back: the redelivered confirmation books exactly once.
    let uid = booked(
        calendar
            .book(&tenant, &request(&chosen, "tok-storm"))
            .await
            .expect("books"),
    );
    assert_eq!(fake.fake().bookings().len(), 1);
    assert_eq!(fake.fake().bookings()[0].uid, uid);
}

#[tokio::test]
async fn an_outage_on_every_call_means_unreachable_too() {
    let fake = fake_with(fake_config()).await;
    let calendar = calendar(&fake);
    let tenant = tenant();
    // Two event types, each with its own retry budget: enough faults for every attempt.
    for _ in 0..2 * MAX_ATTEMPTS {
        fake.fake().inject(Fault::ServerError(502));
    }
    let from = tomorrow(0, 0);
    let failed = calendar
        .slots(&tenant, from, from + ChronoDuration::hours(2))
        .await;
    assert!(
        matches!(failed, Err(CalendarError::Unreachable(_))),
        "{failed:?}"
    );
    let chosen = slot("short", tomorrow(9, 30));
    for _ in 0..MAX_ATTEMPTS {
        fake.fake().inject(Fault::ServerError(500));
    }
    let failed = calendar.book(&tenant, &request(&chosen, "tok-down")).await;
    assert!(
        matches!(failed, Err(CalendarError::Unreachable(_))),
        "{failed:?}"
    );
    assert!(fake.fake().bookings().is_empty());
}

#[tokio::test]
async fn cancelling_twice_is_fine_and_unknown_bookings_are_refused() {
    let fake = fake_with(fake_config()).await;
    let calendar = calendar(&fake);
    let tenant = tenant();
    let chosen = slot("short", tomorrow(13, 0));
    let uid = booked(
        calendar
            .book(&tenant, &request(&chosen, "tok-cancel"))
            .await
            .expect("books"),
    );

    assert!(calendar.cancel(&tenant, &uid).await.expect("cancels"));
    assert_eq!(
        fake.fake().booking(&uid).map(|b| b.status),
        Some(BookingStatus::Cancelled)
    );
    assert!(calendar.cancel(&tenant, &uid).await.expect("already"));
    assert_eq!(active_bookings(&fake), 0);

    let unknown = calendar.cancel(&tenant, "no-such-booking").await;
    assert!(
        matches!(unknown, Err(CalendarError::Permanent(_))),
        "{unknown:?}"
    );
}

#[tokio::test]
async fn rescheduling_moves_the_booking_once() {
    let fake = fake_with(fake_config()).await;
    let calendar = calendar(&fake);
    let tenant = tenant();
    let original = slot("short", tomorrow(10, 0));
    let old = booked(
        calendar
            .book(&tenant, &request(&original, "tok-orig"))
            .await
            .expect("books"),
    );

    let target = slot("short", tomorrow(16, 30));
    let moved = booked(
        calendar
            .reschedule(&tenant, &old, &request(&target, "tok-move"))
            .await
            .expect("moves"),
    );
    assert_ne!(moved, old);
    let old_stored = fake.fake().booking(&old).expect("old kept");
    assert_eq!(old_stored.status, BookingStatus::Cancelled);
    assert_eq!(
        old_stored.rescheduled_to_uid.as_deref(),
        Some(moved.as_str())
    );
    let new_stored = fake.fake().booking(&moved).expect("new stored");
    assert_eq!(new_stored.start, target.start);
    assert!(new_stored.status.is_active());

    // The same move replayed answers the same booking and moves nothing.
    let again = booked(
        calendar
            .reschedule(&tenant, &old, &request(&target, "tok-move"))
            .await
            .expect("replay"),
    );
    assert_eq!(again, moved);
    assert_eq!(fake.fake().bookings().len(), 2);
    assert_eq!(active_bookings(&fake), 1);

    // A stale move of the old booking to another time is for a person to sort out.
    let elsewhere = slot("short", tomorrow(17, 0));
    let stale = calendar
        .reschedule(&tenant, &old, &request(&elsewhere, "tok-stale"))
        .await;
    assert!(
        matches!(stale, Err(CalendarError::Permanent(_))),
        "{stale:?}"
    );

    // A move onto a taken time is refused and leaves the appointment where it was.
    let taken = slot("short", tomorrow(18, 0));
    fake.fake()
        .book_from_outside(OutsideBooking::new(SHORT, taken.start))
        .expect("outside booking");
    let refused = calendar
        .reschedule(&tenant, &moved, &request(&taken, "tok-taken"))
        .await
        .expect("answered");
    assert_eq!(refused, BookResult::SlotGone);
    assert!(
        fake.fake()
            .booking(&moved)
            .is_some_and(|b| b.status.is_active() && b.start == target.start)
    );
    assert!(fake.fake().double_bookings().is_empty());
}

#[tokio::test]
async fn moving_to_another_service_books_then_cancels() {
    let fake = fake_with(fake_config()).await;
    let calendar = calendar(&fake);
    let tenant = tenant();
    let original = slot("short", tomorrow(10, 0));
    let old = booked(
        calendar
            .book(&tenant, &request(&original, "tok-a"))
            .await
            .expect("books"),
    );
    let target = slot("long", tomorrow(12, 0));
    let moved = booked(
        calendar
            .reschedule(&tenant, &old, &request(&target, "tok-b"))
            .await
            .expect("moves"),
    );
    let replay = booked(
        calendar
            .reschedule(&tenant, &old, &request(&target, "tok-b"))
            .await
            .expect("replay"),
    );
    assert_eq!(moved, replay);
    assert_eq!(
        fake.fake().booking(&moved).map(|b| b.event_type_id),
        Some(LONG)
    );
    assert_eq!(
        fake.fake().booking(&old).map(|b| b.status),
        Some(BookingStatus::Cancelled)
    );
    assert_eq!(fake.fake().bookings().len(), 2);
}

#[tokio::test]
async fn a_slot_reserved_by_someone_else_is_gone() {
    let mut config = fake_config();
    config.reservations_block_plain_bookings = true;
    let fake = fake_with(config).await;
    let calendar = calendar(&fake);
    let tenant = tenant();
    let chosen = slot("short", tomorrow(11, 30));

    // Someone on Cal.com's booking page reserves the time first.
    let web_page = client(&fake);
    web_page
        .reserve_slot(SHORT, chosen.start, None)
        .await
        .expect("web page reserves");

    // 422 on our reservation…
    let reserve = calendar
        .reserve(&tenant, &chosen, "tok-409", Duration::from_secs(600))
        .await
        .expect("answered");
    assert_eq!(reserve, ReserveOutcome::SlotGone);
    // …and 409 on the booking.
    let result = calendar
        .book(&tenant, &request(&chosen, "tok-409"))
        .await
        .expect("answered");
    assert_eq!(result, BookResult::SlotGone);
    let conflict = fake
        .fake()
        .requests()
        .iter()
        .any(|r| r.method == "POST" && r.path == "/v2/bookings" && r.status == 409);
    assert!(conflict, "the booking was refused with 409");
    assert!(fake.fake().bookings().is_empty());
}

#[tokio::test]
async fn our_reservation_keeps_the_slot_listed_and_is_consumed_by_the_booking() {
    let fake = fake_with(fake_config()).await;
    let calendar = calendar(&fake);
    let tenant = tenant();
    let chosen = slot("short", tomorrow(14, 30));
    let from = tomorrow(0, 0);
    let to = from + ChronoDuration::days(1);

    let ReserveOutcome::Reserved { uid, .. } = calendar
        .reserve(&tenant, &chosen, "tok-res", Duration::from_secs(600))
        .await
        .expect("reserves")
    else {
        panic!("expected a reservation");
    };
    let again = calendar
        .reserve(&tenant, &chosen, "tok-res", Duration::from_secs(600))
        .await
        .expect("replay");
    assert!(matches!(again, ReserveOutcome::Reserved { uid: ref same, .. } if *same == uid));
    let reservations = fake.fake().reservations();
    assert_eq!(reservations.len(), 1);
    assert_eq!(reservations[0].slot_start, chosen.start);
    assert!(reservations[0].until >= fake.fake().now() + ChronoDuration::minutes(9));

    // Cal.com hides every reserved slot, ours included; our own view keeps it.
    assert!(
        !fake
            .fake()
            .free_slots(SHORT, from, to)
            .contains(&chosen.start)
    );
    let listed = calendar.slots(&tenant, from, to).await.expect("slots");
    assert!(listed.contains(&chosen));

    assert!(
        calendar
            .extend_reservation("tok-res", Duration::from_secs(900))
            .await
            .expect("extends")
    );

    let uid = booked(
        calendar
            .book(&tenant, &request(&chosen, "tok-res"))
            .await
            .expect("books"),
    );
    assert!(fake.fake().reservations().is_empty(), "booking consumed it");
    assert_eq!(
        fake.fake().booking(&uid).map(|b| b.start),
        Some(chosen.start)
    );
    assert!(
        !calendar
            .release_reservation("tok-res")
            .await
            .expect("nothing left")
    );

    // A reservation given up with its hold is released at Cal.com.
    let dropped = slot("long", tomorrow(17, 0));
    let reserved = calendar
        .reserve(&tenant, &dropped, "tok-drop", Duration::from_secs(300))
        .await
        .expect("reserves");
    assert!(matches!(reserved, ReserveOutcome::Reserved { .. }));
    assert_eq!(fake.fake().reservations().len(), 1);
    assert!(
        calendar
            .release_reservation("tok-drop")
            .await
            .expect("releases")
    );
    assert!(fake.fake().reservations().is_empty());
    assert!(
        !calendar
            .release_reservation("tok-drop")
            .await
            .expect("already released")
    );
}
