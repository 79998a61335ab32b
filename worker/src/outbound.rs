//! Sending the engine's messages through the WhatsApp client, at most once per (event, step).
//!
//! Before a send, the step is claimed in the conversation's outbox hash; after Meta accepts
//! it, the wamid is recorded. A replay of the same event finds the claim and does not send
//! again. A claim without a wamid means a crash during the HTTP call: Meta most likely has
//! the message (the request is written long before the answer returns), so it is not resent;
//! such sends are counted as ambiguous for operators to see.

use engine::OutboundMessage;
use shared::redis::Pool;
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
    #[error("Redis pool: {0}")]
    Pool(#[from] deadpool_redis::PoolError),
    #[error(transparent)]
    Send(#[from] SendError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Meta accepted it now.
    Sent(String),
    /// An earlier attempt of this event already sent it (wamid known).
    AlreadySent(String),
    /// An earlier attempt crashed mid-send; not resent.
    Ambiguous,
}

#[derive(Clone)]
pub struct Outbox {
    pool: Pool,
    keys: Keys,
    client: WhatsAppClient,
}

impl Outbox {
    pub fn new(pool: Pool, keys: Keys, client: WhatsAppClient) -> Self {
        Self { pool, keys, client }
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
        let mut connection = self.pool.get().await?;
        let (claimed,): (i64,) = redis::pipe()
            .atomic()
            .cmd("HSETNX")
            .arg(&outbox)
            .arg(step_key)
            .arg("")
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
            return Ok(match recorded.filter(|wamid| !wamid.is_empty()) {
                Some(wamid) => Delivery::AlreadySent(wamid),
                None => Delivery::Ambiguous,
            });
        }
        drop(connection);
        let sent = self
            .client
            .send(tenant, &to_wire(customer, message, step_key))
            .await;
        let mut connection = self.pool.get().await?;
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
}
