//! The worker as a fleet member: join, own partitions, follow rebalances, drain on shutdown.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lapin::{Connection, ConnectionProperties};
use secrecy::{ExposeSecret, SecretString};
use shared::amqp::{Publisher, PublisherOptions, Topology};
use shared::calcom::{CalcomClient, CalcomConfig};
use shared::config::WorkerConfig;
use shared::timers::TimerStore;
use shared::whatsapp::{ClientConfig, WhatsAppClient};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::calendar::{BuiltinCalendar, CalcomCalendar, Calendar};
use crate::consumer::{ConsumerContext, consume_partition};
use crate::handoff::Handoff;
use crate::holds::Holds;
use crate::keys::Keys;
use crate::lease::Leases;
use crate::membership::{Membership, assign};
use crate::metrics::Metrics;
use crate::outbound::Outbox;
use crate::processor::{Calendars, Processor, index_tenants};
use crate::store::StateStore;

/// How often membership is refreshed and partitions reconciled.
const HEARTBEAT: Duration = Duration::from_millis(1000);
/// A worker silent this long is considered gone and its partitions move.
const MEMBER_EXPIRY: Duration = Duration::from_millis(5000);
/// How often a worker waiting for a partition's lease asks again. The previous owner releases
/// it the moment its drain ends, so this bounds how long a handed-over partition sits idle.
const LEASE_POLL: Duration = Duration::from_millis(100);
/// The whole drain on shutdown; Kubernetes' default grace period is 30 s, ours is 10 s.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(9);

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("tenants file {path}: {reason}")]
    Tenants { path: String, reason: String },
    #[error(transparent)]
    Redis(#[from] shared::redis::RedisSetupError),
    #[error("WHATSAPP_ACCESS_TOKEN is required to reply to customers")]
    MissingAccessToken,
    #[error("WhatsApp client: {0}")]
    WhatsApp(#[from] shared::whatsapp::BuildError),
    #[error("Cal.com client: {0}")]
    Calcom(#[from] shared::calcom::CalcomConfigError),
    #[error("admin server: {0}")]
    Admin(#[from] std::io::Error),
}

struct Health {
    consuming: AtomicBool,
    redis_ok: AtomicBool,
}

/// Joins the fleet and processes owned partitions until `shutdown` resolves, then stops
/// consuming, finishes and acks in-flight events, leaves the membership and exits.
pub async fn run(
    config: WorkerConfig,
    admin_listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), WorkerError> {
    // A broken tenants file is named before any service is contacted.
    let tenants = load_tenants(&config)?;
    let namespace = config.common.namespace.clone();
    let topology = Topology::new(&namespace, config.common.partitions);
    let redis = shared::redis::open(&config.redis_url)?;
    shared::redis::ping(&redis).await?;
    let keys = Keys::new(&namespace);
    let publisher = Publisher::start(PublisherOptions {
        amqp_url: config.common.amqp_url.clone(),
        topology: topology.clone(),
        channels: 2,
        publish_timeout: Duration::from_secs(5),
        connection_name: format!("worker:{namespace}:{}:publish", config.worker_id),
        on_confirmed: None,
    });
    let metrics = Arc::new(Metrics::new());
    let processor = build_processor(
        &config,
        &tenants,
        redis.clone(),
        publisher.clone(),
        metrics.clone(),
    )?;
    let context = Arc::new(ConsumerContext {
        processor,
        publisher: publisher.clone(),
        topology: topology.clone(),
        metrics: metrics.clone(),
        worker_id: config.worker_id.clone(),
        prefetch: config.prefetch,
    });
    let health = Arc::new(Health {
        consuming: AtomicBool::new(false),
        redis_ok: AtomicBool::new(true),
    });
    let admin = tokio::spawn(serve_admin(admin_listener, metrics.clone(), health.clone()));

    let membership = Membership::new(redis.clone(), &keys, &config.worker_id, MEMBER_EXPIRY);
    // A dead worker's leases lapse together with its membership.
    let leases = Leases::new(redis.clone(), &keys, &config.worker_id, MEMBER_EXPIRY);
    let (stop_tx, mut stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });

    let mut partitions = Partitions::default();
    let mut connection: Option<Arc<Connection>> = None;
    let mut ticker = tokio::time::interval(HEARTBEAT);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    info!(message = "Worker started.", worker = %config.worker_id, partitions = config.common.partitions);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop_rx.changed() => break,
        }
        if *stop_rx.borrow() {
            break;
        }
        // A dead connection takes every partition task down with it: reconnect and restart.
        let alive = connection.as_ref().is_some_and(|c| c.status().connected());
        if !alive {
            partitions.forget_all();
            match connect(
                &config.common.amqp_url,
                &topology,
                &config.worker_id,
                &namespace,
            )
            .await
            {
                Ok(fresh) => connection = Some(Arc::new(fresh)),
                Err(error) => {
                    warn!(message = "Broker not reachable; retrying.", %error);
                    health.consuming.store(false, Ordering::Relaxed);
                    continue;
                }
            }
        }
        let Some(live) = connection.clone() else {
            continue;
        };
        let wanted: BTreeSet<u16> = match membership.heartbeat().await {
            Ok(members) => {
                health.redis_ok.store(true, Ordering::Relaxed);
                assign(config.common.partitions, &members)
                    .remove(&config.worker_id)
                    .unwrap_or_default()
                    .into_iter()
                    .collect()
            }
            Err(error) => {
                // Keep what we have: the broker still guarantees one consumer per partition.
                warn!(message = "Membership heartbeat failed.", %error);
                health.redis_ok.store(false, Ordering::Relaxed);
                partitions.owned()
            }
        };
        partitions.reconcile(&wanted, &context, &live, &leases);
        metrics
            .partitions_owned
            .set(partitions.owned().len() as i64);
        health.consuming.store(true, Ordering::Relaxed);
    }

    info!(message = "Draining.");
    health.consuming.store(false, Ordering::Relaxed);
    let _ = membership.leave().await;
    let drained = tokio::time::timeout(SHUTDOWN_LIMIT, partitions.stop_all()).await;
    if drained.is_err() {
        warn!(message = "Drain deadline passed; unfinished deliveries return to the broker.");
    }
    if let Some(connection) = connection {
        let _ = connection.close(200, "worker stopped".into()).await;
    }
    publisher.close().await;
    admin.abort();
    info!(message = "Worker stopped.");
    Ok(())
}

/// The tenants file the configuration names, read and checked.
pub fn load_tenants(config: &WorkerConfig) -> Result<engine::Tenants, WorkerError> {
    let invalid = |reason: String| WorkerError::Tenants {
        path: config.tenants_file.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(&config.tenants_file).map_err(|e| invalid(e.to_string()))?;
    engine::Tenants::from_toml_str(&text).map_err(|e| invalid(e.to_string()))
}

/// Everything an event needs: the tenants, state, holds, calendars, the outbox and its
/// WhatsApp client, timers and handoff.
pub fn build_processor(
    config: &WorkerConfig,
    tenants: &engine::Tenants,
    redis: shared::redis::Redis,
    publisher: Publisher,
    metrics: Arc<Metrics>,
) -> Result<Processor, WorkerError> {
    // Handoff signing secrets come from the variables the file names, as they were at start-up.
    let env = &config.secrets;
    let handoff_secrets: BTreeMap<String, SecretString> = tenants
        .iter()
        .filter_map(|t| {
            let name = t.handoff.secret_env.as_deref()?;
            Some((t.phone_number_id.clone(), env.optional_secret(name)?))
        })
        .collect();
    let namespace = &config.common.namespace;
    let keys = Keys::new(namespace);
    let token = config
        .whatsapp_access_token
        .clone()
        .ok_or(WorkerError::MissingAccessToken)?;
    let mut whatsapp_config = ClientConfig::new(token);
    whatsapp_config.api_base = config.whatsapp_api_base.clone();
    let whatsapp = WhatsAppClient::new(whatsapp_config)?;
    let calcom = match &config.calcom_api_key {
        Some(key) => {
            let mut calcom_config =
                CalcomConfig::new(key.clone()).with_base_url(config.calcom_api_base.clone());
            let limit = config.calcom_rate_limit_per_minute;
            calcom_config.rate_limit = shared::calcom::RateLimit {
                max_requests: limit,
                window: Duration::from_secs(60),
                // A sixth of the budget may go out back to back (20 of the standard 120).
                burst: (limit / 6).clamp(1, limit - 1),
            };
            let client = CalcomClient::new(calcom_config)?;
            Some(Calendar::Calcom(CalcomCalendar::new(client)))
        }
        None => None,
    };
    Ok(Processor {
        tenants: index_tenants(tenants),
        calendars: Calendars {
            builtin: Calendar::Builtin(BuiltinCalendar::new(redis.clone(), keys.clone())),
            calcom,
        },
        store: StateStore::new(redis.clone(), keys.clone()),
        holds: Holds::new(redis.clone(), keys.clone()),
        outbox: Outbox::new(redis.clone(), keys.clone(), whatsapp),
        timers: TimerStore::new(redis.clone(), namespace),
        handoff: Handoff::new(publisher, handoff_secrets),
        metrics,
    })
}

async fn connect(
    url: &SecretString,
    topology: &Topology,
    worker_id: &str,
    namespace: &str,
) -> Result<Connection, lapin::Error> {
    let properties = ConnectionProperties::default()
        .with_connection_name(format!("worker:{namespace}:{worker_id}:consume").into());
    let connection = Connection::connect(url.expose_secret(), properties).await?;
    let channel = connection.create_channel().await?;
    topology.declare(&channel).await?;
    let _ = channel.close(200, "declared".into()).await;
    Ok(connection)
}

/// The partition consumers this worker runs.
#[derive(Default)]
struct Partitions {
    running: HashMap<u16, (watch::Sender<bool>, JoinHandle<()>)>,
    /// Released partitions still finishing their in-flight deliveries; not restarted until done.
    stopping: HashMap<u16, JoinHandle<()>>,
}

impl Partitions {
    fn owned(&self) -> BTreeSet<u16> {
        self.running.keys().copied().collect()
    }

    fn reconcile(
        &mut self,
        wanted: &BTreeSet<u16>,
        context: &Arc<ConsumerContext>,
        connection: &Arc<Connection>,
        leases: &Leases,
    ) {
        self.stopping.retain(|_, handle| !handle.is_finished());
        // Tasks that died (channel error) are restarted below.
        self.running.retain(|_, (_, handle)| !handle.is_finished());
        let released: Vec<u16> = self
            .running
            .keys()
            .filter(|p| !wanted.contains(p))
            .copied()
            .collect();
        for partition in released {
            if let Some((stop, handle)) = self.running.remove(&partition) {
                let _ = stop.send(true);
                self.stopping.insert(partition, handle);
            }
        }
        for &partition in wanted {
            if self.running.contains_key(&partition) || self.stopping.contains_key(&partition) {
                continue;
            }
            let (stop, stopped) = watch::channel(false);
            let handle = tokio::spawn(own_partition(
                context.clone(),
                connection.clone(),
                leases.clone(),
                partition,
                stopped,
            ));
            self.running.insert(partition, (stop, handle));
        }
    }

    /// After a connection loss every task is dead or dying; start over.
    fn forget_all(&mut self) {
        for (_, (_, handle)) in self.running.drain() {
            handle.abort();
        }
        for (_, handle) in self.stopping.drain() {
            handle.abort();
        }
    }

    async fn stop_all(&mut self) {
        let mut handles = Vec::new();
        for (_, (stop, handle)) in self.running.drain() {
            let _ = stop.send(true);
            handles.push(handle);
        }
        handles.extend(self.stopping.drain().map(|(_, handle)| handle));
        for handle in handles {
            let _ = handle.await;
        }
    }
}

/// Consumes `partition` while holding its lease: from before subscribing until nothing of it
/// is in flight here any more (see [`crate::lease`]).
async fn own_partition(
    context: Arc<ConsumerContext>,
    connection: Arc<Connection>,
    leases: Leases,
    partition: u16,
    mut stop: watch::Receiver<bool>,
) {
    if !await_lease(&leases, partition, &mut stop).await {
        return;
    }
    let renewing = async {
        loop {
            tokio::time::sleep(HEARTBEAT).await;
            match leases.try_acquire(partition).await {
                Ok(true) => {}
                // Only after this worker could not renew for a whole expiry. The broker still
                // keeps the other worker's consumer waiting behind this one, and the next
                // rebalance settles who owns the partition.
                Ok(false) => warn!(
                    message = "Partition lease taken by another worker.",
                    partition
                ),
                Err(error) => warn!(message = "Partition lease renewal failed.", partition, %error),
            }
        }
    };
    let consumed = tokio::select! {
        consumed = consume_partition(context, connection, partition, stop) => consumed,
        never = renewing => match never {},
    };
    if let Err(error) = consumed {
        warn!(message = "Partition consumer failed.", partition, %error);
    }
    // Every delivery received here is settled or back with the broker: the next owner may
    // subscribe. If this fails, the lease lapses on its own.
    if let Err(error) = leases.release(partition).await {
        warn!(message = "Partition lease release failed.", partition, %error);
    }
}

/// Waits until this worker holds the lease on `partition`; `false` if told to stop first.
async fn await_lease(leases: &Leases, partition: u16, stop: &mut watch::Receiver<bool>) -> bool {
    // Polled ten times a second: each condition is logged when it starts, not on every poll.
    let (mut told_waiting, mut told_unreachable) = (false, false);
    loop {
        if *stop.borrow() {
            return false;
        }
        match leases.try_acquire(partition).await {
            Ok(true) => return true,
            Ok(false) => {
                told_unreachable = false;
                if !told_waiting {
                    info!(
                        message = "Waiting for the previous owner to finish the partition.",
                        partition
                    );
                    told_waiting = true;
                }
            }
            Err(error) => {
                if !told_unreachable {
                    warn!(message = "Partition lease not reachable; retrying.", partition, %error);
                    told_unreachable = true;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(LEASE_POLL) => {}
            changed = stop.changed() => {
                if changed.is_err() {
                    return false;
                }
            }
        }
    }
}

async fn serve_admin(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
) -> Result<(), std::io::Error> {
    #[derive(Clone)]
    struct AdminState {
        metrics: Arc<Metrics>,
        health: Arc<Health>,
    }
    async fn ready(State(state): State<AdminState>) -> Response {
        let consuming = state.health.consuming.load(Ordering::Relaxed);
        let redis = state.health.redis_ok.load(Ordering::Relaxed);
        if consuming && redis {
            (StatusCode::OK, "ready").into_response()
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
        }
    }
    async fn render(State(state): State<AdminState>) -> Response {
        (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            state.metrics.render(),
        )
            .into_response()
    }
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(render))
        .with_state(AdminState { metrics, health });
    axum::serve(listener, app).await
}
