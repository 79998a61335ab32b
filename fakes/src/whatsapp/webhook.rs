//! Webhook payloads as Meta delivers them (WIRE.md A2, fixtures/whatsapp), their signature,
//! and the message ids inside them.

use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;

use super::config::{BusinessNumber, StatusShape};
use super::graph_error::GraphFailure;

/// A simulated WhatsApp user.
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    /// Phone-derived WhatsApp id; absent for users Meta identifies only by BSUID.
    pub wa_id: Option<String>,
    /// Business-scoped user id (`US.…`), sent by Meta since 2026.
    pub user_id: Option<String>,
    pub parent_user_id: Option<String>,
    pub profile_name: String,
    /// Meta puts `from_user_id` on some messages even when `from` is present.
    pub echo_user_id_on_messages: bool,
}

impl Customer {
    pub fn new(wa_id: &str, profile_name: &str) -> Self {
        Self {
            wa_id: Some(wa_id.to_owned()),
            user_id: None,
            parent_user_id: None,
            profile_name: profile_name.to_owned(),
            echo_user_id_on_messages: false,
        }
    }

    /// A user whose phone number is not shared: only the BSUID identifies them.
    pub fn bsuid_only(user_id: &str, profile_name: &str) -> Self {
        Self {
            wa_id: None,
            user_id: Some(user_id.to_owned()),
            parent_user_id: None,
            profile_name: profile_name.to_owned(),
            echo_user_id_on_messages: true,
        }
    }

    pub fn with_user_id(mut self, user_id: &str, parent_user_id: Option<&str>) -> Self {
        self.user_id = Some(user_id.to_owned());
        self.parent_user_id = parent_user_id.map(str::to_owned);
        self
    }

    /// How the fake keys this user, as the project does: `wa_id` when present, else `user_id`.
    pub fn key(&self) -> String {
        self.wa_id
            .clone()
            .or_else(|| self.user_id.clone())
            .unwrap_or_default()
    }

    fn contact(&self) -> Value {
        let mut contact = Map::new();
        contact.insert("profile".into(), json!({ "name": self.profile_name }));
        if let Some(wa_id) = &self.wa_id {
            contact.insert("wa_id".into(), json!(wa_id));
        }
        if let Some(user_id) = &self.user_id {
            contact.insert("user_id".into(), json!(user_id));
        }
        if let Some(parent) = &self.parent_user_id {
            contact.insert("parent_user_id".into(), json!(parent));
        }
        Value::Object(contact)
    }
}

/// How an inbound message relates to an earlier one.
#[derive(Debug, Clone, PartialEq)]
pub enum InboundContext {
    /// A reply to (or a tap on) the business message with this wamid.
    ReplyTo(String),
    Forwarded,
    FrequentlyForwarded,
}

/// What a simulated customer sends.
#[derive(Debug, Clone, PartialEq)]
pub enum CustomerMessage {
    Text {
        body: String,
    },
    ButtonReply {
        id: String,
        title: String,
    },
    ListReply {
        id: String,
        title: String,
        description: Option<String>,
    },
    /// A tap on a template quick-reply button: `type: "button"`, not `interactive`.
    TemplateButton {
        payload: String,
        text: String,
    },
    Location {
        latitude: f64,
        longitude: f64,
        /// Present only when the user picked a place rather than their position.
        place: Option<Place>,
    },
    Image {
        media_id: String,
        mime_type: String,
        sha256: String,
        caption: Option<String>,
        url: Option<String>,
    },
    /// `emoji: None` is a removal in Meta's current shape; `Some("")` the older one.
    Reaction {
        message_id: String,
        emoji: Option<String>,
    },
    /// `kind: None` is the older payload without the `unsupported` object.
    Unsupported {
        kind: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    pub name: String,
    pub address: String,
    pub url: String,
}

/// One message inside a delivery, with the id and time the fake gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundUpdate {
    pub customer: Customer,
    pub message: CustomerMessage,
    pub context: Option<InboundContext>,
    pub wamid: String,
    pub timestamp: u64,
}

impl CustomerMessage {
    fn type_name(&self) -> &'static str {
        match self {
            Self::Text { .. } => "text",
            Self::ButtonReply { .. } | Self::ListReply { .. } => "interactive",
            Self::TemplateButton { .. } => "button",
            Self::Location { .. } => "location",
            Self::Image { .. } => "image",
            Self::Reaction { .. } => "reaction",
            Self::Unsupported { .. } => "unsupported",
        }
    }

    fn write_payload(&self, message: &mut Map<String, Value>) {
        match self {
            Self::Text { body } => {
                message.insert("text".into(), json!({ "body": body }));
            }
            Self::ButtonReply { id, title } => {
                message.insert(
                    "interactive".into(),
                    json!({ "type": "button_reply", "button_reply": { "id": id, "title": title } }),
                );
            }
            Self::ListReply {
                id,
                title,
                description,
            } => {
                let mut reply = json!({ "id": id, "title": title });
                if let Some(description) = description {
                    reply["description"] = json!(description);
                }
                message.insert(
                    "interactive".into(),
                    json!({ "type": "list_reply", "list_reply": reply }),
                );
            }
            Self::TemplateButton { payload, text } => {
                message.insert("button".into(), json!({ "payload": payload, "text": text }));
            }
            Self::Location {
                latitude,
                longitude,
                place,
            } => {
                let mut location = json!({ "latitude": latitude, "longitude": longitude });
                if let Some(place) = place {
                    location["name"] = json!(place.name);
                    location["address"] = json!(place.address);
                    location["url"] = json!(place.url);
                }
                message.insert("location".into(), location);
            }
            Self::Image {
                media_id,
                mime_type,
                sha256,
                caption,
                url,
            } => {
                let mut image = json!({ "mime_type": mime_type, "sha256": sha256, "id": media_id });
                if let Some(caption) = caption {
                    image["caption"] = json!(caption);
                }
                if let Some(url) = url {
                    image["url"] = json!(url);
                }
                message.insert("image".into(), image);
            }
            Self::Reaction { message_id, emoji } => {
                let mut reaction = json!({ "message_id": message_id });
                if let Some(emoji) = emoji {
                    reaction["emoji"] = json!(emoji);
                }
                message.insert("reaction".into(), reaction);
            }
            Self::Unsupported { kind } => {
                message.insert(
                    "errors".into(),
                    json!([{
                        "code": 131051,
                        "title": "Message type unknown",
                        "message": "Message type unknown",
                        "error_data": { "details": "Message type is currently not supported." }
                    }]),
                );
                if let Some(kind) = kind {
                    message.insert("unsupported".into(), json!({ "type": kind }));
                }
            }
        }
    }
}

fn metadata(business: &BusinessNumber) -> Value {
    json!({
        "display_phone_number": business.display_phone_number,
        "phone_number_id": business.phone_number_id,
    })
}

fn envelope(business: &BusinessNumber, values: Vec<Value>) -> Value {
    let changes: Vec<Value> = values
        .into_iter()
        .map(|value| json!({ "value": value, "field": "messages" }))
        .collect();
    json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": business.waba_id, "changes": changes }],
    })
}

fn message_value(business: &BusinessNumber, update: &InboundUpdate) -> Value {
    let mut message = Map::new();
    if let Some(context) = &update.context {
        let context = match context {
            InboundContext::ReplyTo(wamid) => {
                json!({ "from": business.display_phone_number, "id": wamid })
            }
            InboundContext::Forwarded => json!({ "forwarded": true }),
            InboundContext::FrequentlyForwarded => json!({ "frequently_forwarded": true }),
        };
        message.insert("context".into(), context);
    }
    if let Some(wa_id) = &update.customer.wa_id {
        message.insert("from".into(), json!(wa_id));
    }
    if let Some(user_id) = &update.customer.user_id
        && (update.customer.echo_user_id_on_messages || update.customer.wa_id.is_none())
    {
        message.insert("from_user_id".into(), json!(user_id));
    }
    message.insert("id".into(), json!(update.wamid));
    message.insert("timestamp".into(), json!(update.timestamp.to_string()));
    message.insert("type".into(), json!(update.message.type_name()));
    update.message.write_payload(&mut message);
    json!({
        "messaging_product": "whatsapp",
        "metadata": metadata(business),
        "contacts": [update.customer.contact()],
        "messages": [Value::Object(message)],
    })
}

/// One delivery carrying every update, one `changes[]` item each, as Meta batches them.
pub fn messages_payload(business: &BusinessNumber, updates: &[InboundUpdate]) -> Value {
    envelope(
        business,
        updates
            .iter()
            .map(|update| message_value(business, update))
            .collect(),
    )
}

/// The lifecycle states of an outbound message that Meta reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeliveryState {
    Sent,
    Delivered,
    Read,
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Failed => "failed",
        }
    }
}

/// One status webhook to build.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    pub wamid: String,
    pub state: DeliveryState,
    pub recipient_id: String,
    pub timestamp: u64,
    pub biz_opaque_callback_data: Option<String>,
    /// Pricing category: `service` inside the window, `utility`/`marketing` for templates.
    pub category: String,
    pub failure: Option<GraphFailure>,
}

/// One delivery carrying one status.
pub fn status_payload(
    business: &BusinessNumber,
    shape: StatusShape,
    update: &StatusUpdate,
) -> Value {
    statuses_payload(business, shape, std::slice::from_ref(update))
}

/// One delivery carrying several statuses of one business number in `value.statuses[]`, the
/// way Meta aggregates them.
pub fn statuses_payload(
    business: &BusinessNumber,
    shape: StatusShape,
    updates: &[StatusUpdate],
) -> Value {
    envelope(
        business,
        vec![json!({
            "messaging_product": "whatsapp",
            "metadata": metadata(business),
            "statuses": updates
                .iter()
                .map(|update| status_object(business, shape, update))
                .collect::<Vec<_>>(),
        })],
    )
}

fn status_object(business: &BusinessNumber, shape: StatusShape, update: &StatusUpdate) -> Value {
    let mut status = Map::new();
    status.insert("id".into(), json!(update.wamid));
    status.insert("status".into(), json!(update.state.as_str()));
    status.insert("timestamp".into(), json!(update.timestamp.to_string()));
    status.insert("recipient_id".into(), json!(update.recipient_id));
    if let Some(data) = &update.biz_opaque_callback_data {
        status.insert("biz_opaque_callback_data".into(), json!(data));
    }
    let free = update.category == "service";
    let priced = match (shape, update.state) {
        (StatusShape::Minimal, _) | (_, DeliveryState::Failed) => false,
        (StatusShape::Pmp, state) => {
            matches!(state, DeliveryState::Sent | DeliveryState::Delivered)
        }
        (StatusShape::Legacy, _) => true,
    };
    if shape == StatusShape::Legacy && update.state != DeliveryState::Failed {
        let mut conversation = json!({
            "id": conversation_id(&business.phone_number_id, &update.recipient_id),
            "origin": { "type": update.category },
        });
        if update.state == DeliveryState::Sent {
            conversation["expiration_timestamp"] =
                json!((update.timestamp + 24 * 3600).to_string());
        }
        status.insert("conversation".into(), conversation);
    }
    if priced {
        status.insert(
            "pricing".into(),
            json!({
                "billable": !free,
                "pricing_model": "PMP",
                "type": if free { "free_customer_service" } else { "regular" },
                "category": update.category,
            }),
        );
    }
    if let Some(failure) = &update.failure {
        status.insert("errors".into(), json!([failure.webhook_error()]));
    }
    Value::Object(status)
}

fn conversation_id(business: &str, recipient: &str) -> String {
    use sha2::Digest;
    let digest = Sha256::digest(format!("{business}:{recipient}").as_bytes());
    hex::encode(&digest[..16])
}

/// `sha256=<lowercase hex HMAC-SHA256(app secret, raw body)>`.
pub fn signature_header(app_secret: &str, body: &[u8]) -> String {
    // HMAC takes keys of any length, so this cannot fail; the fallback only keeps it total.
    match Hmac::<Sha256>::new_from_slice(app_secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        }
        Err(_) => String::from("sha256="),
    }
}

/// Direction byte inside a wamid: Meta's ids differ for messages sent and received.
#[derive(Debug, Clone, Copy)]
pub(crate) enum WamidDirection {
    Outbound,
    Inbound,
}

/// A wamid laid out like Meta's (`wamid.` + base64 of a length-prefixed phone and a hex id),
/// so clients meet the `+`, `/` and `=` characters real ids contain.
pub(crate) fn new_wamid(counterpart: &str, direction: WamidDirection) -> String {
    use rand::Rng;
    let mut raw = vec![0x1c_u8, 0x18, counterpart.len().min(255) as u8];
    raw.extend_from_slice(counterpart.as_bytes());
    raw.extend_from_slice(&[
        0x15,
        0x02,
        0x00,
        match direction {
            WamidDirection::Outbound => 0x11,
            WamidDirection::Inbound => 0x12,
        },
        0x18,
        0x14,
    ]);
    let id: [u8; 10] = rand::rng().random();
    raw.extend_from_slice(hex::encode_upper(id).as_bytes());
    raw.push(0);
    format!("wamid.{}", base64(&raw))
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn wamid_looks_like_metas() {
        // The last base64 character of the fixed part also carries the top bits of the first
        // random hex digit, so the stable prefix stops one character earlier.
        for _ in 0..64 {
            let wamid = new_wamid("16505551234", WamidDirection::Inbound);
            assert!(
                wamid.starts_with("wamid.HBgLMTY1MDU1NTEyMzQVAgASGB"),
                "{wamid}"
            );
        }
    }
}
