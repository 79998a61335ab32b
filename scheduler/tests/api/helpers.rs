#![allow(dead_code)] // Shared with the process tests, which use only part of it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties};
use serde_json::json;
use shared::amqp::Topology;
use shared::config::{Env, SchedulerConfig};
use shared::envelope::Envelope;
use shared::timers::{TimerSpec, TimerStore};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// One isolated fleet: its own namespace of keys and queues, a timer store on it, a reader of
/// its partitions, and whichever schedulers a test starts.
pub struct TestFleet {
    pub namespace: String,
    pub partitions: u16,
    pub topology: Topology,
    pub store: TimerStore,
    pub redis: shared::redis::Redis,
    pub http: reqwest::Client,
    connection: Connection,
    channel: Channel,
    reader: Option<Reader>,
    schedulers: Vec<RunningScheduler>,
    /// Set by `finish`; otherwise `Drop` deletes the namespace's queues.
    finished: bool,
}

impl Drop for TestFleet {
    /// A test that panics before `finish` must not leave quorum queues on the shared broker.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        self.topology
            .delete_from_drop("amqp://guest:guest@127.0.0.1:5672/%2f");
    }
}

/// A scheduler started in this process with `scheduler::run`.
pub struct RunningScheduler {
    pub admin: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), scheduler::SchedulerError>>,
}

/// An event as a worker would have received it, with the instant it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub partition: u16,
    pub envelope: Envelope,
    pub at: DateTime<Utc>,
}

/// Consumes every partition queue from the moment the fleet exists, so nothing published
/// during a test is missed. Partition queues are single-active-consumer quorum queues, which
/// refuse `basic.get`, hence consumers.
struct Reader {
    events: mpsc::UnboundedReceiver<Received>,
    channel: Channel,
}

pub fn unique_namespace(tag: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "test.scheduler.{tag}.{}.{}.",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn init_telemetry() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let env = Env::from_pairs([("RUST_LOG", "warn")]);
        if let Ok(guard) = shared::telemetry::init("scheduler-test", &env) {
            // Lives for the whole test process.
            std::mem::forget(guard);
        }
    });
}

pub async fn fleet(tag: &str, partitions: u16) -> TestFleet {
    init_telemetry();
    let namespace = unique_namespace(tag);
    let redis = shared::redis::open(&REDIS_URL.to_owned().into()).expect("redis");
    shared::redis::ping(&redis)
        .await
        .expect("Redis must be running on 127.0.0.1:6379");
    let connection = Connection::connect(AMQP_URL, ConnectionProperties::default())
        .await
        .expect("RabbitMQ must be running on 127.0.0.1:5672");
    let channel = connection.create_channel().await.expect("channel");
    let topology = Topology::new(&namespace, partitions);
    topology.declare(&channel).await.expect("declare topology");
    let reader = start_reader(&connection, &topology).await;
    TestFleet {
        store: TimerStore::new(redis.clone(), &namespace),
        redis,
        namespace,
        partitions,
        topology,
        http: reqwest::Client::new(),
        connection,
        channel,
        reader: Some(reader),
        schedulers: Vec::new(),
        finished: false,
    }
}

async fn start_reader(connection: &Connection, topology: &Topology) -> Reader {
    let channel = connection.create_channel().await.expect("channel");
    channel
        .basic_qos(5000, BasicQosOptions::default())
        .await
        .expect("qos");
    let mut streams = Vec::new();
    for partition in 0..topology.partitions() {
        let consumer = channel
            .basic_consume(
                topology.partition_queue(partition).as_str().into(),
                format!("test-reader-{partition}").as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("consume");
        streams.push(consumer.map(move |delivery| (partition, delivery)).boxed());
    }
    let (sender, events) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut merged = futures::stream::select_all(streams);
        while let Some((partition, delivery)) = merged.next().await {
            let Ok(delivery) = delivery else { break };
            let at = Utc::now();
            let _ = delivery.acker.ack(BasicAckOptions::default()).await;
            let envelope = shared::envelope::decode(&delivery.data)
                .expect("the scheduler publishes valid envelopes");
            if sender
                .send(Received {
                    partition,
                    envelope,
                    at,
                })
                .is_err()
            {
                break;
            }
        }
    });
    Reader { events, channel }
}

pub fn spec(id: &str, due: DateTime<Utc>, customer: &str) -> TimerSpec {
    TimerSpec {
        id: id.to_owned(),
        due,
        tenant: "106540352242922".into(),
        customer: customer.to_owned(),
        payload: json!({ "kind": "reminder", "booking": id }),
    }
}

impl TestFleet {
    /// Scheduler settings for this fleet; `extra` overrides or adds variables.
    pub fn env_pairs(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut vars: HashMap<String, String> = [
            ("AMQP_URL", AMQP_URL),
            ("REDIS_URL", REDIS_URL),
            ("FLEET_NAMESPACE", self.namespace.as_str()),
            ("SCHEDULER_MAX_IDLE_MS", "100"),
            ("RUST_LOG", "warn"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        vars.insert("PARTITIONS".into(), self.partitions.to_string());
        for (k, v) in extra {
            vars.insert((*k).to_owned(), (*v).to_owned());
        }
        vars.into_iter().collect()
    }

    pub fn config(&self, extra: &[(&str, &str)]) -> SchedulerConfig {
        let pairs = self.env_pairs(extra);
        let env = Env::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let config = SchedulerConfig::from_env(&env).expect("test config is valid");
        scheduler::check_config(&config).expect("test config is consistent");
        config
    }

    /// Starts a scheduler in this process and waits until it is ready; returns its admin
    /// address.
    pub async fn start_scheduler(&mut self, extra: &[(&str, &str)]) -> SocketAddr {
        let config = self.config(extra);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind port 0");
        let admin = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(scheduler::run(config, listener, async {
            let _ = stopped.await;
        }));
        self.schedulers.push(RunningScheduler {
            admin,
            stop: Some(stop),
            task,
        });
        self.wait_ready(admin, Duration::from_secs(15)).await;
        admin
    }

    pub async fn wait_ready(&self, admin: SocketAddr, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let ready = self
                .http
                .get(format!("http://{admin}/readyz"))
                .send()
                .await
                .map(|r| r.status() == 200)
                .unwrap_or(false);
            if ready {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "scheduler did not become ready within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn metrics(&self, admin: SocketAddr) -> String {
        self.http
            .get(format!("http://{admin}/metrics"))
            .send()
            .await
            .expect("metrics reachable")
            .text()
            .await
            .expect("metrics text")
    }

    /// Schedules many timers at once.
    pub async fn schedule_all(&self, timers: &[TimerSpec]) {
        futures::stream::iter(timers)
            .map(|timer| self.store.schedule(timer))
            .buffer_unordered(64)
            .for_each(|scheduled| async move {
                scheduled.expect("schedule");
            })
            .await;
    }

    /// Waits until at least `at_least` events arrived (failing after `within`), then keeps
    /// listening for `quiet` to catch any extra one, and returns everything received.
    pub async fn receive(
        &mut self,
        at_least: usize,
        within: Duration,
        quiet: Duration,
    ) -> Vec<Received> {
        let reader = self.reader.as_mut().expect("reader running");
        let mut received = Vec::new();
        let deadline = tokio::time::Instant::now() + within;
        while received.len() < at_least {
            match tokio::time::timeout_at(deadline, reader.events.recv()).await {
                Ok(Some(event)) => received.push(event),
                Ok(None) => panic!("reader stopped"),
                Err(_) => panic!(
                    "only {} of {at_least} events arrived within {within:?}",
                    received.len()
                ),
            }
        }
        let quiet_until = tokio::time::Instant::now() + quiet;
        while let Ok(Some(event)) = tokio::time::timeout_at(quiet_until, reader.events.recv()).await
        {
            received.push(event);
        }
        received
    }

    /// Asks every scheduler to stop and checks each drains within the deadline.
    pub async fn stop_schedulers(&mut self) {
        for mut running in self.schedulers.drain(..) {
            if let Some(stop) = running.stop.take() {
                let _ = stop.send(());
            }
            let drained = tokio::time::timeout(scheduler::DRAIN_DEADLINE, running.task)
                .await
                .expect("scheduler drains within the deadline");
            drained
                .expect("scheduler task")
                .expect("scheduler ran cleanly");
        }
    }

    /// Stops the schedulers and deletes the namespace's keys and queues.
    pub async fn finish(mut self) {
        self.stop_schedulers().await;
        if let Some(reader) = self.reader.take() {
            let _ = reader.channel.close(200, "done".into()).await;
        }
        delete_keys(&self.redis, &self.namespace).await;
        self.topology
            .delete(&self.channel)
            .await
            .expect("delete test topology");
        let _ = self.connection.close(200, "done".into()).await;
        self.finished = true;
    }
}

/// SCAN + DEL of every key of the namespace.
pub async fn delete_keys(redis: &shared::redis::Redis, namespace: &str) {
    let mut connection = redis.connection();
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{namespace}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut connection)
            .await
            .expect("SCAN");
        if !keys.is_empty() {
            let _: i64 = redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut connection)
                .await
                .expect("DEL");
        }
        if next == 0 {
            return;
        }
        cursor = next;
    }
}

/// How many times each timer id was published.
pub fn counts_by_id(received: &[Received]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for event in received {
        *counts.entry(event.envelope.id.clone()).or_insert(0) += 1;
    }
    counts
}

/// A Prometheus counter's value from `/metrics` text.
pub fn counter(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| {
            let (metric, value) = line.split_once(' ')?;
            (metric == name).then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0.0)
}
