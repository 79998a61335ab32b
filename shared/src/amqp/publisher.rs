//! A publisher that never claims success it did not get: every publish is persistent,
//! `mandatory`, and awaits the broker's confirm. A nack, a return (unroutable) or a timeout is
//! an error. Confirms are pipelined: any number of publishes wait on their confirms at once,
//! spread over a few channels of one dedicated connection by routing key.
//!
//! The connection is owned by a background task that reconnects with exponential backoff and
//! re-declares the topology, so callers never block on a dead broker: while it is down,
//! `publish` fails at once with [`PublishError::Unavailable`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Notify;
use tracing::{info, warn};

use super::Topology;
use crate::envelope::{Envelope, Publishable};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("broker connection is not available")]
    Unavailable,
    #[error("broker did not confirm the publish within {0:?}")]
    Timeout(Duration),
    #[error("broker nacked the publish")]
    Nacked,
    #[error("broker returned the publish as unroutable ({0})")]
    Returned(String),
    #[error("broker error: {0}")]
    Broker(#[from] lapin::Error),
    #[error("could not encode the event: {0}")]
    Encode(#[from] serde_json::Error),
}

#[derive(Clone)]
pub struct PublisherOptions {
    pub amqp_url: SecretString,
    pub topology: Topology,
    /// Confirm-mode channels on the connection; each routing key keeps to one of them.
    pub channels: usize,
    /// Bound on one publish from call to confirm.
    pub publish_timeout: Duration,
    /// Shown in the broker's connection list, so operators can tell the fleet's connections apart.
    pub connection_name: String,
    /// Told how long each confirmed publish spent in each stage, for callers that keep
    /// latency metrics.
    pub on_confirmed: Option<StageObserver>,
}

/// Where a confirmed publish spent its time. A slow `written` means the frames waited to go out
/// (the connection's I/O thread not running, or the broker not reading: TCP back-pressure from
/// its flow control); a slow `confirmed` means the broker took long to confirm, or the confirm
/// waited, once read, for the publishing task to run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PublishStages {
    /// From the call until lapin had written the frames to the socket.
    pub written: Duration,
    /// From then until the publishing task saw the confirm.
    pub confirmed: Duration,
}

pub type StageObserver = Arc<dyn Fn(PublishStages) + Send + Sync>;

#[derive(Clone)]
pub struct Publisher {
    inner: Arc<Inner>,
}

struct Inner {
    options: PublisherOptions,
    link: RwLock<Option<Arc<Link>>>,
    /// Wakes the connection task early when a publish saw the link fail.
    link_failed: Notify,
    stopping: AtomicBool,
}

struct Link {
    connection: Connection,
    channels: Vec<Channel>,
}

impl Link {
    fn healthy(&self) -> bool {
        self.connection.status().connected() && self.channels.iter().all(|c| c.status().connected())
    }
}

impl Publisher {
    /// Starts the connection task and returns immediately; see [`Publisher::wait_ready`].
    pub fn start(options: PublisherOptions) -> Self {
        let inner = Arc::new(Inner {
            options,
            link: RwLock::new(None),
            link_failed: Notify::new(),
            stopping: AtomicBool::new(false),
        });
        tokio::spawn(maintain_connection(inner.clone()));
        Self { inner }
    }

    pub fn topology(&self) -> &Topology {
        &self.inner.options.topology
    }

    /// True when a publish would be attempted on a live connection.
    pub fn is_ready(&self) -> bool {
        self.current_link().is_some_and(|link| link.healthy())
    }

    /// Waits until the connection is up, or the timeout passes.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if self.is_ready() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.is_ready()
    }

    fn current_link(&self) -> Option<Arc<Link>> {
        self.inner
            .link
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Publishes an event into its conversation's partition, with the current trace context.
    pub async fn publish_envelope(&self, envelope: &Envelope) -> Result<(), PublishError> {
        self.publish_envelope_traced(envelope, &tracing::Span::current())
            .await
    }

    /// Publishes an event as a child of `span` in the trace, without entering `span`.
    ///
    /// For hot paths: instrumenting the publish future would enter and exit its span at every
    /// poll, in every tracing layer, while the confirm is awaited; the span only needs to be
    /// the event's parent in the trace and to last until the confirm.
    pub async fn publish_envelope_traced(
        &self,
        envelope: &impl Publishable,
        span: &tracing::Span,
    ) -> Result<(), PublishError> {
        let mut headers = FieldTable::default();
        crate::telemetry::inject_amqp_headers_of(span, &mut headers);
        let message = EnvelopeMessage::new(&self.inner.options.topology, envelope, headers)?;
        self.publish(
            &message.exchange,
            &message.routing_key,
            &message.body,
            message.headers,
            Some(envelope.event_id()),
        )
        .await
    }

    /// Publishes raw bytes persistently with `mandatory`, and waits for the confirm.
    ///
    /// Messages with the same routing key always travel on the same channel, so they reach
    /// their queue in the order they were published.
    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        headers: FieldTable,
        message_id: Option<&str>,
    ) -> Result<(), PublishError> {
        let link = self.current_link().ok_or(PublishError::Unavailable)?;
        let channel = &link.channels[channel_for(routing_key, link.channels.len())];
        let properties = message_properties(headers, message_id);
        let timeout = self.inner.options.publish_timeout;
        let called = Instant::now();
        let mut written_at = called;
        let attempt = async {
            let confirm = channel
                .basic_publish(
                    ShortString::from(exchange),
                    ShortString::from(routing_key),
                    BasicPublishOptions {
                        mandatory: true,
                        immediate: false,
                    },
                    body,
                    properties,
                )
                .await?;
            written_at = Instant::now();
            Ok::<_, PublishError>(confirm.await?)
        };
        let attempted = tokio::time::timeout(timeout, attempt).await;
        let outcome = match attempted {
            Err(_) => Err(PublishError::Timeout(timeout)),
            Ok(Err(error)) => Err(error),
            Ok(Ok(Confirmation::Ack(None))) => {
                if let Some(observe) = &self.inner.options.on_confirmed {
                    observe(PublishStages {
                        written: written_at - called,
                        confirmed: written_at.elapsed(),
                    });
                }
                return Ok(());
            }
            Ok(Ok(Confirmation::Ack(Some(returned)))) => Err(PublishError::Returned(
                returned.reply_text.as_str().to_owned(),
            )),
            Ok(Ok(Confirmation::Nack(_))) => Err(PublishError::Nacked),
            // The channel is always put in confirm mode before use; reaching this means the
            // channel was replaced underneath us, so treat it like a broken link.
            Ok(Ok(Confirmation::NotRequested)) => Err(PublishError::Unavailable),
        };
        if matches!(
            outcome,
            Err(PublishError::Broker(_) | PublishError::Timeout(_) | PublishError::Unavailable)
        ) {
            self.inner.link_failed.notify_one();
        }
        outcome
    }

    /// Stops reconnecting and closes the connection. In-flight publishes should be awaited by
    /// the caller first (they hold their own references and complete or time out).
    pub async fn close(&self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
        self.inner.link_failed.notify_one();
        let link = self
            .inner
            .link
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(link) = link {
            let _ = link
                .connection
                .close(200, ShortString::from("shutting down"))
                .await;
        }
    }
}

/// Where and how an event is published: the exchange, the partition's routing key and the
/// encoded body. Public so a benchmark can publish byte-for-byte what ingress publishes.
pub struct EnvelopeMessage {
    pub exchange: String,
    pub routing_key: String,
    pub body: Vec<u8>,
    pub headers: FieldTable,
}

impl EnvelopeMessage {
    pub fn new(
        topology: &Topology,
        envelope: &impl Publishable,
        headers: FieldTable,
    ) -> Result<Self, serde_json::Error> {
        let partition = topology.partition_for(&envelope.conversation_key());
        Ok(Self {
            exchange: topology.conversations_exchange(),
            routing_key: Topology::partition_routing_key(partition),
            body: serde_json::to_vec(envelope)?,
            headers,
        })
    }
}

/// The properties of every message the fleet publishes: persistent JSON, with the event id as
/// the message id where AMQP can carry it.
pub fn message_properties(headers: FieldTable, message_id: Option<&str>) -> BasicProperties {
    let properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type(ShortString::from("application/json"))
        .with_headers(headers);
    // AMQP short strings hold 255 bytes; the id is in the body anyway.
    match message_id.filter(|id| id.len() <= 255) {
        Some(id) => properties.with_message_id(ShortString::from(id)),
        None => properties,
    }
}

/// The same routing key always maps to the same channel, because only one channel keeps order:
/// two events of one conversation published on different channels could reach their partition
/// swapped.
fn channel_for(routing_key: &str, channels: usize) -> usize {
    let channels = u16::try_from(channels).unwrap_or(u16::MAX);
    usize::from(crate::partition::partition_of(routing_key, channels))
}

async fn connect(options: &PublisherOptions) -> Result<Link, lapin::Error> {
    let properties = ConnectionProperties::default()
        .with_connection_name(options.connection_name.clone().into());
    let connection = Connection::connect(options.amqp_url.expose_secret(), properties).await?;
    let mut channels = Vec::with_capacity(options.channels);
    for index in 0..options.channels.max(1) {
        let channel = connection.create_channel().await?;
        if index == 0 {
            options.topology.declare(&channel).await?;
        }
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        channels.push(channel);
    }
    Ok(Link {
        connection,
        channels,
    })
}

async fn maintain_connection(inner: Arc<Inner>) {
    let new_backoff = || {
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(2))
            .with_jitter()
            .without_max_times()
            .build()
    };
    let mut backoff = new_backoff();
    loop {
        if inner.stopping.load(Ordering::SeqCst) {
            break;
        }
        let healthy = inner
            .link
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .as_ref()
            .is_some_and(|link| link.healthy());
        if healthy {
            // Poll as well as listen: a broker-side close is only visible in the status.
            let _ = tokio::time::timeout(Duration::from_millis(200), inner.link_failed.notified())
                .await;
            continue;
        }
        let stale = inner
            .link
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if stale.is_some() {
            warn!(message = "Broker connection lost; reconnecting.");
        }
        match tokio::time::timeout(Duration::from_secs(5), connect(&inner.options)).await {
            Ok(Ok(link)) => {
                // `close` may have run while this connection was being made: do not leave a
                // connection open behind it.
                if inner.stopping.load(Ordering::SeqCst) {
                    let _ = link
                        .connection
                        .close(200, ShortString::from("shutting down"))
                        .await;
                    break;
                }
                info!(message = "Connected to the broker.", name = %inner.options.connection_name);
                *inner
                    .link
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Arc::new(link));
                backoff = new_backoff();
            }
            Ok(Err(error)) => {
                warn!(message = "Broker connection failed.", %error);
                tokio::time::sleep(backoff.next().unwrap_or(Duration::from_secs(2))).await;
            }
            Err(_) => {
                warn!(message = "Broker connection attempt timed out.");
                tokio::time::sleep(backoff.next().unwrap_or(Duration::from_secs(2))).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_routing_key_keeps_to_one_channel_and_partitions_use_them_all() {
        let mut used = [0usize; 4];
        for partition in 0..16 {
            let key = Topology::partition_routing_key(partition);
            let channel = channel_for(&key, 4);
            assert_eq!(channel, channel_for(&key, 4));
            used[channel] += 1;
        }
        assert!(used.iter().all(|&n| n >= 2), "{used:?}");
        assert_eq!(channel_for("p3", 1), 0);
    }
}
