//! Splitting one webhook delivery into events. Pure: bytes in, envelopes out.
//!
//! A delivery batches up to 1000 updates across `entry[]`, `changes[]`, and each change's
//! `messages[]`, `statuses[]` and `errors[]`; every one becomes its own event. Anything we do
//! not handle (another webhook field, another object) is counted, not failed; anything that is
//! ours but unreadable is reported so the caller can keep the raw delivery.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use shared::envelope::{Envelope, EventKind, SCHEMA_VERSION};

#[derive(Debug, Default, PartialEq)]
pub struct Split {
    pub events: Vec<Envelope>,
    /// Updates of kinds this fleet does not handle, by reason (for example `field:account_update`).
    pub ignored: Vec<String>,
    /// Updates that are ours but could not be read (missing ids, missing routing data).
    pub unreadable: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    #[error("delivery is not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("delivery is not a JSON object")]
    NotAnObject,
}

pub fn split_delivery(body: &[u8], received_at: DateTime<Utc>) -> Result<Split, SplitError> {
    let root: Value = serde_json::from_slice(body)?;
    let root = root.as_object().ok_or(SplitError::NotAnObject)?;
    let mut split = Split::default();
    match root.get("object").and_then(Value::as_str) {
        Some("whatsapp_business_account") => {}
        other => {
            split
                .ignored
                .push(format!("object:{}", other.unwrap_or("missing")));
            return Ok(split);
        }
    }
    for entry in array(root.get("entry")) {
        for change in array(entry.get("changes")) {
            split_change(change, received_at, &mut split);
        }
    }
    Ok(split)
}

fn split_change(change: &Value, received_at: DateTime<Utc>, split: &mut Split) {
    let field = change.get("field").and_then(Value::as_str).unwrap_or("");
    if field != "messages" {
        split.ignored.push(format!("field:{field}"));
        return;
    }
    let Some(value) = change.get("value") else {
        split.unreadable.push("change without value".into());
        return;
    };
    let Some(tenant) = value
        .pointer("/metadata/phone_number_id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
    else {
        split
            .unreadable
            .push("change without metadata.phone_number_id".into());
        return;
    };
    let contacts = array(value.get("contacts"));
    let before = split.events.len() + split.unreadable.len();

    for message in array(value.get("messages")) {
        let Some(id) = str_field(message, "id") else {
            split.unreadable.push("message without id".into());
            continue;
        };
        let from = str_field(message, "from");
        let from_user_id = str_field(message, "from_user_id");
        let contact = matching_contact(contacts, from, from_user_id);
        let Some(customer) = from
            .or(from_user_id)
            .or_else(|| contact.and_then(|c| str_field(c, "wa_id").or(str_field(c, "user_id"))))
        else {
            split.unreadable.push("message without sender".into());
            continue;
        };
        split.events.push(Envelope {
            v: SCHEMA_VERSION,
            id: id.to_owned(),
            kind: EventKind::Message,
            tenant: tenant.to_owned(),
            customer: customer.to_owned(),
            wa_timestamp: timestamp(message),
            received_at,
            profile_name: contact
                .and_then(|c| c.pointer("/profile/name"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            payload: message.clone(),
        });
    }

    for status in array(value.get("statuses")) {
        let (Some(id), Some(state)) = (str_field(status, "id"), str_field(status, "status")) else {
            split.unreadable.push("status without id or status".into());
            continue;
        };
        let customer = str_field(status, "recipient_id")
            .or(str_field(status, "recipient_user_id"))
            .unwrap_or("");
        split.events.push(Envelope {
            v: SCHEMA_VERSION,
            id: format!("{id}:{state}"),
            kind: EventKind::Status,
            tenant: tenant.to_owned(),
            customer: customer.to_owned(),
            wa_timestamp: timestamp(status),
            received_at,
            profile_name: None,
            payload: status.clone(),
        });
    }

    for error in array(value.get("errors")) {
        // WhatsApp gives value-level errors no id; the content (keys sorted by serde_json's
        // map) makes a redelivery of the same error dedup to the same event.
        let digest = Sha256::digest(format!("{tenant}|{error}").as_bytes());
        split.events.push(Envelope {
            v: SCHEMA_VERSION,
            id: format!("error:{}", hex::encode(&digest[..12])),
            kind: EventKind::Error,
            tenant: tenant.to_owned(),
            customer: String::new(),
            wa_timestamp: None,
            received_at,
            profile_name: None,
            payload: error.clone(),
        });
    }

    if split.events.len() + split.unreadable.len() == before {
        split.ignored.push("messages:empty".into());
    }
}

/// The contact this message came from: by wa_id, else by user_id, else the only contact.
fn matching_contact<'a>(
    contacts: &'a [Value],
    from: Option<&str>,
    from_user_id: Option<&str>,
) -> Option<&'a Value> {
    contacts
        .iter()
        .find(|c| from.is_some() && str_field(c, "wa_id") == from)
        .or_else(|| {
            contacts
                .iter()
                .find(|c| from_user_id.is_some() && str_field(c, "user_id") == from_user_id)
        })
        .or(match contacts {
            [only] => Some(only),
            _ => None,
        })
}

fn array(value: Option<&Value>) -> &[Value] {
    value
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn str_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// WhatsApp sends Unix seconds as a JSON string; accept a number too.
fn timestamp(value: &Value) -> Option<i64> {
    match value.get("timestamp")? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}
