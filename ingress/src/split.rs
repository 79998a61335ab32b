//! Splitting one webhook delivery into events. Pure: bytes in, envelopes out.
//!
//! A delivery batches up to 1000 updates across `entry[]`, `changes[]`, and each change's
//! `messages[]`, `statuses[]` and `errors[]`; every one becomes its own event. Anything we do
//! not handle (another webhook field, another object) is counted, not failed; anything that is
//! ours but unreadable is reported so the caller can keep the raw delivery.
//!
//! The delivery is read into borrowed views (see [`lenient`]): one pass over the whole body,
//! and a second over each message or status for the few fields that route it. Every update
//! travels as the exact JSON text WhatsApp sent: ingress never builds a JSON tree, which was
//! most of its work per delivery.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use shared::envelope::{EventKind, RawEnvelope, SCHEMA_VERSION};

use lenient::{List, Obj, Text, Timestamp};

#[derive(Debug, Default)]
pub struct Split<'a> {
    pub events: Vec<RawEnvelope<'a>>,
    /// Updates of kinds this fleet does not handle, by reason (for example `field:account_update`).
    pub ignored: Vec<String>,
    /// Updates that are ours but could not be read (missing ids, missing routing data).
    pub unreadable: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    /// Not JSON, or JSON that repeats a key the delivery is routed by (kept raw either way).
    #[error("delivery could not be read: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("delivery is not a JSON object")]
    NotAnObject,
}

#[derive(Deserialize)]
struct Delivery<'a> {
    #[serde(default, borrow)]
    object: Text<'a>,
    #[serde(default, borrow)]
    entry: List<Obj<Entry<'a>>>,
}

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(default, borrow)]
    changes: List<Obj<Change<'a>>>,
}

#[derive(Deserialize)]
struct Change<'a> {
    #[serde(default, borrow)]
    field: Text<'a>,
    #[serde(default, borrow)]
    value: Obj<ChangeValue<'a>>,
}

#[derive(Deserialize)]
struct ChangeValue<'a> {
    #[serde(default, borrow)]
    metadata: Obj<Metadata<'a>>,
    #[serde(default, borrow)]
    contacts: List<Obj<Contact<'a>>>,
    #[serde(default, borrow)]
    messages: List<&'a RawValue>,
    #[serde(default, borrow)]
    statuses: List<&'a RawValue>,
    #[serde(default, borrow)]
    errors: List<&'a RawValue>,
}

#[derive(Deserialize)]
struct Metadata<'a> {
    #[serde(default, borrow)]
    phone_number_id: Text<'a>,
}

#[derive(Deserialize)]
struct Contact<'a> {
    #[serde(default, borrow)]
    wa_id: Text<'a>,
    #[serde(default, borrow)]
    user_id: Text<'a>,
    #[serde(default, borrow)]
    profile: Obj<Profile<'a>>,
}

#[derive(Deserialize)]
struct Profile<'a> {
    #[serde(default, borrow)]
    name: Text<'a>,
}

#[derive(Deserialize)]
struct MessageFields<'a> {
    #[serde(default, borrow)]
    id: Text<'a>,
    #[serde(default, borrow)]
    from: Text<'a>,
    #[serde(default, borrow)]
    from_user_id: Text<'a>,
    #[serde(default)]
    timestamp: Timestamp,
}

#[derive(Deserialize)]
struct StatusFields<'a> {
    #[serde(default, borrow)]
    id: Text<'a>,
    #[serde(default, borrow)]
    status: Text<'a>,
    #[serde(default, borrow)]
    recipient_id: Text<'a>,
    #[serde(default, borrow)]
    recipient_user_id: Text<'a>,
    #[serde(default)]
    timestamp: Timestamp,
}

pub fn split_delivery(body: &[u8], received_at: DateTime<Utc>) -> Result<Split<'_>, SplitError> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        // Only says which of the two errors it is.
        serde_json::from_slice::<serde::de::IgnoredAny>(body)?;
        return Err(SplitError::NotAnObject);
    }
    let delivery: Delivery = serde_json::from_slice(body)?;
    let mut split = Split::default();
    match delivery.object.as_deref() {
        Some("whatsapp_business_account") => {}
        other => {
            split
                .ignored
                .push(format!("object:{}", other.unwrap_or("missing")));
            return Ok(split);
        }
    }
    for entry in delivery.entry.iter().filter_map(Obj::get) {
        for change in entry.changes.iter() {
            split_change(change.get(), received_at, &mut split);
        }
    }
    Ok(split)
}

fn split_change<'a>(
    change: Option<&Change<'a>>,
    received_at: DateTime<Utc>,
    split: &mut Split<'a>,
) {
    let field = change.and_then(|c| c.field.as_deref()).unwrap_or("");
    if field != "messages" {
        split.ignored.push(format!("field:{field}"));
        return;
    }
    let Some(value) = change.and_then(|c| c.value.get()) else {
        split.unreadable.push("change without value".into());
        return;
    };
    let Some(tenant) = value
        .metadata
        .get()
        .and_then(|metadata| metadata.phone_number_id.as_deref())
    else {
        split
            .unreadable
            .push("change without metadata.phone_number_id".into());
        return;
    };
    let contacts: Vec<&Contact> = value.contacts.iter().filter_map(Obj::get).collect();
    let before = split.events.len() + split.unreadable.len();

    for &message in value.messages.iter() {
        let fields = lenient::fields::<MessageFields>(message);
        let Some((fields, id)) = fields
            .as_ref()
            .and_then(Obj::get)
            .and_then(|f| Some((f, f.id.as_deref()?)))
        else {
            split
                .unreadable
                .push("message without a readable id".into());
            continue;
        };
        let from = fields.from.as_deref();
        let from_user_id = fields.from_user_id.as_deref();
        let contact = matching_contact(&contacts, from, from_user_id);
        let Some(customer) = from
            .or(from_user_id)
            .or_else(|| contact.and_then(|c| c.wa_id.as_deref().or(c.user_id.as_deref())))
        else {
            split.unreadable.push("message without sender".into());
            continue;
        };
        split.events.push(RawEnvelope {
            v: SCHEMA_VERSION,
            id: id.to_owned(),
            kind: EventKind::Message,
            tenant: tenant.to_owned(),
            customer: customer.to_owned(),
            wa_timestamp: fields.timestamp.0,
            received_at,
            profile_name: contact
                .and_then(|c| c.profile.get())
                .and_then(|profile| profile.name.as_deref())
                .map(str::to_owned),
            payload: message,
        });
    }

    for &status in value.statuses.iter() {
        let fields = lenient::fields::<StatusFields>(status);
        let Some((fields, id, state)) = fields
            .as_ref()
            .and_then(Obj::get)
            .and_then(|f| Some((f, f.id.as_deref()?, f.status.as_deref()?)))
        else {
            split
                .unreadable
                .push("status without a readable id or status".into());
            continue;
        };
        let customer = fields
            .recipient_id
            .as_deref()
            .or(fields.recipient_user_id.as_deref())
            .unwrap_or("");
        split.events.push(RawEnvelope {
            v: SCHEMA_VERSION,
            id: format!("{id}:{state}"),
            kind: EventKind::Status,
            tenant: tenant.to_owned(),
            customer: customer.to_owned(),
            wa_timestamp: fields.timestamp.0,
            received_at,
            profile_name: None,
            payload: status,
        });
    }

    for &error in value.errors.iter() {
        // WhatsApp gives value-level errors no id; the content with its keys sorted (as
        // serde_json's map writes it) makes a redelivery of the same error dedup to the same
        // event, however the JSON was spaced.
        let canonical = serde_json::from_str::<serde_json::Value>(error.get())
            .map(|value| value.to_string())
            .unwrap_or_else(|_| error.get().to_owned());
        let digest = Sha256::digest(format!("{tenant}|{canonical}").as_bytes());
        split.events.push(RawEnvelope {
            v: SCHEMA_VERSION,
            id: format!("error:{}", hex::encode(&digest[..12])),
            kind: EventKind::Error,
            tenant: tenant.to_owned(),
            customer: String::new(),
            wa_timestamp: None,
            received_at,
            profile_name: None,
            payload: error,
        });
    }

    if split.events.len() + split.unreadable.len() == before {
        split.ignored.push("messages:empty".into());
    }
}

/// The contact this message came from: by wa_id, else by user_id, else the only contact.
fn matching_contact<'c, 'a>(
    contacts: &[&'c Contact<'a>],
    from: Option<&str>,
    from_user_id: Option<&str>,
) -> Option<&'c Contact<'a>> {
    contacts
        .iter()
        .find(|c| from.is_some() && c.wa_id.as_deref() == from)
        .or_else(|| {
            contacts
                .iter()
                .find(|c| from_user_id.is_some() && c.user_id.as_deref() == from_user_id)
        })
        .or(match contacts {
            [only] => Some(only),
            _ => None,
        })
        .copied()
}

/// Views of JSON that accept any shape: a field of the wrong type reads as absent (and its
/// value is skipped) instead of failing the whole delivery, as WhatsApp's documentation
/// promises fields, not types, and one odd update must not cost the others in its delivery.
mod lenient {
    use std::borrow::Cow;
    use std::fmt;
    use std::marker::PhantomData;

    use serde::de::value::MapAccessDeserializer;
    use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use serde_json::value::RawValue;

    /// A non-empty JSON string, borrowed when it has no escapes.
    #[derive(Default)]
    pub struct Text<'a>(Option<Cow<'a, str>>);

    impl Text<'_> {
        pub fn as_deref(&self) -> Option<&str> {
            self.0.as_deref().filter(|text| !text.is_empty())
        }
    }

    /// A JSON object read as `T`.
    pub struct Obj<T>(Option<T>);

    impl<T> Default for Obj<T> {
        fn default() -> Self {
            Self(None)
        }
    }

    impl<T> Obj<T> {
        pub fn get(&self) -> Option<&T> {
            self.0.as_ref()
        }
    }

    /// A JSON array of `T`.
    pub struct List<T>(Vec<T>);

    impl<T> Default for List<T> {
        fn default() -> Self {
            Self(Vec::new())
        }
    }

    impl<T> List<T> {
        pub fn iter(&self) -> std::slice::Iter<'_, T> {
            self.0.iter()
        }
    }

    /// Unix seconds, sent by WhatsApp as a string of digits; a number is accepted too.
    #[derive(Default)]
    pub struct Timestamp(pub Option<i64>);

    /// Reads `T`'s fields from one update's JSON text; `None` when it is not an object.
    pub fn fields<'a, T: Deserialize<'a>>(raw: &'a RawValue) -> Option<Obj<T>> {
        serde_json::from_str::<Obj<T>>(raw.get()).ok()
    }

    fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    /// Everything that is not the shape asked for reads as `Default`; containers of the
    /// wrong kind are consumed so the parser stays in step.
    macro_rules! other_shapes_are_absent {
        () => {
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Default::default())
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Default::default())
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Default::default())
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Default::default())
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Default::default())
            }
        };
    }

    impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct TextVisitor<'a>(PhantomData<&'a ()>);
            impl<'de: 'a, 'a> Visitor<'de> for TextVisitor<'a> {
                type Value = Text<'a>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("any JSON value")
                }
                fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'a>, E> {
                    Ok(Text(Some(Cow::Borrowed(v))))
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'a>, E> {
                    Ok(Text(Some(Cow::Owned(v.to_owned()))))
                }
                fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'a>, E> {
                    Ok(Text(Some(Cow::Owned(v))))
                }
                fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Text<'a>, A::Error> {
                    skip_map(map).map(|()| Text::default())
                }
                fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Text<'a>, A::Error> {
                    skip_seq(seq).map(|()| Text::default())
                }
                other_shapes_are_absent!();
            }
            deserializer.deserialize_any(TextVisitor(PhantomData))
        }
    }

    impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct ObjVisitor<T>(PhantomData<T>);
            impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjVisitor<T> {
                type Value = Obj<T>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("any JSON value")
                }
                fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Obj<T>, A::Error> {
                    T::deserialize(MapAccessDeserializer::new(map)).map(|t| Obj(Some(t)))
                }
                fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Obj<T>, A::Error> {
                    skip_seq(seq).map(|()| Obj::default())
                }
                fn visit_str<E: de::Error>(self, _: &str) -> Result<Obj<T>, E> {
                    Ok(Obj::default())
                }
                other_shapes_are_absent!();
            }
            deserializer.deserialize_any(ObjVisitor(PhantomData))
        }
    }

    impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct ListVisitor<T>(PhantomData<T>);
            impl<'de, T: Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
                type Value = List<T>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("any JSON value")
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List<T>, A::Error> {
                    let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                    while let Some(item) = seq.next_element()? {
                        items.push(item);
                    }
                    Ok(List(items))
                }
                fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<List<T>, A::Error> {
                    skip_map(map).map(|()| List::default())
                }
                fn visit_str<E: de::Error>(self, _: &str) -> Result<List<T>, E> {
                    Ok(List::default())
                }
                other_shapes_are_absent!();
            }
            deserializer.deserialize_any(ListVisitor(PhantomData))
        }
    }

    impl<'de> Deserialize<'de> for Timestamp {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct TimestampVisitor;
            impl<'de> Visitor<'de> for TimestampVisitor {
                type Value = Timestamp;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("any JSON value")
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
                    Ok(Timestamp(v.parse().ok()))
                }
                fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
                    Ok(Timestamp(Some(v)))
                }
                fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
                    Ok(Timestamp(i64::try_from(v).ok()))
                }
                fn visit_bool<E: de::Error>(self, _: bool) -> Result<Timestamp, E> {
                    Ok(Timestamp(None))
                }
                fn visit_f64<E: de::Error>(self, _: f64) -> Result<Timestamp, E> {
                    Ok(Timestamp(None))
                }
                fn visit_unit<E: de::Error>(self) -> Result<Timestamp, E> {
                    Ok(Timestamp(None))
                }
                fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Timestamp, A::Error> {
                    skip_map(map).map(|()| Timestamp(None))
                }
                fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Timestamp, A::Error> {
                    skip_seq(seq).map(|()| Timestamp(None))
                }
            }
            deserializer.deserialize_any(TimestampVisitor)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        "2026-11-21T10:00:00Z".parse().expect("time")
    }

    fn delivery(value: &str) -> String {
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"field":"messages","value":{value}}}]}}]}}"#
        )
    }

    #[test]
    fn an_update_travels_as_the_exact_text_whatsapp_sent() {
        let message = r#"{ "from" : "34600111222", "id": "wamid.A\u00e9", "timestamp": 1700000000,
            "type": "text", "text": { "body": "hola \"tú\"" } }"#;
        let body = delivery(&format!(
            r#"{{"metadata":{{"phone_number_id":"106"}},"contacts":[{{"wa_id":"34600111222","profile":{{"name":"Ana \u00c1"}}}}],"messages":[{message}]}}"#
        ));
        let split = split_delivery(body.as_bytes(), at()).expect("splits");
        assert_eq!(split.events.len(), 1, "{split:?}");
        let event = &split.events[0];
        assert_eq!(event.payload.get(), message);
        assert_eq!(event.id, "wamid.Aé");
        assert_eq!(event.customer, "34600111222");
        assert_eq!(event.tenant, "106");
        assert_eq!(event.wa_timestamp, Some(1_700_000_000));
        assert_eq!(event.profile_name.as_deref(), Some("Ana Á"));
    }

    #[test]
    fn fields_of_the_wrong_type_read_as_absent_without_losing_the_rest() {
        let body = delivery(
            r#"{"metadata":{"phone_number_id":"106"},"contacts":"nobody",
                "messages":[{"id":7,"from":"1"},{"id":"wamid.B","from":["x"],"timestamp":{"s":1}},
                            {"id":"wamid.C","from":"34","timestamp":"soon"},"not an object",
                            {"id":"wamid.F","id":"wamid.G","from":"34"}],
                "statuses":[{"id":"wamid.D","status":null},{"id":"wamid.E","status":"read","recipient_id":{"a":[1,2]}}]}"#,
        );
        let split = split_delivery(body.as_bytes(), at()).expect("splits");
        let ids: Vec<&str> = split.events.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["wamid.C", "wamid.E:read"]);
        assert_eq!(split.events[0].wa_timestamp, None);
        assert_eq!(split.events[1].customer, "");
        assert_eq!(
            split.unreadable,
            [
                "message without a readable id",
                "message without sender",
                "message without a readable id",
                "message without a readable id",
                "status without a readable id or status"
            ]
        );
    }

    #[test]
    fn containers_of_the_wrong_kind_are_skipped_and_reported() {
        let split = split_delivery(
            br#"{"object":"whatsapp_business_account","entry":[{"changes":{"field":"messages"}},
                {"changes":[{"field":"messages","value":[1]},{"field":"messages","value":{"metadata":"106"}},
                {"field":"account_update","value":{}}]}]}"#,
            at(),
        )
        .expect("splits");
        assert!(split.events.is_empty());
        assert_eq!(
            split.unreadable,
            [
                "change without value",
                "change without metadata.phone_number_id"
            ]
        );
        assert_eq!(split.ignored, ["field:account_update"]);
    }

    #[test]
    fn a_value_level_error_keeps_its_id_however_it_is_spaced() {
        let compact = delivery(
            r#"{"metadata":{"phone_number_id":"106"},"errors":[{"code":131000,"title":"Something went wrong"}]}"#,
        );
        let spaced = delivery(
            r#"{"metadata":{"phone_number_id":"106"},"errors":[ { "title": "Something went wrong", "code": 131000 } ]}"#,
        );
        let first = split_delivery(compact.as_bytes(), at()).expect("splits");
        let second = split_delivery(spaced.as_bytes(), at()).expect("splits");
        assert_eq!(first.events[0].id, second.events[0].id);
        assert!(first.events[0].id.starts_with("error:"));
    }

    #[test]
    fn bodies_that_are_not_json_objects_are_told_apart() {
        assert!(matches!(
            split_delivery(b"[1, 2]", at()),
            Err(SplitError::NotAnObject)
        ));
        assert!(matches!(
            split_delivery(b" \"text\"", at()),
            Err(SplitError::NotAnObject)
        ));
        assert!(matches!(
            split_delivery(b"{\"object\": ", at()),
            Err(SplitError::NotJson(_))
        ));
        assert!(matches!(
            split_delivery(b"not json", at()),
            Err(SplitError::NotJson(_))
        ));
        // Which of two `entry` lists is meant cannot be known: the delivery is kept whole.
        match split_delivery(
            br#"{"object":"whatsapp_business_account","entry":[],"entry":[]}"#,
            at(),
        ) {
            Err(error @ SplitError::NotJson(_)) => {
                assert!(
                    error.to_string().contains("duplicate field `entry`"),
                    "{error}"
                )
            }
            other => panic!("{other:?}"),
        }
        let other = split_delivery(br#"{"object":"page","entry":[]}"#, at()).expect("splits");
        assert_eq!(other.ignored, ["object:page"]);
    }
}
