//! The event envelope: the one shape every producer (ingress, scheduler, agent tools) publishes
//! into a conversation's partition and every worker consumes.
//!
//! Versioned so a worker can refuse, rather than misread, an envelope from a newer release:
//! unknown fields are ignored, an unknown `kind` decodes to [`EventKind::Unknown`] and is
//! carried, never dropped.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Bumped only when a change is not backwards compatible for readers.
pub const SCHEMA_VERSION: u16 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// An inbound customer message (any WhatsApp message type, including ones we do not handle).
    Message,
    /// A delivery status of a message we sent.
    Status,
    /// A value-level asynchronous error reported by WhatsApp for the business number.
    Error,
    /// A due timer claimed by the scheduler.
    Timer,
    /// A person released a handed-off conversation back to the bot.
    AgentRelease,
    /// A booking changed outside the conversation (for example on the calendar's own page).
    CalendarChange,
    /// A kind written by a newer release; carried so that nothing is silently lost.
    #[serde(other)]
    Unknown,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Message => "message",
            EventKind::Status => "status",
            EventKind::Error => "error",
            EventKind::Timer => "timer",
            EventKind::AgentRelease => "agent_release",
            EventKind::CalendarChange => "calendar_change",
            EventKind::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Schema version of this envelope ([`SCHEMA_VERSION`] when written by this release).
    pub v: u16,
    /// Idempotency key of the event: the wamid for messages, `wamid:status` for statuses, the
    /// timer id for timers. Workers use it to make every event effectively-once.
    pub id: String,
    pub kind: EventKind,
    /// The business: WhatsApp `phone_number_id` the event belongs to.
    pub tenant: String,
    /// The customer: `wa_id`, or the business-scoped `user_id` when WhatsApp omits `wa_id`.
    /// Empty for events that concern the business number as a whole.
    pub customer: String,
    /// WhatsApp's own timestamp (Unix seconds), when the event came from WhatsApp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_timestamp: Option<i64>,
    /// When the fleet first received the event; the start of every latency measurement.
    pub received_at: DateTime<Utc>,
    /// The contact's WhatsApp profile name, so the bot can greet the customer by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_name: Option<String>,
    /// The original JSON object (message, status, error or timer) exactly as received.
    pub payload: serde_json::Value,
}

impl Envelope {
    /// The key that decides the partition: all events of one conversation share it.
    pub fn conversation_key(&self) -> String {
        conversation_key(&self.tenant, &self.customer)
    }
}

/// An [`Envelope`] whose payload is still the JSON text it arrived in, borrowed from the
/// received bytes. It serializes to exactly what the same [`Envelope`] would decode from, so
/// a producer that never looks inside the payload (ingress) publishes it without building and
/// re-encoding a JSON tree.
#[derive(Debug, Clone, Serialize)]
pub struct RawEnvelope<'a> {
    pub v: u16,
    pub id: String,
    pub kind: EventKind,
    pub tenant: String,
    pub customer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wa_timestamp: Option<i64>,
    pub received_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile_name: Option<String>,
    pub payload: &'a serde_json::value::RawValue,
}

/// What a publisher needs of an event besides its encoding: where it goes and its id.
pub trait Publishable: Serialize {
    fn event_id(&self) -> &str;
    fn conversation_key(&self) -> String;
}

impl Publishable for Envelope {
    fn event_id(&self) -> &str {
        &self.id
    }
    fn conversation_key(&self) -> String {
        Envelope::conversation_key(self)
    }
}

impl Publishable for RawEnvelope<'_> {
    fn event_id(&self) -> &str {
        &self.id
    }
    fn conversation_key(&self) -> String {
        conversation_key(&self.tenant, &self.customer)
    }
}

/// Business and customer joined with a separator that neither a `phone_number_id` (digits)
/// nor a `wa_id`/`user_id` (digits, letters, dots) can contain.
pub fn conversation_key(tenant: &str, customer: &str) -> String {
    format!("{tenant}|{customer}")
}

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("envelope is not valid JSON for this schema: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error(
        "envelope schema version {found} is newer than this release understands ({SCHEMA_VERSION})"
    )]
    TooNew { found: u16 },
}

/// Decodes an envelope, refusing versions this release cannot read correctly.
pub fn decode(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
    let envelope: Envelope = serde_json::from_slice(bytes)?;
    if envelope.v > SCHEMA_VERSION {
        return Err(EnvelopeError::TooNew { found: envelope.v });
    }
    Ok(envelope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_kind_is_carried_not_rejected() {
        let json = br#"{"v":1,"id":"x","kind":"something_new","tenant":"1","customer":"2",
            "received_at":"2026-01-01T00:00:00Z","payload":{},"extra":"ignored"}"#;
        let envelope = decode(json).expect("decodes");
        assert_eq!(envelope.kind, EventKind::Unknown);
    }

    #[test]
    fn a_raw_envelope_decodes_as_the_envelope_it_stands_for() {
        let payload_text = r#"{ "from": "34600111222", "id": "wamid.X\u00e9",
            "text": {"body": "hola \"tú\""}, "type": "text", "timestamp": "1700000000" }"#;
        let payload: &serde_json::value::RawValue =
            serde_json::from_str(payload_text).expect("payload is JSON");
        let raw = RawEnvelope {
            v: SCHEMA_VERSION,
            id: "wamid.Xé".into(),
            kind: EventKind::Message,
            tenant: "106540352242922".into(),
            customer: "34600111222".into(),
            wa_timestamp: Some(1_700_000_000),
            received_at: "2026-11-21T10:00:00.123456789Z".parse().expect("time"),
            profile_name: Some("Ana".into()),
            payload,
        };
        let decoded = decode(&serde_json::to_vec(&raw).expect("encodes")).expect("decodes");
        assert_eq!(
            decoded,
            Envelope {
                v: raw.v,
                id: raw.id.clone(),
                kind: raw.kind,
                tenant: raw.tenant.clone(),
                customer: raw.customer.clone(),
                wa_timestamp: raw.wa_timestamp,
                received_at: raw.received_at,
                profile_name: raw.profile_name.clone(),
                payload: serde_json::from_str(payload_text).expect("payload is JSON"),
            }
        );
        assert_eq!(
            Publishable::conversation_key(&raw),
            decoded.conversation_key()
        );

        let without_options = RawEnvelope {
            wa_timestamp: None,
            profile_name: None,
            ..raw
        };
        let decoded =
            decode(&serde_json::to_vec(&without_options).expect("encodes")).expect("decodes");
        assert_eq!((decoded.wa_timestamp, decoded.profile_name), (None, None));
    }

    #[test]
    fn newer_schema_is_refused() {
        let json = br#"{"v":99,"id":"x","kind":"message","tenant":"1","customer":"2",
            "received_at":"2026-01-01T00:00:00Z","payload":{}}"#;
        assert!(matches!(
            decode(json),
            Err(EnvelopeError::TooNew { found: 99 })
        ));
    }
}
