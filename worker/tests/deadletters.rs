//! `worker::deadletters` and the `fleetctl` binary against the real RabbitMQ, each test in its
//! own FLEET_NAMESPACE whose topology is deleted at the end (also when the test fails).

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chrono::Utc;
use futures::{FutureExt, StreamExt};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, Connection, ConnectionProperties};
use serde_json::{Value, json};
use shared::amqp::{Publisher, PublisherOptions, Topology, header_str};
use shared::config::{CommonConfig, Env};
use shared::envelope::{Envelope, EventKind, SCHEMA_VERSION};
use shared::telemetry::pseudonym;
use worker::deadletters::{
    DeadLetterError, DeadLetters, ReasonSource, ReplayStatus, Selection, format_line,
};

const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const PARTITIONS: u16 = 4;
/// A customer number that must never appear in pseudonymised output.
const CUSTOMER: &str = "34600111222";

struct Fixture {
    namespace: String,
    topology: Topology,
    config: CommonConfig,
    channel: Channel,
    publisher: Publisher,
    _connection: Connection,
}

/// Runs `body` against a fresh namespace and deletes the namespace afterwards, even when
/// `body` panics, so a failing test leaves no queues behind.
async fn with_fixture<F, Fut>(tag: &str, body: F)
where
    F: FnOnce(&'static Fixture) -> Fut,
    Fut: Future<Output = ()>,
{
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let namespace = format!(
        "test.deadletters.{tag}.{}.{}.",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let partitions = PARTITIONS.to_string();
    let config = CommonConfig::from_env(&Env::from_pairs([
        ("AMQP_URL", AMQP_URL),
        ("PARTITIONS", partitions.as_str()),
        ("FLEET_NAMESPACE", namespace.as_str()),
    ]))
    .expect("test config is valid");
    let connection = Connection::connect(AMQP_URL, ConnectionProperties::default())
        .await
        .expect("RabbitMQ must be running on 127.0.0.1:5672 (see .ci/run)");
    let channel = connection.create_channel().await.expect("channel");
    let topology = Topology::new(&namespace, PARTITIONS);
    topology.declare(&channel).await.expect("declare topology");
    let publisher = Publisher::start(PublisherOptions {
        amqp_url: config.amqp_url.clone(),
        topology: topology.clone(),
        channels: 1,
        publish_timeout: Duration::from_secs(5),
        connection_name: format!("{namespace}test"),
        on_confirmed: None,
    });
    assert!(publisher.wait_ready(Duration::from_secs(10)).await);
    // Leaked for the test's duration so the body can borrow it for 'static.
    let fixture: &'static Fixture = Box::leak(Box::new(Fixture {
        namespace,
        topology,
        config,
        channel,
        publisher,
        _connection: connection,
    }));
    let outcome = AssertUnwindSafe(body(fixture)).catch_unwind().await;
    fixture.publisher.close().await;
    let deleted = fixture.topology.delete(&fixture.channel).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    deleted.expect("delete test topology");
}

fn envelope(id: &str, tenant: &str) -> Envelope {
    Envelope {
        v: SCHEMA_VERSION,
        id: id.to_owned(),
        kind: EventKind::Message,
        tenant: tenant.to_owned(),
        customer: CUSTOMER.to_owned(),
        wa_timestamp: None,
        received_at: Utc::now() - chrono::Duration::minutes(3),
        profile_name: Some("Ana".into()),
        payload: json!({"from": CUSTOMER, "id": id, "type": "text", "text": {"body": "hola"}}),
    }
}

fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value.as_bytes().to_vec()))
}

impl Fixture {
    async fn depth(&self, queue: &str) -> u32 {
        self.channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("passive declare")
            .message_count()
    }

    async fn dead_depth(&self) -> u32 {
        self.depth(&self.topology.dead_letter_queue()).await
    }

    /// Waits for a queue's ready count to settle at `expected`. The count a passive declare
    /// reports for a quorum queue is a query of applied state, which may trail a nack or an
    /// ack that the broker has already accepted by a few milliseconds.
    async fn assert_depth(&self, queue: &str, expected: u32, why: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let depth = self.depth(queue).await;
            if depth == expected {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{why}: {queue} holds {depth}, expected {expected}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn assert_dead_depth(&self, expected: u32, why: &str) {
        self.assert_depth(&self.topology.dead_letter_queue(), expected, why)
            .await;
    }

    /// Dead-letters a body the way the worker's consumer does: to the dead-letter exchange,
    /// with the reason, the original routing key and the worker id, no message id.
    async fn worker_dead_letter(&self, body: &[u8], routing_key: Option<&str>, reason: &str) {
        let mut headers = FieldTable::default();
        headers.insert(ShortString::from("x-dead-reason"), text(reason));
        if let Some(key) = routing_key {
            headers.insert(ShortString::from("x-original-routing-key"), text(key));
        }
        headers.insert(ShortString::from("x-dead-worker"), text("worker-test"));
        self.publisher
            .publish(
                &self.topology.dead_letter_exchange(),
                routing_key.unwrap_or(""),
                body,
                headers,
                None,
            )
            .await
            .expect("dead-letter publish confirmed");
    }

    /// Consumes exactly one message from a partition queue (they refuse basic.get).
    async fn take_one_from_partition(&self, partition: u16) -> lapin::message::Delivery {
        let channel = self._connection.create_channel().await.expect("channel");
        let mut consumer = channel
            .basic_consume(
                self.topology.partition_queue(partition).as_str().into(),
                "test-take".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("consume");
        let delivery = tokio::time::timeout(Duration::from_secs(10), consumer.next())
            .await
            .expect("a message arrives on the partition")
            .expect("stream open")
            .expect("delivery");
        delivery
            .acker
            .ack(BasicAckOptions::default())
            .await
            .expect("ack");
        let _ = channel.close(200, "done".into()).await;
        delivery
    }
}

fn ids(letters: &[worker::deadletters::DeadLetter]) -> Vec<String> {
    letters.iter().map(|l| l.event_id.clone()).collect()
}

/// The broker's own dead-lettering: an event a consumer keeps failing (rejected with
/// requeue) goes to `conv.dead` after the delivery limit; list, show and replay it.
#[tokio::test]
async fn poison_event_is_listed_shown_and_replayed_to_its_partition() {
    with_fixture("poison", |fx| async move {
        let poison = envelope("wamid.POISON1", "unknown-tenant-999");
        let partition = fx.topology.partition_for(&poison.conversation_key());
        fx.publisher
            .publish_envelope(&poison)
            .await
            .expect("publish");

        // A minimal failing consumer: rejects with requeue (which counts as a failed delivery
        // on every RabbitMQ version) until the broker gives up on the event.
        let channel = fx._connection.create_channel().await.expect("channel");
        channel
            .basic_qos(1, BasicQosOptions::default())
            .await
            .expect("qos");
        let mut consumer = channel
            .basic_consume(
                fx.topology.partition_queue(partition).as_str().into(),
                "poisoned-worker".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("consume");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut deliveries = 0;
        while fx.dead_depth().await == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "never dead-lettered"
            );
            if let Ok(Some(Ok(delivery))) =
                tokio::time::timeout(Duration::from_millis(200), consumer.next()).await
            {
                deliveries += 1;
                delivery
                    .acker
                    .reject(BasicRejectOptions { requeue: true })
                    .await
                    .expect("reject");
            }
        }
        let _ = channel.close(200, "done".into()).await;
        assert!(
            deliveries >= 5,
            "dead-lettered after only {deliveries} deliveries"
        );

        let dead = DeadLetters::connect(&fx.config).await.expect("connect");
        let letters = dead.list(None).await.expect("list");
        assert_eq!(letters.len(), 1, "{letters:?}");
        let letter = &letters[0];
        assert_eq!(letter.event_id, "wamid.POISON1");
        assert_eq!(letter.reason_source, ReasonSource::Broker);
        assert!(
            letter.reason.contains("delivery_limit"),
            "{}",
            letter.reason
        );
        assert_eq!(letter.tenant.as_deref(), Some("unknown-tenant-999"));
        assert_eq!(letter.customer_pseudonym, Some(pseudonym(CUSTOMER)));
        let expected_key = Topology::partition_routing_key(partition);
        assert_eq!(
            letter.original_routing_key.as_deref(),
            Some(expected_key.as_str())
        );
        assert_eq!(letter.original_partition, Some(partition));
        assert!(
            letter.age_seconds.is_some_and(|age| age >= 170),
            "{letter:?}"
        );
        let line = format_line(letter);
        assert!(
            line.contains("wamid.POISON1") && line.contains("delivery_limit"),
            "{line}"
        );
        assert!(!line.contains(CUSTOMER), "phone number in clear: {line}");

        // show: full envelope and headers, pseudonymised unless revealed.
        let shown = dead.show("wamid.POISON1").await.expect("show");
        let hidden = shown.detail(false);
        assert_eq!(hidden["body"]["tenant"], "unknown-tenant-999");
        assert_eq!(hidden["body"]["payload"]["text"]["body"], "hola");
        assert!(hidden["headers"]["x-death"].is_array(), "{hidden}");
        assert!(!hidden.to_string().contains(CUSTOMER), "{hidden}");
        assert!(!hidden.to_string().contains("Ana"), "{hidden}");
        assert_eq!(shown.detail(true)["body"]["customer"], CUSTOMER);
        assert!(matches!(
            dead.show("wamid.NOPE").await,
            Err(DeadLetterError::NotFound(_))
        ));
        fx.assert_dead_depth(1, "show must not consume").await;

        // replay: back onto the original partition, then gone from the dead-letter queue.
        let outcomes = dead
            .replay(&Selection::Id("wamid.POISON1".into()), false)
            .await
            .expect("replay");
        assert_eq!(outcomes.len(), 1);
        assert_eq!(outcomes[0].status, ReplayStatus::Replayed, "{outcomes:?}");
        fx.assert_dead_depth(0, "replay must remove the dead letter")
            .await;
        for other in (0..PARTITIONS).filter(|p| *p != partition) {
            let queue = fx.topology.partition_queue(other);
            fx.assert_depth(&queue, 0, "replayed to a wrong partition")
                .await;
        }
        let replayed = fx.take_one_from_partition(partition).await;
        let body = shared::envelope::decode(&replayed.data).expect("still an envelope");
        assert_eq!(body, poison, "replay must not change the event");
        assert_eq!(
            replayed
                .properties
                .message_id()
                .as_ref()
                .map(|m| m.as_str()),
            Some("wamid.POISON1")
        );
        let headers = replayed.properties.headers().clone().unwrap_or_default();
        assert!(!headers.inner().contains_key(&ShortString::from("x-death")));
        assert_eq!(
            headers.inner().get(&ShortString::from("x-replays")),
            Some(&AMQPValue::LongLongInt(1))
        );
        let again = dead
            .replay(&Selection::Id("wamid.POISON1".into()), false)
            .await;
        assert!(
            matches!(again, Err(DeadLetterError::NotFound(_))),
            "replayed twice: {again:?}"
        );
        dead.close().await;
    })
    .await;
}

/// Worker-made dead letters (including an unreadable body and one without a routing key):
/// browsing, whole or partial, keeps count and order; replay removes only what it replayed.
#[tokio::test]
async fn browsing_keeps_order_and_count_and_replay_removes_only_its_target() {
    with_fixture("order", |fx| async move {
        let mut expected = Vec::new();
        for n in 0..30u16 {
            let id = format!("wamid.ORDER{n:02}");
            let body = serde_json::to_vec(&envelope(&id, "tenant-1")).expect("encode");
            let key = Topology::partition_routing_key(n % PARTITIONS);
            fx.worker_dead_letter(&body, Some(&key), "permanent: unknown service")
                .await;
            expected.push(id);
        }
        let garbage = b"{not json at all".to_vec();
        fx.worker_dead_letter(&garbage, Some("p1"), "envelope is not valid JSON")
            .await;
        let orphan = serde_json::to_vec(&envelope("wamid.ORPHAN", "tenant-1")).expect("encode");
        fx.worker_dead_letter(&orphan, None, "permanent: no partition recorded")
            .await;
        fx.assert_dead_depth(32, "dead letters published").await;

        let dead = DeadLetters::connect(&fx.config).await.expect("connect");
        let first = dead.list(None).await.expect("list");
        assert_eq!(first.len(), 32);
        assert_eq!(ids(&first[..30]), expected, "listed out of publish order");
        assert!(
            first[30].event_id.starts_with("body-sha256:"),
            "{:?}",
            first[30]
        );
        assert!(first[30].body_error.is_some());
        assert_eq!(first[31].event_id, "wamid.ORPHAN");
        assert_eq!(
            first.iter().map(|l| l.position).collect::<Vec<_>>(),
            (1..=32).collect::<Vec<_>>()
        );
        assert_eq!(first[3].reason_source, ReasonSource::Worker);
        assert_eq!(first[3].reason, "permanent: unknown service");
        assert_eq!(first[3].dead_worker.as_deref(), Some("worker-test"));
        assert_eq!(first[3].original_partition, Some(3));

        let second = dead.list(None).await.expect("list again");
        assert_eq!(
            ids(&second),
            ids(&first),
            "a second listing saw another order"
        );
        let head = dead.list(Some(5)).await.expect("partial list");
        assert_eq!(ids(&head), ids(&first[..5]));
        let after_partial = dead.list(None).await.expect("list after a partial one");
        assert_eq!(
            ids(&after_partial),
            ids(&first),
            "a partial listing reordered"
        );
        fx.assert_dead_depth(32, "listing must not consume").await;

        // A dry run changes nothing and says what it would skip.
        let plan = dead.replay(&Selection::All, true).await.expect("dry run");
        assert_eq!(plan.len(), 32);
        assert_eq!(
            plan.iter()
                .filter(|o| o.status == ReplayStatus::WouldReplay)
                .count(),
            31
        );
        assert_eq!(plan[31].status, ReplayStatus::Skipped);
        fx.assert_dead_depth(32, "a dry run must not consume").await;
        for partition in 0..PARTITIONS {
            let queue = fx.topology.partition_queue(partition);
            fx.assert_depth(&queue, 0, "a dry run must not publish")
                .await;
        }

        // Replaying one from the middle removes exactly it; the rest keep their order.
        let target = "wamid.ORDER13";
        let outcomes = dead
            .replay(&Selection::Id(target.into()), false)
            .await
            .expect("replay one");
        assert_eq!(outcomes.len(), 1);
        assert_eq!(outcomes[0].status, ReplayStatus::Replayed);
        assert_eq!(outcomes[0].routing_key.as_deref(), Some("p1"));
        let rest = dead.list(None).await.expect("list after replay");
        let mut expected_rest = ids(&first);
        expected_rest.retain(|id| id != target);
        assert_eq!(ids(&rest), expected_rest);
        let replayed = fx.take_one_from_partition(13 % PARTITIONS).await;
        assert_eq!(
            shared::envelope::decode(&replayed.data)
                .expect("envelope")
                .id,
            target
        );
        let headers = replayed.properties.headers().clone().unwrap_or_default();
        assert_eq!(header_str(&headers, "x-dead-reason"), None);

        // The one without an original partition cannot be replayed and stays put.
        let orphan = dead
            .replay(&Selection::Id("wamid.ORPHAN".into()), false)
            .await
            .expect("replay orphan");
        assert_eq!(orphan[0].status, ReplayStatus::Skipped);
        fx.assert_dead_depth(31, "only the replayed one is removed")
            .await;
        dead.close().await;
    })
    .await;
}

/// The binary end to end: `list --json` is machine-readable and pseudonymised; errors are
/// one line and a non-zero exit.
#[tokio::test]
async fn fleetctl_lists_as_json_and_fails_clearly() {
    with_fixture("bin", |fx| async move {
        for id in ["wamid.BIN1", "wamid.BIN2"] {
            let body = serde_json::to_vec(&envelope(id, "tenant-7")).expect("encode");
            fx.worker_dead_letter(&body, Some("p2"), "permanent: bad slot")
                .await;
        }
        let run = |args: &'static [&'static str], namespace: String| async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_fleetctl"))
                .args(args)
                .env("AMQP_URL", AMQP_URL)
                .env("PARTITIONS", PARTITIONS.to_string())
                .env("FLEET_NAMESPACE", namespace)
                .env_remove("TELEMETRY_HASH_KEY")
                .env_remove("RUST_LOG")
                .output()
                .await
                .expect("run fleetctl")
        };
        let output = run(&["dead-letters", "list", "--json"], fx.namespace.clone()).await;
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let listed: Value = serde_json::from_str(&stdout).expect("stdout is JSON");
        let listed = listed.as_array().expect("a JSON array");
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0]["event_id"], "wamid.BIN1");
        assert_eq!(listed[1]["event_id"], "wamid.BIN2");
        assert_eq!(listed[0]["reason"], "permanent: bad slot");
        assert_eq!(listed[0]["original_partition"], 2);
        assert_eq!(listed[0]["customer_pseudonym"], pseudonym(CUSTOMER));
        assert!(!stdout.contains(CUSTOMER), "{stdout}");
        fx.assert_dead_depth(2, "listing must not consume").await;

        let missing = run(
            &["dead-letters", "show", "wamid.NOPE"],
            fx.namespace.clone(),
        )
        .await;
        assert!(!missing.status.success());
        let stderr = String::from_utf8_lossy(&missing.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains("wamid.NOPE"), "{stderr}");

        let wrong = run(&["dead-letters", "list"], format!("{}typo.", fx.namespace)).await;
        assert!(!wrong.status.success());
        let stderr = String::from_utf8_lossy(&wrong.stderr);
        assert!(stderr.contains("FLEET_NAMESPACE"), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    })
    .await;
}

#[test]
fn ages_read_at_a_glance() {
    use worker::deadletters::format_age;
    assert_eq!(format_age(5), "5s");
    assert_eq!(format_age(125), "2m5s");
    assert_eq!(format_age(7_980), "2h13m");
    assert_eq!(format_age(3 * 86_400 + 4 * 3600), "3d4h");
    assert_eq!(
        format_age(-3),
        "0s",
        "clock skew must not print a negative age"
    );
}

/// An unreachable broker is one line that says how to start it, and a failure exit.
#[tokio::test]
async fn fleetctl_explains_an_unreachable_broker() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_fleetctl"))
        .args(["dead-letters", "list"])
        .env("AMQP_URL", "amqp://guest:secret-pw@127.0.0.1:1/%2f")
        .env_remove("RUST_LOG")
        .output()
        .await
        .expect("run fleetctl");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("127.0.0.1:1"), "{stderr}");
    assert!(stderr.contains("rabbitmq-server"), "{stderr}");
    assert!(
        !stderr.contains("secret-pw"),
        "credentials printed: {stderr}"
    );
}
