//! Errors of the Cal.com client, typed by what the caller does next.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use super::types::ErrorEnvelope;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalcomError {
    /// The time is booked (by the web page, the owner, another bot replica): offer
    /// alternatives.
    #[error("the slot is already booked: {message}")]
    SlotTaken { message: String },
    /// Someone reserved the slot before us; it may free up when their reservation ends, but
    /// for a customer waiting now it is gone: offer alternatives.
    #[error("the slot is reserved by someone else: {message}")]
    ReservedByOther { message: String },
    /// Too soon (minimum notice) or too far ahead (booking window): offer alternatives.
    #[error("the time is outside the bookable window: {message}")]
    OutOfBounds { message: String },
    /// The time has passed while the customer was choosing: offer alternatives.
    #[error("the time is in the past: {message}")]
    Past { message: String },
    /// The booking, reservation or event type does not exist (any more).
    #[error("not found: {message}")]
    NotFound { message: String },
    /// Cal.com's per-key budget is spent and waiting did not fit in the retry budget:
    /// requeue the work after `retry_after`.
    #[error("rate limited by Cal.com, retry after {retry_after:?}")]
    RateLimited { retry_after: Duration },
    /// 5xx, timeouts, connection failures, after the client's own retries: nack and retry
    /// later. A write that failed this way may still have happened.
    #[error("Cal.com is unavailable: {message}")]
    Transient {
        status: Option<u16>,
        message: String,
    },
    /// Any other refusal (bad input, auth, unexpected answers): retrying will not help;
    /// dead-letter or hand off. `status` is `None` when the client refused before sending.
    #[error("Cal.com refused the request ({status:?}): {message}")]
    Permanent {
        status: Option<u16>,
        message: String,
    },
}

impl CalcomError {
    /// Whether the same call may succeed later without anything changing.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Transient { .. } | Self::RateLimited { .. })
    }

    /// Whether the customer should be offered other times.
    pub fn wants_alternatives(&self) -> bool {
        matches!(
            self,
            Self::SlotTaken { .. }
                | Self::ReservedByOther { .. }
                | Self::OutOfBounds { .. }
                | Self::Past { .. }
        )
    }

    pub(crate) fn invalid_input(message: impl Into<String>) -> Self {
        Self::Permanent {
            status: None,
            message: message.into(),
        }
    }

    /// Short label for logs and metrics; carries no customer data.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::SlotTaken { .. } => "slot_taken",
            Self::ReservedByOther { .. } => "reserved_by_other",
            Self::OutOfBounds { .. } => "out_of_bounds",
            Self::Past { .. } => "past",
            Self::NotFound { .. } => "not_found",
            Self::RateLimited { .. } => "rate_limited",
            Self::Transient { .. } => "transient",
            Self::Permanent { .. } => "permanent",
        }
    }
}

/// When `Retry-After` and the reset header are both missing.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Bodies of non-JSON errors (CDN pages) are cut to this many characters in messages.
const MESSAGE_LIMIT: usize = 300;

/// Classifies a non-2xx answer. Matching is on status plus message, as Cal.com's codes
/// are only NestJS class names and the same 400 covers very different situations.
pub(crate) fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> CalcomError {
    let message = error_message(body);
    let lower = message.to_lowercase();
    let code = status.as_u16();
    match code {
        429 => CalcomError::RateLimited {
            retry_after: retry_after(headers),
        },
        404 => CalcomError::NotFound { message },
        400 | 409 | 422 if lower.contains("reserved") => CalcomError::ReservedByOther { message },
        400 | 409 | 422
            if lower.contains("already has booking")
                || lower.contains("no_available_users_found")
                || lower.contains("hosts_unavailable")
                || lower.contains("already booked")
                || lower.contains("no more seats")
                || lower.contains("not available") =>
        {
            CalcomError::SlotTaken { message }
        }
        400 if lower.contains("in the past") => CalcomError::Past { message },
        400 if lower.contains("out_of_bounds")
            || lower.contains("can't be booked at the \"start\" time")
            || lower.contains("minimum booking notice") =>
        {
            CalcomError::OutOfBounds { message }
        }
        // Some clients report 409 without a recognisable message; it is still a lost race.
        409 => CalcomError::SlotTaken { message },
        408 | 425 | 500..=599 => CalcomError::Transient {
            status: Some(code),
            message,
        },
        _ => CalcomError::Permanent {
            status: Some(code),
            message,
        },
    }
}

fn error_message(body: &[u8]) -> String {
    if let Ok(envelope) = serde_json::from_slice::<ErrorEnvelope>(body) {
        let text = match envelope.error.message {
            Some(serde_json::Value::String(text)) => text,
            // class-validator style arrays of messages.
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(serde_json::Value::as_str)
                .collect::<Vec<_>>()
                .join("; "),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        if !text.is_empty() {
            return text;
        }
        if let Some(code) = envelope.error.code {
            return code;
        }
    }
    let text = String::from_utf8_lossy(body);
    text.chars().take(MESSAGE_LIMIT).collect()
}

fn retry_after(headers: &HeaderMap) -> Duration {
    let header_number = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .and_then(|text| text.trim().parse::<i64>().ok())
    };
    if let Some(seconds) = header_number("retry-after") {
        return Duration::from_secs(seconds.max(0).unsigned_abs());
    }
    if let Some(reset_epoch) = header_number("x-ratelimit-reset-default") {
        let left = reset_epoch - chrono::Utc::now().timestamp();
        if left >= 0 {
            return Duration::from_secs(left.unsigned_abs());
        }
    }
    DEFAULT_RETRY_AFTER
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(message: &str) -> Vec<u8> {
        serde_json::json!({
            "status": "error",
            "error": { "code": "BadRequestException", "message": message }
        })
        .to_string()
        .into_bytes()
    }

    fn check(status: u16, message: &str, expected: &str) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT);
        let error = classify(status, &HeaderMap::new(), &envelope(message));
        assert_eq!(error.kind(), expected, "{status} {message}");
    }

    #[test]
    fn messages_decide_what_happens_next() {
        check(
            400,
            "User either already has booking at this time or is not available",
            "slot_taken",
        );
        check(
            400,
            "One of the hosts either already has booking at this time or is not available",
            "slot_taken",
        );
        check(400, "no_available_users_found_error", "slot_taken");
        check(
            422,
            "Can't reserve a slot if the event is already booked.",
            "slot_taken",
        );
        check(
            422,
            "This time slot is already reserved by another user. Please choose a different time.",
            "reserved_by_other",
        );
        check(
            409,
            "Someone else reserved this booking time slot before you. This time slot will be freed up in 120 seconds.",
            "reserved_by_other",
        );
        check(409, "Conflict", "slot_taken");
        check(400, "Attempting to book a meeting in the past.", "past");
        check(
            400,
            "The event type can't be booked at the \"start\" time provided. This could be because it's too soon",
            "out_of_bounds",
        );
        check(400, "booking_time_out_of_bounds_error", "out_of_bounds");
        check(404, "Event type with id 1 not found.", "not_found");
        check(401, "Invalid API Key", "permanent");
        check(
            400,
            "attendee.timeZone must be a valid IANA time zone",
            "permanent",
        );
        check(503, "", "transient");
    }

    #[test]
    fn html_error_pages_become_transient_with_a_short_message() {
        let page = format!("<html>{}</html>", "x".repeat(5000));
        let error = classify(StatusCode::BAD_GATEWAY, &HeaderMap::new(), page.as_bytes());
        match error {
            CalcomError::Transient { status, message } => {
                assert_eq!(status, Some(502));
                assert!(message.chars().count() <= MESSAGE_LIMIT);
            }
            other => panic!("expected transient, got {other:?}"),
        }
    }
}
