//! Benchmarks for the scheduler's targets, against the real Redis and RabbitMQ.
//!
//! `lateness`: schedules N timers due within the same minute (or all at the same instant),
//! starts the real `scheduler` binary (child processes, so their memory is their own),
//! consumes the published events from the partition queues and reports, per timer, the time
//! from its due time to its arrival in the partition: p50, p99, max.
//!
//! `memory`: writes N outstanding timers (due over the next 30 days, realistic ids and
//! payloads), reports Redis memory per timer (`INFO memory` delta and `MEMORY USAGE` of the
//! keys), then starts the scheduler on top of them, makes a burst of timers due among them,
//! and reports the scheduler's resident memory idle and at its peak while firing.
//!
//! Everything runs in its own namespace, deleted at the end.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use serde_json::json;
use shared::amqp::Topology;
use shared::timers::{TIMER_SHARDS, TimerSpec, TimerStore};

#[derive(Parser)]
#[command(about = "Scheduler firing lateness and memory benchmarks")]
struct Args {
    #[command(subcommand)]
    mode: Mode,
    #[arg(
        long,
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
        global = true
    )]
    amqp_url: String,
    #[arg(long, default_value = "redis://127.0.0.1:6379", global = true)]
    redis_url: String,
    #[arg(long, default_value_t = 16, global = true)]
    partitions: u16,
    /// Path of the scheduler binary; defaults to the one next to this executable.
    #[arg(long, global = true)]
    scheduler_bin: Option<std::path::PathBuf>,
}

#[derive(Subcommand)]
enum Mode {
    /// Firing lateness of timers all due within one window.
    Lateness {
        #[arg(long, default_value_t = 10_000)]
        timers: usize,
        /// Width of the window the due times are spread over, in milliseconds (0 = all due
        /// at the same instant).
        #[arg(long, default_value_t = 60_000)]
        spread_ms: i64,
        /// Scheduler replicas running at once.
        #[arg(long, default_value_t = 1)]
        replicas: usize,
    },
    /// Redis memory per outstanding timer and scheduler memory on top of them.
    Memory {
        #[arg(long, default_value_t = 1_000_000)]
        timers: usize,
        /// Timers made due at once while the scheduler runs over the outstanding ones.
        #[arg(long, default_value_t = 50_000)]
        burst: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let namespace = format!("bench.scheduler.{}.", std::process::id());
    let redis = shared::redis::open(&args.redis_url.clone().into())?;
    shared::redis::ping(&redis).await?;
    let store = TimerStore::new(redis.clone(), &namespace);
    let connection = Connection::connect(&args.amqp_url, ConnectionProperties::default())
        .await
        .context("RabbitMQ")?;
    let channel = connection.create_channel().await?;
    let topology = Topology::new(&namespace, args.partitions);
    topology.declare(&channel).await?;
    let bench = Bench {
        namespace: namespace.clone(),
        store,
        redis: redis.clone(),
        topology: topology.clone(),
        connection,
        scheduler_bin: match &args.scheduler_bin {
            Some(path) => path.clone(),
            None => std::env::current_exe()?
                .parent()
                .context("executable directory")?
                .join("scheduler"),
        },
        amqp_url: args.amqp_url.clone(),
        redis_url: args.redis_url.clone(),
        partitions: args.partitions,
    };
    let outcome = match args.mode {
        Mode::Lateness {
            timers,
            spread_ms,
            replicas,
        } => bench.lateness(timers, spread_ms, replicas).await,
        Mode::Memory { timers, burst } => bench.memory(timers, burst).await,
    };
    delete_keys(&redis, &namespace).await?;
    topology.delete(&channel).await?;
    outcome
}

struct Bench {
    namespace: String,
    store: TimerStore,
    redis: shared::redis::Redis,
    topology: Topology,
    connection: Connection,
    scheduler_bin: std::path::PathBuf,
    amqp_url: String,
    redis_url: String,
    partitions: u16,
}

/// A scheduler child process, stopped with SIGTERM when dropped.
struct SchedulerProcess {
    child: Child,
}

impl SchedulerProcess {
    fn rss_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

impl Drop for SchedulerProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Bench {
    fn spawn_scheduler(&self, index: usize) -> anyhow::Result<SchedulerProcess> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(&self.scheduler_bin)
            .env("AMQP_URL", &self.amqp_url)
            .env("REDIS_URL", &self.redis_url)
            .env("PARTITIONS", self.partitions.to_string())
            .env("FLEET_NAMESPACE", &self.namespace)
            .env("SCHEDULER_ADMIN_ADDR", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", self.scheduler_bin.display()))?;
        eprintln!("scheduler replica {index} started (pid {})", child.id());
        Ok(SchedulerProcess { child })
    }

    async fn schedule_all(&self, timers: impl Iterator<Item = TimerSpec>) -> anyhow::Result<()> {
        let mut results = futures::stream::iter(timers)
            .map(|timer| async move { self.store.schedule(&timer).await })
            .buffer_unordered(256);
        while let Some(result) = results.next().await {
            result?;
        }
        Ok(())
    }

    async fn lateness(&self, total: usize, spread_ms: i64, replicas: usize) -> anyhow::Result<()> {
        // Leave time to write every timer before the first falls due.
        let start = Utc::now() + chrono::Duration::seconds(8);
        let timers = (0..total).map(|i| {
            let offset = if spread_ms == 0 {
                0
            } else {
                (i as i64 * spread_ms) / total as i64
            };
            realistic_timer(i, start + chrono::Duration::milliseconds(offset))
        });
        let written = Instant::now();
        self.schedule_all(timers).await?;
        eprintln!(
            "scheduled {total} timers in {:.2} s",
            written.elapsed().as_secs_f64()
        );
        if Utc::now() >= start {
            bail!("writing the timers took longer than the head start; lower --timers");
        }
        let processes = (0..replicas)
            .map(|i| self.spawn_scheduler(i))
            .collect::<anyhow::Result<Vec<_>>>()?;

        let channel = self.connection.create_channel().await?;
        channel.basic_qos(5000, BasicQosOptions::default()).await?;
        let mut streams = Vec::new();
        for partition in 0..self.topology.partitions() {
            let consumer = channel
                .basic_consume(
                    self.topology.partition_queue(partition).as_str().into(),
                    format!("bench-{partition}").as_str().into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            streams.push(consumer);
        }
        let mut merged = futures::stream::select_all(streams);
        let mut lateness_us: Vec<i64> = Vec::with_capacity(total);
        let mut seen: HashMap<String, u32> = HashMap::with_capacity(total);
        let deadline = tokio::time::Instant::now()
            + Duration::from_millis(8_000 + spread_ms.max(0) as u64)
            + Duration::from_secs(60);
        while seen.len() < total {
            let Ok(Some(delivery)) = tokio::time::timeout_at(deadline, merged.next()).await else {
                bail!("only {} of {total} timers arrived", seen.len());
            };
            let delivery = delivery?;
            let arrived = Utc::now();
            delivery.acker.ack(BasicAckOptions::default()).await?;
            let envelope = shared::envelope::decode(&delivery.data)?;
            let due: DateTime<Utc> = envelope
                .payload
                .get("due")
                .and_then(|d| d.as_str())
                .context("timer event without due")?
                .parse()?;
            let count = seen.entry(envelope.id).or_insert(0);
            *count += 1;
            if *count == 1 {
                lateness_us.push((arrived - due).num_microseconds().unwrap_or(i64::MAX));
            }
        }
        drop(processes);
        drop(merged);
        let _ = channel.close(200, "done".into()).await;
        lateness_us.sort_unstable();
        let duplicates: u32 = seen.values().map(|n| n - 1).sum();
        let ms = |p: f64| {
            let index = ((lateness_us.len() as f64 * p).ceil() as usize)
                .saturating_sub(1)
                .min(lateness_us.len() - 1);
            lateness_us[index] as f64 / 1000.0
        };
        println!(
            "lateness: {total} timers due within {spread_ms} ms, {replicas} replica(s), {} partitions",
            self.partitions
        );
        println!(
            "  p50 {:.1} ms | p99 {:.1} ms | max {:.1} ms | min {:.1} ms | duplicates {duplicates}",
            ms(0.50),
            ms(0.99),
            ms(1.0),
            lateness_us[0] as f64 / 1000.0
        );
        Ok(())
    }

    async fn memory(&self, total: usize, burst: usize) -> anyhow::Result<()> {
        let before = used_memory(&self.redis).await?;
        let now = Utc::now();
        let month_ms = 30 * 24 * 3600 * 1000_i64;
        let timers = (0..total).map(|i| {
            // Spread over the next 30 days, starting a day out so none falls due here.
            let offset = 24 * 3600 * 1000 + (i as i64 * 7919 * 1000) % month_ms;
            realistic_timer(i, now + chrono::Duration::milliseconds(offset))
        });
        let written = Instant::now();
        self.schedule_all(timers).await?;
        let seconds = written.elapsed().as_secs_f64();
        let after = used_memory(&self.redis).await?;
        let pending = self.store.pending().await?;
        let mut keys_bytes = 0_u64;
        let mut connection = self.redis.connection();
        for shard in 0..TIMER_SHARDS {
            for key in [self.store.due_key(shard), self.store.data_key(shard)] {
                let bytes: Option<u64> = redis::cmd("MEMORY")
                    .arg("USAGE")
                    .arg(&key)
                    .arg("SAMPLES")
                    .arg(0)
                    .query_async(&mut connection)
                    .await?;
                keys_bytes += bytes.unwrap_or(0);
            }
        }
        drop(connection);
        let sample = realistic_timer(0, now);
        let record_bytes = serde_json::to_string(&json!({
            "d": 0_i64, "t": sample.tenant, "c": sample.customer, "p": sample.payload
        }))?
        .len();
        println!(
            "memory: {pending} outstanding timers written in {seconds:.1} s ({:.0}/s)",
            total as f64 / seconds
        );
        println!(
            "  Redis used_memory delta {:.1} MiB = {:.0} B/timer; MEMORY USAGE of the 32 keys = {:.0} B/timer",
            (after.saturating_sub(before)) as f64 / 1048576.0,
            after.saturating_sub(before) as f64 / total as f64,
            keys_bytes as f64 / total as f64
        );
        println!(
            "  (id {} B, stored record {record_bytes} B per timer in this sample)",
            sample.id.len()
        );

        let process = self.spawn_scheduler(0)?;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (idle_rss, _) = process.rss_kib();
        let burst_due = Utc::now();
        let burst_timers = (0..burst).map(|i| realistic_timer(total + i, burst_due));
        self.schedule_all(burst_timers).await?;
        let firing = Instant::now();
        let mut peak_seen = 0;
        loop {
            let pending = self.store.pending().await?;
            let (_, peak) = process.rss_kib();
            peak_seen = peak_seen.max(peak);
            if pending <= total as u64 {
                break;
            }
            if firing.elapsed() > Duration::from_secs(300) {
                bail!("the burst did not drain within 300 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let fired_in = firing.elapsed().as_secs_f64();
        let (rss_after, peak) = process.rss_kib();
        println!(
            "  scheduler over {total} outstanding: RSS idle {:.1} MiB; burst of {burst} fired in {fired_in:.1} s ({:.0}/s); RSS after {:.1} MiB, peak {:.1} MiB",
            idle_rss as f64 / 1024.0,
            burst as f64 / fired_in,
            rss_after as f64 / 1024.0,
            peak.max(peak_seen) as f64 / 1024.0
        );
        drop(process);
        Ok(())
    }
}

/// A timer shaped like the ones the worker writes: a reminder of a booking, with the fields a
/// reminder template needs.
fn realistic_timer(i: usize, due: DateTime<Utc>) -> TimerSpec {
    TimerSpec {
        id: format!("bk_{i:012}:reminder:24h"),
        due,
        tenant: "106540352242922".into(),
        customer: format!("346{:08}", i % 100_000_000),
        payload: json!({
            "kind": "reminder",
            "booking": format!("bk_{i:012}"),
            "offset": "24h",
        }),
    }
}

async fn used_memory(redis: &shared::redis::Redis) -> anyhow::Result<u64> {
    let mut connection = redis.connection();
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut connection)
        .await?;
    info.lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|value| value.trim().parse().ok())
        .context("used_memory missing from INFO")
}

async fn delete_keys(redis: &shared::redis::Redis, namespace: &str) -> anyhow::Result<()> {
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
            .await?;
        if !keys.is_empty() {
            let _: i64 = redis::cmd("UNLINK")
                .arg(&keys)
                .query_async(&mut connection)
                .await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}
