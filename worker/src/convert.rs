//! From the envelope ingress or the scheduler published to the engine's [`Input`].
//!
//! The envelope carries WhatsApp's original JSON; reading it here (not in ingress) keeps ingress
//! free of business logic and lets a newer worker read fields an older ingress did not know.

use chrono::{DateTime, Utc};
use engine::{CalendarChange, Content, DeliveryStatus, Input, TimerKind};
use serde_json::Value;
use shared::envelope::{Envelope, EventKind};

#[derive(Debug, PartialEq)]
pub enum Converted {
    /// Something for the conversation engine.
    Input(Input),
    /// Nothing for the conversation (business-level errors, statuses we do not track); the
    /// reason is counted.
    Ignore(&'static str),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConvertError {
    #[error("event of kind {0} cannot be read by this release")]
    UnknownKind(String),
    #[error("event payload is malformed: {0}")]
    Malformed(String),
}

pub fn to_input(envelope: &Envelope) -> Result<Converted, ConvertError> {
    match envelope.kind {
        EventKind::Message => Ok(Converted::Input(customer_message(envelope))),
        EventKind::Status => Ok(status(&envelope.payload)),
        EventKind::Error => Ok(Converted::Ignore("business_error")),
        EventKind::Timer => {
            let kind: TimerKind = serde_json::from_value(envelope.payload.clone())
                .map_err(|e| ConvertError::Malformed(format!("timer: {e}")))?;
            Ok(Converted::Input(Input::Timer {
                timer_id: envelope.id.clone(),
                kind,
            }))
        }
        EventKind::AgentRelease => Ok(Converted::Input(Input::AgentReleased)),
        EventKind::CalendarChange => {
            let booking_id = envelope
                .payload
                .get("booking_id")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    ConvertError::Malformed("calendar change without booking_id".into())
                })?
                .to_owned();
            let change: CalendarChange = serde_json::from_value(
                envelope
                    .payload
                    .get("change")
                    .cloned()
                    .unwrap_or(Value::Null),
            )
            .map_err(|e| ConvertError::Malformed(format!("calendar change: {e}")))?;
            Ok(Converted::Input(Input::CalendarChanged {
                booking_id,
                change,
            }))
        }
        EventKind::Unknown => Err(ConvertError::UnknownKind("unknown".into())),
    }
}

fn text_of<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

fn owned(value: &Value, pointer: &str) -> String {
    text_of(value, pointer).unwrap_or_default().to_owned()
}

fn customer_message(envelope: &Envelope) -> Input {
    let message = &envelope.payload;
    let kind = text_of(message, "/type").unwrap_or("unknown");
    let content = match kind {
        "text" => Content::Text {
            body: owned(message, "/text/body"),
        },
        "interactive" => match text_of(message, "/interactive/type") {
            Some("button_reply") => Content::ButtonReply {
                id: owned(message, "/interactive/button_reply/id"),
                title: owned(message, "/interactive/button_reply/title"),
            },
            Some("list_reply") => Content::ListReply {
                id: owned(message, "/interactive/list_reply/id"),
                title: owned(message, "/interactive/list_reply/title"),
            },
            other => Content::Unsupported {
                kind: format!("interactive:{}", other.unwrap_or("unknown")),
            },
        },
        "button" => Content::TemplateButton {
            payload: owned(message, "/button/payload"),
            text: owned(message, "/button/text"),
        },
        "location" => Content::Location {
            latitude: message
                .pointer("/location/latitude")
                .and_then(Value::as_f64)
                .unwrap_or_default(),
            longitude: message
                .pointer("/location/longitude")
                .and_then(Value::as_f64)
                .unwrap_or_default(),
            name: text_of(message, "/location/name").map(str::to_owned),
            address: text_of(message, "/location/address").map(str::to_owned),
        },
        "image" | "video" | "audio" | "document" | "sticker" => Content::Media {
            kind: kind.to_owned(),
            caption: text_of(message, &format!("/{kind}/caption")).map(str::to_owned),
        },
        // Removal is an omitted or empty emoji, depending on the Graph version.
        "reaction" => Content::Reaction {
            emoji: text_of(message, "/reaction/emoji")
                .filter(|e| !e.is_empty())
                .map(str::to_owned),
        },
        "unsupported" => Content::Unsupported {
            kind: text_of(message, "/unsupported/type")
                .unwrap_or("unknown")
                .to_owned(),
        },
        other => Content::Unsupported {
            kind: other.to_owned(),
        },
    };
    let at = envelope
        .wa_timestamp
        .and_then(|seconds| DateTime::<Utc>::from_timestamp(seconds, 0))
        .unwrap_or(envelope.received_at);
    Input::Customer {
        message_id: envelope.id.clone(),
        profile_name: envelope.profile_name.clone(),
        at,
        content,
    }
}

fn status(status: &Value) -> Converted {
    let delivery = match text_of(status, "/status") {
        Some("sent") => DeliveryStatus::Sent,
        Some("delivered") => DeliveryStatus::Delivered,
        Some("read") | Some("played") => DeliveryStatus::Read,
        Some("failed") => DeliveryStatus::Failed {
            code: status
                .pointer("/errors/0/code")
                .and_then(Value::as_u64)
                .and_then(|c| u32::try_from(c).ok())
                .unwrap_or(0),
        },
        _ => return Converted::Ignore("status_unknown"),
    };
    Converted::Input(Input::Status {
        message_id: owned(status, "/id"),
        status: delivery,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope_from_fixture(name: &str, kind: EventKind) -> Envelope {
        let path = format!("{}/../fixtures/whatsapp/{name}", env!("CARGO_MANIFEST_DIR"));
        let raw: Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json");
        let value = &raw["entry"][0]["changes"][0]["value"];
        let payload = match kind {
            EventKind::Message => value["messages"][0].clone(),
            _ => value["statuses"][0].clone(),
        };
        Envelope {
            v: 1,
            id: "wamid.x".into(),
            kind,
            tenant: "1".into(),
            customer: "2".into(),
            wa_timestamp: Some(1_750_000_000),
            received_at: Utc::now(),
            profile_name: Some("Ana".into()),
            payload,
        }
    }

    fn content(name: &str) -> Content {
        match to_input(&envelope_from_fixture(name, EventKind::Message)) {
            Ok(Converted::Input(Input::Customer { content, .. })) => content,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn reads_every_inbound_message_type_of_the_fixtures() {
        assert!(matches!(content("pywa-text.json"), Content::Text { body } if !body.is_empty()));
        assert!(
            matches!(content("meta-docs-interactive-button-reply.json"), Content::ButtonReply { id, .. } if !id.is_empty())
        );
        assert!(
            matches!(content("meta-docs-interactive-list-reply.json"), Content::ListReply { id, .. } if !id.is_empty())
        );
        assert!(
            matches!(content("pywa-template-quick-reply-button.json"), Content::TemplateButton { payload, .. } if !payload.is_empty())
        );
        assert!(matches!(
            content("pywa-location-chosen-place.json"),
            Content::Location { name: Some(_), .. }
        ));
        assert!(
            matches!(content("pywa-location-current.json"), Content::Location { name: None, latitude, .. } if latitude != 0.0)
        );
        assert!(
            matches!(content("pywa-image.json"), Content::Media { kind, .. } if kind == "image")
        );
        assert!(matches!(
            content("pywa-reaction.json"),
            Content::Reaction { emoji: Some(_) }
        ));
        assert!(matches!(
            content("pywa-reaction-removed-empty-emoji.json"),
            Content::Reaction { emoji: None }
        ));
        assert!(matches!(
            content("pywa-reaction-removed-no-emoji.json"),
            Content::Reaction { emoji: None }
        ));
        assert!(
            matches!(content("meta-docs-unsupported-edit.json"), Content::Unsupported { kind } if kind == "edit")
        );
        assert!(matches!(
            content("pywa-unsupported.json"),
            Content::Unsupported { .. }
        ));
    }

    #[test]
    fn reads_statuses_with_failure_codes() {
        let failed = to_input(&envelope_from_fixture(
            "meta-docs-status-failed-131049.json",
            EventKind::Status,
        ));
        assert!(
            matches!(
                failed,
                Ok(Converted::Input(Input::Status {
                    status: DeliveryStatus::Failed { code: 131049 },
                    ..
                }))
            ),
            "{failed:?}"
        );
        let read = to_input(&envelope_from_fixture(
            "pywa-status-read.json",
            EventKind::Status,
        ));
        assert!(matches!(
            read,
            Ok(Converted::Input(Input::Status {
                status: DeliveryStatus::Read,
                ..
            }))
        ));
    }

    #[test]
    fn timers_round_trip_through_the_payload_the_scheduler_publishes() {
        let kind = TimerKind::Reminder {
            booking_id: "b1".into(),
            minutes_before: 60,
        };
        let mut payload = serde_json::to_value(&kind).expect("serialises");
        payload["due"] = Value::String("2026-01-01T10:00:00Z".into());
        let envelope = Envelope {
            v: 1,
            id: "b1:reminder:60".into(),
            kind: EventKind::Timer,
            tenant: "1".into(),
            customer: "2".into(),
            wa_timestamp: None,
            received_at: Utc::now(),
            profile_name: None,
            payload,
        };
        assert_eq!(
            to_input(&envelope),
            Ok(Converted::Input(Input::Timer {
                timer_id: "b1:reminder:60".into(),
                kind
            }))
        );
    }

    #[test]
    fn unknown_kinds_are_refused_for_a_newer_release_to_replay() {
        let mut envelope = envelope_from_fixture("pywa-text.json", EventKind::Message);
        envelope.kind = EventKind::Unknown;
        assert!(matches!(
            to_input(&envelope),
            Err(ConvertError::UnknownKind(_))
        ));
    }
}
