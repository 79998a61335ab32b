//! One consumer per owned partition, each on its own channel.
//!
//! A partition is processed strictly in order (one delivery at a time), so a conversation's
//! events never race each other; different partitions run concurrently, so one slow
//! conversation stalls only its own partition. Giving a partition up cancels the consumer
//! first and then finishes and acks what was already delivered; the next owner subscribes only
//! once that is done (`crate::lease`), so it starts exactly where this one stopped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use futures::{FutureExt, StreamExt};

use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    BasicRejectOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Acker, Channel, Connection};
use shared::amqp::{Publisher, Topology};
use shared::envelope::Envelope;
use tokio::sync::watch;
use tracing::{Instrument, info, info_span, warn};

use crate::metrics::Metrics;
use crate::processor::{ProcessError, Processed, Processor};

/// Attempts of one delivery inside this worker before it is handed back to the broker.
const LOCAL_ATTEMPTS: usize = 4;
/// How long a released partition may take to finish what it already received.
const DRAIN_LIMIT: Duration = Duration::from_secs(8);

/// What every partition consumer shares.
pub struct ConsumerContext {
    pub processor: Processor,
    pub publisher: Publisher,
    pub topology: Topology,
    pub metrics: Arc<Metrics>,
    pub worker_id: String,
    pub prefetch: u16,
}

/// Consumes `partition` until `stop` turns true or the channel fails.
pub async fn consume_partition(
    context: Arc<ConsumerContext>,
    connection: Arc<Connection>,
    partition: u16,
    mut stop: watch::Receiver<bool>,
) -> Result<(), lapin::Error> {
    let channel = connection.create_channel().await?;
    channel
        .basic_qos(context.prefetch, BasicQosOptions::default())
        .await?;
    let tag = format!("{}:p{partition}", context.worker_id);
    let mut consumer = channel
        .basic_consume(
            context.topology.partition_queue(partition).as_str().into(),
            tag.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    info!(message = "Consuming partition.", partition);
    let mut acks = DeferredAcks::new(context.prefetch);
    loop {
        // A steady stream keeps the path below busy, so it must see a release request itself.
        if acks.pending() && *stop.borrow() {
            break;
        }
        // Deliveries already received are handled back to back and acknowledged together
        // with one `multiple` ack: under load that is one broker round trip (and one quorum
        // queue settle command) per batch instead of one per event. Replies do not wait for
        // acks, and a redelivery after a crash is answered from the processed-event record.
        if acks.pending() {
            match consumer.next().now_or_never() {
                Some(Some(Ok(delivery))) => {
                    acks.defer(handle(&context, &channel, partition, delivery).await)
                        .await;
                    continue;
                }
                Some(Some(Err(error))) => {
                    acks.flush().await;
                    return Err(error);
                }
                Some(None) => {
                    acks.flush().await;
                    return Ok(());
                }
                None => acks.flush().await,
            }
        }
        tokio::select! {
            biased;
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
            }
            next = consumer.next() => match next {
                Some(Ok(delivery)) => {
                    acks.defer(handle(&context, &channel, partition, delivery).await).await;
                }
                Some(Err(error)) => return Err(error),
                None => return Ok(()),
            },
        }
    }
    acks.flush().await;
    // Stop new deliveries, then finish the ones already here before letting go.
    let _ = channel
        .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
        .await;
    let deadline = Instant::now() + DRAIN_LIMIT;
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(200), consumer.next()).await {
            Ok(Some(Ok(delivery))) => {
                acks.defer(handle(&context, &channel, partition, delivery).await)
                    .await;
            }
            _ => break,
        }
    }
    acks.flush().await;
    let _ = channel.close(200, "partition released".into()).await;
    info!(message = "Released partition.", partition);
    Ok(())
}

/// Acks held back until the deliveries already received are handled. Acking the newest with
/// `multiple` settles every earlier delivery on the channel; that is only right because a
/// partition is handled strictly in order and every delivery that is not deferred here was
/// settled on its own (rejected, or dead-lettered and acked) before the next one started.
struct DeferredAcks {
    newest: Option<Acker>,
    count: usize,
    /// Flush before the broker's prefetch window fills up and it stops delivering.
    limit: usize,
}

impl DeferredAcks {
    fn new(prefetch: u16) -> Self {
        Self {
            newest: None,
            count: 0,
            limit: usize::from(prefetch / 2).max(1),
        }
    }

    fn pending(&self) -> bool {
        self.newest.is_some()
    }

    /// Takes the acker of a delivery handled successfully; `None` (settled on its own) leaves
    /// the batch as it is.
    async fn defer(&mut self, acker: Option<Acker>) {
        let Some(acker) = acker else {
            return;
        };
        self.newest = Some(acker);
        self.count += 1;
        if self.count >= self.limit {
            self.flush().await;
        }
    }

    async fn flush(&mut self) {
        self.count = 0;
        let Some(acker) = self.newest.take() else {
            return;
        };
        if let Err(error) = acker.ack(BasicAckOptions { multiple: true }).await {
            // The broker will redeliver; processing is idempotent, so this only costs time.
            warn!(message = "Ack failed.", %error);
        }
    }
}

/// Handles one delivery. A success is returned as its acker for [`DeferredAcks`]; every
/// other outcome is settled here before returning.
async fn handle(
    context: &ConsumerContext,
    channel: &Channel,
    partition: u16,
    delivery: Delivery,
) -> Option<Acker> {
    let envelope = match shared::envelope::decode(&delivery.data) {
        Ok(envelope) => envelope,
        Err(error) => {
            dead_letter(
                context,
                channel,
                partition,
                &delivery,
                "",
                &error.to_string(),
            )
            .await;
            return None;
        }
    };
    let span = info_span!(
        "worker.event",
        kind = envelope.kind.as_str(),
        tenant = %envelope.tenant,
        customer = %shared::telemetry::pseudonym(&envelope.customer),
        partition,
        redelivered = delivery.redelivered,
    );
    if let Some(headers) = delivery.properties.headers() {
        shared::telemetry::continue_trace_from_amqp(&span, headers);
    }
    let result = process_with_retries(context, &envelope)
        .instrument(span)
        .await;
    let kind = envelope.kind.as_str();
    match result {
        Ok(processed) => {
            let label = match processed {
                Processed::Done => "done",
                Processed::Duplicate => "duplicate",
                Processed::Ignored(reason) => reason,
            };
            context.metrics.event(kind, label);
            let age = chrono::Utc::now() - envelope.received_at;
            context.metrics.event_age(age.as_seconds_f64());
            Some(delivery.acker)
        }
        Err(ProcessError::Permanent(reason)) => {
            context.metrics.event(kind, "dead_letter");
            dead_letter(
                context,
                channel,
                partition,
                &delivery,
                &envelope.tenant,
                &reason,
            )
            .await;
            None
        }
        Err(ProcessError::Transient(reason)) => {
            context.metrics.event(kind, "requeued");
            warn!(message = "Event failed transiently; handing it back to the broker.", %reason, partition);
            // Reject (not nack): every RabbitMQ version counts a rejected delivery towards the
            // queue's delivery limit (from 4.3 a nack does not), so a failure that never
            // clears ends in the dead-letter queue instead of looping forever.
            let _ = delivery
                .acker
                .reject(BasicRejectOptions { requeue: true })
                .await;
            None
        }
    }
}

/// Retries transient failures a few times here (Redis blip, calendar 5xx) before giving the
/// delivery back: other partitions keep flowing meanwhile, and the retry budget is bounded.
async fn process_with_retries(
    context: &ConsumerContext,
    envelope: &Envelope,
) -> Result<Processed, ProcessError> {
    let mut delays = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(2))
        .with_jitter()
        .with_max_times(LOCAL_ATTEMPTS)
        .build();
    loop {
        match context.processor.process(envelope).await {
            Err(ProcessError::Transient(reason)) => match delays.next() {
                Some(delay) => {
                    context.metrics.retry();
                    warn!(message = "Retrying event.", %reason, ?delay);
                    tokio::time::sleep(delay).await;
                }
                None => return Err(ProcessError::Transient(reason)),
            },
            other => return other,
        }
    }
}

async fn ack(channel: &Channel, delivery: &Delivery) {
    if let Err(error) = delivery.acker.ack(BasicAckOptions::default()).await {
        // The broker will redeliver; processing is idempotent, so this only costs time.
        warn!(message = "Ack failed.", %error, channel = channel.id());
    }
}

/// Moves a delivery to the dead-letter queue with the reason, then acks it. If the
/// dead-letter publish is not confirmed, the delivery is handed back instead: never lost.
async fn dead_letter(
    context: &ConsumerContext,
    channel: &Channel,
    partition: u16,
    delivery: &Delivery,
    tenant: &str,
    reason: &str,
) {
    warn!(message = "Dead-lettering event.", %reason, partition);
    let mut headers = delivery.properties.headers().clone().unwrap_or_default();
    let text = |value: &str| AMQPValue::LongString(LongString::from(value.as_bytes().to_vec()));
    headers.insert(ShortString::from("x-dead-reason"), text(reason));
    headers.insert(
        ShortString::from("x-original-routing-key"),
        text(delivery.routing_key.as_str()),
    );
    headers.insert(ShortString::from("x-dead-worker"), text(&context.worker_id));
    let published = context
        .publisher
        .publish(
            &context.topology.dead_letter_exchange(),
            delivery.routing_key.as_str(),
            &delivery.data,
            headers,
            None,
        )
        .await;
    match published {
        Ok(()) => {
            context
                .metrics
                .dead_letter(tenant, reason.split(':').next().unwrap_or(reason));
            ack(channel, delivery).await;
        }
        Err(error) => {
            warn!(message = "Dead-letter publish failed; requeueing.", %error);
            let _ = delivery
                .acker
                .nack(BasicNackOptions {
                    multiple: false,
                    requeue: true,
                })
                .await;
        }
    }
}
