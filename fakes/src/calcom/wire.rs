//! JSON shapes of Cal.com API v2 as captured live (fixtures/calcom), and its error envelope.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value, json};

use super::config::{EventTypeConfig, Owner};
use super::model::{StoredBooking, StoredReservation};

/// `2026-09-09T16:00:00.000Z`, the only format Cal.com writes for UTC instants.
pub fn utc(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Slot times in the caller's `timeZone`: `2050-09-05T09:00:00.000+02:00`, or `…Z` in UTC.
pub fn in_zone(instant: DateTime<Utc>, zone: Option<Tz>) -> String {
    match zone {
        None | Some(Tz::UTC) | Some(Tz::Etc__UTC) => utc(instant),
        Some(zone) => instant
            .with_timezone(&zone)
            .to_rfc3339_opts(SecondsFormat::Millis, false),
    }
}

/// A handler's refusal. The path is not known here, so the envelope is written by the
/// middleware, which reads this from the response extensions.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    pub fn event_type_not_found(id: u64) -> Self {
        Self::not_found(format!("Event type with id {id} not found."))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// NestJS exception class name and reason phrase, as Cal.com puts them in the envelope.
fn exception_names(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        400 => ("BadRequestException", "Bad Request"),
        401 => ("UnauthorizedException", "Unauthorized"),
        403 => ("ForbiddenException", "Forbidden"),
        404 => ("NotFoundException", "Not Found"),
        409 => ("ConflictException", "Conflict"),
        422 => ("UnprocessableEntityException", "Unprocessable Entity"),
        429 => ("ThrottlerException", "Too Many Requests"),
        _ => ("InternalServerErrorException", "Internal Server Error"),
    }
}

pub fn error_envelope(error: &ApiError, path: &str, now: DateTime<Utc>) -> Value {
    let (code, reason) = exception_names(error.status);
    json!({
        "status": "error",
        "timestamp": utc(now),
        "path": path,
        "error": {
            "code": code,
            "message": error.message,
            "details": {
                "message": error.message,
                "error": reason,
                "statusCode": error.status.as_u16(),
            }
        }
    })
}

pub fn success(data: Value) -> Value {
    json!({ "status": "success", "data": data })
}

/// `BookingOutput_2024_08_13`. Optional reschedule fields are absent, not null, when unset,
/// and `isPlatformManagedUserBooking` only appears on create/reschedule answers — both as
/// in the live captures.
pub fn booking(
    booking: &StoredBooking,
    event_type: Option<&EventTypeConfig>,
    owner: &Owner,
    platform_flag: bool,
) -> Value {
    let mut data = Map::new();
    data.insert("id".into(), json!(booking.id));
    data.insert("uid".into(), json!(booking.uid));
    data.insert("title".into(), json!(booking.title));
    data.insert("description".into(), json!(""));
    data.insert(
        "hosts".into(),
        json!([{
            "id": owner.id,
            "name": owner.name,
            "email": owner.email,
            "displayEmail": owner.email,
            "username": owner.username,
            "timeZone": owner.time_zone.name(),
        }]),
    );
    data.insert("status".into(), json!(booking.status.as_str()));
    data.insert(
        "cancellationReason".into(),
        json!(booking.cancellation_reason.clone().unwrap_or_default()),
    );
    data.insert("cancelledByEmail".into(), json!(""));
    if let Some(reason) = &booking.rescheduling_reason {
        data.insert("reschedulingReason".into(), json!(reason));
    }
    data.insert("rescheduledByEmail".into(), Value::Null);
    if let Some(uid) = &booking.rescheduled_from_uid {
        data.insert("rescheduledFromUid".into(), json!(uid));
    }
    if let Some(uid) = &booking.rescheduled_to_uid {
        data.insert("rescheduledToUid".into(), json!(uid));
    }
    data.insert("start".into(), json!(utc(booking.start)));
    data.insert("end".into(), json!(utc(booking.end)));
    data.insert(
        "duration".into(),
        json!((booking.end - booking.start).num_minutes()),
    );
    data.insert("eventTypeId".into(), json!(event_type.map(|et| et.id)));
    data.insert(
        "eventType".into(),
        event_type.map_or(Value::Null, |et| json!({ "id": et.id, "slug": et.slug })),
    );
    data.insert("meetingUrl".into(), json!(booking.location));
    data.insert("location".into(), json!(booking.location));
    data.insert("absentHost".into(), json!(false));
    data.insert("createdAt".into(), json!(utc(booking.created_at)));
    data.insert("updatedAt".into(), json!(utc(booking.updated_at)));
    data.insert("metadata".into(), Value::Object(booking.metadata.clone()));
    data.insert("rating".into(), Value::Null);
    data.insert(
        "icsUid".into(),
        json!(format!("{}@fake.cal.invalid", booking.uid)),
    );
    let mut attendee = Map::new();
    attendee.insert("name".into(), json!(booking.attendee.name));
    attendee.insert("email".into(), json!(booking.attendee.email));
    attendee.insert("displayEmail".into(), json!(booking.attendee.email));
    attendee.insert("timeZone".into(), json!(booking.attendee.time_zone));
    attendee.insert("language".into(), json!(booking.attendee.language));
    attendee.insert("absent".into(), json!(false));
    if let Some(phone) = &booking.attendee.phone_number {
        attendee.insert("phoneNumber".into(), json!(phone));
    }
    data.insert("attendees".into(), json!([Value::Object(attendee)]));
    data.insert("guests".into(), json!(booking.guests));
    data.insert(
        "bookingFieldsResponses".into(),
        Value::Object(booking.booking_fields_responses.clone()),
    );
    if platform_flag {
        data.insert("isPlatformManagedUserBooking".into(), json!(false));
    }
    Value::Object(data)
}

/// `ReserveSlotOutput_2024_09_04` (POST/PATCH) or, without `reservationDuration`, the GET shape.
pub fn reservation(reservation: &StoredReservation, with_duration: bool) -> Value {
    let mut data = Map::new();
    data.insert("eventTypeId".into(), json!(reservation.event_type_id));
    data.insert("slotStart".into(), json!(utc(reservation.slot_start)));
    data.insert("slotEnd".into(), json!(utc(reservation.slot_end)));
    data.insert("slotDuration".into(), json!(reservation.slot_duration));
    data.insert("reservationUid".into(), json!(reservation.uid));
    if with_duration {
        data.insert(
            "reservationDuration".into(),
            json!(reservation.reservation_duration),
        );
    }
    data.insert("reservationUntil".into(), json!(utc(reservation.until)));
    Value::Object(data)
}
