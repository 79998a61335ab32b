//! The Cal.com client against the loopback fake of Cal.com, over real HTTP.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Duration as ChronoDuration, NaiveTime, TimeZone, Utc};
use fakes::calcom::{
    EventTypeConfig, FakeCalcom, FakeCalcomConfig, Fault, OutsideBooking, RunningFake,
    WeeklySchedule,
};
use reqwest::Method;
use secrecy::SecretString;
use shared::calcom::{
    Attendee, BookingLookup, BookingStatus, CalcomClient, CalcomConfig, CalcomError, NewBooking,
    RateLimit, RetryPolicy, SlotQuery,
};

const KEY: &str = "cal_test_fake_key";
const EVENT: u64 = 6_981_507;
const ZONE: chrono_tz::Tz = chrono_tz::Europe::Madrid;

fn fake_config() -> FakeCalcomConfig {
    FakeCalcomConfig::default().with_event_type(EventTypeConfig::new(
        EVENT,
        "consultation",
        15,
        ZONE,
        WeeklySchedule::every_day(9, 17),
    ))
}

async fn fake_with(config: FakeCalcomConfig) -> RunningFake {
    FakeCalcom::start(config).await.expect("fake starts")
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_attempts: 4,
        max_total: Duration::from_secs(3),
        // Each test is about one call's retries; the pause has its own test.
        outage_pause: Duration::ZERO,
    }
}

fn client_config(fake: &RunningFake) -> CalcomConfig {
    let mut config = CalcomConfig::new(SecretString::from(KEY)).with_base_url(fake.base_url());
    config.retry = fast_retries();
    config.request_timeout = Duration::from_secs(2);
    config.availability_ttl = Duration::from_millis(400);
    config
}

fn client(fake: &RunningFake) -> CalcomClient {
    CalcomClient::new(client_config(fake)).expect("client builds")
}

/// `hour:minute` Madrid time, `days` from today: safely bookable.
fn local(days: i64, hour: u32, minute: u32) -> DateTime<Utc> {
    let date = (Utc::now().with_timezone(&ZONE) + ChronoDuration::days(days)).date_naive();
    let time = NaiveTime::from_hms_opt(hour, minute, 0).expect("valid time");
    ZONE.from_local_datetime(&date.and_time(time))
        .earliest()
        .expect("no DST gap at these hours")
        .with_timezone(&Utc)
}

fn morning(days: i64) -> SlotQuery {
    SlotQuery::new(EVENT, local(days, 9, 0), local(days, 10, 0))
}

fn new_booking(start: DateTime<Utc>) -> NewBooking {
    let mut new = NewBooking::new(
        EVENT,
        start,
        Attendee {
            name: "Ana".to_owned(),
            email: "ana@example.invalid".to_owned(),
            time_zone: "Europe/Madrid".to_owned(),
            phone_number: Some("+34600000000".to_owned()),
            language: Some("es".to_owned()),
        },
    );
    new.metadata = BTreeMap::from([("conversation".to_owned(), "c-1".to_owned())]);
    new
}

fn starts(slots: &[shared::calcom::Slot]) -> Vec<DateTime<Utc>> {
    slots.iter().map(|slot| slot.start).collect()
}

#[tokio::test]
async fn slots_come_back_typed_with_the_right_version_header() {
    let fake = fake_with(fake_config()).await;
    let calcom = client(&fake);
    let slots = calcom.fresh_slots(&morning(3)).await.expect("slots");
    assert_eq!(
        starts(&slots),
        fake.free_slots(EVENT, local(3, 9, 0), local(3, 10, 0))
    );
    assert_eq!(slots.len(), 5);
    assert_eq!(slots[0].end, Some(local(3, 9, 15)));

    calcom
        .create_booking(&new_booking(local(3, 9, 0)), "k-version")
        .await
        .expect("booked");
    for request in fake.requests() {
        let expected = if request.path.starts_with("/v2/slots") {
            "2024-09-04"
        } else {
            "2024-08-13"
        };
        assert_eq!(
            request.api_version.as_deref(),
            Some(expected),
            "{}",
            request.path
        );
        assert!(request.authenticated);
    }
}

#[tokio::test]
async fn reserve_hides_the_slot_and_release_frees_it() {
    let fake = fake_with(fake_config()).await;
    let calcom = client(&fake);
    let slot = local(4, 9, 30);
    let reservation = calcom
        .reserve_slot(EVENT, slot, Some(10))
        .await
        .expect("reserved");
    assert_eq!(reservation.slot_start, slot);
    assert_eq!(reservation.reservation_duration, Some(10));
    assert_eq!(fake.reservations().len(), 1);
    assert!(!starts(&calcom.fresh_slots(&morning(4)).await.expect("slots")).contains(&slot));

    let seen = calcom.get_reservation(&reservation.uid).await.expect("get");
    assert_eq!(seen.map(|r| r.uid), Some(reservation.uid.clone()));

    let moved = calcom
        .update_reservation(&reservation.uid, EVENT, local(4, 9, 45), Some(5))
        .await
        .expect("moved");
    assert_eq!(moved.slot_start, local(4, 9, 45));

    calcom
        .release_reservation(&reservation.uid)
        .await
        .expect("released");
    assert_eq!(
        calcom.get_reservation(&reservation.uid).await.expect("get"),
        None
    );
    calcom
        .release_reservation(&reservation.uid)
        .await
        .expect("releasing twice is fine");
    assert!(fake.reservations().is_empty());
}

#[tokio::test]
async fn a_reservation_by_someone_else_is_reserved_by_other() {
    let fake = fake_with(fake_config()).await;
    let calcom = client(&fake);
    let someone_else = client(&fake);
    let slot = local(5, 10, 0);
    let theirs = someone_else
        .reserve_slot(EVENT, slot, None)
        .await
        .expect("theirs");

    let ours = calcom.reserve_slot(EVENT, slot, None).await;
    assert!(
        matches!(ours, Err(CalcomError::ReservedByOther { .. })),
        "{ours:?}"
    );

    // Booking through a stale reservation of ours loses to theirs with 409.
    let mut new = new_booking(slot);
    new.reserved_slot_uid = Some("0d4dcf88-4be1-463c-818b-cbf00652e154".to_owned());
    let booked = calcom.create_booking(&new, "k-reserved").await;
    match booked {
        Err(error @ CalcomError::ReservedByOther { .. }) => assert!(error.wants_alternatives()),
        other => panic!("expected ReservedByOther, got {other:?}"),
    }

    new.reserved_slot_uid = Some(theirs.uid);
    let booking = someone_else
        .create_booking(&new, "k-theirs")
        .await
        .expect("theirs books");
    assert_eq!(booking.start, slot);
    assert!(
        fake.reservations().is_empty(),
        "the reservation was consumed"
    );
}

#[tokio::test]
async fn booking_records_the_idempotency_key_and_can_be_found_by_it() {
    let fake = fake_with(fake_config()).await;
    let calcom = client(&fake);
    let slot = local(6, 11, 0);
    let booking = calcom
        .create_booking(&new_booking(slot), "hold-token-1")
        .await
        .expect("booked");
    assert_eq!(booking.status, BookingStatus::Accepted);
    assert_eq!(booking.start, slot);
    assert_eq!(booking.end, slot + ChronoDuration::minutes(15));
    assert_eq!(booking.event_type(), Some(EVENT));
    assert_eq!(booking.idempotency_key(), Some("hold-token-1"));
    assert_eq!(booking.metadata["conversation"], "c-1");
    let stored = fake.booking(&booking.uid).expect("stored");
    assert_eq!(stored.metadata["idempotencyKey"], "hold-token-1");

    // A restarted process finds it again; other keys find nothing.
    let restarted = client(&fake);
    let lookup = BookingLookup::for_new_booking(&new_booking(slot));
    let found = restarted
        .find_booking_by_idempotency_key(&lookup, "hold-token-1")
        .await
        .expect("lookup");
    assert_eq!(found.map(|b| b.uid), Some(booking.uid.clone()));
    let missing = restarted
        .find_booking_by_idempotency_key(&lookup, "hold-token-2")
        .await
        .expect("lookup");
    assert_eq!(missing, None);
}

#[tokio::test]
async fn the_recovery_lookup_pages_through_many_bookings() {
    let fake = fake_with(fake_config()).await;
    let calcom = client(&fake);
    // 130 bookings of the same attendee within the lookup window: two pages.
    for index in 0..130_i64 {
        let day = 7 + index / 32;
        let slot = local(day, 9, 0) + ChronoDuration::minutes(15 * (index % 32));
        let mut outside = OutsideBooking::new(EVENT, slot);
        outside.attendee_email = "ana@example.invalid".to_owned();
        fake.book_from_outside(outside).expect("planted");
    }
    let target = local(12, 16, 45);
    let booked = calcom
        .create_booking(&new_booking(target), "late-key")
        .await
        .expect("booked");
    let lookup = BookingLookup {
        event_type_id: EVENT,
        attendee_email: Some("ana@example.invalid".to_owned()),
        after_start: local(7, 0, 0),
        before_end: local(13, 0, 0),
    };
    let found = calcom
        .find_booking_by_idempotency_key(&lookup, "late-key")
        .await
        .expect("lookup");
    assert_eq!(found.map(|b| b.uid), Some(booked.uid));
}

#[tokio::test]
async fn a_slot_booked_from_outside_between_listing_and_booking_is_slot_taken() {
    let fake = fake_with(fake_config()).await;
    let calcom = client(&fake);
    let slots = calcom.fresh_slots(&morning(8)).await.expect("slots");
    let chosen = slots[1].start;
    fake.book_from_outside(OutsideBooking::new(EVENT, chosen))
        .expect("the web page wins the race");

    let result = calcom.create_booking(&new_booking(chosen), "k-race").await;
    match result {
        Err(error @ CalcomError::SlotTaken { .. }) => {
            assert!(error.wants_alternatives());
            assert!(!error.is_retryable());
        }
        other => panic!("expected SlotTaken, got {other:?}"),
    }
    assert!(fake.double_bookings().is_empty());
}

#[tokio::test]
async fn past_and_out_of_bounds_times_are_typed() {
    let config = FakeCalcomConfig::default().with_event_type(
        EventTypeConfig::new(
            EVENT,
            "consultation",
            15,
            ZONE,
            WeeklySchedule::every_day(0, 24),
        )
        .with_minimum_booking_notice(Duration::from_secs(72 * 3600)),
    );
    let fake = fake_with(config).await;
    let calcom = client(&fake);
    let past = calcom
        .create_booking(
            &new_booking(Utc::now() - ChronoDuration::hours(3)),
            "k-past",
        )
        .await;
    assert!(matches!(past, Err(CalcomError::Past { .. })), "{past:?}");
    let soon = calcom
        .create_booking(&new_booking(local(1, 12, 0)), "k-soon")
        .await;
    assert!(
        matches!(soon, Err(CalcomError::OutOfBounds { .. })),
        "{soon:?}"
    );
}

#[tokio::test]
async fn cancel_is_idempotent() {
    let fake = fake_with(fake_config()).await;
    let calcom = client(&fake);
    let booking = calcom
        .create_booking(&new_booking(local(9, 12, 0)), "k-cancel")
        .await
        .expect("booked");
    let cancelled = calcom
        .cancel_booking(&booking.uid, "customer cancelled on WhatsApp")
        .await
        .expect("cancelled");
    assert_eq!(cancelled.status, BookingStatus::Cancelled);
    assert_eq!(
        cancelled.cancellation_reason.as_deref(),
        Some("customer cancelled on WhatsApp")
    );
    let again = calcom
        .cancel_booking(&booking.uid, "replayed")
        .await
        .expect("replay is fine");
    assert_eq!(again.status, BookingStatus::Cancelled);
    let unknown = calcom.cancel_booking("doesNotExist123", "x").await;
    assert!(
        matches!(unknown, Err(CalcomError::NotFound { .. })),
        "{unknown:?}"
    );
}

#[tokio::test]
async fn reschedule_moves_the_booking_and_survives_a_lost_answer() {
    let fake = fake_with(fake_config()).await;
    let calcom = client(&fake);
    let booking = calcom
        .create_booking(&new_booking(local(10, 9, 0)), "k-move")
        .await
        .expect("booked");
    let moved = calcom
        .reschedule_booking(&booking.uid, local(10, 9, 30), Some("customer asked"), None)
        .await
        .expect("moved");
    assert_ne!(moved.uid, booking.uid);
    assert_eq!(
        moved.rescheduled_from_uid.as_deref(),
        Some(booking.uid.as_str())
    );
    assert_eq!(moved.start, local(10, 9, 30));
    assert_eq!(moved.idempotency_key(), Some("k-move"));
    let old = calcom.get_booking(&booking.uid).await.expect("old");
    assert_eq!(old.status, BookingStatus::Cancelled);
    assert_eq!(old.rescheduled_to_uid.as_deref(), Some(moved.uid.as_str()));

    // The move happens but its answer is lost; the retry is refused (old booking is
    // cancelled by then) and the client finds the successor instead of failing.
    fake.inject_on(Method::POST, "/v2/bookings/", Fault::LostResponse(502));
    let moved_again = calcom
        .reschedule_booking(&moved.uid, local(10, 10, 0), None, None)
        .await
        .expect("recovered");
    assert_eq!(moved_again.start, local(10, 10, 0));
    let active: Vec<_> = fake
        .bookings()
        .into_iter()
        .filter(|booking| booking.status.is_active())
        .collect();
    assert_eq!(active.len(), 1);

    let taken = calcom
        .reschedule_booking(&moved_again.uid, local(10, 23, 0), None, None)
        .await;
    assert!(
        matches!(taken, Err(CalcomError::SlotTaken { .. })),
        "closed hours: {taken:?}"
    );
}

#[tokio::test]
async fn a_lost_create_answer_is_recovered_without_a_second_booking() {
    let fake = fake_with(fake_config()).await;
    let calcom = client(&fake);
    fake.inject_on(Method::POST, "/v2/bookings", Fault::LostResponse(502));
    let slot = local(11, 13, 0);
    let booking = calcom
        .create_booking(&new_booking(slot), "k-lost")
        .await
        .expect("recovered");
    assert_eq!(booking.start, slot);
    assert_eq!(booking.idempotency_key(), Some("k-lost"));
    assert_eq!(fake.bookings().len(), 1);
}

#[tokio::test]
async fn server_errors_and_timeouts_are_retried() {
    let fake = fake_with(fake_config()).await;
    let mut config = client_config(&fake);
    config.request_timeout = Duration::from_millis(300);
    let calcom = CalcomClient::new(config).expect("client");

    fake.inject(Fault::ServerError(503));
    fake.inject(Fault::ServerError(500));
    fake.inject(Fault::Hang);
    let slots = calcom
        .fresh_slots(&morning(12))
        .await
        .expect("fourth attempt succeeds");
    assert_eq!(slots.len(), 5);
    let statuses: Vec<u16> = fake
        .requests()
        .iter()
        .map(|request| request.status)
        .collect();
    assert_eq!(statuses.len(), 4, "{statuses:?}");
    assert_eq!(statuses[3], 200);

    for _ in 0..4 {
        fake.inject(Fault::ServerError(502));
    }
    let exhausted = calcom.fresh_slots(&morning(13)).await;
    match exhausted {
        Err(error @ CalcomError::Transient { .. }) => assert!(error.is_retryable()),
        other => panic!("expected Transient, got {other:?}"),
    }

    // Client errors are not retried.
    let before = fake.requests().len();
    let missing = calcom.get_booking("unknownUid").await;
    assert!(
        matches!(missing, Err(CalcomError::NotFound { .. })),
        "{missing:?}"
    );
    assert_eq!(fake.requests().len(), before + 1);
}

#[tokio::test]
async fn after_a_spent_retry_budget_calls_pause_without_reaching_calcom() {
    let fake = fake_with(fake_config()).await;
    let mut config = client_config(&fake);
    config.retry.outage_pause = Duration::from_millis(500);
    let calcom = CalcomClient::new(config).expect("client");
    for _ in 0..4 {
        fake.inject(Fault::ServerError(503));
    }
    let spent = calcom.fresh_slots(&morning(5)).await;
    assert!(
        matches!(
            spent,
            Err(CalcomError::Transient {
                status: Some(503),
                ..
            })
        ),
        "{spent:?}"
    );
    assert_eq!(fake.requests().len(), 4);

    // Cal.com is fine again, but the pause is not over: nothing is sent.
    let paused = calcom.fresh_slots(&morning(5)).await;
    match &paused {
        Err(error @ CalcomError::Transient { status: None, .. }) => {
            assert!(error.is_retryable());
        }
        other => panic!("expected a paused call, got {other:?}"),
    }
    assert_eq!(fake.requests().len(), 4, "a paused call reached Cal.com");

    tokio::time::sleep(Duration::from_millis(600)).await;
    let resumed = calcom.fresh_slots(&morning(5)).await.expect("calls resume");
    assert_eq!(resumed.len(), 5);
    assert_eq!(fake.requests().len(), 5);
}

#[tokio::test]
async fn unreachable_calcom_is_transient() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    let mut config =
        CalcomConfig::new(SecretString::from(KEY)).with_base_url(format!("http://{address}"));
    config.retry = fast_retries();
    let calcom = CalcomClient::new(config).expect("client");
    let result = calcom.fresh_slots(&morning(3)).await;
    assert!(
        matches!(result, Err(CalcomError::Transient { status: None, .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn the_client_paces_itself_below_the_per_key_limit() {
    let fake = fake_with(fake_config().with_rate_limit(5, Duration::from_millis(500))).await;
    let mut config = client_config(&fake);
    config.rate_limit = RateLimit {
        max_requests: 5,
        window: Duration::from_millis(500),
        burst: 2,
    };
    // Retries would hide 429s; this test wants to see none at all.
    config.retry.max_attempts = 1;
    let calcom = CalcomClient::new(config).expect("client");
    let began = Instant::now();
    for _ in 0..14 {
        calcom
            .fresh_slots(&morning(3))
            .await
            .expect("never throttled");
    }
    let throttled = fake.requests().iter().filter(|r| r.status == 429).count();
    assert_eq!(throttled, 0);
    // 2 at once, then one per 500/3 ms.
    assert!(
        began.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        began.elapsed()
    );
}

#[tokio::test]
async fn a_429_is_waited_out_when_it_fits_and_reported_when_it_does_not() {
    let fake = fake_with(fake_config().with_rate_limit(2, Duration::from_secs(1))).await;
    let calcom = client(&fake);
    let began = Instant::now();
    for _ in 0..3 {
        calcom
            .fresh_slots(&morning(3))
            .await
            .expect("third waits for the window");
    }
    assert!(began.elapsed() >= Duration::from_millis(900));
    assert!(fake.requests().iter().any(|r| r.status == 429));

    fake.inject(Fault::RateLimited(30));
    let limited = calcom.fresh_slots(&morning(4)).await;
    match limited {
        Err(CalcomError::RateLimited { retry_after }) => {
            assert_eq!(retry_after, Duration::from_secs(30));
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
}

#[tokio::test]
async fn cached_slots_may_be_stale_but_fresh_slots_never_are() {
    let fake = fake_with(fake_config()).await;
    let calcom = client(&fake);
    let query = morning(14);
    let first = calcom.cached_slots(&query).await.expect("slots");
    let taken = first[0].start;
    fake.book_from_outside(OutsideBooking::new(EVENT, taken))
        .expect("outside");

    let requests_before = fake.requests().len();
    let cached = calcom.cached_slots(&query).await.expect("cached");
    assert_eq!(fake.requests().len(), requests_before, "served from memory");
    assert!(
        starts(&cached).contains(&taken),
        "stale within the TTL, by design"
    );

    let fresh = calcom.fresh_slots(&query).await.expect("fresh");
    assert!(!starts(&fresh).contains(&taken));

    fake.book_from_outside(OutsideBooking::new(EVENT, fresh[0].start))
        .expect("outside");
    tokio::time::sleep(Duration::from_millis(450)).await;
    let expired = calcom.cached_slots(&query).await.expect("refetched");
    assert!(!starts(&expired).contains(&fresh[0].start), "TTL passed");

    // Our own booking drops the cache for that event type at once.
    let ours = expired[0].start;
    calcom
        .create_booking(&new_booking(ours), "k-cache")
        .await
        .expect("booked");
    let after = calcom.cached_slots(&query).await.expect("slots");
    assert!(!starts(&after).contains(&ours));
}

#[tokio::test]
async fn a_wrong_key_is_permanent_and_the_key_never_prints() {
    let fake = fake_with(fake_config()).await;
    let mut config = client_config(&fake);
    config.api_key = SecretString::from("cal_live_wrong_key_value");
    let printed = format!("{config:?}");
    assert!(!printed.contains("cal_live_wrong_key_value"), "{printed}");
    let calcom = CalcomClient::new(config).expect("client");
    let result = calcom.fresh_slots(&morning(3)).await;
    assert!(
        matches!(
            result,
            Err(CalcomError::Permanent {
                status: Some(401),
                ..
            })
        ),
        "{result:?}"
    );
    assert!(!format!("{result:?}").contains("cal_live_wrong_key_value"));
}
