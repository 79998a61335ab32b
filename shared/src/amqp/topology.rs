use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, ExchangeKind};

use crate::partition::partition_of;

/// Deliveries of one message before the broker dead-letters it. Fixed: a queue's arguments
/// cannot change once declared, and every fleet member must declare identical ones.
pub const DELIVERY_LIMIT: i64 = 5;

/// Names and declaration of the fleet's exchanges and queues.
#[derive(Debug, Clone)]
pub struct Topology {
    namespace: String,
    partitions: u16,
}

impl Topology {
    pub fn new(namespace: &str, partitions: u16) -> Self {
        Self {
            namespace: namespace.to_owned(),
            partitions: partitions.max(1),
        }
    }

    pub fn partitions(&self) -> u16 {
        self.partitions
    }

    /// Direct exchange in front of the partition queues.
    pub fn conversations_exchange(&self) -> String {
        format!("{}conv", self.namespace)
    }

    pub fn partition_queue(&self, partition: u16) -> String {
        format!("{}conv.p{partition}", self.namespace)
    }

    pub fn partition_routing_key(partition: u16) -> String {
        format!("p{partition}")
    }

    pub fn dead_letter_exchange(&self) -> String {
        format!("{}conv.dlx", self.namespace)
    }

    pub fn dead_letter_queue(&self) -> String {
        format!("{}conv.dead", self.namespace)
    }

    /// Fanout exchange that carries handoff requests to whatever agent tooling subscribes.
    pub fn handoff_exchange(&self) -> String {
        format!("{}handoff", self.namespace)
    }

    /// Where handoffs wait until agent tooling consumes them; without it a handoff published
    /// while no tool listens would be unroutable.
    pub fn handoff_queue(&self) -> String {
        format!("{}handoff.inbox", self.namespace)
    }

    /// Signed webhook payloads that could not be read at all: kept, never dropped.
    pub fn unparsed_queue(&self) -> String {
        format!("{}ingress.unparsed", self.namespace)
    }

    pub fn partition_for(&self, conversation_key: &str) -> u16 {
        partition_of(conversation_key, self.partitions)
    }

    /// Declares everything idempotently. Safe to call from every process at every start.
    pub async fn declare(&self, channel: &Channel) -> lapin::Result<()> {
        declare_exchange(channel, &self.dead_letter_exchange(), ExchangeKind::Fanout).await?;
        declare_queue(channel, &self.dead_letter_queue(), quorum_args()).await?;
        bind(
            channel,
            &self.dead_letter_queue(),
            &self.dead_letter_exchange(),
            "",
        )
        .await?;
        declare_queue(channel, &self.unparsed_queue(), quorum_args()).await?;
        declare_exchange(channel, &self.handoff_exchange(), ExchangeKind::Fanout).await?;
        declare_queue(channel, &self.handoff_queue(), quorum_args()).await?;
        bind(channel, &self.handoff_queue(), &self.handoff_exchange(), "").await?;
        declare_exchange(
            channel,
            &self.conversations_exchange(),
            ExchangeKind::Direct,
        )
        .await?;
        for partition in 0..self.partitions {
            let queue = self.partition_queue(partition);
            declare_queue(channel, &queue, self.partition_args()).await?;
            bind(
                channel,
                &queue,
                &self.conversations_exchange(),
                &Self::partition_routing_key(partition),
            )
            .await?;
        }
        Ok(())
    }

    /// Quorum (replicated, durable), single active consumer (one writer per conversation at
    /// any instant, enforced by the broker), bounded redeliveries, and at-least-once
    /// dead-lettering so a poison message is moved, never lost.
    fn partition_args(&self) -> FieldTable {
        let mut args = quorum_args();
        args.insert(
            ShortString::from("x-single-active-consumer"),
            AMQPValue::Boolean(true),
        );
        args.insert(
            ShortString::from("x-delivery-limit"),
            AMQPValue::LongLongInt(DELIVERY_LIMIT),
        );
        args.insert(
            ShortString::from("x-dead-letter-exchange"),
            long_string(&self.dead_letter_exchange()),
        );
        args.insert(
            ShortString::from("x-dead-letter-strategy"),
            long_string("at-least-once"),
        );
        // at-least-once dead-lettering requires reject-publish overflow.
        args.insert(
            ShortString::from("x-overflow"),
            long_string("reject-publish"),
        );
        args
    }

    /// [`Topology::delete`] for a test's `Drop`: runs on a thread of its own with its own
    /// runtime, so it works whether or not the dropping thread is inside a runtime, and a test
    /// that panics before its cleanup does not leave quorum queues on a shared broker.
    /// Best effort: an unreachable broker leaves the queues behind.
    pub fn delete_from_drop(&self, amqp_url: &str) {
        let topology = self.clone();
        let amqp_url = amqp_url.to_owned();
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(connection) =
                    lapin::Connection::connect(&amqp_url, lapin::ConnectionProperties::default())
                        .await
                    && let Ok(channel) = connection.create_channel().await
                {
                    let _ = topology.delete(&channel).await;
                }
            });
        })
        .join();
    }

    /// Deletes every queue and exchange of this namespace. For tests and sandboxes only.
    pub async fn delete(&self, channel: &Channel) -> lapin::Result<()> {
        use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
        let mut queues: Vec<String> = (0..self.partitions)
            .map(|p| self.partition_queue(p))
            .collect();
        queues.push(self.dead_letter_queue());
        queues.push(self.unparsed_queue());
        queues.push(self.handoff_queue());
        for queue in queues {
            channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await?;
        }
        for exchange in [
            self.conversations_exchange(),
            self.dead_letter_exchange(),
            self.handoff_exchange(),
        ] {
            channel
                .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
                .await?;
        }
        Ok(())
    }
}

async fn declare_exchange(channel: &Channel, name: &str, kind: ExchangeKind) -> lapin::Result<()> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(name.into(), kind, durable, FieldTable::default())
        .await
}

async fn declare_queue(channel: &Channel, name: &str, args: FieldTable) -> lapin::Result<()> {
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel.queue_declare(name.into(), durable, args).await?;
    Ok(())
}

async fn bind(channel: &Channel, queue: &str, exchange: &str, key: &str) -> lapin::Result<()> {
    channel
        .queue_bind(
            queue.into(),
            exchange.into(),
            key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
}

fn quorum_args() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(ShortString::from("x-queue-type"), long_string("quorum"));
    args
}

fn long_string(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value.as_bytes().to_vec()))
}
