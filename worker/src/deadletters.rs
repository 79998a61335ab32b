//! Operator access to the dead-letter queue (`{ns}conv.dead`): list, show and replay poison
//! events. The `fleetctl` binary is a thin shell around this module.
//!
//! # How browsing keeps every message, in order
//!
//! AMQP has no "peek". A browse takes *every* message with `basic.get` (manual
//! acknowledgement) on one channel until the queue reports empty, holding them all
//! unacknowledged, and then hands back whatever it did not remove with a single
//! `basic.nack(multiple, requeue)`, which returns them in delivery-tag order, the order they
//! were taken. While held they are invisible to other readers but cannot be lost: if this
//! process dies, the broker requeues them when the channel closes.
//!
//! Why everything, even for `list --limit 5`: where a quorum queue puts a returned message
//! depends on the RabbitMQ version. 4.x documents "its original position, if possible";
//! RabbitMQ 3.10 (what `.ci/run` installs) puts returns at the *back* (measured: a partial
//! browse of the first five rotated them behind the rest). Taking the whole queue makes both
//! behave the same: the queue is empty when the returns arrive, so it is rebuilt in the
//! original order. `--limit` only limits what is printed. `tests/deadletters.rs` checks order
//! and count over repeated, partial and replaying browses on the real broker.
//!
//! Why `basic.nack` and never `basic.reject` or simply closing the channel: from RabbitMQ
//! 4.3 a reject or a channel close counts as a failed delivery (it increments
//! `x-delivery-count`) while a nack does not. The dead-letter queue is a quorum queue, which
//! from RabbitMQ 4.0 has a default delivery limit of 20 and, having no dead-letter exchange of
//! its own, would *drop* a message past it: browsing must not look like failing. Before 4.3
//! every return counts, nack included (3.10 shows `x-delivery-count` growing by one per
//! browse); harmless on 3.x, where a queue without `x-delivery-limit` has no limit, but on
//! 4.0 to 4.2 about twenty browses would discard a dead letter unless a policy lifts the
//! limit on `conv.dead` (`delivery-limit: -1`). `x-delivery-count` is shown by `show`.
//!
//! Replay publishes the original body, unchanged (so the event keeps its id and the worker's
//! dedup still applies), to the conversations exchange with the original partition routing
//! key, through the confirmed, mandatory [`Publisher`]; only after the broker confirmed it is
//! the dead letter acknowledged (removed). A crash between the two leaves the event in both
//! places, which the worker's dedup turns into a no-op: never zero copies.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use lapin::options::{BasicAckOptions, BasicGetOptions, BasicNackOptions, QueueDeclareOptions};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, Connection, ConnectionProperties, ErrorKind};
use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use shared::amqp::{PublishError, Publisher, PublisherOptions, Topology, header_str};
use shared::config::CommonConfig;
use shared::envelope::Envelope;
use shared::telemetry::pseudonym;

/// Headers the worker adds when it dead-letters an event itself (see `consumer.rs`).
pub const HEADER_DEAD_REASON: &str = "x-dead-reason";
pub const HEADER_ORIGINAL_ROUTING_KEY: &str = "x-original-routing-key";
pub const HEADER_DEAD_WORKER: &str = "x-dead-worker";
/// Added on replay, counting replays of this event, so a replay loop is visible in `list`.
pub const HEADER_REPLAYS: &str = "x-replays";

/// Bound on any single broker round trip, so a wedged broker gives an error, not a hang.
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error(
        "cannot reach RabbitMQ at {endpoint} ({reason}); start it (`rabbitmq-server -detached`, \
         or `.ci/run` in a checkout) or point AMQP_URL at a running broker"
    )]
    Unreachable { endpoint: String, reason: String },
    #[error(
        "dead-letter queue {queue:?} does not exist; is FLEET_NAMESPACE right (now {namespace:?})?"
    )]
    NoQueue { queue: String, namespace: String },
    #[error("no dead letter has event id {0:?}")]
    NotFound(String),
    #[error("the broker did not answer within {BROKER_TIMEOUT:?} ({0})")]
    Timeout(&'static str),
    #[error("broker error: {0}")]
    Broker(#[from] lapin::Error),
    #[error("publish failed: {0}")]
    Publish(#[from] PublishError),
}

/// Where a dead letter's reason came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonSource {
    /// The worker judged the event permanently failing (`x-dead-reason`).
    Worker,
    /// The broker dead-lettered it (`x-death`), normally after the delivery limit.
    Broker,
    /// Neither header: published to the dead-letter exchange by something else.
    Unknown,
}

/// One dead letter as `list` reports it: nothing here is a phone number in clear.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// 1-based position in the dead-letter queue at the time of the browse.
    pub position: usize,
    /// The envelope's id; for a body that is not an envelope, `body-sha256:<hex>` so that
    /// it can still be named in `show` and `replay`.
    pub event_id: String,
    pub kind: Option<String>,
    pub tenant: Option<String>,
    /// Keyed pseudonym of the customer, the same one the fleet's logs show.
    pub customer_pseudonym: Option<String>,
    pub reason: String,
    pub reason_source: ReasonSource,
    /// How many times the broker dead-lettered it for the latest reason (`x-death` count).
    pub death_count: Option<i64>,
    pub dead_worker: Option<String>,
    pub original_routing_key: Option<String>,
    pub original_partition: Option<u16>,
    pub received_at: Option<DateTime<Utc>>,
    /// When the broker dead-lettered it (`x-death` time); absent for worker dead letters.
    pub dead_at: Option<DateTime<Utc>>,
    /// Seconds since the event was received (or dead-lettered, when the body is unreadable).
    pub age_seconds: Option<i64>,
    /// Times this event was already replayed and failed again (`x-replays`): a loop shows.
    pub replays: i64,
    /// Why the body is not a readable envelope, when it is not.
    pub body_error: Option<String>,
    #[serde(skip)]
    body: Vec<u8>,
    #[serde(skip)]
    headers: FieldTable,
    #[serde(skip)]
    envelope: Option<Envelope>,
}

impl DeadLetter {
    fn from_message(
        position: usize,
        body: Vec<u8>,
        headers: FieldTable,
        now: DateTime<Utc>,
    ) -> Self {
        let (envelope, body_error) = match shared::envelope::decode(&body) {
            Ok(envelope) => (Some(envelope), None),
            Err(error) => (None, Some(error.to_string())),
        };
        let death = latest_death(&headers);
        let worker_reason = header_str(&headers, HEADER_DEAD_REASON);
        let (reason, reason_source) = match (&worker_reason, &death) {
            (Some(reason), _) => (reason.clone(), ReasonSource::Worker),
            (None, Some(death)) => (
                format!(
                    "{} x{}{}",
                    death.reason.as_deref().unwrap_or("dead-lettered"),
                    death.count.unwrap_or(1),
                    death
                        .queue
                        .as_deref()
                        .map(|queue| format!(" from {queue}"))
                        .unwrap_or_default()
                ),
                ReasonSource::Broker,
            ),
            (None, None) => ("no reason recorded".to_owned(), ReasonSource::Unknown),
        };
        let original_routing_key = original_routing_key(&headers);
        let original_partition = original_routing_key
            .as_deref()
            .and_then(|key| key.strip_prefix('p'))
            .and_then(|n| n.parse().ok());
        let event_id = match &envelope {
            Some(envelope) => envelope.id.clone(),
            None => body_id(&body),
        };
        let dead_at = death.as_ref().and_then(|d| d.time);
        let age_seconds = envelope
            .as_ref()
            .map(|e| e.received_at)
            .or(dead_at)
            .map(|since| (now - since).num_seconds());
        Self {
            position,
            event_id,
            kind: envelope.as_ref().map(|e| e.kind.as_str().to_owned()),
            tenant: envelope.as_ref().map(|e| e.tenant.clone()),
            customer_pseudonym: envelope
                .as_ref()
                .filter(|e| !e.customer.is_empty())
                .map(|e| pseudonym(&e.customer)),
            reason: match &envelope {
                // A reason can quote the event; keep the customer out of it.
                Some(envelope) => mask_customer(&reason, &envelope.customer),
                None => reason,
            },
            reason_source,
            death_count: death.as_ref().and_then(|d| d.count),
            dead_worker: header_str(&headers, HEADER_DEAD_WORKER),
            original_routing_key,
            original_partition,
            received_at: envelope.as_ref().map(|e| e.received_at),
            dead_at,
            age_seconds,
            replays: header_int(&headers, HEADER_REPLAYS).unwrap_or(0),
            body_error,
            body,
            headers,
            envelope,
        }
    }

    /// Everything about the dead letter: the envelope (or the raw body) and every header.
    /// Customer identifiers are pseudonymised unless `reveal`.
    pub fn detail(&self, reveal: bool) -> Value {
        let customer = self.envelope.as_ref().map(|e| e.customer.as_str());
        let mut headers = field_table_to_json(&self.headers);
        let mut body = match (&self.envelope, serde_json::from_slice::<Value>(&self.body)) {
            (Some(envelope), _) => serde_json::to_value(envelope).unwrap_or(Value::Null),
            // Valid JSON that is not an envelope: still worth showing, redacted by key.
            (None, Ok(value)) => value,
            (None, Err(_)) if reveal => {
                Value::String(String::from_utf8_lossy(&self.body).into_owned())
            }
            (None, Err(_)) => Value::String(format!(
                "<{} bytes that are not JSON; add --reveal to print them>",
                self.body.len()
            )),
        };
        if !reveal {
            redact(&mut body, customer);
            redact(&mut headers, customer);
        }
        let mut summary = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut summary {
            map.insert("body".into(), body);
            map.insert("headers".into(), headers);
        }
        summary
    }

    /// The routing key replay publishes with: the partition the event was dead-lettered from.
    pub fn replay_routing_key(&self) -> Option<&str> {
        self.original_routing_key.as_deref()
    }
}

/// The result of replaying (or, in a dry run, planning to replay) one dead letter.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayOutcome {
    pub position: usize,
    pub event_id: String,
    pub routing_key: Option<String>,
    pub status: ReplayStatus,
    /// Why it was not replayed, for `skipped` and `failed`.
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplayStatus {
    /// Republished, confirmed and removed from the dead-letter queue.
    Replayed,
    /// `--dry-run`: would have been replayed.
    WouldReplay,
    /// Left in the dead-letter queue: no original partition is known.
    Skipped,
    /// Left in the dead-letter queue: the publish or the removal failed.
    Failed,
}

/// What to replay.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Every dead letter with this event id (at-least-once dead-lettering can store an event
    /// twice; each copy is replayed and removed, and the worker's dedup absorbs the extra).
    Id(String),
    All,
}

/// A connection to one fleet's broker namespace, for dead-letter operations.
pub struct DeadLetters {
    connection: Connection,
    config: CommonConfig,
    topology: Topology,
}

impl DeadLetters {
    /// Connects and checks that the namespace's dead-letter queue exists. Declares nothing:
    /// a typo in FLEET_NAMESPACE must be an error, not a fresh empty topology.
    pub async fn connect(config: &CommonConfig) -> Result<Self, DeadLetterError> {
        let connection = connect(config).await?;
        let this = Self {
            connection,
            config: config.clone(),
            topology: Topology::new(&config.namespace, config.partitions),
        };
        let channel = this.connection.create_channel().await?;
        let declared = timed(
            "checking the dead-letter queue",
            channel.queue_declare(
                this.topology.dead_letter_queue().as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            ),
        )
        .await?;
        match declared {
            Ok(_) => {
                let _ = channel.close(200, "checked".into()).await;
                Ok(this)
            }
            Err(error) if is_not_found(&error) => Err(DeadLetterError::NoQueue {
                queue: this.topology.dead_letter_queue(),
                namespace: config.namespace.clone(),
            }),
            Err(error) => Err(error.into()),
        }
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The first `limit` dead letters (all without a limit), in queue order. The queue is
    /// left as it was; the whole queue is read whatever the limit (module documentation).
    pub async fn list(&self, limit: Option<usize>) -> Result<Vec<DeadLetter>, DeadLetterError> {
        let mut browse = Browse::start(&self.connection, &self.topology).await?;
        let taken = browse.take_all().await;
        let returned = browse.finish().await;
        let mut letters = taken?;
        returned?;
        if let Some(limit) = limit {
            letters.truncate(limit);
        }
        Ok(letters)
    }

    /// The first dead letter with this event id. The queue is left exactly as it was.
    pub async fn show(&self, event_id: &str) -> Result<DeadLetter, DeadLetterError> {
        let mut browse = Browse::start(&self.connection, &self.topology).await?;
        let taken = browse.take_all().await;
        let returned = browse.finish().await;
        let letters = taken?;
        returned?;
        letters
            .into_iter()
            .find(|letter| letter.event_id == event_id)
            .ok_or_else(|| DeadLetterError::NotFound(event_id.to_owned()))
    }

    /// Replays the selected dead letters; see the module documentation for the guarantees.
    /// Stops publishing at the first failed publish (the broker is likely in trouble) and
    /// reports the rest as failed; they stay in the dead-letter queue, in order.
    pub async fn replay(
        &self,
        selection: &Selection,
        dry_run: bool,
    ) -> Result<Vec<ReplayOutcome>, DeadLetterError> {
        let mut browse = Browse::start(&self.connection, &self.topology).await?;
        let taken = browse.take_all().await;
        let outcome = match taken {
            Ok(letters) => {
                self.replay_taken(&mut browse, letters, selection, dry_run)
                    .await
            }
            Err(error) => Err(error),
        };
        // Whatever happened, everything not removed goes back, in order.
        let returned = browse.finish().await;
        let outcomes = outcome?;
        returned?;
        if let Selection::Id(id) = selection
            && outcomes.is_empty()
        {
            return Err(DeadLetterError::NotFound(id.clone()));
        }
        Ok(outcomes)
    }

    async fn replay_taken(
        &self,
        browse: &mut Browse,
        letters: Vec<DeadLetter>,
        selection: &Selection,
        dry_run: bool,
    ) -> Result<Vec<ReplayOutcome>, DeadLetterError> {
        let selected: Vec<(usize, DeadLetter)> = letters
            .into_iter()
            .enumerate()
            .filter(|(_, letter)| match selection {
                Selection::Id(id) => &letter.event_id == id,
                Selection::All => true,
            })
            .collect();
        let mut publisher = None;
        let mut broken: Option<String> = None;
        let mut outcomes = Vec::with_capacity(selected.len());
        for (index, letter) in selected {
            let routing_key = letter.replay_routing_key().map(str::to_owned);
            let mut outcome = ReplayOutcome {
                position: letter.position,
                event_id: letter.event_id.clone(),
                routing_key: routing_key.clone(),
                status: ReplayStatus::Skipped,
                detail: None,
            };
            let Some(routing_key) = routing_key else {
                outcome.detail = Some(
                    "no x-original-routing-key or x-death routing key: original partition unknown"
                        .into(),
                );
                outcomes.push(outcome);
                continue;
            };
            if dry_run {
                outcome.status = ReplayStatus::WouldReplay;
                outcomes.push(outcome);
                continue;
            }
            if let Some(reason) = &broken {
                outcome.status = ReplayStatus::Failed;
                outcome.detail = Some(format!("not attempted after an earlier failure: {reason}"));
                outcomes.push(outcome);
                continue;
            }
            if publisher.is_none() {
                publisher = Some(start_publisher(&self.config, "fleetctl-replay").await?);
            }
            let Some(publisher) = publisher.as_ref() else {
                continue;
            };
            let published = publisher
                .publish(
                    &self.topology.conversations_exchange(),
                    &routing_key,
                    &letter.body,
                    replay_headers(&letter.headers),
                    letter.envelope.as_ref().map(|e| e.id.as_str()),
                )
                .await;
            match published {
                Ok(()) => match browse.remove(index).await {
                    Ok(()) => outcome.status = ReplayStatus::Replayed,
                    Err(error) => {
                        // Published but still dead-lettered: a later replay publishes it
                        // again and the worker's dedup absorbs it. Say so.
                        outcome.status = ReplayStatus::Failed;
                        outcome.detail = Some(format!(
                            "republished, but removing it from the dead-letter queue failed \
                             ({error}); it is still there"
                        ));
                        broken = Some(error.to_string());
                    }
                },
                Err(error) => {
                    outcome.status = ReplayStatus::Failed;
                    outcome.detail = Some(format!("publish not confirmed: {error}"));
                    broken = Some(error.to_string());
                }
            }
            outcomes.push(outcome);
        }
        if let Some(publisher) = publisher {
            publisher.close().await;
        }
        Ok(outcomes)
    }

    pub async fn close(self) {
        let _ = self.connection.close(200, "fleetctl done".into()).await;
    }
}

/// Starts a confirmed publisher and waits for its connection, failing with the same clear
/// "cannot reach" error as [`DeadLetters::connect`] instead of retrying forever.
pub async fn start_publisher(
    config: &CommonConfig,
    connection_name: &str,
) -> Result<Publisher, DeadLetterError> {
    // Probe first: the publisher itself reconnects silently forever, which is right for a
    // service and wrong for a command an operator waits on.
    let probe = connect(config).await?;
    let _ = probe.close(200, "probe".into()).await;
    let publisher = Publisher::start(PublisherOptions {
        amqp_url: config.amqp_url.clone(),
        topology: Topology::new(&config.namespace, config.partitions),
        channels: 1,
        publish_timeout: BROKER_TIMEOUT,
        connection_name: connection_name.to_owned(),
        on_confirmed: None,
    });
    if publisher.wait_ready(BROKER_TIMEOUT).await {
        Ok(publisher)
    } else {
        publisher.close().await;
        Err(DeadLetterError::Unreachable {
            endpoint: endpoint(config),
            reason: "the publisher connection did not come up".into(),
        })
    }
}

/// Messages taken from the dead-letter queue and held unacknowledged on one channel.
struct Browse {
    channel: Channel,
    queue: String,
    /// Delivery tags of the held messages, in the order they were taken; `None` once removed.
    tags: Vec<Option<u64>>,
}

impl Browse {
    async fn start(connection: &Connection, topology: &Topology) -> Result<Self, DeadLetterError> {
        Ok(Self {
            channel: connection.create_channel().await?,
            queue: topology.dead_letter_queue(),
            tags: Vec::new(),
        })
    }

    /// Takes messages until the queue is empty (see the module documentation for why all).
    async fn take_all(&mut self) -> Result<Vec<DeadLetter>, DeadLetterError> {
        let now = Utc::now();
        let mut letters = Vec::new();
        loop {
            let got = timed(
                "reading the dead-letter queue",
                self.channel.basic_get(
                    self.queue.as_str().into(),
                    BasicGetOptions { no_ack: false },
                ),
            )
            .await??;
            let Some(message) = got else { break };
            let delivery = message.delivery;
            self.tags.push(Some(delivery.delivery_tag));
            let headers = delivery.properties.headers().clone().unwrap_or_default();
            letters.push(DeadLetter::from_message(
                letters.len() + 1,
                delivery.data,
                headers,
                now,
            ));
        }
        Ok(letters)
    }

    /// Acknowledges (deletes) the `index`-th message taken.
    async fn remove(&mut self, index: usize) -> Result<(), DeadLetterError> {
        let Some(Some(tag)) = self.tags.get(index).copied() else {
            return Ok(());
        };
        timed(
            "removing a dead letter",
            self.channel
                .basic_ack(tag, BasicAckOptions { multiple: false }),
        )
        .await??;
        // Forgotten, so that the final multiple-nack does not name a settled tag: the broker
        // closes the channel on an unknown delivery tag.
        if let Some(slot) = self.tags.get_mut(index) {
            *slot = None;
        }
        Ok(())
    }

    /// Hands every message still held back to the queue with one multiple-nack (order kept,
    /// delivery count untouched on RabbitMQ 4.3+), then closes the channel.
    async fn finish(self) -> Result<(), DeadLetterError> {
        let last = self.tags.iter().rev().flatten().next().copied();
        let result = match last {
            Some(tag) => timed(
                "returning messages to the dead-letter queue",
                self.channel.basic_nack(
                    tag,
                    BasicNackOptions {
                        multiple: true,
                        requeue: true,
                    },
                ),
            )
            .await
            .and_then(|r| r.map_err(DeadLetterError::from)),
            None => Ok(()),
        };
        // A nack has no reply, so a refused one only shows as the broker closing the channel:
        // the close reports it. Either way the broker requeues what the channel still held
        // (possibly out of order): held messages are never lost.
        let closed = timed(
            "closing the browse channel",
            self.channel.close(200, "browse done".into()),
        )
        .await
        .and_then(|r| r.map_err(DeadLetterError::from));
        result.and(closed)
    }
}

async fn connect(config: &CommonConfig) -> Result<Connection, DeadLetterError> {
    let properties =
        ConnectionProperties::default().with_connection_name("fleetctl".to_owned().into());
    let attempt = Connection::connect(config.amqp_url.expose_secret(), properties);
    match tokio::time::timeout(BROKER_TIMEOUT, attempt).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(error)) => Err(DeadLetterError::Unreachable {
            endpoint: endpoint(config),
            reason: error.to_string(),
        }),
        Err(_) => Err(DeadLetterError::Unreachable {
            endpoint: endpoint(config),
            reason: format!("no answer within {BROKER_TIMEOUT:?}"),
        }),
    }
}

/// Host and port of the broker, never the credentials in the URL.
fn endpoint(config: &CommonConfig) -> String {
    match config
        .amqp_url
        .expose_secret()
        .parse::<lapin::uri::AMQPUri>()
    {
        Ok(uri) => format!("{}:{}", uri.authority.host, uri.authority.port),
        Err(_) => "the AMQP_URL (unparsable)".to_owned(),
    }
}

async fn timed<T>(
    what: &'static str,
    future: impl Future<Output = T>,
) -> Result<T, DeadLetterError> {
    tokio::time::timeout(BROKER_TIMEOUT, future)
        .await
        .map_err(|_| DeadLetterError::Timeout(what))
}

fn is_not_found(error: &lapin::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::ProtocolError(amqp)
            if *amqp.kind() == AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND)
    )
}

/// The latest entry of the broker's `x-death` header.
struct Death {
    reason: Option<String>,
    count: Option<i64>,
    queue: Option<String>,
    time: Option<DateTime<Utc>>,
    routing_key: Option<String>,
}

fn latest_death(headers: &FieldTable) -> Option<Death> {
    let AMQPValue::FieldArray(deaths) = headers.inner().get(&ShortString::from("x-death"))? else {
        return None;
    };
    // The broker keeps the most recent death first.
    let AMQPValue::FieldTable(death) = deaths.as_slice().first()? else {
        return None;
    };
    let routing_key = match death.inner().get(&ShortString::from("routing-keys")) {
        Some(AMQPValue::FieldArray(keys)) => keys.as_slice().first().and_then(value_str),
        _ => None,
    };
    let time = match death.inner().get(&ShortString::from("time")) {
        Some(AMQPValue::Timestamp(seconds)) => i64::try_from(*seconds)
            .ok()
            .and_then(|s| Utc.timestamp_opt(s, 0).single()),
        _ => None,
    };
    Some(Death {
        reason: header_str(death, "reason"),
        count: header_int(death, "count"),
        queue: header_str(death, "queue"),
        time,
        routing_key,
    })
}

/// `x-original-routing-key` (worker dead letters) or the broker's recorded routing key.
fn original_routing_key(headers: &FieldTable) -> Option<String> {
    header_str(headers, HEADER_ORIGINAL_ROUTING_KEY)
        .filter(|key| !key.is_empty())
        .or_else(|| latest_death(headers).and_then(|death| death.routing_key))
}

fn value_str(value: &AMQPValue) -> Option<String> {
    match value {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

fn header_int(headers: &FieldTable, name: &str) -> Option<i64> {
    match headers.inner().get(&ShortString::from(name))? {
        AMQPValue::ShortShortInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortShortUInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortUInt(n) => Some(i64::from(*n)),
        AMQPValue::LongInt(n) => Some(i64::from(*n)),
        AMQPValue::LongUInt(n) => Some(i64::from(*n)),
        AMQPValue::LongLongInt(n) => Some(*n),
        _ => None,
    }
}

/// The headers a replayed event carries: the original ones (trace context included) minus
/// every dead-letter annotation, plus a replay counter. Without the annotations, a second
/// failure is reported for what it is, not mixed with the first.
fn replay_headers(original: &FieldTable) -> FieldTable {
    let mut headers = FieldTable::default();
    for (name, value) in original.inner() {
        let key = name.as_str();
        let annotation = key.starts_with("x-death")
            || key.starts_with("x-first-death")
            || key.starts_with("x-last-death")
            || key == "x-delivery-count"
            || key == HEADER_DEAD_REASON
            || key == HEADER_ORIGINAL_ROUTING_KEY
            || key == HEADER_DEAD_WORKER
            || key == HEADER_REPLAYS;
        if !annotation {
            headers.insert(name.clone(), value.clone());
        }
    }
    let replays = header_int(original, HEADER_REPLAYS).unwrap_or(0) + 1;
    headers.insert(
        ShortString::from(HEADER_REPLAYS),
        AMQPValue::LongLongInt(replays),
    );
    headers
}

/// A stable name for a body that is not an envelope.
fn body_id(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    format!("body-sha256:{}", hex::encode(&digest[..8]))
}

/// Keys whose string values identify a person in WhatsApp payloads and our envelopes.
const PERSONAL_KEYS: &[&str] = &[
    "customer",
    "from",
    "wa_id",
    "recipient_id",
    "user_id",
    "phone",
    "phone_number",
    "profile_name",
    "name",
];

/// Replaces personal values with pseudonyms, recursively; and the customer's id wherever it
/// appears inside another string (ids such as `release:...` or reasons can quote it).
fn redact(value: &mut Value, customer: Option<&str>) {
    match value {
        Value::Object(map) => redact_object(map, customer),
        Value::Array(items) => items.iter_mut().for_each(|item| redact(item, customer)),
        Value::String(text) => {
            if let Some(customer) = customer {
                *text = mask_customer(text, customer);
            }
        }
        _ => {}
    }
}

fn redact_object(map: &mut Map<String, Value>, customer: Option<&str>) {
    for (key, value) in map.iter_mut() {
        match value {
            Value::String(text) if PERSONAL_KEYS.contains(&key.as_str()) && !text.is_empty() => {
                *text = format!("pseudonym:{}", pseudonym(text));
            }
            other => redact(other, customer),
        }
    }
}

fn mask_customer(text: &str, customer: &str) -> String {
    // Very short ids would mask unrelated digits; real wa_ids are phone numbers.
    if customer.len() < 5 || !text.contains(customer) {
        return text.to_owned();
    }
    text.replace(customer, &format!("pseudonym:{}", pseudonym(customer)))
}

/// Headers as JSON, for `show`: AMQP types mapped to the nearest JSON type.
fn field_table_to_json(table: &FieldTable) -> Value {
    Value::Object(
        table
            .inner()
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), amqp_to_json(value)))
            .collect(),
    )
}

fn amqp_to_json(value: &AMQPValue) -> Value {
    match value {
        AMQPValue::Boolean(b) => json!(b),
        AMQPValue::ShortShortInt(n) => json!(n),
        AMQPValue::ShortShortUInt(n) => json!(n),
        AMQPValue::ShortInt(n) => json!(n),
        AMQPValue::ShortUInt(n) => json!(n),
        AMQPValue::LongInt(n) => json!(n),
        AMQPValue::LongUInt(n) => json!(n),
        AMQPValue::LongLongInt(n) => json!(n),
        AMQPValue::Float(n) => json!(n),
        AMQPValue::Double(n) => json!(n),
        AMQPValue::DecimalValue(d) => json!(format!("{d:?}")),
        AMQPValue::ShortString(s) => json!(s.as_str()),
        AMQPValue::LongString(s) => json!(String::from_utf8_lossy(s.as_bytes())),
        AMQPValue::FieldArray(items) => {
            Value::Array(items.as_slice().iter().map(amqp_to_json).collect())
        }
        AMQPValue::Timestamp(seconds) => i64::try_from(*seconds)
            .ok()
            .and_then(|s| Utc.timestamp_opt(s, 0).single())
            .map(|time| json!(time.to_rfc3339()))
            .unwrap_or_else(|| json!(seconds)),
        AMQPValue::FieldTable(table) => field_table_to_json(table),
        AMQPValue::ByteArray(bytes) => json!(hex::encode(bytes.as_slice())),
        AMQPValue::Void => Value::Null,
    }
}

/// "3d4h", "2h13m", "45s": enough to tell fresh from stale at a glance.
pub fn format_age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// One human-readable line per dead letter, for `list`.
pub fn format_line(letter: &DeadLetter) -> String {
    let dash = || "-".to_owned();
    format!(
        "#{:<3} {}  kind={} tenant={} customer={} partition={} age={} reason=[{}] {}{}",
        letter.position,
        letter.event_id,
        letter.kind.clone().unwrap_or_else(dash),
        letter.tenant.clone().unwrap_or_else(dash),
        letter.customer_pseudonym.clone().unwrap_or_else(dash),
        letter.original_routing_key.clone().unwrap_or_else(dash),
        letter.age_seconds.map(format_age).unwrap_or_else(dash),
        match letter.reason_source {
            ReasonSource::Worker => "worker",
            ReasonSource::Broker => "broker",
            ReasonSource::Unknown => "?",
        },
        letter.reason,
        if letter.replays > 0 {
            format!(" (replayed {}x before)", letter.replays)
        } else {
            String::new()
        },
    )
}
