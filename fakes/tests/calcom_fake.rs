//! The Cal.com fake over real HTTP on loopback, checked against the live captures in
//! `tests/calcom_fixtures` (copied with their provenance from the project's wire notes).

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Duration as ChronoDuration, NaiveTime, TimeZone, Utc};
use fakes::calcom::{
    EventTypeConfig, FakeCalcom, FakeCalcomConfig, Fault, OutsideBooking, RunningFake,
    WeeklySchedule,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const KEY: &str = "cal_test_fake_key";
const EVENT: u64 = 6_981_507;
const OTHER_EVENT: u64 = 42;
const SLOTS_VERSION: &str = "2024-09-04";
const BOOKINGS_VERSION: &str = "2024-08-13";
const ZONE: chrono_tz::Tz = chrono_tz::Europe::Madrid;

fn config() -> FakeCalcomConfig {
    FakeCalcomConfig::default()
        .with_event_type(EventTypeConfig::new(
            EVENT,
            "consultation",
            15,
            ZONE,
            WeeklySchedule::every_day(9, 17),
        ))
        .with_event_type(EventTypeConfig::new(
            OTHER_EVENT,
            "long-visit",
            60,
            ZONE,
            WeeklySchedule::every_day(9, 17),
        ))
}

async fn start() -> RunningFake {
    start_with(config()).await
}

async fn start_with(config: FakeCalcomConfig) -> RunningFake {
    FakeCalcom::start(config)
        .await
        .expect("fake starts on loopback")
}

/// `hour:minute` Madrid time, `days` days from today: far enough ahead to be bookable.
fn local(days: i64, hour: u32, minute: u32) -> DateTime<Utc> {
    let date = (Utc::now().with_timezone(&ZONE) + ChronoDuration::days(days)).date_naive();
    let time = NaiveTime::from_hms_opt(hour, minute, 0).expect("valid time");
    ZONE.from_local_datetime(&date.and_time(time))
        .earliest()
        .expect("no DST gap at these hours")
        .with_timezone(&Utc)
}

fn iso(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/calcom_fixtures/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).expect("fixture exists");
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// Every key path in a JSON value (arrays as `[]`), skipping the free-form subtrees whose
/// keys are the caller's own data.
fn shape(value: &Value) -> BTreeSet<String> {
    fn walk(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
        match value {
            Value::Object(object) => {
                for (key, child) in object {
                    let path = format!("{prefix}.{key}");
                    out.insert(path.clone());
                    if key != "metadata" {
                        walk(child, &path, out);
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    walk(item, &format!("{prefix}[]"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(value, "", &mut out);
    out
}

fn assert_same_shape(actual: &Value, fixture_name: &str) {
    assert_shape_like(actual, &fixture(fixture_name), fixture_name);
}

fn assert_shape_like(actual: &Value, expected: &Value, fixture_name: &str) {
    let expected = shape(expected);
    let actual = shape(actual);
    let missing: Vec<_> = expected.difference(&actual).collect();
    let extra: Vec<_> = actual.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "shape differs from {fixture_name}: missing {missing:?}, extra {extra:?}"
    );
}

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    fn new(fake: &RunningFake) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: fake.base_url(),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        version: Option<&str>,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(version) = version {
            request = request.header("cal-api-version", version);
        }
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("fake answers");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body readable");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, headers, value)
    }

    async fn slots(&self, query: &str) -> (StatusCode, Value) {
        let (status, _, body) = self
            .call(
                Method::GET,
                &format!("/v2/slots?{query}"),
                Some(SLOTS_VERSION),
                Some(KEY),
                None,
            )
            .await;
        (status, body)
    }

    async fn book(&self, start: DateTime<Utc>, extra: Value) -> (StatusCode, Value) {
        let mut body = json!({
            "eventTypeId": EVENT,
            "start": iso(start),
            "attendee": { "name": "Ana", "timeZone": "Europe/Madrid", "language": "es", "email": "ana@example.invalid" },
            "guests": [],
            "location": { "type": "link" },
            "metadata": { "purpose": "test" },
        });
        if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
            body.extend(extra);
        }
        let (status, _, answer) = self
            .call(
                Method::POST,
                "/v2/bookings",
                Some(BOOKINGS_VERSION),
                Some(KEY),
                Some(body),
            )
            .await;
        (status, answer)
    }

    async fn reserve(&self, start: DateTime<Utc>) -> (StatusCode, Value) {
        let (status, _, answer) = self
            .call(
                Method::POST,
                "/v2/slots/reservations",
                Some(SLOTS_VERSION),
                Some(KEY),
                Some(json!({ "eventTypeId": EVENT, "slotStart": iso(start), "reservationDuration": 5 })),
            )
            .await;
        (status, answer)
    }
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}

fn slot_starts(body: &Value) -> Vec<String> {
    body["data"]
        .as_object()
        .map(|days| {
            days.values()
                .flat_map(|items| items.as_array().cloned().unwrap_or_default())
                .filter_map(|item| item["start"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn range_query(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    format!(
        "eventTypeId={EVENT}&start={}&end={}&format=range",
        iso(from),
        iso(to)
    )
}

#[tokio::test]
async fn slots_follow_the_schedule_in_the_live_shape() {
    let fake = start().await;
    let api = Api::new(&fake);
    let (status, body) = api
        .slots(&range_query(local(3, 9, 0), local(3, 11, 0)))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "success");
    // Same shape as the capture: one day key, objects with start and end.
    let day = body["data"].as_object().expect("days object");
    assert_eq!(day.len(), 1);
    let items = day
        .values()
        .next()
        .and_then(Value::as_array)
        .expect("slot list");
    assert_eq!(items.len(), 9, "9:00..=11:00 every 15 minutes");
    let captured = fixture("calcom-live-slots-range.response");
    assert_shape_like(&items[0], &captured["data"]["2026-09-09"][0], "slots item");
}

#[tokio::test]
async fn slots_render_in_the_requested_zone_and_only_start_by_default() {
    let fake = start().await;
    let api = Api::new(&fake);
    let date = local(4, 12, 0).with_timezone(&ZONE).date_naive();
    let (status, body) = api
        .slots(&format!(
            "eventTypeId={EVENT}&start={date}&end={date}&timeZone=Europe/Madrid"
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    let items = body["data"][date.to_string()].as_array().expect("the day");
    assert_eq!(items.len(), 32, "9:00 to 17:00 every 15 minutes");
    let first = items[0].as_object().expect("object item");
    assert_eq!(first.keys().collect::<Vec<_>>(), ["start"]);
    let first_start = first["start"].as_str().expect("string start");
    assert!(
        first_start.starts_with(&format!("{date}T09:00:00.000+0")),
        "{first_start}"
    );
}

#[tokio::test]
async fn slots_exclude_booked_and_reserved_times_but_not_for_the_booking_being_moved() {
    let fake = start().await;
    let api = Api::new(&fake);
    let (from, to) = (local(5, 10, 0), local(5, 11, 0));
    let (status, booked) = api.book(local(5, 10, 0), json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = api.reserve(local(5, 10, 30)).await;
    assert_eq!(status, StatusCode::CREATED);

    let (_, body) = api.slots(&range_query(from, to)).await;
    let starts = slot_starts(&body);
    assert!(
        !starts.contains(&iso(local(5, 10, 0))),
        "booked slot offered"
    );
    assert!(
        !starts.contains(&iso(local(5, 10, 30))),
        "reserved slot offered"
    );
    assert!(starts.contains(&iso(local(5, 10, 15))));

    let uid = booked["data"]["uid"].as_str().expect("uid");
    let (_, body) = api
        .slots(&format!(
            "{}&bookingUidToReschedule={uid}",
            range_query(from, to)
        ))
        .await;
    assert!(slot_starts(&body).contains(&iso(local(5, 10, 0))));
}

#[tokio::test]
async fn slots_reject_bad_ranges_and_wrong_versions_with_the_envelope() {
    let fake = start().await;
    let api = Api::new(&fake);
    let (status, body) = api
        .slots(&range_query(local(3, 11, 0), local(3, 9, 0)))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        message(&body),
        "Invalid time range given - check the 'start' and 'end' query parameters."
    );
    assert_same_shape(&body, "calcom-live-error-400.response");
    assert_eq!(body["path"], "/v2/slots");

    let (status, _, body) = api
        .call(
            Method::GET,
            &format!("/v2/slots?{}", range_query(local(3, 9, 0), local(3, 11, 0))),
            Some(BOOKINGS_VERSION),
            Some(KEY),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "BadRequestException");

    let (status, body) = api
        .slots("eventTypeId=999&start=2050-01-01&end=2050-01-02")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_same_shape(&body, "calcom-live-error-404.response");
}

#[tokio::test]
async fn reservation_lifecycle_matches_the_captures() {
    let fake = start().await;
    let api = Api::new(&fake);
    let slot = local(6, 9, 0);
    let (status, reserved) = api.reserve(slot).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_same_shape(&reserved, "calcom-live-reserve-slot.response");
    assert_eq!(reserved["data"]["slotStart"], iso(slot));
    assert_eq!(
        reserved["data"]["slotEnd"],
        iso(slot + ChronoDuration::minutes(15))
    );
    let uid = reserved["data"]["reservationUid"]
        .as_str()
        .expect("uid")
        .to_owned();
    let until: DateTime<Utc> = reserved["data"]["reservationUntil"]
        .as_str()
        .and_then(|text| text.parse().ok())
        .expect("reservationUntil");
    let left = until - fake.now();
    assert!(left > ChronoDuration::minutes(4) && left <= ChronoDuration::minutes(5));

    let path = format!("/v2/slots/reservations/{uid}");
    let (status, _, got) = api
        .call(Method::GET, &path, Some(SLOTS_VERSION), Some(KEY), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_same_shape(&got, "calcom-live-get-reservation.response");

    let (status, again) = api.reserve(slot).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        message(&again),
        "This time slot is already reserved by another user. Please choose a different time."
    );

    let moved_to = local(6, 9, 45);
    let (status, _, patched) = api
        .call(
            Method::PATCH,
            &path,
            Some(SLOTS_VERSION),
            Some(KEY),
            Some(json!({ "eventTypeId": EVENT, "slotStart": iso(moved_to), "reservationDuration": 10 })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(patched["data"]["slotStart"], iso(moved_to));
    assert_eq!(patched["data"]["reservationDuration"], 10);
    assert_eq!(
        api.reserve(slot).await.0,
        StatusCode::CREATED,
        "old slot freed by the move"
    );

    let (status, _, deleted) = api
        .call(Method::DELETE, &path, Some(SLOTS_VERSION), Some(KEY), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(deleted, fixture("calcom-live-delete-reservation.response"));
    let (status, _, missing) = api
        .call(Method::GET, &path, Some(SLOTS_VERSION), Some(KEY), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        missing,
        fixture("calcom-live-get-reservation-missing.response")
    );
    let (status, _, _) = api
        .call(Method::DELETE, &path, Some(SLOTS_VERSION), Some(KEY), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn reservations_expire_with_the_clock_and_refuse_booked_slots() {
    let fake = start().await;
    let api = Api::new(&fake);
    let slot = local(6, 11, 0);
    let (_, reserved) = api.reserve(slot).await;
    let uid = reserved["data"]["reservationUid"]
        .as_str()
        .expect("uid")
        .to_owned();
    fake.advance_clock(ChronoDuration::minutes(6));
    let (_, _, got) = api
        .call(
            Method::GET,
            &format!("/v2/slots/reservations/{uid}"),
            Some(SLOTS_VERSION),
            Some(KEY),
            None,
        )
        .await;
    assert_eq!(got["data"], Value::Null);

    assert_eq!(api.book(slot, json!({})).await.0, StatusCode::CREATED);
    let (status, body) = api.reserve(slot).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        message(&body),
        "Can't reserve a slot if the event is already booked."
    );

    let (status, _, body) = api
        .call(
            Method::POST,
            "/v2/slots/reservations",
            Some(SLOTS_VERSION),
            None,
            Some(json!({ "eventTypeId": EVENT, "slotStart": iso(local(6, 12, 0)), "reservationDuration": 5 })),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn create_booking_answers_the_live_shape_and_echoes_metadata() {
    let fake = start().await;
    let api = Api::new(&fake);
    let slot = local(7, 9, 0);
    let (status, body) = api
        .book(
            slot,
            json!({ "metadata": { "idempotencyKey": "hold-123" } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_same_shape(&body, "calcom-live-create-booking.response");
    let data = &body["data"];
    assert_eq!(data["status"], "accepted");
    assert_eq!(data["start"], iso(slot));
    assert_eq!(data["end"], iso(slot + ChronoDuration::minutes(15)));
    assert_eq!(data["duration"], 15);
    assert_eq!(data["eventType"]["id"], EVENT);
    assert_eq!(data["metadata"], json!({ "idempotencyKey": "hold-123" }));
    assert_eq!(data["attendees"][0]["language"], "es");

    let uid = data["uid"].as_str().expect("uid");
    let (status, _, got) = api
        .call(
            Method::GET,
            &format!("/v2/bookings/{uid}"),
            Some("2026-02-25"),
            Some(KEY),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_same_shape(&got, "calcom-live-get-booking.response");
    assert_eq!(fake.bookings().len(), 1);
}

#[tokio::test]
async fn create_booking_refuses_taken_past_unknown_and_closed_times() {
    let fake = start().await;
    let api = Api::new(&fake);
    let slot = local(8, 10, 0);
    assert_eq!(api.book(slot, json!({})).await.0, StatusCode::CREATED);

    let (status, body) = api.book(slot, json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        message(&body),
        "User either already has booking at this time or is not available"
    );
    assert_eq!(body["path"], "/v2/bookings");

    let (status, body) = api
        .book(Utc::now() - ChronoDuration::hours(2), json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(message(&body), "Attempting to book a meeting in the past.");

    let (status, body) = api.book(local(8, 20, 0), json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "after hours");
    assert_eq!(
        message(&body),
        "User either already has booking at this time or is not available"
    );

    let (status, body) = api
        .book(local(8, 11, 0), json!({ "eventTypeId": 999 }))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(message(&body), "Event type with id 999 not found.");

    let (status, body) = api
        .book(local(8, 11, 0), json!({ "metadata": { "n": 1 } }))
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "non-string metadata: {body}"
    );

    let (status, body) = api
        .book(local(8, 11, 0), json!({ "attendee": { "name": "x" } }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // One owner: a 60-minute visit overlapping the 15-minute booking is refused too.
    let (status, _) = api
        .book(local(8, 9, 30), json!({ "eventTypeId": OTHER_EVENT }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(fake.double_bookings().is_empty());
}

#[tokio::test]
async fn minimum_notice_is_the_out_of_bounds_message() {
    let config = FakeCalcomConfig::default().with_event_type(
        EventTypeConfig::new(
            EVENT,
            "consultation",
            15,
            ZONE,
            WeeklySchedule::every_day(0, 24),
        )
        .with_minimum_booking_notice(Duration::from_secs(48 * 3600)),
    );
    let fake = start_with(config).await;
    let api = Api::new(&fake);
    let (status, body) = api.book(local(1, 12, 0), json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        message(&body)
            .starts_with("The event type can't be booked at the \"start\" time provided.")
    );
}

#[tokio::test]
async fn a_reservation_made_first_by_someone_else_wins_with_409() {
    let fake = start().await;
    let api = Api::new(&fake);
    let slot = local(9, 9, 0);
    let (_, theirs) = api.reserve(slot).await;
    let their_uid = theirs["data"]["reservationUid"]
        .as_str()
        .expect("uid")
        .to_owned();
    // Naming any reservation other than the earliest active one loses to it.
    let (status, body) = api
        .book(slot, json!({ "reservedSlotUid": "not-ours-or-anyones" }))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(message(&body).starts_with("Someone else reserved this booking time slot before you."));
    assert_eq!(body["error"]["code"], "ConflictException");

    // Booking with no reservation is not blocked by default (a reservation ranks below a
    // booking), and booking with the reservation's own uid consumes it.
    let (status, _) = api
        .book(slot, json!({ "reservedSlotUid": their_uid }))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(fake.reservations().is_empty());
}

#[tokio::test]
async fn list_filters_by_attendee_status_and_window_with_offset_pagination() {
    let fake = start().await;
    let api = Api::new(&fake);
    for minute in [0, 15, 30, 45] {
        let email = if minute == 45 {
            "other@example.invalid"
        } else {
            "ana@example.invalid"
        };
        let (status, _) = api
            .book(
                local(10, 9, minute),
                json!({ "attendee": { "name": "A", "timeZone": "UTC", "email": email } }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let query = format!(
        "/v2/bookings?attendeeEmail=ana%40example.invalid&afterStart={}&beforeEnd={}&take=2&skip=0",
        iso(local(10, 9, 0)),
        iso(local(10, 10, 0))
    );
    let (status, _, page) = api
        .call(Method::GET, &query, Some(BOOKINGS_VERSION), Some(KEY), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(page["pagination"]["totalItems"], 3);
    assert_eq!(page["pagination"]["hasNextPage"], true);
    let captured = fixture("calcom-live-get-booking.response");
    assert_shape_like(&page["data"][0], &captured["data"], "listed booking");
    let (_, _, second) = api
        .call(
            Method::GET,
            &query.replace("skip=0", "skip=2"),
            Some(BOOKINGS_VERSION),
            Some(KEY),
            None,
        )
        .await;
    assert_eq!(second["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(second["pagination"]["hasNextPage"], false);

    let first_uid = page["data"][0]["uid"].as_str().expect("uid").to_owned();
    api.call(
        Method::POST,
        &format!("/v2/bookings/{first_uid}/cancel"),
        Some(BOOKINGS_VERSION),
        Some(KEY),
        Some(json!({ "cancellationReason": "x" })),
    )
    .await;
    let (_, _, cancelled) = api
        .call(
            Method::GET,
            "/v2/bookings?status=cancelled",
            Some(BOOKINGS_VERSION),
            Some(KEY),
            None,
        )
        .await;
    assert_eq!(cancelled["data"].as_array().map(Vec::len), Some(1));
    let (_, _, upcoming) = api
        .call(
            Method::GET,
            "/v2/bookings?status=upcoming",
            Some(BOOKINGS_VERSION),
            Some(KEY),
            None,
        )
        .await;
    assert_eq!(upcoming["data"].as_array().map(Vec::len), Some(3));

    let (status, _, _) = api
        .call(
            Method::GET,
            "/v2/bookings",
            Some(BOOKINGS_VERSION),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "listing needs a key");
}

#[tokio::test]
async fn cancel_and_reschedule_match_the_captures() {
    let fake = start().await;
    let api = Api::new(&fake);
    let (_, created) = api.book(local(11, 9, 0), json!({})).await;
    let uid = created["data"]["uid"].as_str().expect("uid").to_owned();

    let (status, _, moved) = api
        .call(
            Method::POST,
            &format!("/v2/bookings/{uid}/reschedule"),
            Some(BOOKINGS_VERSION),
            Some(KEY),
            Some(json!({ "start": iso(local(11, 9, 15)), "reschedulingReason": "customer asked" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{moved}");
    assert_same_shape(&moved, "calcom-live-reschedule.response");
    assert_eq!(moved["data"]["rescheduledFromUid"], uid.as_str());
    assert_eq!(moved["data"]["cancellationReason"], "customer asked");
    assert_eq!(moved["data"]["metadata"], created["data"]["metadata"]);
    let new_uid = moved["data"]["uid"].as_str().expect("uid").to_owned();
    assert_ne!(new_uid, uid);

    let (_, _, old) = api
        .call(
            Method::GET,
            &format!("/v2/bookings/{uid}"),
            Some(BOOKINGS_VERSION),
            Some(KEY),
            None,
        )
        .await;
    assert_same_shape(&old, "calcom-live-get-booking-after-reschedule.response");
    assert_eq!(old["data"]["status"], "cancelled");
    assert_eq!(old["data"]["rescheduledToUid"], new_uid.as_str());

    let (_, plain) = api.book(local(11, 10, 0), json!({})).await;
    let plain_uid = plain["data"]["uid"].as_str().expect("uid").to_owned();
    let (status, _, cancelled) = api
        .call(
            Method::POST,
            &format!("/v2/bookings/{plain_uid}/cancel"),
            Some(BOOKINGS_VERSION),
            Some(KEY),
            Some(fixture("calcom-live-cancel.request")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "cancel is 200, not 201");
    assert_same_shape(&cancelled, "calcom-live-cancel.response");
    assert_eq!(cancelled["data"]["status"], "cancelled");
    assert_eq!(
        cancelled["data"]["cancellationReason"],
        "Kithe connector test complete"
    );

    for expected in [StatusCode::OK, StatusCode::BAD_REQUEST] {
        let (status, _, body) = api
            .call(
                Method::POST,
                &format!("/v2/bookings/{new_uid}/cancel"),
                Some(BOOKINGS_VERSION),
                Some(KEY),
                Some(json!({ "cancellationReason": "changed my mind" })),
            )
            .await;
        assert_eq!(status, expected, "{body}");
    }
    let free = fake.free_slots(EVENT, local(11, 9, 0), local(11, 9, 15));
    assert_eq!(
        free,
        vec![local(11, 9, 0), local(11, 9, 15)],
        "both times free again"
    );
}

#[tokio::test]
async fn wrong_keys_get_the_401_envelope() {
    let fake = start().await;
    let api = Api::new(&fake);
    let (status, _, body) = api
        .call(
            Method::GET,
            &format!("/v2/slots?{}", range_query(local(3, 9, 0), local(3, 10, 0))),
            Some(SLOTS_VERSION),
            Some("cal_live_wrong"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "UnauthorizedException");
    assert_same_shape(&body, "calcom-live-error-400.response");
    // Public endpoints still work without any key.
    let (status, _, _) = api
        .call(
            Method::GET,
            &format!("/v2/slots?{}", range_query(local(3, 9, 0), local(3, 10, 0))),
            Some(SLOTS_VERSION),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_per_key_limit_answers_429_with_headers_then_recovers() {
    let fake = start_with(config().with_rate_limit(3, Duration::from_millis(1500))).await;
    let api = Api::new(&fake);
    let path = format!("/v2/slots?{}", range_query(local(3, 9, 0), local(3, 10, 0)));
    for expected_remaining in [2, 1, 0] {
        let (status, headers, _) = api
            .call(Method::GET, &path, Some(SLOTS_VERSION), Some(KEY), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["x-ratelimit-limit-default"], "3");
        assert_eq!(
            headers["x-ratelimit-remaining-default"],
            expected_remaining.to_string().as_str()
        );
        assert!(headers.contains_key("x-ratelimit-reset-default"));
    }
    let (status, headers, body) = api
        .call(Method::GET, &path, Some(SLOTS_VERSION), Some(KEY), None)
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["status"], "error");
    let retry_after: u64 = headers["retry-after"]
        .to_str()
        .ok()
        .and_then(|text| text.parse().ok())
        .expect("Retry-After seconds");
    assert!((1..=2).contains(&retry_after));
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let (status, _, _) = api
        .call(Method::GET, &path, Some(SLOTS_VERSION), Some(KEY), None)
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn keys_are_throttled_separately() {
    let fake = start_with(
        config()
            .with_api_key("cal_second_key")
            .with_rate_limit(1, Duration::from_secs(60)),
    )
    .await;
    let api = Api::new(&fake);
    let path = format!("/v2/slots?{}", range_query(local(3, 9, 0), local(3, 10, 0)));
    let (first, _, _) = api
        .call(Method::GET, &path, Some(SLOTS_VERSION), Some(KEY), None)
        .await;
    let (second, _, _) = api
        .call(Method::GET, &path, Some(SLOTS_VERSION), Some(KEY), None)
        .await;
    let (third, _, _) = api
        .call(
            Method::GET,
            &path,
            Some(SLOTS_VERSION),
            Some("cal_second_key"),
            None,
        )
        .await;
    assert_eq!(
        (first, second, third),
        (
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::OK
        )
    );
}

#[tokio::test]
async fn injected_faults_behave_as_documented() {
    let fake = start().await;
    let api = Api::new(&fake);

    fake.inject(Fault::ServerError(503));
    let response = reqwest::Client::new()
        .post(format!("{}/v2/bookings", fake.base_url()))
        .header("cal-api-version", BOOKINGS_VERSION)
        .json(&json!({ "eventTypeId": EVENT, "start": iso(local(12, 9, 0)), "attendee": { "name": "A", "timeZone": "UTC" } }))
        .send()
        .await
        .expect("answer");
    let (status, headers) = (response.status(), response.headers().clone());
    let body = response.text().await.expect("body");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/html")
    );
    assert!(
        serde_json::from_str::<Value>(&body).is_err(),
        "the CDN page is not JSON"
    );
    assert!(fake.bookings().is_empty(), "nothing happened");

    fake.inject(Fault::ServerError(500));
    let (status, body) = api.book(local(12, 9, 0), json!({})).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["error"]["code"], "InternalServerErrorException");

    fake.inject_on(Method::POST, "/v2/bookings", Fault::LostResponse(502));
    let (status, _) = api.book(local(12, 9, 0), json!({})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        fake.bookings().len(),
        1,
        "the booking happened although the answer was lost"
    );

    fake.inject(Fault::Hang);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let hung = client
        .get(format!(
            "{}/v2/slots?{}",
            fake.base_url(),
            range_query(local(3, 9, 0), local(3, 10, 0))
        ))
        .header("cal-api-version", SLOTS_VERSION)
        .send()
        .await;
    assert!(hung.is_err_and(|error| error.is_timeout()));

    fake.inject(Fault::Slow(Duration::from_millis(300)));
    let began = std::time::Instant::now();
    let (status, _) = api
        .slots(&range_query(local(3, 9, 0), local(3, 10, 0)))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(began.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn outside_bookings_race_the_api_and_audits_find_double_bookings() {
    let fake = start().await;
    let api = Api::new(&fake);
    let slot = local(13, 9, 0);

    let (status, _, outside) = api
        .call(
            Method::POST,
            "/_sim/bookings",
            None,
            None,
            Some(json!({ "eventTypeId": EVENT, "start": iso(slot), "attendee": { "name": "Web", "email": "web@example.invalid", "timeZone": "UTC" } })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{outside}");
    let (status, body) = api.book(slot, json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        message(&body),
        "User either already has booking at this time or is not available"
    );

    let taken = fake.book_from_outside(OutsideBooking::new(EVENT, slot));
    assert!(taken.is_err(), "the web page also sees the booking");
    let mut forced = OutsideBooking::new(EVENT, slot);
    forced.force = true;
    assert!(fake.book_from_outside(forced).is_ok());
    assert_eq!(fake.double_bookings().len(), 1);

    let (_, _, audit) = api
        .call(Method::GET, "/_sim/bookings", None, None, None)
        .await;
    assert_eq!(audit["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(audit["data"][0]["origin"], "outside");
    let (_, _, pairs) = api
        .call(Method::GET, "/_sim/double-bookings", None, None, None)
        .await;
    assert_eq!(pairs["data"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn racing_bookings_for_one_slot_produce_exactly_one() {
    let fake = start().await;
    let api = std::sync::Arc::new(Api::new(&fake));
    let slot = local(14, 9, 0);
    let attempts: Vec<_> = (0..8)
        .map(|_| {
            let api = api.clone();
            tokio::spawn(async move { api.book(slot, json!({})).await.0 })
        })
        .collect();
    let mut created = 0;
    for attempt in attempts {
        if attempt.await.expect("task") == StatusCode::CREATED {
            created += 1;
        }
    }
    assert_eq!(created, 1);
    assert!(fake.double_bookings().is_empty());
}

#[tokio::test]
async fn garbage_in_gets_envelopes_not_panics() {
    let fake = start().await;
    let api = Api::new(&fake);
    let response = reqwest::Client::new()
        .post(format!("{}/v2/bookings", fake.base_url()))
        .header("cal-api-version", BOOKINGS_VERSION)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("envelope");
    assert_eq!(body["status"], "error");

    let (status, _, body) = api
        .call(Method::GET, "/v2/nothing-here", None, Some(KEY), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(message(&body), "Cannot GET /v2/nothing-here");
    let (status, _, _) = api
        .call(Method::PUT, "/v2/bookings", None, Some(KEY), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = api.slots("eventTypeId=abc&start=x&end=y").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = api
        .slots(&format!("eventTypeId={EVENT}&start=nope&end=2050-01-01"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn the_sim_door_shows_reservations_and_moves_the_clock() {
    let fake = start().await;
    let api = Api::new(&fake);
    let (status, _) = api.reserve(local(15, 9, 0)).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, _, listed) = api
        .call(Method::GET, "/_sim/reservations", None, None, None)
        .await;
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1));
    let (status, _, _) = api
        .call(
            Method::POST,
            "/_sim/clock/advance",
            None,
            None,
            Some(json!({ "seconds": 301 })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, listed) = api
        .call(Method::GET, "/_sim/reservations", None, None, None)
        .await;
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(0));
    assert!(
        fake.requests()
            .iter()
            .all(|request| request.path.starts_with("/v2/"))
    );
}
