//! The smallest in-process fleet a traced conversation needs: fake WhatsApp and Cal.com,
//! ingress and one worker on the real Redis and RabbitMQ, in a namespace of its own.
//! (Trimmed from tests/e2e/fleet.rs: test binaries cannot share modules, and this binary
//! must stay alone because it installs the process-wide subscriber.)

use std::path::PathBuf;
use std::time::Duration;

use chrono_tz::Tz;
use engine::Tenants;
use fakes::calcom::{EventTypeConfig, FakeCalcom, FakeCalcomConfig, WeeklySchedule};
use fakes::whatsapp::{BusinessNumber, FakeConfig, FakeWhatsApp, TemplateSpec};
use shared::config::{Env, IngressConfig, WorkerConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const APP_SECRET: &str = "tracing-app-secret";
pub const ACCESS_TOKEN: &str = "tracing-access-token";
pub const CALCOM_KEY: &str = "cal_test_tracing";
/// The Spanish clinic of the example file: its calendar is Cal.com, so the trace also
/// covers outbound calendar HTTP.
pub const CLINIC: &str = "106540352242923";

const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const REDIS_URL: &str = "redis://127.0.0.1:6379";

struct Task {
    stop: oneshot::Sender<()>,
    handle: JoinHandle<()>,
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

pub struct Fleet {
    namespace: String,
    partitions: u16,
    pub whatsapp: fakes::whatsapp::RunningFake,
    _calcom: fakes::calcom::RunningFake,
    tasks: Vec<Task>,
}

impl Fleet {
    pub async fn start() -> Fleet {
        let namespace = format!("test.tracing.{}.", std::process::id());
        let partitions = 2u16;
        let tenants_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/tenants.toml");
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
        // Status webhooks make their own traces; they must not disturb the message's one.
        whatsapp_config.statuses.enabled = true;
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

        let graph = whatsapp.graph_base_url();
        let calcom_base = calcom.base_url();
        let tenants_text = tenants_path.display().to_string();
        let worker_config = WorkerConfig::from_env(&Env::from_pairs([
            ("PARTITIONS", partitions_text.as_str()),
            ("FLEET_NAMESPACE", namespace.as_str()),
            ("WHATSAPP_ACCESS_TOKEN", ACCESS_TOKEN),
            ("WHATSAPP_API_BASE", graph.as_str()),
            ("CALCOM_API_BASE", calcom_base.as_str()),
            ("CALCOM_API_KEY", CALCOM_KEY),
            ("TENANTS_FILE", tenants_text.as_str()),
            ("WORKER_ID", "tracing-worker"),
        ]))
        .expect("worker config");
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let worker = stoppable(|stopped| async move {
            if let Err(error) = worker::run(worker_config, admin, async {
                let _ = stopped.await;
            })
            .await
            {
                panic!("worker failed: {error}");
            }
        });

        let fleet = Fleet {
            namespace,
            partitions,
            whatsapp,
            _calcom: calcom,
            tasks: vec![worker, ingress],
        };
        fleet.wait_until_consuming().await;
        fleet
    }

    /// Waits until every partition has a consumer, so the first message is not parked.
    async fn wait_until_consuming(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let connection =
                lapin::Connection::connect(AMQP_URL, lapin::ConnectionProperties::default())
                    .await
                    .expect("RabbitMQ");
            let channel = connection.create_channel().await.expect("channel");
            let topology = shared::amqp::Topology::new(&self.namespace, self.partitions);
            let mut consumed = true;
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
                consumed &= declared.is_ok_and(|q| q.consumer_count() >= 1);
            }
            let _ = connection.close(200, "done".into()).await;
            if consumed {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "partitions not consumed within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops worker and ingress, then removes the namespace from RabbitMQ and Redis.
    pub async fn finish(mut self) {
        for task in self.tasks.drain(..) {
            let _ = task.stop.send(());
            let _ = tokio::time::timeout(Duration::from_secs(12), task.handle).await;
        }
        let connection =
            lapin::Connection::connect(AMQP_URL, lapin::ConnectionProperties::default())
                .await
                .expect("RabbitMQ");
        let channel = connection.create_channel().await.expect("channel");
        let _ = shared::amqp::Topology::new(&self.namespace, self.partitions)
            .delete(&channel)
            .await;
        let client = redis::Client::open(REDIS_URL).expect("redis url");
        let mut redis = client
            .get_multiplexed_async_connection()
            .await
            .expect("Redis");
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.namespace))
            .query_async(&mut redis)
            .await
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut redis).await;
        }
    }
}
