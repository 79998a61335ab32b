//! Endpoint handlers. Each one validates like Cal.com's NestJS layer (answering bad input
//! with the error envelope, never panicking), then checks and changes the calendar under
//! one lock.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value, json};

use super::config::{EventTypeConfig, Owner};
use super::model::{
    BookingOrigin, BookingStatus, StoredAttendee, StoredBooking, StoredReservation, Unbookable,
    booking_uid, minutes, reservation_uid,
};
use super::wire::{self, ApiError};
use super::{Caller, Inner, OutsideBooking, OutsideBookingError, Shared};

type Params = HashMap<String, String>;
type Answer = Result<Response, ApiError>;

const SLOTS_VERSION: &str = "2024-09-04";
const BOOKINGS_VERSIONS: [&str; 2] = ["2024-08-13", "2026-02-25"];
const DEFAULT_RESERVATION_MINUTES: u32 = 5;
const SLOT_TAKEN: &str = "User either already has booking at this time or is not available";
const IN_THE_PAST: &str = "Attempting to book a meeting in the past.";
const OUT_OF_BOUNDS: &str = "The event type can't be booked at the \"start\" time provided. This could be because it's too soon (violating the minimum booking notice) or too far in the future (outside the event's scheduling window). Try fetching available slots first using the GET /v2/slots endpoint and then make a booking with \"start\" time equal to one of the available slots.";
const ALREADY_BOOKED: &str = "Can't reserve a slot if the event is already booked.";
const ALREADY_RESERVED: &str =
    "This time slot is already reserved by another user. Please choose a different time.";

/// Older header values select older endpoint versions with other shapes in Cal.com; the
/// fake does not emulate those, so a client sending the wrong one fails loudly here.
fn require_version(headers: &HeaderMap, accepted: &[&str]) -> Result<(), ApiError> {
    let sent = headers
        .get("cal-api-version")
        .and_then(|value| value.to_str().ok());
    match sent {
        Some(version) if accepted.contains(&version) => Ok(()),
        Some(version) => Err(ApiError::bad_request(format!(
            "cal-api-version {version} selects an endpoint version this fake does not serve; expected one of {}",
            accepted.join(", ")
        ))),
        None => Err(ApiError::bad_request(format!(
            "cal-api-version header missing: Cal.com would answer with an older endpoint version; expected one of {}",
            accepted.join(", ")
        ))),
    }
}

fn require_api_key(caller: &Caller) -> Result<(), ApiError> {
    match caller {
        Caller::ApiKey(_) => Ok(()),
        Caller::Anonymous => Err(ApiError::unauthorized(
            "No authentication method provided. Either pass an API key as 'Bearer' header or OAuth client credentials as 'x-cal-secret-key' and 'x-cal-client-id' headers",
        )),
    }
}

fn query_params(query: Result<Query<Params>, QueryRejection>) -> Result<Params, ApiError> {
    query
        .map(|Query(params)| params)
        .map_err(|rejection| ApiError::bad_request(format!("Invalid query string: {rejection}")))
}

fn json_object(body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(ApiError::bad_request("Request body must be a JSON object")),
        Err(error) => Err(ApiError::bad_request(format!(
            "Unexpected token in JSON body: {error}"
        ))),
    }
}

fn optional_string(object: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(ApiError::bad_request(format!("{field} must be a string"))),
    }
}

fn required_string(object: &Map<String, Value>, field: &str) -> Result<String, ApiError> {
    optional_string(object, field)?
        .ok_or_else(|| ApiError::bad_request(format!("{field} must be a string")))
}

fn optional_number(object: &Map<String, Value>, field: &str) -> Result<Option<u64>, ApiError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .or_else(|| {
                value
                    .as_f64()
                    .filter(|n| n.fract() == 0.0 && *n >= 0.0)
                    .map(|n| n as u64)
            })
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "{field} must be a number conforming to the specified constraints"
                ))
            }),
    }
}

fn number_param(params: &Params, field: &str) -> Result<Option<u64>, ApiError> {
    params
        .get(field)
        .map(|text| {
            text.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!(
                    "{field} must be a number conforming to the specified constraints"
                ))
            })
        })
        .transpose()
}

/// ISO 8601 instant; a missing offset means UTC, as Cal.com documents every input in UTC.
fn parse_instant(field: &str, text: &str) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Ok(instant.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(naive.and_utc());
        }
    }
    Err(ApiError::bad_request(format!(
        "{field} must be a valid ISO 8601 date string"
    )))
}

/// `start`/`end` of `/v2/slots`: a bare date means the start or the end of that UTC day.
fn parse_range_bound(field: &str, text: &str, end_of_day: bool) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let time = if end_of_day {
            chrono::NaiveTime::from_hms_milli_opt(23, 59, 59, 999)
        } else {
            Some(chrono::NaiveTime::MIN)
        };
        if let Some(time) = time {
            return Ok(date.and_time(time).and_utc());
        }
    }
    parse_instant(field, text)
}

fn unbookable(reason: Unbookable) -> ApiError {
    match reason {
        Unbookable::Past => ApiError::bad_request(IN_THE_PAST),
        Unbookable::OutOfBounds => ApiError::bad_request(OUT_OF_BOUNDS),
        Unbookable::NotAvailable => ApiError::bad_request(SLOT_TAKEN),
        Unbookable::ReservedByOther { seconds_left } => ApiError::conflict(format!(
            "Someone else reserved this booking time slot before you. This time slot will be freed up in {seconds_left} seconds."
        )),
    }
}

fn created(data: Value) -> Response {
    (StatusCode::CREATED, Json(wire::success(data))).into_response()
}

fn ok(data: Value) -> Response {
    (StatusCode::OK, Json(wire::success(data))).into_response()
}

// ---------------------------------------------------------------------------------------
// Slots

pub(super) async fn get_slots(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    query: Result<Query<Params>, QueryRejection>,
) -> Answer {
    require_version(&headers, &[SLOTS_VERSION])?;
    let params = query_params(query)?;
    let event_type = select_event_type(&shared, &params)?;
    let (Some(start), Some(end)) = (params.get("start"), params.get("end")) else {
        return Err(ApiError::bad_request(
            "start must be a valid ISO 8601 date string, end must be a valid ISO 8601 date string",
        ));
    };
    let start = parse_range_bound("start", start, false)?;
    let end = parse_range_bound("end", end, true)?;
    if end < start {
        return Err(ApiError::bad_request(
            "Invalid time range given - check the 'start' and 'end' query parameters.",
        ));
    }
    let zone = match params.get("timeZone") {
        None => None,
        Some(name) => Some(name.parse::<Tz>().map_err(|_| {
            ApiError::bad_request(format!(
                "timeZone must be a valid IANA time zone, got {name}"
            ))
        })?),
    };
    if let Some(duration) = number_param(&params, "duration")?
        && duration != u64::from(event_type.length_minutes)
    {
        return Err(ApiError::bad_request(format!(
            "Requested duration {duration} is not one of the event type's lengths ({})",
            event_type.length_minutes
        )));
    }
    let range_format = match params.get("format").map(String::as_str) {
        None | Some("time") => false,
        Some("range") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "format must be one of the following values: range, time (got {other})"
            )));
        }
    };
    let rescheduling = params.get("bookingUidToReschedule").cloned();

    let now = shared.now();
    let free =
        shared
            .lock()
            .calendar
            .free_slots(event_type, start, end, now, rescheduling.as_deref());
    let mut by_day: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (slot_start, slot_end) in free {
        let day = match zone {
            Some(zone) => slot_start.with_timezone(&zone).date_naive(),
            None => slot_start.date_naive(),
        };
        let item = if range_format {
            json!({ "start": wire::in_zone(slot_start, zone), "end": wire::in_zone(slot_end, zone) })
        } else {
            json!({ "start": wire::in_zone(slot_start, zone) })
        };
        by_day.entry(day.to_string()).or_default().push(item);
    }
    // Live key order was data-then-status; parsers must not care, and neither does this.
    Ok(ok(json!(by_day)))
}

fn select_event_type<'a>(
    shared: &'a Shared,
    params: &Params,
) -> Result<&'a EventTypeConfig, ApiError> {
    if let Some(id) = number_param(params, "eventTypeId")? {
        return shared
            .event_type(id)
            .ok_or(ApiError::event_type_not_found(id));
    }
    match (params.get("eventTypeSlug"), params.get("username")) {
        (Some(slug), Some(username)) if *username == shared.config.owner.username => shared
            .event_type_by_slug(slug)
            .ok_or_else(|| ApiError::not_found(format!("Event type with slug {slug} not found"))),
        (Some(_), Some(username)) => Err(ApiError::not_found(format!(
            "User with username {username} not found"
        ))),
        _ => Err(ApiError::bad_request(
            "Either eventTypeId or eventTypeSlug with username or teamSlug must be provided",
        )),
    }
}

// ---------------------------------------------------------------------------------------
// Reservations

struct ReservationInput<'a> {
    event_type: &'a EventTypeConfig,
    slot_start: DateTime<Utc>,
    reservation_minutes: u32,
}

fn reservation_input<'a>(
    shared: &'a Shared,
    caller: &Caller,
    body: &Bytes,
) -> Result<ReservationInput<'a>, ApiError> {
    let object = json_object(body)?;
    let event_type_id = optional_number(&object, "eventTypeId")?.ok_or_else(|| {
        ApiError::bad_request(
            "eventTypeId must be a number conforming to the specified constraints",
        )
    })?;
    let slot_start = parse_instant("slotStart", &required_string(&object, "slotStart")?)?;
    let reservation_minutes = match optional_number(&object, "reservationDuration")? {
        None => DEFAULT_RESERVATION_MINUTES,
        Some(_) if *caller == Caller::Anonymous => {
            return Err(ApiError::unauthorized(
                "reservationDuration can only be used for authenticated requests. If you want to reserve a slot for a longer duration, please authenticate the request.",
            ));
        }
        Some(0) => {
            return Err(ApiError::bad_request(
                "reservationDuration must be a positive number",
            ));
        }
        Some(minutes) => u32::try_from(minutes)
            .map_err(|_| ApiError::bad_request("reservationDuration is too large"))?,
    };
    let event_type = shared
        .event_type(event_type_id)
        .ok_or(ApiError::event_type_not_found(event_type_id))?;
    if let Some(duration) = optional_number(&object, "slotDuration")?
        && duration != u64::from(event_type.length_minutes)
    {
        return Err(ApiError::bad_request(format!(
            "Provided slotDuration={duration} but event type has a fixed length of {} minutes",
            event_type.length_minutes
        )));
    }
    Ok(ReservationInput {
        event_type,
        slot_start,
        reservation_minutes,
    })
}

fn check_reservable(
    inner: &Inner,
    input: &ReservationInput<'_>,
    now: DateTime<Utc>,
    except_uid: Option<&str>,
) -> Result<(), ApiError> {
    let end = input.slot_start + minutes(input.event_type.length_minutes);
    if inner.calendar.is_busy(input.slot_start, end, None) {
        return Err(ApiError::unprocessable(ALREADY_BOOKED));
    }
    let reserved = inner.calendar.reservations.iter().any(|reservation| {
        reservation.is_active(now)
            && reservation.overlaps(input.event_type.id, input.slot_start, end)
            && Some(reservation.uid.as_str()) != except_uid
    });
    if reserved {
        return Err(ApiError::unprocessable(ALREADY_RESERVED));
    }
    Ok(())
}

pub(super) async fn reserve_slot(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    require_version(&headers, &[SLOTS_VERSION])?;
    let input = reservation_input(&shared, &caller, &body)?;
    let now = shared.now();
    let mut inner = shared.lock();
    inner.calendar.forget_expired_reservations(now);
    check_reservable(&inner, &input, now, None)?;
    let uid = reservation_uid(&mut inner.rng);
    let reservation = StoredReservation {
        uid,
        event_type_id: input.event_type.id,
        slot_start: input.slot_start,
        slot_end: input.slot_start + minutes(input.event_type.length_minutes),
        slot_duration: input.event_type.length_minutes,
        reservation_duration: input.reservation_minutes,
        until: now + minutes(input.reservation_minutes),
        created_at: now,
    };
    let data = wire::reservation(&reservation, true);
    inner.calendar.reservations.push(reservation);
    Ok(created(data))
}

pub(super) async fn get_reservation(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(uid): Path<String>,
) -> Answer {
    require_version(&headers, &[SLOTS_VERSION])?;
    let now = shared.now();
    let inner = shared.lock();
    // Unknown, expired and deleted all answer 200 with null data, as live.
    let data = inner
        .calendar
        .active_reservation(&uid, now)
        .map_or(Value::Null, |reservation| {
            wire::reservation(reservation, false)
        });
    Ok(ok(data))
}

pub(super) async fn update_reservation(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Path(uid): Path<String>,
    body: Bytes,
) -> Answer {
    require_version(&headers, &[SLOTS_VERSION])?;
    let input = reservation_input(&shared, &caller, &body)?;
    let now = shared.now();
    let mut inner = shared.lock();
    inner.calendar.forget_expired_reservations(now);
    if inner.calendar.active_reservation(&uid, now).is_none() {
        return Err(ApiError::not_found(format!(
            "Reserved slot with uid {uid} not found"
        )));
    }
    check_reservable(&inner, &input, now, Some(&uid))?;
    let Some(reservation) = inner
        .calendar
        .reservations
        .iter_mut()
        .find(|reservation| reservation.uid == uid)
    else {
        return Err(ApiError::not_found(format!(
            "Reserved slot with uid {uid} not found"
        )));
    };
    reservation.event_type_id = input.event_type.id;
    reservation.slot_start = input.slot_start;
    reservation.slot_end = input.slot_start + minutes(input.event_type.length_minutes);
    reservation.slot_duration = input.event_type.length_minutes;
    reservation.reservation_duration = input.reservation_minutes;
    reservation.until = now + minutes(input.reservation_minutes);
    Ok(ok(wire::reservation(reservation, true)))
}

pub(super) async fn delete_reservation(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(uid): Path<String>,
) -> Answer {
    require_version(&headers, &[SLOTS_VERSION])?;
    let now = shared.now();
    let mut inner = shared.lock();
    inner.calendar.forget_expired_reservations(now);
    let before = inner.calendar.reservations.len();
    inner
        .calendar
        .reservations
        .retain(|reservation| reservation.uid != uid);
    if inner.calendar.reservations.len() == before {
        return Err(ApiError::not_found(format!(
            "Reserved slot with uid {uid} not found"
        )));
    }
    Ok((StatusCode::OK, Json(json!({ "status": "success" }))).into_response())
}

// ---------------------------------------------------------------------------------------
// Bookings

/// What a booking carries beyond event type, time and attendee.
#[derive(Debug, Default)]
pub(super) struct BookingExtras {
    pub guests: Vec<String>,
    pub metadata: Map<String, Value>,
    pub booking_fields_responses: Map<String, Value>,
    /// `(old uid, reason)` when this booking replaces another one.
    pub rescheduled_from: Option<(String, Option<String>)>,
}

#[allow(clippy::too_many_arguments)]
pub(super) fn new_booking(
    inner: &mut Inner,
    owner: &Owner,
    event_type: &EventTypeConfig,
    start: DateTime<Utc>,
    attendee: StoredAttendee,
    extras: BookingExtras,
    origin: BookingOrigin,
    now: DateTime<Utc>,
) -> StoredBooking {
    inner.calendar.next_booking_id += 1;
    let id = inner.calendar.next_booking_id;
    let uid = booking_uid(&mut inner.rng);
    let mut fields = Map::new();
    fields.insert("email".into(), json!(attendee.email));
    fields.insert("name".into(), json!(attendee.name));
    fields.insert("guests".into(), json!(extras.guests));
    if let Some((_, Some(reason))) = &extras.rescheduled_from {
        fields.insert("rescheduleReason".into(), json!(reason));
    }
    fields.insert(
        "location".into(),
        json!({ "value": "link", "optionValue": "" }),
    );
    fields.insert("displayEmail".into(), json!(attendee.email));
    fields.insert("displayGuests".into(), json!([]));
    for (key, value) in extras.booking_fields_responses {
        fields.insert(key, value);
    }
    let (rescheduled_from_uid, rescheduling_reason) = match extras.rescheduled_from {
        Some((old_uid, reason)) => (Some(old_uid), reason),
        None => (None, None),
    };
    let booking = StoredBooking {
        id,
        uid,
        event_type_id: event_type.id,
        title: format!(
            "{} between {} and {}",
            event_type.title, owner.name, attendee.name
        ),
        start,
        end: start + minutes(event_type.length_minutes),
        status: if event_type.requires_confirmation {
            BookingStatus::Pending
        } else {
            BookingStatus::Accepted
        },
        attendee,
        guests: extras.guests,
        metadata: extras.metadata,
        booking_fields_responses: fields,
        location: event_type.location.clone(),
        origin,
        // Live quirk: the new booking of a reschedule carries the reason as cancellationReason.
        cancellation_reason: rescheduling_reason.clone(),
        rescheduling_reason,
        rescheduled_from_uid,
        rescheduled_to_uid: None,
        created_at: now,
        updated_at: now,
    };
    inner.calendar.bookings.push(booking.clone());
    booking
}

fn parse_attendee(object: &Map<String, Value>) -> Result<StoredAttendee, ApiError> {
    let Some(Value::Object(attendee)) = object.get("attendee") else {
        return Err(ApiError::bad_request("attendee must be an object"));
    };
    let name = required_string(attendee, "name")
        .map_err(|_| ApiError::bad_request("attendee.name must be a string"))?;
    let time_zone = required_string(attendee, "timeZone")
        .map_err(|_| ApiError::bad_request("attendee.timeZone must be a string"))?;
    if time_zone.parse::<Tz>().is_err() {
        return Err(ApiError::bad_request(format!(
            "attendee.timeZone must be a valid IANA time zone, got {time_zone}"
        )));
    }
    let email = optional_string(attendee, "email")?.unwrap_or_default();
    if !email.is_empty() && !email.contains('@') {
        return Err(ApiError::bad_request("attendee.email must be an email"));
    }
    Ok(StoredAttendee {
        name,
        email,
        time_zone,
        language: optional_string(attendee, "language")?.unwrap_or_else(|| "en".to_owned()),
        phone_number: optional_string(attendee, "phoneNumber")?,
    })
}

/// Cal.com's documented limits: ≤ 50 keys, keys ≤ 40 characters, string values ≤ 500.
fn parse_metadata(object: &Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    let metadata = match object.get("metadata") {
        None | Some(Value::Null) => return Ok(Map::new()),
        Some(Value::Object(metadata)) => metadata.clone(),
        Some(_) => return Err(ApiError::bad_request("metadata must be an object")),
    };
    if metadata.len() > 50 {
        return Err(ApiError::bad_request(
            "Metadata can have a maximum of 50 keys.",
        ));
    }
    for (key, value) in &metadata {
        if key.chars().count() > 40 {
            return Err(ApiError::bad_request(format!(
                "Metadata key '{key}' is longer than 40 characters."
            )));
        }
        match value {
            Value::String(text) if text.chars().count() > 500 => {
                return Err(ApiError::bad_request(format!(
                    "Metadata value for key '{key}' is longer than 500 characters."
                )));
            }
            Value::String(_) => {}
            _ => {
                return Err(ApiError::bad_request(format!(
                    "Metadata value for key '{key}' must be a string."
                )));
            }
        }
    }
    Ok(metadata)
}

fn parse_guests(object: &Map<String, Value>) -> Result<Vec<String>, ApiError> {
    match object.get("guests") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| ApiError::bad_request("each value in guests must be an email"))
            })
            .collect(),
        Some(_) => Err(ApiError::bad_request("guests must be an array")),
    }
}

/// The reservation rule of B3/B5: naming a reservation makes earlier reservations of
/// others win with 409; not naming one only matters when the fake is told it should.
fn check_reservations(
    shared: &Shared,
    inner: &Inner,
    event_type: &EventTypeConfig,
    start: DateTime<Utc>,
    reserved_slot_uid: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    if reserved_slot_uid.is_none() && !shared.config.reservations_block_plain_bookings {
        return Ok(());
    }
    let end = start + minutes(event_type.length_minutes);
    if let Some(other) =
        inner
            .calendar
            .reserved_by_other(event_type.id, start, end, reserved_slot_uid, now)
    {
        let seconds_left = (other.until - now).num_seconds().max(1);
        return Err(unbookable(Unbookable::ReservedByOther { seconds_left }));
    }
    Ok(())
}

pub(super) async fn create_booking(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    require_version(&headers, &BOOKINGS_VERSIONS)?;
    let object = json_object(&body)?;
    let start = parse_instant("start", &required_string(&object, "start")?)?;
    let attendee = parse_attendee(&object)?;
    let metadata = parse_metadata(&object)?;
    let guests = parse_guests(&object)?;
    let booking_fields_responses = match object.get("bookingFieldsResponses") {
        Some(Value::Object(fields)) => fields.clone(),
        None | Some(Value::Null) => Map::new(),
        Some(_) => {
            return Err(ApiError::bad_request(
                "bookingFieldsResponses must be an object",
            ));
        }
    };
    let reserved_slot_uid = optional_string(&object, "reservedSlotUid")?;
    let event_type = match optional_number(&object, "eventTypeId")? {
        Some(id) => shared
            .event_type(id)
            .ok_or(ApiError::event_type_not_found(id))?,
        None => {
            let slug = optional_string(&object, "eventTypeSlug")?;
            let username = optional_string(&object, "username")?;
            match (slug, username) {
                (Some(slug), Some(username)) if username == shared.config.owner.username => {
                    shared.event_type_by_slug(&slug).ok_or_else(|| {
                        ApiError::not_found(format!("Event type with slug {slug} not found"))
                    })?
                }
                _ => {
                    return Err(ApiError::bad_request(
                        "Either eventTypeId or eventTypeSlug + username or eventTypeSlug + teamSlug must be provided",
                    ));
                }
            }
        }
    };
    if let Some(length) = optional_number(&object, "lengthInMinutes")?
        && length != u64::from(event_type.length_minutes)
    {
        return Err(ApiError::bad_request(format!(
            "Provided lengthInMinutes={length} is not one of the event type's lengths"
        )));
    }

    let now = shared.now();
    let mut inner = shared.lock();
    inner
        .calendar
        .check_bookable(event_type, start, now, None)
        .map_err(unbookable)?;
    check_reservations(
        &shared,
        &inner,
        event_type,
        start,
        reserved_slot_uid.as_deref(),
        now,
    )?;
    if let Some(uid) = &reserved_slot_uid {
        inner
            .calendar
            .reservations
            .retain(|reservation| &reservation.uid != uid);
    }
    let extras = BookingExtras {
        guests,
        metadata,
        booking_fields_responses,
        rescheduled_from: None,
    };
    let booking = new_booking(
        &mut inner,
        &shared.config.owner,
        event_type,
        start,
        attendee,
        extras,
        BookingOrigin::Api,
        now,
    );
    Ok(created(wire::booking(
        &booking,
        Some(event_type),
        &shared.config.owner,
        true,
    )))
}

fn booking_not_found(uid: &str) -> ApiError {
    ApiError::not_found(format!(
        "Booking with uid={uid} was not found in the database"
    ))
}

pub(super) async fn get_booking(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(uid): Path<String>,
) -> Answer {
    require_version(&headers, &BOOKINGS_VERSIONS)?;
    let inner = shared.lock();
    let booking = inner
        .calendar
        .booking(&uid)
        .ok_or_else(|| booking_not_found(&uid))?;
    let event_type = shared.event_type(booking.event_type_id);
    Ok(ok(wire::booking(
        booking,
        event_type,
        &shared.config.owner,
        false,
    )))
}

pub(super) async fn list_bookings(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    query: Result<Query<Params>, QueryRejection>,
) -> Answer {
    require_version(&headers, &BOOKINGS_VERSIONS)?;
    require_api_key(&caller)?;
    let params = query_params(query)?;
    let instant = |field: &str| -> Result<Option<DateTime<Utc>>, ApiError> {
        params
            .get(field)
            .map(|text| parse_instant(field, text))
            .transpose()
    };
    let after_start = instant("afterStart")?;
    let before_end = instant("beforeEnd")?;
    let after_created = instant("afterCreatedAt")?;
    let before_created = instant("beforeCreatedAt")?;
    let statuses: Vec<String> = params
        .get("status")
        .map(|text| text.split(',').map(|s| s.trim().to_owned()).collect())
        .unwrap_or_default();
    for status in &statuses {
        if !["upcoming", "recurring", "past", "cancelled", "unconfirmed"].contains(&status.as_str())
        {
            return Err(ApiError::bad_request(format!(
                "status must be one of upcoming, recurring, past, cancelled, unconfirmed (got {status})"
            )));
        }
    }
    let mut event_type_ids: Vec<u64> = Vec::new();
    for field in ["eventTypeId", "eventTypeIds"] {
        if let Some(text) = params.get(field) {
            for part in text.split(',').filter(|part| !part.trim().is_empty()) {
                event_type_ids.push(part.trim().parse().map_err(|_| {
                    ApiError::bad_request(format!("{field} must be comma separated numbers"))
                })?);
            }
        }
    }
    let take = number_param(&params, "take")?.unwrap_or(100);
    let skip = number_param(&params, "skip")?.unwrap_or(0);
    if take == 0 || take > 250 {
        return Err(ApiError::bad_request(
            "take must not be greater than 250 nor less than 1",
        ));
    }
    let attendee_email = params
        .get("attendeeEmail")
        .map(|email| email.to_lowercase());
    let attendee_name = params.get("attendeeName");
    let booking_uid = params.get("bookingUid");

    let now = shared.now();
    let inner = shared.lock();
    let status_matches = |booking: &StoredBooking, status: &str| match status {
        "upcoming" => booking.status == BookingStatus::Accepted && booking.end >= now,
        "unconfirmed" => booking.status == BookingStatus::Pending && booking.end >= now,
        "past" => booking.status.is_active() && booking.end < now,
        "cancelled" => !booking.status.is_active(),
        _ => false,
    };
    let mut matching: Vec<&StoredBooking> = inner
        .calendar
        .bookings
        .iter()
        .filter(|b| statuses.is_empty() || statuses.iter().any(|s| status_matches(b, s)))
        .filter(|b| {
            attendee_email
                .as_ref()
                .is_none_or(|e| b.attendee.email.to_lowercase() == *e)
        })
        .filter(|b| attendee_name.is_none_or(|n| b.attendee.name == *n))
        .filter(|b| booking_uid.is_none_or(|u| b.uid == *u))
        .filter(|b| event_type_ids.is_empty() || event_type_ids.contains(&b.event_type_id))
        .filter(|b| after_start.is_none_or(|t| b.start >= t))
        .filter(|b| before_end.is_none_or(|t| b.end <= t))
        .filter(|b| after_created.is_none_or(|t| b.created_at >= t))
        .filter(|b| before_created.is_none_or(|t| b.created_at <= t))
        .collect();
    let descending = |field: &str| params.get(field).map(String::as_str) == Some("desc");
    if params.contains_key("sortCreated") {
        matching.sort_by_key(|b| (b.created_at, b.id));
        if descending("sortCreated") {
            matching.reverse();
        }
    } else {
        matching.sort_by_key(|b| (b.start, b.id));
        if descending("sortStart") {
            matching.reverse();
        }
    }
    let total = matching.len() as u64;
    let page: Vec<Value> = matching
        .iter()
        .skip(usize::try_from(skip).unwrap_or(usize::MAX))
        .take(usize::try_from(take).unwrap_or(usize::MAX))
        .map(|b| {
            wire::booking(
                b,
                shared.event_type(b.event_type_id),
                &shared.config.owner,
                false,
            )
        })
        .collect();
    let returned = page.len() as u64;
    let remaining = total.saturating_sub(skip + returned);
    let body = json!({
        "status": "success",
        "data": page,
        "pagination": {
            "totalItems": total,
            "remainingItems": remaining,
            "returnedItems": returned,
            "itemsPerPage": take,
            "currentPage": skip / take + 1,
            "totalPages": total.div_ceil(take),
            "hasNextPage": remaining > 0,
            "hasPreviousPage": skip > 0,
        }
    });
    Ok((StatusCode::OK, Json(body)).into_response())
}

pub(super) async fn cancel_booking(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Path(uid): Path<String>,
    body: Bytes,
) -> Answer {
    require_version(&headers, &BOOKINGS_VERSIONS)?;
    require_api_key(&caller)?;
    let object = json_object(&body)?;
    let reason = optional_string(&object, "cancellationReason")?;
    let now = shared.now();
    let mut inner = shared.lock();
    let booking = inner
        .calendar
        .booking_mut(&uid)
        .ok_or_else(|| booking_not_found(&uid))?;
    if !booking.status.is_active() {
        return Err(ApiError::bad_request(
            "This booking has already been cancelled.",
        ));
    }
    booking.status = BookingStatus::Cancelled;
    booking.cancellation_reason = reason;
    booking.updated_at = now;
    let event_type = shared.event_type(booking.event_type_id);
    Ok(ok(wire::booking(
        booking,
        event_type,
        &shared.config.owner,
        false,
    )))
}

pub(super) async fn reschedule_booking(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(uid): Path<String>,
    body: Bytes,
) -> Answer {
    require_version(&headers, &BOOKINGS_VERSIONS)?;
    let object = json_object(&body)?;
    let start = parse_instant("start", &required_string(&object, "start")?)?;
    let reason = optional_string(&object, "reschedulingReason")?;
    let reserved_slot_uid = optional_string(&object, "reservedSlotUid")?;
    let now = shared.now();
    let mut inner = shared.lock();
    let old = inner
        .calendar
        .booking(&uid)
        .cloned()
        .ok_or_else(|| booking_not_found(&uid))?;
    if !old.status.is_active() {
        return Err(ApiError::bad_request(format!(
            "Can't reschedule booking with uid={uid} because it has been cancelled"
        )));
    }
    let event_type = shared
        .event_type(old.event_type_id)
        .ok_or(ApiError::event_type_not_found(old.event_type_id))?;
    inner
        .calendar
        .check_bookable(event_type, start, now, Some(&uid))
        .map_err(unbookable)?;
    check_reservations(
        &shared,
        &inner,
        event_type,
        start,
        reserved_slot_uid.as_deref(),
        now,
    )?;
    if let Some(reservation) = &reserved_slot_uid {
        inner
            .calendar
            .reservations
            .retain(|r| &r.uid != reservation);
    }
    let extras = BookingExtras {
        guests: old.guests.clone(),
        metadata: old.metadata.clone(),
        booking_fields_responses: Map::new(),
        rescheduled_from: Some((uid.clone(), reason)),
    };
    let booking = new_booking(
        &mut inner,
        &shared.config.owner,
        event_type,
        start,
        old.attendee.clone(),
        extras,
        BookingOrigin::Api,
        now,
    );
    if let Some(old) = inner.calendar.booking_mut(&uid) {
        old.status = BookingStatus::Cancelled;
        old.rescheduled_to_uid = Some(booking.uid.clone());
        old.updated_at = now;
    }
    Ok(created(wire::booking(
        &booking,
        Some(event_type),
        &shared.config.owner,
        true,
    )))
}

// ---------------------------------------------------------------------------------------
// Simulation door

pub(super) async fn sim_book(State(shared): State<Arc<Shared>>, body: Bytes) -> Answer {
    let object = json_object(&body)?;
    let event_type_id = optional_number(&object, "eventTypeId")?
        .ok_or_else(|| ApiError::bad_request("eventTypeId must be a number"))?;
    let start = parse_instant("start", &required_string(&object, "start")?)?;
    let mut request = OutsideBooking::new(event_type_id, start);
    if let Some(Value::Object(attendee)) = object.get("attendee") {
        if let Some(name) = optional_string(attendee, "name")? {
            request.attendee_name = name;
        }
        if let Some(email) = optional_string(attendee, "email")? {
            request.attendee_email = email;
        }
        if let Some(zone) = optional_string(attendee, "timeZone")? {
            request.attendee_time_zone = zone;
        }
    }
    request.force = object
        .get("force")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    match shared.book_from_outside(request) {
        Ok(booking) => {
            let event_type = shared.event_type(booking.event_type_id);
            Ok(created(wire::booking(
                &booking,
                event_type,
                &shared.config.owner,
                false,
            )))
        }
        Err(OutsideBookingError::UnknownEventType(id)) => Err(ApiError::event_type_not_found(id)),
        Err(OutsideBookingError::Unbookable(reason)) => Err(unbookable(reason)),
    }
}

fn audit_view(shared: &Shared, booking: &StoredBooking) -> Value {
    let mut value = wire::booking(
        booking,
        shared.event_type(booking.event_type_id),
        &shared.config.owner,
        false,
    );
    if let Value::Object(object) = &mut value {
        let origin = match booking.origin {
            BookingOrigin::Api => "api",
            BookingOrigin::Outside => "outside",
        };
        object.insert("origin".into(), json!(origin));
    }
    value
}

pub(super) async fn sim_bookings(State(shared): State<Arc<Shared>>) -> Answer {
    let inner = shared.lock();
    let all: Vec<Value> = inner
        .calendar
        .bookings
        .iter()
        .map(|booking| audit_view(&shared, booking))
        .collect();
    Ok(ok(json!(all)))
}

pub(super) async fn sim_double_bookings(State(shared): State<Arc<Shared>>) -> Answer {
    let inner = shared.lock();
    let pairs: Vec<Value> = inner
        .calendar
        .double_bookings()
        .iter()
        .map(|(first, second)| json!([audit_view(&shared, first), audit_view(&shared, second)]))
        .collect();
    Ok(ok(json!(pairs)))
}

pub(super) async fn sim_reservations(State(shared): State<Arc<Shared>>) -> Answer {
    let now = shared.now();
    let inner = shared.lock();
    let active: Vec<Value> = inner
        .calendar
        .reservations
        .iter()
        .filter(|reservation| reservation.is_active(now))
        .map(|reservation| wire::reservation(reservation, true))
        .collect();
    Ok(ok(json!(active)))
}

pub(super) async fn sim_advance_clock(State(shared): State<Arc<Shared>>, body: Bytes) -> Answer {
    let object = json_object(&body)?;
    let seconds = optional_number(&object, "seconds")?
        .ok_or_else(|| ApiError::bad_request("seconds must be a number"))?;
    let seconds =
        i64::try_from(seconds).map_err(|_| ApiError::bad_request("seconds is too large"))?;
    let mut inner = shared.lock();
    inner.clock_offset += chrono::Duration::seconds(seconds);
    let now = Utc::now() + inner.clock_offset;
    Ok(ok(json!({ "now": wire::utc(now) })))
}

pub(super) async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!("Cannot {method} {}", uri.path()))
}
