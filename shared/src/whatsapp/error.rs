//! What a failed send means for the caller (WIRE.md A5's table), decided in one place.

use std::time::Duration;

use super::types::GraphError;

/// A send that did not go out, typed by what the caller does next.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Try again later (nack and redeliver): throttling, Meta outages, timeouts, or the
    /// bounded pacing wait ran out. Retries inside the client were already spent.
    #[error("WhatsApp send failed transiently, retry later: {0}")]
    Transient(TransientCause),
    /// Free-form message outside the 24-hour customer-service window (131047):
    /// send an approved template instead.
    #[error("customer-service window closed (131047): send a template instead")]
    OutsideWindow { details: Option<String> },
    /// Retrying the same request cannot succeed: record it, hand off or dead-letter.
    #[error("WhatsApp rejected the send permanently: {0}")]
    Permanent(GraphFailure),
}

impl SendError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }

    /// The Graph error code, when Meta gave one.
    pub fn code(&self) -> Option<i64> {
        match self {
            Self::Transient(TransientCause::Graph(failure)) | Self::Permanent(failure) => {
                Some(failure.code)
            }
            Self::Transient(_) => None,
            Self::OutsideWindow { .. } => Some(OUTSIDE_WINDOW),
        }
    }
}

/// Why a transient failure happened.
#[derive(Debug, thiserror::Error)]
pub enum TransientCause {
    #[error("{0}")]
    Graph(GraphFailure),
    /// A 5xx or 429 without a Graph error body, e.g. from a proxy.
    #[error("HTTP {status} without a Graph error body")]
    Http { status: u16 },
    /// No answer in time: the request may have reached Meta.
    #[error("request timed out")]
    Timeout,
    /// No connection was made: the request never left.
    #[error("connection failed: {0}")]
    Connection(String),
    /// The connection broke after the request was written: it may have reached Meta.
    #[error("connection broke before the answer: {0}")]
    Interrupted(String),
    /// Waiting for a pacing slot would have taken longer than allowed.
    #[error("pacing would delay the send by {wait:?}, more than the {limit:?} allowed")]
    PacingBudgetExceeded { wait: Duration, limit: Duration },
}

impl TransientCause {
    /// Whether Meta may have accepted the request although no answer came back. Repeating
    /// such a send could deliver it twice; its status webhooks tell instead.
    pub fn may_have_arrived(&self) -> bool {
        matches!(self, Self::Timeout | Self::Interrupted(_))
    }
}

/// A Graph error reduced to what callers and logs need.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("HTTP {http_status}, code {code}: {message}{}", details.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
pub struct GraphFailure {
    pub http_status: u16,
    pub code: i64,
    pub message: String,
    pub details: Option<String>,
    pub fbtrace_id: Option<String>,
}

impl GraphFailure {
    pub fn from_graph(http_status: u16, error: GraphError) -> Self {
        Self {
            http_status,
            code: error.code,
            message: error.message,
            details: error.error_data.and_then(|data| data.details),
            fbtrace_id: error.fbtrace_id,
        }
    }
}

/// Graph code of a free-form message outside the 24-hour customer-service window.
pub const OUTSIDE_WINDOW: i64 = 131047;
pub(crate) const PAIR_RATE_LIMIT: i64 = 131056;

/// How an error code is handled, for synchronous errors and for the `errors[]` of a
/// `failed` status webhook alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Retryable,
    OutsideWindow,
    Permanent,
}

/// Classifies a Graph error code (WIRE.md A5). Unknown codes follow the HTTP status:
/// 5xx and 429 are worth retrying, anything else is a request Meta will keep refusing.
pub fn classify(code: i64, http_status: Option<u16>) -> ErrorClass {
    match code {
        OUTSIDE_WINDOW => ErrorClass::OutsideWindow,
        // Throughput, pair rate, app and WABA call limits, Meta-side outages, maintenance.
        130429 | PAIR_RATE_LIMIT | 4 | 80007 | 1 | 2 | 131000 | 131016 | 133004 | 131057 => {
            ErrorClass::Retryable
        }
        // Auth, permissions, bad requests, templates, recipients, policy, spam limits:
        // the same request keeps failing (131048/131049 only after hours, not within a retry).
        0
        | 3
        | 10
        | 100
        | 190
        | 200..=299
        | 368
        | 130472
        | 131008
        | 131009
        | 131021
        | 131026
        | 131031
        | 131042
        | 131048
        | 131049
        | 131050
        | 131051
        | 131052
        | 131053
        | 132000
        | 132001
        | 132005
        | 132007
        | 132012
        | 132015
        | 132016
        | 133010
        | 135000 => ErrorClass::Permanent,
        _ => match http_status {
            Some(status) if status >= 500 || status == 429 => ErrorClass::Retryable,
            _ => ErrorClass::Permanent,
        },
    }
}
