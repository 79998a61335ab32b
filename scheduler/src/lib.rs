#![forbid(unsafe_code)]
//! Scheduler: finds due timers and publishes them as events into their conversation's
//! partition. Nothing else: what a timer means (which message, whether it is still wanted) is
//! the worker's business.
//!
//! Any number of replicas run with no leader. Each round:
//! 1. read the Redis clock (one clock for all replicas, whatever their hosts' clocks say);
//! 2. claim up to `claim_batch` due timers from each shard, starting at a shard that rotates
//!    per round and differs per replica, so replicas spread over the shards instead of queueing
//!    on the same one; claims lease the timers (`shared::timers`), so replicas never publish
//!    the same timer within its lease;
//! 3. publish the claimed timers concurrently (confirms are pipelined), and remove each only
//!    after its confirm; an unconfirmed one is given back to be retried a second later;
//! 4. if any shard gave a full batch, go again at once; otherwise sleep until the next due time
//!    or `max_idle`, whichever comes first.
//!
//! **Invariant:** a timer leaves Redis only after the broker confirmed its event. Dying at any
//! point loses nothing: a claimed timer reappears when its lease ends.

pub mod metrics;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use shared::amqp::{Publisher, PublisherOptions, Topology};
use shared::config::{ConfigError, SchedulerConfig};
use shared::redis::RedisSetupError;
use shared::timers::{ClaimedTimer, TIMER_SHARDS, TimerError, TimerStore};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{Instrument, info, info_span, warn};

use crate::metrics::Metrics;

/// How long a draining scheduler may take before the process exits anyway.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

/// Publishes awaiting their confirm at once; bounds memory whatever the batch settings.
const MAX_IN_FLIGHT: usize = 1024;

/// An unconfirmed timer is due again this long after the failure: soon enough to keep
/// lateness low once the broker is back, slow enough not to spin while it is away.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// Bound on any one Redis call, so a stalled Redis shows as a failed round, not a hung loop.
const REDIS_DEADLINE: Duration = Duration::from_secs(5);

/// Confirm-mode channels on the publishing connection.
const PUBLISH_CHANNELS: usize = 4;

/// How often the pending gauge is refreshed.
const PENDING_REFRESH: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error(transparent)]
    Redis(#[from] RedisSetupError),
    #[error("admin server failed: {0}")]
    Serve(#[from] std::io::Error),
}

/// Checks what `SchedulerConfig::from_env` cannot know on its own: the settings must make
/// sense together. Called by `main` so a bad value exits with code 2 before anything starts.
pub fn check_config(config: &SchedulerConfig) -> Result<(), ConfigError> {
    if !(1..=10_000).contains(&config.claim_batch) {
        return Err(ConfigError::Invalid {
            var: "SCHEDULER_CLAIM_BATCH",
            reason: format!("{} is outside 1..=10000", config.claim_batch),
        });
    }
    if config.lease < Duration::from_secs(1) {
        return Err(ConfigError::Invalid {
            var: "SCHEDULER_LEASE_MS",
            reason: "must be at least 1000: a publish must fit in the lease with room to spare"
                .into(),
        });
    }
    if config.max_idle.is_zero() || config.max_idle > Duration::from_secs(60) {
        return Err(ConfigError::Invalid {
            var: "SCHEDULER_MAX_IDLE_MS",
            reason: "must be within 1..=60000".into(),
        });
    }
    Ok(())
}

/// A publish must end (confirmed or failed) well inside the lease, or another replica could
/// claim the timer again while its confirm is still on the way.
pub fn publish_timeout(lease: Duration) -> Duration {
    (lease / 3).min(Duration::from_secs(5))
}

struct Scheduler {
    /// The settings the loop runs by.
    config: SchedulerConfig,
    /// Where timers are claimed and completed.
    store: TimerStore,
    /// The same Redis connection as the store's, for readiness pings.
    redis: shared::redis::Redis,
    /// Confirmed publishing into the partitions.
    publisher: Publisher,
    /// Shared with the admin server.
    metrics: Arc<Metrics>,
    /// Set as soon as the drain starts: no shard is claimed after it, even mid-round.
    stopping: AtomicBool,
}

/// Runs claim rounds until `shutdown` resolves, then finishes the round in progress (every
/// claimed timer is published and completed, or given back), closes the broker connection and
/// stops the admin server.
pub async fn run(
    config: SchedulerConfig,
    admin_listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SchedulerError> {
    let redis = shared::redis::open(&config.redis_url)?;
    let store = TimerStore::new(redis.clone(), &config.common.namespace);
    let topology = Topology::new(&config.common.namespace, config.common.partitions);
    let publisher = Publisher::start(PublisherOptions {
        amqp_url: config.common.amqp_url.clone(),
        topology,
        channels: PUBLISH_CHANNELS,
        publish_timeout: publish_timeout(config.lease),
        connection_name: format!("scheduler:{}", config.common.namespace),
        on_confirmed: None,
    });
    let scheduler = Arc::new(Scheduler {
        config,
        store,
        redis,
        publisher: publisher.clone(),
        metrics: Arc::new(Metrics::new()),
        stopping: AtomicBool::new(false),
    });

    let (stop_tx, stop_rx) = watch::channel(false);
    let draining = scheduler.clone();
    tokio::spawn(async move {
        shutdown.await;
        // Stops a round in progress from claiming further shards, not only the next round.
        draining.stopping.store(true, Ordering::SeqCst);
        let _ = stop_tx.send(true);
    });

    info!(message = "Scheduler admin listening.", addr = %admin_listener.local_addr()?);
    let mut admin_stop = stop_rx.clone();
    let admin = tokio::spawn(
        axum::serve(admin_listener, router(scheduler.clone()))
            .with_graceful_shutdown(async move {
                let _ = admin_stop.wait_for(|stop| *stop).await;
            })
            .into_future(),
    );

    scheduler.run_rounds(stop_rx).await;

    publisher.close().await;
    match admin.await {
        Ok(served) => served?,
        Err(error) => warn!(message = "Admin server task failed.", %error),
    }
    info!(message = "Scheduler stopped.");
    Ok(())
}

impl Scheduler {
    async fn run_rounds(&self, mut stop: watch::Receiver<bool>) {
        // A different starting shard per replica, then one step per round.
        let mut start_shard: u16 = rand::random::<u16>() % TIMER_SHARDS;
        let mut pending_refreshed: Option<tokio::time::Instant> = None;
        loop {
            if *stop.borrow() || self.stopping.load(Ordering::SeqCst) {
                break;
            }
            let round_started = tokio::time::Instant::now();
            let outcome = self.round(start_shard).await;
            start_shard = (start_shard + 1) % TIMER_SHARDS;
            self.metrics.rounds.inc();

            if pending_refreshed.is_none_or(|at| at.elapsed() >= PENDING_REFRESH) {
                pending_refreshed = Some(tokio::time::Instant::now());
                if let Ok(Ok(pending)) =
                    tokio::time::timeout(REDIS_DEADLINE, self.store.pending()).await
                {
                    self.metrics
                        .pending
                        .set(i64::try_from(pending).unwrap_or(i64::MAX));
                }
            }

            let wait = match outcome {
                Round::Full => continue,
                Round::Drained { now } => self.idle_wait(now, round_started).await,
                Round::Failed => self.config.max_idle.max(Duration::from_millis(500)),
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|stop| *stop) => {}
            }
        }
        info!(message = "Scheduler loop drained.");
    }

    /// How long to sleep after a round that emptied every shard's due timers.
    async fn idle_wait(
        &self,
        round_now: DateTime<Utc>,
        round_started: tokio::time::Instant,
    ) -> Duration {
        let max_idle = self.config.max_idle;
        let Ok(Ok(Some(next_due))) =
            tokio::time::timeout(REDIS_DEADLINE, self.store.next_due()).await
        else {
            return max_idle;
        };
        // The Redis clock now, estimated without another round trip.
        let elapsed = chrono::Duration::from_std(round_started.elapsed()).unwrap_or_default();
        let until_due = (next_due - (round_now + elapsed))
            .to_std()
            .unwrap_or(Duration::ZERO);
        until_due.min(max_idle)
    }

    /// One pass over every shard, starting at `start_shard`.
    async fn round(&self, start_shard: u16) -> Round {
        if !self.publisher.is_ready() {
            // Claiming now would only lease timers we cannot publish.
            return Round::Failed;
        }
        let now = match tokio::time::timeout(REDIS_DEADLINE, self.store.now()).await {
            Ok(Ok(now)) => now,
            Ok(Err(error)) => {
                self.metrics.claim_failures.inc();
                warn!(message = "Could not read the Redis clock.", %error);
                return Round::Failed;
            }
            Err(_) => {
                self.metrics.claim_failures.inc();
                warn!(message = "Reading the Redis clock timed out.");
                return Round::Failed;
            }
        };
        let batch = self.config.claim_batch;
        let full = AtomicBool::new(false);
        let failed = AtomicBool::new(false);
        let shards = (0..TIMER_SHARDS).map(|step| (start_shard + step) % TIMER_SHARDS);
        futures::stream::iter(shards)
            .take_while(|_| std::future::ready(!self.stopping.load(Ordering::SeqCst)))
            .then(|shard| {
                let (full, failed) = (&full, &failed);
                async move {
                    match self.claim(shard, now, batch).await {
                        Ok(claimed) => {
                            if claimed.len() >= batch {
                                full.store(true, Ordering::Relaxed);
                            }
                            claimed
                        }
                        Err(error) => {
                            failed.store(true, Ordering::Relaxed);
                            self.metrics.claim_failures.inc();
                            warn!(message = "Claiming due timers failed.", %error, shard);
                            Vec::new()
                        }
                    }
                }
            })
            .flat_map(futures::stream::iter)
            .for_each_concurrent(MAX_IN_FLIGHT, |claimed| self.fire(claimed))
            .await;
        if full.load(Ordering::Relaxed) {
            Round::Full
        } else if failed.load(Ordering::Relaxed) {
            Round::Failed
        } else {
            Round::Drained { now }
        }
    }

    async fn claim(
        &self,
        shard: u16,
        now: DateTime<Utc>,
        batch: usize,
    ) -> Result<Vec<ClaimedTimer>, TimerError> {
        tokio::time::timeout(
            REDIS_DEADLINE,
            self.store.claim_due(shard, now, self.config.lease, batch),
        )
        .await
        .unwrap_or_else(|_| Err(TimerError::Invalid("claim timed out".into())))
    }

    /// Publishes one claimed timer and removes it once confirmed, or gives it back.
    async fn fire(&self, claimed: ClaimedTimer) {
        let envelope = claimed.envelope(Utc::now());
        let span = info_span!(
            "timer.fire",
            timer = %claimed.timer.id,
            tenant = %claimed.timer.tenant,
            customer = %shared::telemetry::pseudonym(&claimed.timer.customer),
        );
        async {
            match self.publisher.publish_envelope(&envelope).await {
                Ok(()) => {
                    let lateness = (Utc::now() - claimed.timer.due)
                        .to_std()
                        .unwrap_or(Duration::ZERO);
                    self.metrics.lateness_seconds.observe(lateness.as_secs_f64());
                    self.metrics.fired.inc();
                    let completed =
                        tokio::time::timeout(REDIS_DEADLINE, self.store.complete(&claimed)).await;
                    if !matches!(completed, Ok(Ok(()))) {
                        self.metrics.complete_failures.inc();
                        warn!(message = "Published timer could not be removed; it will fire again when its lease ends.");
                    }
                }
                Err(error) => {
                    self.metrics.publish_failures.inc();
                    warn!(message = "Timer publish was not confirmed; retrying shortly.", %error);
                    let retry_at = claimed.timer.due.max(Utc::now())
                        + chrono::Duration::from_std(RETRY_DELAY).unwrap_or_default();
                    // If this fails too, the lease brings the timer back anyway.
                    let _ =
                        tokio::time::timeout(REDIS_DEADLINE, self.store.release(&claimed, retry_at))
                            .await;
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn redis_usable(&self) -> bool {
        shared::redis::ping(&self.redis).await.is_ok()
    }
}

/// What a round found, which decides how long to wait before the next.
enum Round {
    /// Some shard had more due timers than one batch: go again at once.
    Full,
    /// Every due timer was handled, as of the Redis clock reading `now`.
    Drained { now: DateTime<Utc> },
    /// Redis or the broker is unavailable: back off.
    Failed,
}

fn router(scheduler: Arc<Scheduler>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readiness))
        .route("/metrics", get(render_metrics))
        .with_state(scheduler)
}

async fn readiness(State(scheduler): State<Arc<Scheduler>>) -> Response {
    if !scheduler.publisher.is_ready() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "broker connection not ready",
        )
            .into_response();
    }
    if !scheduler.redis_usable().await {
        return (StatusCode::SERVICE_UNAVAILABLE, "Redis not reachable").into_response();
    }
    (StatusCode::OK, "ready").into_response()
}

async fn render_metrics(State(scheduler): State<Arc<Scheduler>>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        scheduler.metrics.render(),
    )
        .into_response()
}
