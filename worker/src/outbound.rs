//! Sending the engine's messages through the WhatsApp client, at most once per (event, step),
//! and never silently dropped.
//!
//! Before a send, the step is claimed in the conversation's outbox hash with the message
//! itself (`pending:<wire JSON>`); after Meta accepts it, the wamid replaces the claim. A replay
//! of the same event that finds a wamid does not send again. A replay that finds a claim still
//! pending cannot know whether the crashed attempt reached Meta: the message's status webhooks
//! can, because every send carries its (event, step) key as `biz_opaque_callback_data`, which
//! WhatsApp echoes in them. Statuses confirm pending claims (`confirm_from_status`), and an
//! ambiguous claim is checked again a little later (`resolve_ambiguous`): still pending means
//! no status ever arrived, so the message did not go out, and it is sent then.

use engine::OutboundMessage;
use shared::redis::Redis;
use shared::whatsapp::{
    Interactive, ListRow, ListSection, OutboundMessage as WireMessage, ReplyButton, SendError,
    Sent, Template, WhatsAppClient,
};

use crate::keys::Keys;

/// Outbox records only need to outlive redeliveries of an event that was not yet saved as
/// processed; after the state save, the processed-id check stops replays.
const OUTBOX_TTL_SECONDS: i64 = 24 * 3600;

pub fn to_wire(to: &str, message: &OutboundMessage, callback: &str) -> WireMessage {
    let recipient = format!("+{}", to.trim_start_matches('+'));
    let wire = match message {
        OutboundMessage::Text(text) => WireMessage::text(&recipient, text.body()),
        OutboundMessage::ReplyButtons(buttons) => {
            let mut interactive = Interactive::buttons(
                buttons.body(),
                buttons
                    .buttons()
                    .iter()
                    .map(|b| ReplyButton::new(b.id(), b.title()))
                    .collect(),
            );
            if let Some(footer) = buttons.footer() {
                interactive = interactive.with_footer(footer);
            }
            WireMessage::interactive(&recipient, interactive)
        }
        OutboundMessage::List(list) => {
            let sections = list
                .sections()
                .iter()
                .map(|section| ListSection {
                    title: section.title().to_owned(),
                    rows: section
                        .rows()
                        .iter()
                        .map(|row| {
                            ListRow::new(
                                row.id(),
                                row.title(),
                                row.description().map(str::to_owned),
                            )
                        })
                        .collect(),
                })
                .collect();
            WireMessage::interactive(
                &recipient,
                Interactive::list(list.body(), list.button(), sections),
            )
        }
        OutboundMessage::Template(template) => WireMessage::template(
            &recipient,
            Template::new(
                template.name(),
                template.language(),
                template.body_parameters().to_vec(),
                template.quick_reply_payloads().to_vec(),
            ),
        ),
    };
    wire.with_callback_data(callback)
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Send(#[from] SendError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Meta accepted it now.
    Sent(String),
    /// An earlier attempt of this event already sent it (wamid known).
    AlreadySent(String),
    /// An earlier attempt crashed mid-send: the caller schedules `resolve_ambiguous`.
    Ambiguous,
}

/// What a later check of an ambiguous send found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// A status webhook proved the crashed attempt reached Meta.
    WasSent(String),
    /// No status arrived: sent now.
    Resent(String),
    /// The record expired; nothing to do.
    Unknown,
}

const PENDING: &str = "pending:";

#[derive(Clone)]
pub struct Outbox {
    redis: Redis,
    keys: Keys,
    client: WhatsAppClient,
}

impl Outbox {
    pub fn new(redis: Redis, keys: Keys, client: WhatsAppClient) -> Self {
        Self {
            redis,
            keys,
            client,
        }
    }

    pub fn client(&self) -> &WhatsAppClient {
        &self.client
    }

    /// Sends `message` for `step_key` (event id and step) unless already sent.
    pub async fn send_once(
        &self,
        tenant: &str,
        customer: &str,
        step_key: &str,
        message: &OutboundMessage,
    ) -> Result<Delivery, OutboxError> {
        let outbox = self.keys.outbox(tenant, customer);
        let wire = to_wire(customer, message, step_key);
        let pending = format!(
            "{PENDING}{}",
            serde_json::to_string(&wire).unwrap_or_default()
        );
        let mut connection = self.redis.connection();
        let (claimed,): (i64,) = redis::pipe()
            .atomic()
            .cmd("HSETNX")
            .arg(&outbox)
            .arg(step_key)
            .arg(&pending)
            .cmd("EXPIRE")
            .arg(&outbox)
            .arg(OUTBOX_TTL_SECONDS)
            .ignore()
            .query_async(&mut connection)
            .await?;
        if claimed == 0 {
            let recorded: Option<String> = redis::cmd("HGET")
                .arg(&outbox)
                .arg(step_key)
                .query_async(&mut connection)
                .await?;
            return Ok(match recorded {
                Some(wamid) if !wamid.starts_with(PENDING) => Delivery::AlreadySent(wamid),
                _ => Delivery::Ambiguous,
            });
        }
        drop(connection);
        let sent = self.client.send(tenant, &wire).await;
        let mut connection = self.redis.connection();
        match sent {
            Ok(Sent { wamid, .. }) => {
                redis::cmd("HSET")
                    .arg(&outbox)
                    .arg(step_key)
                    .arg(&wamid)
                    .query_async::<()>(&mut connection)
                    .await?;
                Ok(Delivery::Sent(wamid))
            }
            Err(error) => {
                // Nothing went out: free the claim so a retry may send.
                redis::cmd("HDEL")
                    .arg(&outbox)
                    .arg(step_key)
                    .query_async::<()>(&mut connection)
                    .await?;
                Err(OutboxError::Send(error))
            }
        }
    }

    /// Records that a status webhook proved the message with this callback key was sent.
    /// Only a pending claim is replaced; a known wamid stays.
    pub async fn confirm_from_status(
        &self,
        tenant: &str,
        customer: &str,
        step_key: &str,
        wamid: &str,
    ) -> Result<bool, OutboxError> {
        let mut connection = self.redis.connection();
        let confirmed: i64 = CONFIRM
            .key(self.keys.outbox(tenant, customer))
            .arg(step_key)
            .arg(wamid)
            .invoke_async(&mut connection)
            .await?;
        Ok(confirmed == 1)
    }

    /// Settles an ambiguous send: if no status confirmed it since, it never reached Meta, and
    /// the stored message is sent now.
    pub async fn resolve_ambiguous(
        &self,
        tenant: &str,
        customer: &str,
        step_key: &str,
    ) -> Result<Resolution, OutboxError> {
        let outbox = self.keys.outbox(tenant, customer);
        let mut connection = self.redis.connection();
        let recorded: Option<String> = redis::cmd("HGET")
            .arg(&outbox)
            .arg(step_key)
            .query_async(&mut connection)
            .await?;
        drop(connection);
        let Some(recorded) = recorded else {
            return Ok(Resolution::Unknown);
        };
        let Some(json) = recorded.strip_prefix(PENDING) else {
            return Ok(Resolution::WasSent(recorded));
        };
        let Ok(wire) = serde_json::from_str::<WireMessage>(json) else {
            return Ok(Resolution::Unknown);
        };
        let Sent { wamid, .. } = self.client.send(tenant, &wire).await?;
        let mut connection = self.redis.connection();
        redis::cmd("HSET")
            .arg(&outbox)
            .arg(step_key)
            .arg(&wamid)
            .query_async::<()>(&mut connection)
            .await?;
        Ok(Resolution::Resent(wamid))
    }
}

static CONFIRM: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r#"
        local current = redis.call('HGET', KEYS[1], ARGV[1])
        if current and string.sub(current, 1, 8) == 'pending:' then
            redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
            return 1
        end
        return 0
        "#,
    )
});
