use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chrono_tz::Tz;
use engine::Tenants;
use fakes::calcom::{EventTypeConfig, FakeCalcom, FakeCalcomConfig, WeeklySchedule};
use fakes::whatsapp::{BusinessNumber, Customer, FakeConfig, FakeWhatsApp, Outbound, TemplateSpec};
use shared::config::{Env, IngressConfig, SchedulerConfig, WorkerConfig};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const APP_SECRET: &str = "e2e-app-secret";
pub const ACCESS_TOKEN: &str = "e2e-access-token";
pub const CALCOM_KEY: &str = "cal_test_e2e";
/// The English salon (built-in calendar) and the Spanish clinic (Cal.com) of the example file.
pub const SALON: &str = "106540352242922";
pub const CLINIC: &str = "106540352242923";

pub fn tenants_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/tenants.toml")
}

pub struct Task {
    stop: oneshot::Sender<()>,
    handle: JoinHandle<()>,
}

/// Knobs for tests that need a different world than the example one.
#[derive(Default)]
pub struct FleetOptions {
    /// Tenants TOML to use instead of config/tenants.toml.
    pub tenants_toml: Option<String>,
    /// Per-number messages per second the fake WhatsApp allows (Meta's default is 80).
    pub whatsapp_throughput: Option<u32>,
}

pub struct Fleet {
    pub namespace: String,
    pub partitions: u16,
    pub whatsapp: fakes::whatsapp::RunningFake,
    pub calcom: fakes::calcom::RunningFake,
    pub tenants: Tenants,
    ingress: Option<Task>,
    pub workers: Vec<Option<Task>>,
    scheduler: Option<Task>,
    ingress_url: String,
    tenants_path: PathBuf,
    pub processes: Vec<std::process::Child>,
    /// Receives the handoff webhooks the tenants file configures.
    pub agent: AgentWebhook,
    /// Publishers of processors handed out by `processor`; closed before the namespace goes,
    /// so none declares its queues again after the cleanup.
    processor_publishers: std::sync::Mutex<Vec<shared::amqp::Publisher>>,
    /// Set by `finish`; otherwise `Drop` removes the namespace.
    cleaned: bool,
}

/// Signing key of the salon's handoff webhook in these tests.
pub const HANDOFF_SECRET: &str = "e2e-handoff-secret";

/// Each handoff webhook received: its `X-Signature-256` header and its body.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(Option<String>, Vec<u8>)>>>;

/// A loopback stand-in for an agent tool's webhook: records every request it receives.
pub struct AgentWebhook {
    pub url: String,
    pub received: Received,
    _server: JoinHandle<()>,
}

impl AgentWebhook {
    async fn start() -> Self {
        use axum::extract::State;
        let received: Received = Default::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/handoff", listener.local_addr().expect("addr"));
        let app = axum::Router::new()
            .route(
                "/handoff",
                axum::routing::post(
                    |State(received): State<Received>,
                     headers: axum::http::HeaderMap,
                     body: axum::body::Bytes| async move {
                        let signature = headers
                            .get("x-signature-256")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned);
                        if let Ok(mut all) = received.lock() {
                            all.push((signature, body.to_vec()));
                        }
                        "ok"
                    },
                ),
            )
            .with_state(received.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url,
            received,
            _server: server,
        }
    }

    pub fn requests(&self) -> Vec<(Option<String>, Vec<u8>)> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

fn unique_namespace(tag: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "test.e2e.{tag}.{}.{}.",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn stoppable<F>(make: impl FnOnce(oneshot::Receiver<()>) -> F) -> Task
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let (stop, stopped) = oneshot::channel();
    Task {
        stop,
        handle: tokio::spawn(make(stopped)),
    }
}

impl Fleet {
    pub async fn start(tag: &str, workers: usize) -> Fleet {
        Self::start_with(tag, workers, FleetOptions::default()).await
    }

    pub async fn start_with(tag: &str, workers: usize, options: FleetOptions) -> Fleet {
        let namespace = unique_namespace(tag);
        let partitions = 4u16;
        // Agents' webhook: a loopback receiver, so handoffs never leave the machine.
        let agent = AgentWebhook::start().await;
        let toml = match &options.tenants_toml {
            Some(toml) => toml.clone(),
            None => std::fs::read_to_string(tenants_file()).expect("example tenants file"),
        };
        let toml = toml.replace(
            "https://hooks.bella-hair.example/whatsapp-handoff",
            &agent.url,
        );
        let tenants_path = std::env::temp_dir().join(format!("{namespace}tenants.toml"));
        std::fs::write(&tenants_path, &toml).expect("write tenants file");
        let text = std::fs::read_to_string(&tenants_path).expect("tenants file");
        let tenants = Tenants::from_toml_str(&text).expect("example tenants file is valid");

        let businesses = tenants
            .iter()
            .map(|tenant| BusinessNumber {
                phone_number_id: tenant.phone_number_id.clone(),
                display_phone_number: format!("1555{}", &tenant.phone_number_id[..7]),
                waba_id: format!("waba-{}", tenant.phone_number_id),
                templates: tenant
                    .templates
                    .values()
                    .flat_map(|per_lang| [per_lang.en.clone(), per_lang.es.clone()])
                    .flatten()
                    .map(|t| {
                        let mut spec = TemplateSpec::new(&t.name, &t.language_code, t.parameters);
                        spec.quick_reply_buttons = t.quick_replies.len();
                        spec
                    })
                    .collect(),
            })
            .collect();
        let mut whatsapp_config = FakeConfig {
            access_token: ACCESS_TOKEN.into(),
            app_secret: APP_SECRET.into(),
            businesses,
            ..FakeConfig::default()
        };
        whatsapp_config.statuses.enabled = true;
        if let Some(throughput) = options.whatsapp_throughput {
            whatsapp_config.limits.throughput_per_second = throughput;
        }
        let whatsapp = FakeWhatsApp::spawn(whatsapp_config)
            .await
            .expect("fake WhatsApp");

        let madrid: Tz = "Europe/Madrid".parse().expect("zone");
        let mut calcom_config = FakeCalcomConfig::default().with_api_key(CALCOM_KEY);
        if let Some(clinic) = tenants.get(CLINIC) {
            for service in &clinic.services {
                if let Some(id) = service.calcom_event_type_id {
                    calcom_config = calcom_config.with_event_type(EventTypeConfig::new(
                        id,
                        service.id.clone(),
                        service.minutes,
                        madrid,
                        WeeklySchedule::weekdays(9, 19),
                    ));
                }
            }
        }
        let calcom = FakeCalcom::start(calcom_config)
            .await
            .expect("fake Cal.com");

        let partitions_text = partitions.to_string();
        let env = Env::from_pairs([
            ("WHATSAPP_APP_SECRET", APP_SECRET),
            ("WHATSAPP_VERIFY_TOKEN", "verify"),
            ("PARTITIONS", partitions_text.as_str()),
            ("FLEET_NAMESPACE", namespace.as_str()),
        ]);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let ingress_url = format!("http://{}/webhook", listener.local_addr().expect("addr"));
        let ingress_config = IngressConfig::from_env(&env).expect("ingress config");
        let ingress = stoppable(|stopped| async move {
            let _ = ingress::run(ingress_config, listener, async {
                let _ = stopped.await;
            })
            .await;
        });
        whatsapp.set_webhook_url(&ingress_url);

        let scheduler_config = SchedulerConfig::from_env(&Env::from_pairs([
            ("PARTITIONS", partitions_text.as_str()),
            ("FLEET_NAMESPACE", namespace.as_str()),
            ("SCHEDULER_MAX_IDLE_MS", "100"),
        ]))
        .expect("scheduler config");
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let scheduler = stoppable(|stopped| async move {
            let _ = scheduler::run(scheduler_config, admin, async {
                let _ = stopped.await;
            })
            .await;
        });

        let mut fleet = Fleet {
            namespace,
            partitions,
            whatsapp,
            calcom,
            tenants,
            ingress: Some(ingress),
            workers: Vec::new(),
            scheduler: Some(scheduler),
            ingress_url,
            tenants_path,
            processes: Vec::new(),
            agent,
            processor_publishers: Default::default(),
            cleaned: false,
        };
        for _ in 0..workers {
            fleet.start_worker().await;
        }
        if workers > 0 {
            fleet.wait_until_consuming().await;
        }
        fleet
    }

    pub fn worker_config(&self, index: usize) -> WorkerConfig {
        let partitions = self.partitions.to_string();
        let worker_id = format!("e2e-worker-{index}");
        let graph = self.whatsapp.graph_base_url();
        let calcom = self.calcom.base_url();
        let tenants = self.tenants_path.display().to_string();
        let env = Env::from_pairs([
            ("PARTITIONS", partitions.as_str()),
            ("FLEET_NAMESPACE", self.namespace.as_str()),
            ("WHATSAPP_ACCESS_TOKEN", ACCESS_TOKEN),
            ("WHATSAPP_API_BASE", graph.as_str()),
            ("CALCOM_API_BASE", calcom.as_str()),
            ("CALCOM_API_KEY", CALCOM_KEY),
            ("TENANTS_FILE", tenants.as_str()),
            ("WORKER_ID", worker_id.as_str()),
            ("BELLA_HANDOFF_SECRET", HANDOFF_SECRET),
        ]);
        WorkerConfig::from_env(&env).expect("worker config")
    }

    pub async fn start_worker(&mut self) -> usize {
        let index = self.workers.len();
        let config = self.worker_config(index);
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let task = stoppable(|stopped| async move {
            if let Err(error) = worker::run(config, admin, async {
                let _ = stopped.await;
            })
            .await
            {
                panic!("worker failed: {error}");
            }
        });
        self.workers.push(Some(task));
        index
    }

    /// A worker's event processor on its own, for tests that stop an event part-way as a
    /// crash would. It shares the fleet's namespace, fakes and tenants.
    pub async fn processor(&self) -> worker::processor::Processor {
        let config = self.worker_config(900);
        let redis = shared::redis::open(&config.redis_url).expect("redis");
        let publisher = shared::amqp::Publisher::start(shared::amqp::PublisherOptions {
            amqp_url: config.common.amqp_url.clone(),
            topology: shared::amqp::Topology::new(&self.namespace, self.partitions),
            channels: 1,
            publish_timeout: Duration::from_secs(5),
            connection_name: format!("{}processor", self.namespace),
            on_confirmed: None,
        });
        // Connected (and its topology declared) before the test starts, so it cannot declare
        // anything after `finish` has cleaned up.
        assert!(
            publisher.wait_ready(Duration::from_secs(10)).await,
            "processor's publisher connected"
        );
        if let Ok(mut publishers) = self.processor_publishers.lock() {
            publishers.push(publisher.clone());
        }
        let tenants = worker::fleet::load_tenants(&config).expect("tenants");
        worker::fleet::build_processor(
            &config,
            &tenants,
            redis,
            publisher,
            std::sync::Arc::new(worker::metrics::Metrics::new()),
        )
        .expect("processor")
    }

    /// A real `worker` process, so it can be killed with SIGKILL.
    pub fn start_worker_process(&mut self) -> usize {
        let index = 100 + self.processes.len();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_worker"))
            .env("PARTITIONS", self.partitions.to_string())
            .env("FLEET_NAMESPACE", &self.namespace)
            .env("WHATSAPP_ACCESS_TOKEN", ACCESS_TOKEN)
            .env("WHATSAPP_API_BASE", self.whatsapp.graph_base_url())
            .env("CALCOM_API_BASE", self.calcom.base_url())
            .env("CALCOM_API_KEY", CALCOM_KEY)
            .env("TENANTS_FILE", &self.tenants_path)
            .env("WORKER_ID", format!("e2e-process-{index}"))
            .env("WORKER_ADMIN_ADDR", "127.0.0.1:0")
            .env("BELLA_HANDOFF_SECRET", HANDOFF_SECRET)
            // FLEET_TEST_LOG=info (or any filter) shows the worker processes' logs when a
            // test needs explaining.
            .env(
                "RUST_LOG",
                std::env::var("FLEET_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("spawn worker process");
        self.processes.push(child);
        self.processes.len() - 1
    }

    /// SIGKILL: no drain, no goodbye; in-flight deliveries return to the broker.
    pub fn kill_worker_process(&mut self, index: usize) {
        let child = &mut self.processes[index];
        child.kill().expect("kill -9");
        let _ = child.wait();
    }

    /// Graceful stop of one worker (as SIGTERM would).
    pub async fn stop_worker(&mut self, index: usize) {
        if let Some(task) = self.workers.get_mut(index).and_then(Option::take) {
            let _ = task.stop.send(());
            let stopped = tokio::time::timeout(Duration::from_secs(12), task.handle).await;
            assert!(stopped.is_ok(), "worker {index} did not drain within 12 s");
        }
    }

    /// Waits until every partition has a consumer.
    pub async fn wait_until_consuming(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let owned = self.partition_consumers().await;
            if owned.iter().all(|&c| c >= 1) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "partitions not consumed: {owned:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Consumers per partition queue, as the broker sees them.
    pub async fn partition_consumers(&self) -> Vec<u32> {
        let connection = lapin::Connection::connect(
            "amqp://guest:guest@127.0.0.1:5672/%2f",
            lapin::ConnectionProperties::default(),
        )
        .await
        .expect("RabbitMQ");
        let channel = connection.create_channel().await.expect("channel");
        let topology = shared::amqp::Topology::new(&self.namespace, self.partitions);
        let mut counts = Vec::new();
        for partition in 0..self.partitions {
            let declared = channel
                .queue_declare(
                    topology.partition_queue(partition).as_str().into(),
                    lapin::options::QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    lapin::types::FieldTable::default(),
                )
                .await;
            counts.push(declared.map(|q| q.consumer_count()).unwrap_or(0));
        }
        let _ = connection.close(200, "done".into()).await;
        counts
    }

    pub fn customer(wa_id: &str, name: &str) -> Customer {
        Customer::new(wa_id, name)
    }

    /// The next message the bot sends this customer.
    pub async fn next_reply(&self, business: &str, customer: &str) -> Outbound {
        self.whatsapp
            .next_message_to(business, customer, Duration::from_secs(15))
            .await
            .unwrap_or_else(|| panic!("no reply to {customer} within 15 s"))
            .message
    }

    /// Takes `n` handoffs from the handoff inbox, as agent tooling would.
    pub async fn take_handoffs(&self, n: usize) -> Vec<serde_json::Value> {
        let connection = lapin::Connection::connect(
            "amqp://guest:guest@127.0.0.1:5672/%2f",
            lapin::ConnectionProperties::default(),
        )
        .await
        .expect("RabbitMQ");
        let channel = connection.create_channel().await.expect("channel");
        let queue = shared::amqp::Topology::new(&self.namespace, self.partitions).handoff_queue();
        let mut taken = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while taken.len() < n && tokio::time::Instant::now() < deadline {
            match channel
                .basic_get(
                    queue.as_str().into(),
                    lapin::options::BasicGetOptions { no_ack: true },
                )
                .await
                .expect("basic.get")
            {
                Some(message) => taken
                    .push(serde_json::from_slice(&message.delivery.data).expect("handoff is JSON")),
                None => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        assert_eq!(taken.len(), n, "handoffs received");
        let _ = connection.close(200, "done".into()).await;
        taken
    }

    /// An agent releases the conversation back to the bot.
    pub async fn release(&self, business: &str, wa_id: &str) {
        let publisher = shared::amqp::Publisher::start(shared::amqp::PublisherOptions {
            amqp_url: "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned().into(),
            topology: shared::amqp::Topology::new(&self.namespace, self.partitions),
            channels: 1,
            publish_timeout: Duration::from_secs(5),
            connection_name: "e2e-agent".into(),
            on_confirmed: None,
        });
        assert!(publisher.wait_ready(Duration::from_secs(10)).await);
        worker::control::release_conversation(&publisher, business, wa_id, "ticket-1")
            .await
            .expect("release published");
        publisher.close().await;
    }

    /// The Cal.com event type and start of the slot a conversation holds, from its state.
    pub async fn held_calcom_slot(&self, wa_id: &str) -> (u64, chrono::DateTime<chrono::Utc>) {
        let redis =
            shared::redis::open(&"redis://127.0.0.1:6379".to_owned().into()).expect("redis");
        let store = worker::store::StateStore::new(redis, worker::keys::Keys::new(&self.namespace));
        // The state is saved after the reply is sent: wait for it.
        let mut state = store.load(CLINIC, wa_id).await.expect("state");
        for _ in 0..50 {
            if state.stage.hold().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            state = store.load(CLINIC, wa_id).await.expect("state");
        }
        let hold = state.stage.hold().expect("the conversation holds a slot");
        let event_type = hold
            .slot
            .resource
            .strip_prefix("calcom:")
            .and_then(|id| id.parse().ok())
            .expect("a Cal.com resource");
        (event_type, hold.slot.start)
    }

    /// Posts one signed webhook delivery straight to ingress, as WhatsApp (re)delivers it.
    pub async fn post_webhook(&self, body: &[u8]) -> u16 {
        reqwest::Client::new()
            .post(&self.ingress_url)
            .header(
                "x-hub-signature-256",
                ingress::signature::header_value(APP_SECRET.as_bytes(), body),
            )
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }

    pub async fn finish(mut self) {
        for child in &mut self.processes {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.tenants_path);
        for index in 0..self.workers.len() {
            self.stop_worker(index).await;
        }
        let publishers = self
            .processor_publishers
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default();
        for publisher in publishers {
            publisher.close().await;
        }
        for task in [self.scheduler.take(), self.ingress.take()]
            .into_iter()
            .flatten()
        {
            let _ = task.stop.send(());
            let _ = tokio::time::timeout(Duration::from_secs(10), task.handle).await;
        }
        cleanup(&self.namespace, self.partitions).await;
        self.cleaned = true;
    }
}

impl Drop for Fleet {
    /// A failing test must not leave worker processes running, nor queues and keys behind on
    /// the shared services (every leftover quorum queue costs the broker CPU for good).
    fn drop(&mut self) {
        for child in &mut self.processes {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !self.cleaned {
            let namespace = self.namespace.clone();
            let partitions = self.partitions;
            let _ = std::thread::spawn(move || {
                if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    runtime.block_on(cleanup(&namespace, partitions));
                }
            })
            .join();
        }
    }
}

pub async fn cleanup(namespace: &str, partitions: u16) {
    let connection = lapin::Connection::connect(
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        lapin::ConnectionProperties::default(),
    )
    .await
    .expect("RabbitMQ");
    let channel = connection.create_channel().await.expect("channel");
    let _ = shared::amqp::Topology::new(namespace, partitions)
        .delete(&channel)
        .await;
    let client = redis::Client::open("redis://127.0.0.1:6379").expect("redis url");
    let mut redis = client
        .get_multiplexed_async_connection()
        .await
        .expect("Redis");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{namespace}*"))
        .query_async(&mut redis)
        .await
        .unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut redis).await;
    }
}
