//! The engine's replies, sent exactly once per (event, step) and only for a committed decision.
//!
//! An event's replies are written into the conversation's outbox hash *with* the state they
//! came from, in one atomic commit (`StateStore::save`), as `queued:<wire JSON>`. Only then are
//! they sent. A worker that dies before the commit has sent nothing, so the redelivered event
//! may decide differently (a slot it held meanwhile went to someone else) without the customer
//! ever having seen the abandoned decision. A worker that dies after the commit leaves queued
//! replies that the redelivery finds and sends.
//!
//! Before a send the record becomes `pending:<wire JSON>`; after Meta accepts, the wamid
//! replaces it; a refusal is kept as `failed:<code>`. A record still pending on redelivery
//! cannot tell whether the crashed attempt reached Meta: the message's status webhooks can,
//! because every send carries its (event, step) key as `biz_opaque_callback_data`, which
//! WhatsApp echoes in them. Statuses confirm pending records (`confirm_from_status`), and an
//! ambiguous one is checked again a little later (`resolve_ambiguous`): still pending means
//! no status ever arrived, so the message did not go out, and it is sent then.

use engine::OutboundMessage;
use shared::redis::Redis;
use shared::whatsapp::{
    Interactive, ListRow, ListSection, OutboundMessage as WireMessage, ReplyButton, SendError,
    Sent, Template, WhatsAppClient,
};

use crate::keys::Keys;

/// Outbox records only need to outlive redeliveries of their event; a day is ample.
pub const OUTBOX_TTL_SECONDS: i64 = 24 * 3600;

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
    #[error("outbox record {step_key} is unreadable: {reason}")]
    Corrupt { step_key: String, reason: String },
}

/// One reply of an event, numbered across the event's engine rounds.
#[derive(Debug, Clone)]
pub struct Reply {
    /// 1-based position among the event's replies.
    pub step: usize,
    /// `{event id}:{step}`: the outbox field, and the callback data WhatsApp echoes.
    pub key: String,
    pub wire: WireMessage,
}

impl Reply {
    pub fn new(event_id: &str, step: usize, customer: &str, message: &OutboundMessage) -> Self {
        let key = step_key(event_id, step);
        let wire = to_wire(customer, message, &key);
        Self { step, key, wire }
    }

    /// The outbox field and value the state commit writes for this reply.
    pub fn queued_record(&self) -> (String, String) {
        (
            self.key.clone(),
            format!(
                "{QUEUED}{}",
                serde_json::to_string(&self.wire).unwrap_or_default()
            ),
        )
    }
}

pub fn step_key(event_id: &str, step: usize) -> String {
    format!("{event_id}:{step}")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Meta accepted it now.
    Sent(String),
    /// An earlier attempt already sent it (wamid known).
    AlreadySent(String),
    /// An attempt (an earlier one that died mid-send, or this one when no answer came back)
    /// may or may not have reached Meta: the caller schedules `resolve_ambiguous`.
    Ambiguous,
    /// WhatsApp refused it, now or on an earlier attempt (Graph error code, 131047 for a
    /// closed customer-service window). The engine hears of it as a failed delivery.
    Refused { code: u32 },
    /// No record: it expired long after its event, or was never committed.
    Forgotten,
}

/// What a later check of an ambiguous send found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// A status webhook proved the crashed attempt reached Meta.
    WasSent(String),
    /// No status arrived: sent now.
    Resent(String),
    /// Nothing pending any more (expired, refused, or back in the queue); nothing to do.
    Unknown,
}

const QUEUED: &str = "queued:";
const PENDING: &str = "pending:";
const FAILED: &str = "failed:";
/// Prefix of the claim script's answer when it moved a queued record to pending.
const CLAIMED: &str = "claimed:";

/// One outbox field, read back.
enum Record<'a> {
    Queued,
    Pending(&'a str),
    Failed(u32),
    Sent(&'a str),
}

fn record(value: &str) -> Record<'_> {
    if value.starts_with(QUEUED) {
        Record::Queued
    } else if let Some(json) = value.strip_prefix(PENDING) {
        Record::Pending(json)
    } else if let Some(code) = value.strip_prefix(FAILED) {
        Record::Failed(code.parse().unwrap_or(0))
    } else {
        Record::Sent(value)
    }
}

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

    /// Sends the committed reply recorded under `step_key`, unless an earlier attempt did.
    pub async fn deliver(
        &self,
        tenant: &str,
        customer: &str,
        step_key: &str,
    ) -> Result<Delivery, OutboxError> {
        let outbox = self.keys.outbox(tenant, customer);
        let mut connection = self.redis.connection();
        let claimed: Option<String> = CLAIM
            .key(&outbox)
            .arg(step_key)
            .invoke_async(&mut connection)
            .await?;
        drop(connection);
        let Some(claimed) = claimed else {
            return Ok(Delivery::Forgotten);
        };
        let json = match claimed.strip_prefix(CLAIMED) {
            Some(json) => json,
            None => {
                return Ok(match record(&claimed) {
                    // Queued cannot come back from the claim script; pending can.
                    Record::Queued | Record::Pending(_) => Delivery::Ambiguous,
                    Record::Failed(code) => Delivery::Refused { code },
                    Record::Sent(wamid) => Delivery::AlreadySent(wamid.to_owned()),
                });
            }
        };
        let wire: WireMessage =
            serde_json::from_str(json).map_err(|error| OutboxError::Corrupt {
                step_key: step_key.to_owned(),
                reason: error.to_string(),
            })?;
        let sent = self.client.send(tenant, &wire).await;
        let (value, outcome) = match sent {
            Ok(Sent { wamid, .. }) => (wamid.clone(), Ok(Delivery::Sent(wamid))),
            Err(error @ (SendError::OutsideWindow { .. } | SendError::Permanent(_))) => {
                let code = error
                    .code()
                    .and_then(|code| u32::try_from(code).ok())
                    .unwrap_or(0);
                (format!("{FAILED}{code}"), Ok(Delivery::Refused { code }))
            }
            // No answer, but Meta may have it: sending again could deliver it twice. It stays
            // pending, for its status webhooks or the later check to settle.
            Err(SendError::Transient(cause)) if cause.may_have_arrived() => {
                return Ok(Delivery::Ambiguous);
            }
            // Nothing went out: back in the queue for the event's retry.
            Err(error) => (format!("{QUEUED}{json}"), Err(OutboxError::Send(error))),
        };
        let mut connection = self.redis.connection();
        redis::cmd("HSET")
            .arg(&outbox)
            .arg(step_key)
            .arg(value)
            .query_async::<()>(&mut connection)
            .await?;
        outcome
    }

    /// The step keys recorded for `event_id`, in step order: the replies a redelivered,
    /// already committed event still has to make sure of.
    pub async fn recorded_steps(
        &self,
        tenant: &str,
        customer: &str,
        event_id: &str,
    ) -> Result<Vec<(usize, String)>, OutboxError> {
        let mut connection = self.redis.connection();
        let fields: Vec<String> = redis::cmd("HKEYS")
            .arg(self.keys.outbox(tenant, customer))
            .query_async(&mut connection)
            .await?;
        let prefix = format!("{event_id}:");
        let mut steps: Vec<(usize, String)> = fields
            .into_iter()
            .filter_map(|field| {
                // Only this event's own steps: a follow-up event's keys extend this prefix.
                let step = field.strip_prefix(&prefix)?.parse::<usize>().ok()?;
                Some((step, field))
            })
            .collect();
        steps.sort_unstable();
        Ok(steps)
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
        let json = match record(&recorded) {
            Record::Pending(json) => json,
            Record::Sent(wamid) => return Ok(Resolution::WasSent(wamid.to_owned())),
            Record::Queued | Record::Failed(_) => return Ok(Resolution::Unknown),
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

/// Moves a queued record to pending and answers `claimed:<wire JSON>`; any other record is
/// answered as it is (nil when there is none).
static CLAIM: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r#"
        local current = redis.call('HGET', KEYS[1], ARGV[1])
        if not current then return false end
        if string.sub(current, 1, 7) == 'queued:' then
            local json = string.sub(current, 8)
            redis.call('HSET', KEYS[1], ARGV[1], 'pending:' .. json)
            return 'claimed:' .. json
        end
        return current
        "#,
    )
});

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
