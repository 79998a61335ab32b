use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use lapin::options::{BasicAckOptions, BasicGetOptions};
use lapin::{Channel, Connection, ConnectionProperties};
use shared::amqp::Topology;
use shared::config::{Env, IngressConfig};
use shared::envelope::Envelope;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const APP_SECRET: &str = "test-app-secret";
pub const VERIFY_TOKEN: &str = "test-verify-token";
pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

pub struct TestApp {
    pub addr: SocketAddr,
    pub namespace: String,
    pub topology: Topology,
    pub http: reqwest::Client,
    pub channel: Channel,
    _connection: Connection,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), ingress::IngressError>>>,
    /// Set by `finish`; otherwise `Drop` deletes the namespace.
    finished: bool,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if !self.finished {
            self.topology
                .delete_from_drop("amqp://guest:guest@127.0.0.1:5672/%2f");
        }
    }
}

pub fn unique_namespace(tag: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "test.ingress.{tag}.{}.{}.",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The real telemetry stack, installed once per test process, so trace propagation is tested
/// as it runs in production.
fn init_telemetry() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let env = Env::from_pairs([("RUST_LOG", "warn")]);
        if let Ok(guard) = shared::telemetry::init("ingress-test", &env) {
            // Lives for the whole test process.
            std::mem::forget(guard);
        }
    });
}

pub async fn spawn_app(tag: &str, partitions: u16) -> TestApp {
    spawn_app_with(tag, partitions, &[]).await
}

/// [`spawn_app`] with more (or overriding) configuration variables.
pub async fn spawn_app_with(tag: &str, partitions: u16, settings: &[(&str, &str)]) -> TestApp {
    init_telemetry();
    let namespace = unique_namespace(tag);
    let partitions_text = partitions.to_string();
    let mut pairs = vec![
        ("WHATSAPP_APP_SECRET", APP_SECRET),
        ("WHATSAPP_VERIFY_TOKEN", VERIFY_TOKEN),
        ("AMQP_URL", AMQP_URL),
        ("PARTITIONS", partitions_text.as_str()),
        ("FLEET_NAMESPACE", namespace.as_str()),
        ("INGRESS_PUBLISH_TIMEOUT_MS", "2000"),
    ];
    pairs.extend_from_slice(settings);
    let env = Env::from_pairs(pairs);
    let config = IngressConfig::from_env(&env).expect("test config is valid");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind port 0");
    let addr = listener.local_addr().expect("local addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(ingress::run(config, listener, async {
        let _ = stopped.await;
    }));
    let connection = Connection::connect(AMQP_URL, ConnectionProperties::default())
        .await
        .expect("RabbitMQ must be running on 127.0.0.1:5672 (see .ci/run)");
    let channel = connection.create_channel().await.expect("channel");
    let app = TestApp {
        addr,
        topology: Topology::new(&namespace, partitions),
        namespace,
        http: reqwest::Client::new(),
        channel,
        _connection: connection,
        stop: Some(stop),
        server: Some(server),
        finished: false,
    };
    app.wait_ready(Duration::from_secs(10)).await;
    app
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn wait_ready(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let ready = self
                .http
                .get(self.url("/readyz"))
                .send()
                .await
                .map(|r| r.status() == 200)
                .unwrap_or(false);
            if ready {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "ingress did not become ready within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics body")
    }

    pub async fn post_signed(&self, body: &[u8]) -> reqwest::Response {
        let signature = ingress::signature::header_value(APP_SECRET.as_bytes(), body);
        self.http
            .post(self.url("/webhook"))
            .header("content-type", "application/json")
            .header("x-hub-signature-256", signature)
            .body(body.to_vec())
            .send()
            .await
            .expect("request reaches ingress")
    }

    /// Consumes exactly `expected` events from the partition queues (per-partition order is
    /// kept), then waits briefly to make sure no extra event follows. Partition queues are
    /// single-active-consumer quorum queues, which refuse `basic.get`, hence a consumer.
    pub async fn take_events(&self, expected: usize) -> Vec<(u16, Envelope)> {
        self.take_deliveries(expected)
            .await
            .into_iter()
            .map(|(partition, body, _)| {
                let envelope =
                    shared::envelope::decode(&body).expect("ingress publishes valid envelopes");
                (partition, envelope)
            })
            .collect()
    }

    pub async fn take_deliveries(
        &self,
        expected: usize,
    ) -> Vec<(u16, Vec<u8>, lapin::types::FieldTable)> {
        self.take_deliveries_between(expected, expected).await
    }

    /// Like [`Self::take_deliveries`], for when at-least-once delivery allows duplicates.
    pub async fn take_deliveries_between(
        &self,
        at_least: usize,
        at_most: usize,
    ) -> Vec<(u16, Vec<u8>, lapin::types::FieldTable)> {
        let expected = at_least;
        use futures::StreamExt;
        let channel = self._connection.create_channel().await.expect("channel");
        channel
            .basic_qos(2000, lapin::options::BasicQosOptions::default())
            .await
            .expect("qos");
        let mut streams = Vec::new();
        for partition in 0..self.topology.partitions() {
            let consumer = channel
                .basic_consume(
                    self.topology.partition_queue(partition).as_str().into(),
                    format!("test-reader-{partition}").as_str().into(),
                    lapin::options::BasicConsumeOptions::default(),
                    lapin::types::FieldTable::default(),
                )
                .await
                .expect("consume");
            streams.push(consumer.map(move |delivery| (partition, delivery)).boxed());
        }
        let mut merged = futures::stream::select_all(streams);
        let mut taken = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let wait = if taken.len() < expected {
                deadline.saturating_duration_since(tokio::time::Instant::now())
            } else {
                Duration::from_millis(300)
            };
            match tokio::time::timeout(wait, merged.next()).await {
                Ok(Some((partition, Ok(delivery)))) => {
                    delivery
                        .acker
                        .ack(BasicAckOptions::default())
                        .await
                        .expect("ack");
                    let headers = delivery.properties.headers().clone().unwrap_or_default();
                    taken.push((partition, delivery.data.clone(), headers));
                }
                Ok(Some((_, Err(error)))) => panic!("consumer failed: {error}"),
                Ok(None) | Err(_) => break,
            }
        }
        drop(merged);
        let _ = channel.close(200, "done".into()).await;
        assert!(
            (at_least..=at_most).contains(&taken.len()),
            "expected {at_least}..={at_most} events, got {}",
            taken.len()
        );
        taken
    }

    /// Takes every message in a queue, with its headers.
    pub async fn drain_queue(&self, queue: &str) -> Vec<(Vec<u8>, lapin::types::FieldTable)> {
        let mut messages = Vec::new();
        while let Some(message) = self
            .channel
            .basic_get(queue.into(), BasicGetOptions::default())
            .await
            .expect("basic.get")
        {
            message
                .delivery
                .acker
                .ack(BasicAckOptions::default())
                .await
                .expect("ack");
            let headers = message
                .delivery
                .properties
                .headers()
                .clone()
                .unwrap_or_default();
            messages.push((message.delivery.data.clone(), headers));
        }
        messages
    }

    /// Stops the server, waits for the drain, and deletes the namespace's queues.
    pub async fn finish(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let drained = tokio::time::timeout(Duration::from_secs(10), server).await;
            assert!(drained.is_ok(), "ingress did not drain within 10 s");
        }
        self.topology
            .delete(&self.channel)
            .await
            .expect("delete test topology");
        self.finished = true;
    }
}

pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/whatsapp")
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_dir().join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}
