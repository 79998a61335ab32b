//! Load benchmark for ingress, compared side by side with the raw broker in the same run.
//!
//! Starts the real `ingress` binary (a child process, so its memory is its own), sends signed
//! single-message deliveries at rising concurrency, and reports acknowledged deliveries per
//! second with p50/p99/p99.9 latency. In the same run, against the same broker, it publishes the
//! same envelopes straight through lapin with publisher confirms at the same concurrency: the
//! ceiling ingress is measured against. The two sides alternate in one-second rounds, so both
//! see the broker and the host in the same state. Finally it runs at half the saturation rate (open loop)
//! for the latency target, and reports ingress's resident memory.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use hyper_util::rt::TokioIo;
use ingress::broker_wal::WalWatch;
use ingress::host_watch::HostWatch;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueuePurgeOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties};
use probes::{BrokerCanary, HandlerTimes, LateWakeUps, SURROUNDINGS_LEGEND, Surroundings};
use shared::amqp::{EnvelopeMessage, Topology, message_properties};

mod probes;

/// How often the open-loop phase's probes sample: fine enough to place a 100 ms stall.
const PROBE_INTERVAL: Duration = Duration::from_millis(10);

/// The name lapin gives its connection's I/O thread, which writes ingress's publishes and
/// reads the broker's confirms.
const LAPIN_IO_THREAD: &str = "lapin-io-loop";

/// Ingress's metrics are scraped less often than the host is sampled: each scrape costs ingress
/// an encoding of its registry.
const HANDLER_SCRAPE_INTERVAL: Duration = Duration::from_millis(25);

/// A second of the open loop with a request this slow is shown again slice by slice.
const STALL_MS: f64 = 50.0;
const STALL_SLICE: Duration = Duration::from_millis(100);

#[derive(Parser)]
#[command(about = "Ingress throughput and latency versus raw broker publish-confirm throughput")]
struct Args {
    /// Concurrency levels (requests in flight).
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,64,128")]
    levels: Vec<usize>,
    /// Seconds per level for each side (ingress, raw).
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Each level alternates ingress and raw publishing in rounds this long, so a broker
    /// pause (a WAL write-out) or a change in the host's speed falls on both sides alike
    /// instead of on whichever ran in that second. Equal to `--seconds` for one round each.
    #[arg(long, default_value_t = 1)]
    round_seconds: u64,
    #[arg(long, default_value_t = 16)]
    partitions: u16,
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    amqp_url: String,
    /// Path of the ingress binary; defaults to the one next to this executable.
    #[arg(long)]
    ingress_bin: Option<std::path::PathBuf>,
    /// Extra environment for the ingress child, `NAME=VALUE`, repeatable (for example
    /// `INGRESS_PUBLISH_CHANNELS=2` or `TOKIO_WORKER_THREADS=1`). Applied last, so it can
    /// override the bench's own settings.
    #[arg(long = "ingress-env", value_parser = parse_env_pair)]
    ingress_env: Vec<(String, String)>,
    /// Where the broker keeps its quorum-queue write-ahead log (Debian's path for the node
    /// rabbit@localhost). When it is readable, each phase reports the WAL rollovers that
    /// happened during it: while the broker writes a full WAL out to segment files its
    /// confirms slow down, and this tells that pause apart from ingress's own behaviour.
    #[arg(long, default_value = ingress::broker_wal::DEBIAN_WAL_DIR)]
    broker_wal_dir: std::path::PathBuf,
    /// Freezes the broker process (SIGSTOP, then SIGCONT) for this many milliseconds, one
    /// second into the open-loop phase: a broker stall on demand, to see what it costs ingress
    /// in latency, refusals and memory. Needs the right to signal the broker (root here); if
    /// the bench is killed during the pause, `kill -CONT` the broker by hand.
    #[arg(long, default_value_t = 0)]
    pause_broker_ms: u64,
    /// Instead of a benchmark: send `--deliveries` signed deliveries to an ingress already
    /// listening at this address (started with `WHATSAPP_APP_SECRET=bench-secret`), the bodies
    /// the benchmark sends, then exit, non-zero if any was not answered 200. For measuring an
    /// ingress run under a profiler (`ingress/bench/instructions.sh`).
    #[arg(long, requires = "deliveries")]
    send_to: Option<std::net::SocketAddr>,
    /// How many deliveries `--send-to` sends.
    #[arg(long)]
    deliveries: Option<u64>,
    /// The number of the first delivery `--send-to` sends (each delivery has its own wamid).
    #[arg(long, default_value_t = 0)]
    first: u64,
    /// Requests in flight for `--send-to`, each on its own keep-alive connection.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
}

fn parse_env_pair(pair: &str) -> Result<(String, String), String> {
    match pair.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("expected NAME=VALUE, got {pair:?}")),
    }
}

const SECRET: &str = "bench-secret";

struct LevelResult {
    failed: u64,
    rate: f64,
    latencies_us: Vec<u64>,
}

impl LevelResult {
    fn from_samples(mut latencies: Vec<u64>, failed: u64, elapsed: Duration) -> Self {
        latencies.sort_unstable();
        Self {
            failed,
            rate: latencies.len() as f64 / elapsed.as_secs_f64(),
            latencies_us: latencies,
        }
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let index = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[index] as f64 / 1000.0
    }
}

/// One text message from one of 5000 customers; the wamid is unique per request.
fn delivery(n: u64) -> Vec<u8> {
    let customer = 34_600_000_000u64 + n % 5000;
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"WABA","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550001111","phone_number_id":"555000111"}},"contacts":[{{"profile":{{"name":"Load {n}"}},"wa_id":"{customer}"}}],"messages":[{{"from":"{customer}","id":"wamid.bench{n}","timestamp":"1750000000","type":"text","text":{{"body":"quiero una cita mañana a las 5"}}}}]}}}}]}}]}}"#
    )
    .into_bytes()
}

/// Gathers (latencies, failures) from the load tasks.
async fn collect(tasks: Vec<tokio::task::JoinHandle<(Vec<u64>, u64)>>) -> (Vec<u64>, u64) {
    let (mut latencies, mut failed) = (Vec::new(), 0);
    for task in tasks {
        match task.await {
            Ok((l, f)) => {
                latencies.extend(l);
                failed += f;
            }
            Err(_) => failed += 1,
        }
    }
    (latencies, failed)
}

/// Closed loop: one request always in flight per lane, each lane on its own keep-alive
/// HTTP/1.1 connection driven through hyper's connection API, kept open from one round to the
/// next as a webhook sender keeps its connections. The pooled reqwest client used before cost
/// about 40 µs of CPU per request against about 22 µs here, and on two shared cores the
/// generator's CPU is taken from ingress and the broker; WhatsApp's side of the wire costs us
/// nothing in production.
async fn run_ingress_round(
    addr: std::net::SocketAddr,
    lanes: &mut Vec<Option<Sender>>,
    length: Duration,
    counter: &Arc<AtomicU64>,
) -> Round {
    let deadline = Instant::now() + length;
    let started = Instant::now();
    let tasks: Vec<_> = lanes
        .drain(..)
        .map(|mut connection| {
            let counter = counter.clone();
            tokio::spawn(async move {
                let (mut latencies, mut failed) = (Vec::new(), 0u64);
                while Instant::now() < deadline {
                    let body = delivery(counter.fetch_add(1, Ordering::Relaxed));
                    let sent = Instant::now();
                    match post_on_lane(addr, &mut connection, body).await {
                        Ok(true) => latencies.push(sent.elapsed().as_micros() as u64),
                        Ok(false) => failed += 1,
                        // Ingress is not listening or dropped the connection: do not spin.
                        Err(_) => {
                            failed += 1;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
                (latencies, failed, connection)
            })
        })
        .collect();
    let mut round = Round::default();
    for task in tasks {
        match task.await {
            Ok((latencies, failed, connection)) => {
                round.latencies_us.extend(latencies);
                round.failed += failed;
                lanes.push(connection);
            }
            // The lane's connection went with its task; the next round opens a new one.
            Err(_) => {
                round.failed += 1;
                lanes.push(None);
            }
        }
    }
    round.elapsed = started.elapsed();
    round
}

/// What one side did in one round of a level.
#[derive(Default)]
struct Round {
    latencies_us: Vec<u64>,
    failed: u64,
    elapsed: Duration,
}

/// One side's rounds of a level, pooled.
#[derive(Default)]
struct Rounds {
    latencies_us: Vec<u64>,
    failed: u64,
    elapsed: Duration,
    /// CPU seconds of (ingress, broker, generator) while this side ran.
    cpu: [f64; 3],
}

impl Rounds {
    fn add(&mut self, round: Round, cpu: [f64; 3]) {
        self.latencies_us.extend(round.latencies_us);
        self.failed += round.failed;
        self.elapsed += round.elapsed;
        for (total, spent) in self.cpu.iter_mut().zip(cpu) {
            *total += spent;
        }
    }

    fn result(self) -> ([f64; 3], LevelResult) {
        (
            self.cpu,
            LevelResult::from_samples(self.latencies_us, self.failed, self.elapsed),
        )
    }
}

/// Sends deliveries `first..first + count`, `concurrency` at a time, each lane on its own
/// keep-alive connection.
async fn send_deliveries(
    addr: std::net::SocketAddr,
    first: u64,
    count: u64,
    concurrency: usize,
) -> anyhow::Result<()> {
    let lanes = concurrency.max(1) as u64;
    let tasks: Vec<_> = (0..lanes)
        .map(|lane| {
            tokio::spawn(async move {
                let mut failures = Vec::new();
                let mut connection = None;
                for n in (first + lane..first + count).step_by(lanes as usize) {
                    match post_on_lane(addr, &mut connection, delivery(n)).await {
                        Ok(true) => {}
                        Ok(false) => failures.push(format!("delivery {n}: not answered 200")),
                        Err(error) => failures.push(format!("delivery {n}: {error:#}")),
                    }
                }
                failures
            })
        })
        .collect();
    let mut failures = Vec::new();
    for task in tasks {
        failures.extend(task.await?);
    }
    println!(
        "sent {count} deliveries to {addr}, {} failed",
        failures.len()
    );
    match failures.first() {
        None => Ok(()),
        Some(example) => bail!(
            "{} deliveries failed, for example {example}",
            failures.len()
        ),
    }
}

type Sender = hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>;

async fn connect(addr: std::net::SocketAddr) -> anyhow::Result<Sender> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// Posts on a lane's keep-alive connection, opening one first if the lane has none. A
/// connection that fails is dropped, so the lane's next post opens a new one.
async fn post_on_lane(
    addr: std::net::SocketAddr,
    lane: &mut Option<Sender>,
    body: Vec<u8>,
) -> anyhow::Result<bool> {
    let sender = match lane {
        Some(sender) => sender,
        None => lane.insert(connect(addr).await.context("connecting to ingress")?),
    };
    let posted = post_on_connection(sender, body).await;
    if posted.is_err() {
        *lane = None;
    }
    posted
}

/// `Ok(false)`: ingress answered, but not 200. `Err`: the connection is unusable.
async fn post_on_connection(sender: &mut Sender, body: Vec<u8>) -> anyhow::Result<bool> {
    tokio::time::timeout(REQUEST_LIMIT, post_on_connection_unbounded(sender, body))
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {REQUEST_LIMIT:?}"))?
}

async fn post_on_connection_unbounded(sender: &mut Sender, body: Vec<u8>) -> anyhow::Result<bool> {
    sender.ready().await?;
    let signature = ingress::signature::header_value(SECRET.as_bytes(), &body);
    let request = hyper::Request::post("/webhook")
        .header(hyper::header::HOST, "ingress")
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header("x-hub-signature-256", signature)
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))?;
    let response = sender.send_request(request).await?;
    let ok = response.status() == hyper::StatusCode::OK;
    // Reading the body to its end is what frees the connection for the next request.
    http_body_util::BodyExt::collect(response.into_body()).await?;
    Ok(ok)
}

/// A request unanswered for this long counts as failed, so no phase can wait forever on a
/// stuck connection or broker (ingress itself answers 503 after its publish timeout).
const REQUEST_LIMIT: Duration = Duration::from_secs(30);

/// A purge unanswered for this long ends the run with an error instead of a hang.
const PURGE_LIMIT: Duration = Duration::from_secs(60);

/// Connections the open-loop client opens before its clock starts.
const WARM_CONNECTIONS: usize = 64;

/// The most requests the open-loop client has in flight, so the most connections it opens:
/// under ingress's default connection limit (256), as a webhook sender keeps to a bounded
/// pool. Without a bound, a 100 ms hiccup at 15,000/s asks for 1,500 connections; those
/// beyond the limit are answered 503 and reopened, and that churn alone took a core.
const OPEN_LOOP_CONNECTIONS: usize = 240;

/// The open-loop client's keep-alive connections: at most `OPEN_LOOP_CONNECTIONS`, opened as
/// needed and reused, as a webhook sender keeps a bounded pool. Requests go through hyper's
/// connection API like the closed-loop phase: with the pooled reqwest client used before, the
/// generator took 1.6–1.7 CPU-seconds per 5 s phase against 1.2–1.3 with this pool, and on two
/// shared cores the generator's CPU is taken from ingress and the broker, whose latency this
/// phase measures.
struct ConnectionPool {
    addr: std::net::SocketAddr,
    idle: std::sync::Mutex<Vec<Sender>>,
    slots: tokio::sync::Semaphore,
}

impl ConnectionPool {
    fn new(addr: std::net::SocketAddr) -> Self {
        Self {
            addr,
            idle: std::sync::Mutex::new(Vec::with_capacity(OPEN_LOOP_CONNECTIONS)),
            slots: tokio::sync::Semaphore::new(OPEN_LOOP_CONNECTIONS),
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Sender>> {
        // The lock is never held across anything that can panic; a poisoned one is still whole.
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Opens `count` connections before any clock starts.
    async fn warm(&self, count: usize) {
        let opened = futures::future::join_all((0..count).map(|_| connect(self.addr))).await;
        self.idle().extend(opened.into_iter().flatten());
    }

    /// Waits for a free connection (a slot, then an idle connection or a new one), posts, and
    /// gives the connection back unless it broke.
    async fn post(&self, body: Vec<u8>) -> bool {
        let Ok(_slot) = self.slots.acquire().await else {
            return false;
        };
        let reusable = std::iter::from_fn(|| self.idle().pop()).find(|sender| !sender.is_closed());
        let mut sender = match reusable {
            Some(sender) => sender,
            None => match connect(self.addr).await {
                Ok(sender) => sender,
                Err(_) => return false,
            },
        };
        match post_on_connection(&mut sender, body).await {
            Ok(ok) => {
                self.idle().push(sender);
                ok
            }
            Err(_) => false,
        }
    }
}

/// Open loop at a fixed rate: latency as WhatsApp sees it, not hidden by the generator
/// waiting on itself. Returns every request's outcome, so that a phase that falls behind can
/// be shown second by second: when it started and how it recovered.
async fn run_ingress_fixed_rate(
    addr: std::net::SocketAddr,
    rate: f64,
    seconds: u64,
    counter: &Arc<AtomicU64>,
) -> OpenLoop {
    let pool = Arc::new(ConnectionPool::new(addr));
    // A new client has no connections: without this, the first second would measure
    // connections being opened under load, not ingress. WhatsApp keeps its connections open.
    pool.warm(WARM_CONNECTIONS).await;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1.0)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    while Instant::now() < deadline {
        ticker.tick().await;
        let body = delivery(counter.fetch_add(1, Ordering::Relaxed));
        let pool = pool.clone();
        // Latency counts from the tick, so waiting for a task slot or a connection counts too.
        let sent = Instant::now();
        tasks.push(tokio::spawn(async move {
            let ok = pool.post(body).await;
            (sent.duration_since(started), sent.elapsed(), ok)
        }));
    }
    let mut outcomes = Vec::with_capacity(tasks.len());
    for task in tasks {
        // A panicked request task counts as a failure sent at the end of the phase.
        outcomes.push(
            task.await
                .unwrap_or((started.elapsed(), Duration::ZERO, false)),
        );
    }
    OpenLoop {
        started,
        elapsed: started.elapsed(),
        outcomes,
    }
}

/// One open-loop phase: each request's (sent at, from the start; latency; answered 200).
struct OpenLoop {
    started: Instant,
    elapsed: Duration,
    outcomes: Vec<(Duration, Duration, bool)>,
}

impl OpenLoop {
    fn result(&self) -> LevelResult {
        self.slice(Duration::ZERO, Duration::MAX, self.elapsed)
    }

    /// The requests sent within `from..to` of the start, with their rate over `over`.
    fn slice(&self, from: Duration, to: Duration, over: Duration) -> LevelResult {
        let sent_inside = self
            .outcomes
            .iter()
            .filter(|(sent_at, _, _)| (from..to).contains(sent_at));
        let (mut latencies, mut failed) = (Vec::new(), 0);
        for &(_, latency, ok) in sent_inside {
            if ok {
                latencies.push(latency.as_micros() as u64);
            } else {
                failed += 1;
            }
        }
        LevelResult::from_samples(latencies, failed, over)
    }

    /// Consecutive slices of `width` covering the phase.
    fn slices(&self, width: Duration) -> impl Iterator<Item = (Duration, LevelResult)> + '_ {
        let count = self.elapsed.as_micros().div_ceil(width.as_micros().max(1)) as u32;
        (0..count).map(move |n| (width * n, self.slice(width * n, width * (n + 1), width)))
    }
}

/// The ceiling's publisher: shaped like ingress's (4 confirm channels round-robin).
async fn open_confirm_channels(connection: &Connection) -> anyhow::Result<Arc<Vec<Channel>>> {
    let mut channels = Vec::new();
    for _ in 0..4 {
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        channels.push(channel);
    }
    Ok(Arc::new(channels))
}

/// The ceiling: the same envelopes published straight through lapin, as ingress's publisher
/// does (mandatory, persistent, the same properties and headers), same concurrency.
async fn run_raw_round(
    channels: &Arc<Vec<Channel>>,
    topology: &Topology,
    concurrency: usize,
    length: Duration,
    counter: &Arc<AtomicU64>,
) -> Round {
    let deadline = Instant::now() + length;
    let started = Instant::now();
    let tasks = (0..concurrency)
        .map(|worker| {
            let channels = channels.clone();
            let counter = counter.clone();
            let topology = topology.clone();
            tokio::spawn(async move {
                let (mut latencies, mut failed) = (Vec::new(), 0u64);
                let mut turn = worker;
                while Instant::now() < deadline {
                    let body = delivery(counter.fetch_add(1, Ordering::Relaxed));
                    let sent = Instant::now();
                    let Ok(split) = ingress::split::split_delivery(&body, chrono::Utc::now())
                    else {
                        failed += 1;
                        continue;
                    };
                    for envelope in split.events {
                        let Ok(message) =
                            EnvelopeMessage::new(&topology, &envelope, traceparent_headers())
                        else {
                            failed += 1;
                            continue;
                        };
                        turn += 1;
                        let channel = &channels[turn % channels.len()];
                        let confirmed = async {
                            channel
                                .basic_publish(
                                    message.exchange.as_str().into(),
                                    message.routing_key.as_str().into(),
                                    BasicPublishOptions {
                                        mandatory: true,
                                        immediate: false,
                                    },
                                    &message.body,
                                    message_properties(message.headers, Some(&envelope.id)),
                                )
                                .await?
                                .await
                        }
                        .await;
                        match confirmed {
                            Ok(lapin::Confirmation::Ack(None)) => {
                                latencies.push(sent.elapsed().as_micros() as u64)
                            }
                            _ => failed += 1,
                        }
                    }
                }
                (latencies, failed)
            })
        })
        .collect();
    let (latencies_us, failed) = collect(tasks).await;
    Round {
        latencies_us,
        failed,
        elapsed: started.elapsed(),
    }
}

/// The trace context ingress injects into every message, so the raw path carries the same
/// header table the broker has to store and parse.
fn traceparent_headers() -> FieldTable {
    let mut headers = FieldTable::default();
    headers.insert(
        "traceparent".into(),
        AMQPValue::LongString(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .as_bytes()
                .to_vec()
                .into(),
        ),
    );
    headers
}

/// Empties the partitions between runs so queue depth does not skew the next level.
async fn purge(connection: &Connection, topology: &Topology) -> anyhow::Result<()> {
    tokio::time::timeout(PURGE_LIMIT, purge_unbounded(connection, topology))
        .await
        .map_err(|_| {
            anyhow::anyhow!("the broker did not purge the bench's queues within {PURGE_LIMIT:?}")
        })?
}

async fn purge_unbounded(connection: &Connection, topology: &Topology) -> anyhow::Result<()> {
    let channel = connection.create_channel().await?;
    for partition in 0..topology.partitions() {
        channel
            .queue_purge(
                topology.partition_queue(partition).as_str().into(),
                QueuePurgeOptions::default(),
            )
            .await?;
    }
    let _ = channel.close(200, "purged".into()).await;
    Ok(())
}

/// CPU seconds (user + system) a process has used so far, from /proc; 0 once it is gone.
fn cpu_seconds(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| ingress::host_watch::cpu_time(&stat))
        .map_or(0.0, |used| used.as_secs_f64())
}

/// A broker using less than this share of a core is taken to have finished the work the
/// previous phases left it (segment writes after a WAL write-out, queue compaction).
const QUIET_BROKER_SHARE: f64 = 0.12;

/// Waits until the broker's CPU use over a quarter of a second falls under
/// `QUIET_BROKER_SHARE` of a core, or `limit` passes; returns how long it waited and the CPU
/// seconds the broker used meanwhile.
async fn until_broker_quiet(broker: u32, limit: Duration) -> (Duration, f64) {
    const WINDOW: Duration = Duration::from_millis(250);
    let started = Instant::now();
    let at_start = cpu_seconds(broker);
    loop {
        let before = cpu_seconds(broker);
        tokio::time::sleep(WINDOW).await;
        let used = cpu_seconds(broker) - before;
        if used < QUIET_BROKER_SHARE * WINDOW.as_secs_f64() || started.elapsed() >= limit {
            return (started.elapsed(), cpu_seconds(broker) - at_start);
        }
    }
}

/// The RabbitMQ node's process, to attribute broker CPU to each phase.
fn broker_pid() -> Option<u32> {
    let output = Command::new("pgrep")
        .args(["-o", "beam.smp"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

/// A process stopped with SIGSTOP; dropping this continues it, whatever happened meanwhile.
struct FrozenProcess(u32);

impl FrozenProcess {
    fn freeze(pid: u32) -> anyhow::Result<FrozenProcess> {
        signal(pid, "-STOP")?;
        Ok(FrozenProcess(pid))
    }
}

impl Drop for FrozenProcess {
    fn drop(&mut self) {
        if let Err(error) = signal(self.0, "-CONT") {
            eprintln!(
                "could not continue process {}: {error:#}; run kill -CONT {}",
                self.0, self.0
            );
        }
    }
}

fn signal(pid: u32, signal: &str) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .context("running kill")?;
    if !status.success() {
        bail!("kill {signal} {pid} failed ({status})");
    }
    Ok(())
}

/// CPU seconds of (ingress, broker, this generator) spent while `phase` ran.
struct CpuMeter {
    ingress: u32,
    broker: Option<u32>,
    own: u32,
}

impl CpuMeter {
    fn snapshot(&self) -> [f64; 3] {
        [
            cpu_seconds(self.ingress),
            self.broker.map_or(0.0, cpu_seconds),
            cpu_seconds(self.own),
        ]
    }
}

fn memory_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|line| line.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// One slice of the open loop: its requests' figures, then what was happening around them.
fn slice_line(offset: Duration, requests: &LevelResult, context: &str) -> String {
    format!(
        "  {:>5.1}s | acked {:>6} failed {:>4} | p50 {:>7.2} p99 {:>7.2} max {:>7.2} ms | {context}",
        offset.as_secs_f64(),
        requests.latencies_us.len(),
        requests.failed,
        requests.percentile_ms(0.50),
        requests.percentile_ms(0.99),
        requests.percentile_ms(1.0),
    )
}

/// The open-loop probe's quorum queue, beside the bench's partitions.
fn canary_queue(namespace: &str) -> String {
    format!("{namespace}canary")
}

/// Stops the ingress child however the benchmark ends.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let (Some(addr), Some(deliveries)) = (args.send_to, args.deliveries) {
        return send_deliveries(addr, args.first, deliveries, args.concurrency).await;
    }
    let namespace = format!("bench.ingress.{}.", std::process::id());
    let topology = Topology::new(&namespace, args.partitions);
    // On a task of its own, so that a panic (printing into a closed pipe, say `| head`) ends
    // the measurement and not the cleanup below.
    let amqp_url = args.amqp_url.clone();
    let measurement = {
        let (namespace, topology) = (namespace.clone(), topology.clone());
        tokio::spawn(async move { measure(&args, &namespace, &topology).await })
    };
    let measured = measurement
        .await
        .unwrap_or_else(|stopped| Err(anyhow::anyhow!("the benchmark stopped: {stopped}")));
    // Whatever happened, the bench's queues (which may hold a phase's messages) go.
    let removed = async {
        let connection = Connection::connect(&amqp_url, ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        topology.delete(&channel).await?;
        channel
            .queue_delete(
                canary_queue(&namespace).as_str().into(),
                lapin::options::QueueDeleteOptions::default(),
            )
            .await?;
        connection.close(200, "bench done".into()).await?;
        Ok::<(), anyhow::Error>(())
    }
    .await;
    match (measured, removed) {
        (Ok(()), Err(error)) => {
            Err(error.context(format!("deleting the bench's queues ({namespace}*)")))
        }
        // The measurement's own error says more (an unreachable broker fails both).
        (measured, _) => measured,
    }
}

async fn measure(args: &Args, namespace: &str, topology: &Topology) -> anyhow::Result<()> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let ingress_bin = match args.ingress_bin.clone() {
        Some(path) => path,
        None => std::env::current_exe()?.with_file_name("ingress"),
    };
    if !ingress_bin.exists() {
        bail!(
            "{} not found: build it first (cargo build --release -p ingress)",
            ingress_bin.display()
        );
    }
    let child = Command::new(&ingress_bin)
        .env("WHATSAPP_APP_SECRET", SECRET)
        .env("WHATSAPP_VERIFY_TOKEN", "bench")
        .env("INGRESS_ADDR", format!("127.0.0.1:{port}"))
        .env("FLEET_NAMESPACE", namespace)
        .env("PARTITIONS", args.partitions.to_string())
        .env("AMQP_URL", &args.amqp_url)
        .env("RUST_LOG", "error")
        .envs(args.ingress_env.iter().map(|(name, value)| (name, value)))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", ingress_bin.display()))?;
    let child = ChildGuard(child);
    let pid = child.0.id();
    let ingress_addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let base = format!("http://{ingress_addr}");
    let probe = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = probe
            .get(format!("{base}/readyz"))
            .send()
            .await
            .map(|r| r.status() == 200)
            .unwrap_or(false);
        if ready {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "ingress did not become ready; is RabbitMQ running at {}?",
                args.amqp_url
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let connection = Connection::connect(&args.amqp_url, ConnectionProperties::default()).await?;
    let counter = Arc::new(AtomicU64::new(0));
    let meter = CpuMeter {
        ingress: pid,
        broker: broker_pid(),
        own: std::process::id(),
    };
    let wal = WalWatch::start(args.broker_wal_dir.clone());
    // The broker's WAL rollovers during a phase, as a suffix for the phase's line.
    let wal_note = |start: Instant, end: Instant| match &wal {
        Some(watch) => match watch.between(start, end) {
            changes if changes.is_empty() => String::new(),
            changes => format!(" | broker WAL: {changes}"),
        },
        None => String::new(),
    };

    println!(
        "ingress benchmark: {} partitions, {} s per level, ingress pid {pid}",
        args.partitions, args.seconds
    );
    if wal.is_none() {
        // Otherwise a phase without a note could be read as one without a rollover.
        println!(
            "(broker WAL not watched: {} is not readable; see --broker-wal-dir)",
            args.broker_wal_dir.display()
        );
    }
    println!(
        "{:>6} | {:>10} {:>8} {:>8} {:>8} | {:>10} {:>8} | {:>6}",
        "conc", "ingress/s", "p50 ms", "p99 ms", "p99.9", "raw/s", "p50 ms", "ratio"
    );
    let spent = |a: [f64; 3], b: [f64; 3]| [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
    let (mut best_ingress, mut best_raw) = (0f64, 0f64);
    let mut cpu_lines = Vec::new();
    let total_length = Duration::from_secs(args.seconds.max(1));
    let round_length = Duration::from_secs(args.round_seconds.clamp(1, args.seconds.max(1)));
    let rounds = args.seconds.max(1).div_ceil(round_length.as_secs()) as u32;
    for &level in &args.levels {
        let level_started = Instant::now();
        let mut lanes: Vec<Option<Sender>> = (0..level).map(|_| None).collect();
        let channels = open_confirm_channels(&connection).await?;
        let (mut ingress_rounds, mut raw_rounds) = (Rounds::default(), Rounds::default());
        for round in 0..rounds {
            // Alternating which side goes first cancels what the first of a pair leaves the
            // second (queue depth, a broker still busy with the last round).
            // The last round is shorter when `--round-seconds` does not divide `--seconds`.
            let length = round_length.min(total_length.saturating_sub(round_length * round));
            for ingress_turn in [round % 2 == 0, round % 2 == 1] {
                let before = meter.snapshot();
                if ingress_turn {
                    let done = run_ingress_round(ingress_addr, &mut lanes, length, &counter).await;
                    ingress_rounds.add(done, spent(before, meter.snapshot()));
                } else {
                    let done = run_raw_round(&channels, topology, level, length, &counter).await;
                    raw_rounds.add(done, spent(before, meter.snapshot()));
                }
                purge(&connection, topology).await?;
            }
        }
        for channel in channels.iter() {
            let _ = channel.close(200, "level done".into()).await;
        }
        let wal_during_level = wal_note(level_started, Instant::now());
        let ((i, ingress), (r, raw)) = (ingress_rounds.result(), raw_rounds.result());
        let delivered = ingress.latencies_us.len() as f64;
        cpu_lines.push(format!(
            "{level:>6} | ingress: ingress {:.1}s broker {:.1}s generator {:.1}s ({:.0} µs of ingress CPU per delivery) | raw: broker {:.1}s generator {:.1}s{}",
            i[0],
            i[1],
            i[2],
            1e6 * i[0] / delivered.max(1.0),
            r[1],
            r[2],
            wal_during_level,
        ));
        best_ingress = best_ingress.max(ingress.rate);
        best_raw = best_raw.max(raw.rate);
        let failures = if ingress.failed + raw.failed > 0 {
            format!("  (failed: ingress {}, raw {})", ingress.failed, raw.failed)
        } else {
            String::new()
        };
        println!(
            "{:>6} | {:>10.0} {:>8.2} {:>8.2} {:>8.2} | {:>10.0} {:>8.2} | {:>5.0}%{failures}",
            level,
            ingress.rate,
            ingress.percentile_ms(0.50),
            ingress.percentile_ms(0.99),
            ingress.percentile_ms(0.999),
            raw.rate,
            raw.percentile_ms(0.50),
            100.0 * ingress.rate / raw.rate.max(1.0),
        );
    }
    println!(
        "CPU seconds per side ({} s each, in {rounds} rounds of {} s alternating with the other side; 2 cores = {} CPU-seconds available):",
        args.seconds,
        round_length.as_secs(),
        2 * args.seconds
    );
    for line in &cpu_lines {
        println!("{line}");
    }
    println!(
        "saturation: ingress {best_ingress:.0}/s, raw broker {best_raw:.0}/s, ratio {:.0}%",
        100.0 * best_ingress / best_raw.max(1.0)
    );
    let half = best_ingress / 2.0;
    // The saturation phases fill the broker's WAL quickly; a write-out that began there would
    // otherwise land in the latency phase, which is meant to show ingress at half load, not
    // the broker's write-out (each phase's line names the write-outs it overlapped).
    if let Some(wal) = &wal {
        let waited = wal.until_written_out(Duration::from_secs(30)).await;
        if waited >= Duration::from_millis(100) {
            println!(
                "waited {:.1}s for the broker to finish writing out its WAL before the open-loop phase",
                waited.as_secs_f64()
            );
        }
    }
    // Deleting the old WAL is not the end of it: the broker can stay busy for a while after
    // (one run measured p99 107 ms in an open-loop phase that began as a write-out ended).
    if let Some(broker) = meter.broker {
        let (waited, used) = until_broker_quiet(broker, Duration::from_secs(30)).await;
        if waited > Duration::from_millis(300) {
            println!(
                "waited {:.2}s for the broker to go quiet before the open-loop phase (it used {used:.2} CPU-s meanwhile)",
                waited.as_secs_f64()
            );
        }
    }
    // Started before the phase's clock, so each has samples from its first instant; the
    // canary's queue is the bench's own and goes with it.
    let watched: Vec<u32> = std::iter::once(pid).chain(meter.broker).collect();
    let host = HostWatch::start(&watched, Some(LAPIN_IO_THREAD.to_owned()), PROBE_INTERVAL);
    let canary = BrokerCanary::start(&connection, &canary_queue(namespace), PROBE_INTERVAL).await?;
    let generator = LateWakeUps::start(PROBE_INTERVAL);
    let handler = HandlerTimes::start(format!("{base}/metrics"), HANDLER_SCRAPE_INTERVAL);
    let open_loop_started = Instant::now();
    let before_open_loop = meter.snapshot();
    let pause = match (args.pause_broker_ms, meter.broker) {
        (0, _) => None,
        (ms, Some(broker)) => Some(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let frozen = FrozenProcess::freeze(broker)?;
            tokio::time::sleep(Duration::from_millis(ms)).await;
            drop(frozen);
            Ok::<(), anyhow::Error>(())
        })),
        (_, None) => bail!("--pause-broker-ms: no beam.smp process found to pause"),
    };
    let open_loop = run_ingress_fixed_rate(ingress_addr, half, args.seconds, &counter).await;
    if let Some(pause) = pause {
        pause.await??;
        println!(
            "(the broker was frozen for {} ms from 1 s into the open-loop phase)",
            args.pause_broker_ms
        );
    }
    let cpu = spent(before_open_loop, meter.snapshot());
    // A rollover late in the previous phase shows here as the old WAL being finished.
    let wal_during_open_loop = wal_note(open_loop_started, Instant::now());
    let surroundings = Surroundings {
        host: &host,
        canary: &canary.confirms,
        generator: &generator.late,
        handler: &handler,
        started: open_loop.started,
    };
    let context = |from: Duration, to: Duration| surroundings.line(from, to);
    let fixed = open_loop.result();
    println!(
        "at half saturation ({half:.0}/s, open loop): achieved {:.0}/s, p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, failed {}",
        fixed.rate,
        fixed.percentile_ms(0.50),
        fixed.percentile_ms(0.99),
        fixed.percentile_ms(0.999),
        fixed.failed
    );
    println!(
        "open loop by second sent (CPU: ingress {:.1}s broker {:.1}s generator {:.1}s){}:",
        cpu[0], cpu[1], cpu[2], wal_during_open_loop,
    );
    println!("{SURROUNDINGS_LEGEND}");
    if !ingress::host_watch::pressure_available() {
        println!("  (this kernel offers no /proc/pressure: the psi columns read 0)");
    }
    let mut stalled_seconds = Vec::new();
    let (mut broker_stalled, mut outside_broker_stalls) = (Vec::new(), Vec::new());
    for (from, second) in open_loop.slices(Duration::from_secs(1)) {
        let to = from + Duration::from_secs(1);
        println!("{}", slice_line(from, &second, &context(from, to)));
        if second.percentile_ms(1.0) >= STALL_MS {
            stalled_seconds.push(from);
        }
        let canary_worst = canary
            .confirms
            .worst_between(open_loop.started + from, open_loop.started + to);
        if canary_worst.is_some_and(|worst| worst.as_secs_f64() * 1000.0 >= STALL_MS) {
            broker_stalled.push(format!("{:.0}", from.as_secs_f64()));
        } else {
            outside_broker_stalls.extend_from_slice(&second.latencies_us);
        }
    }
    // The headline p99 above stays the target's figure; this one says how much of it was
    // ingress's own when the broker stalled with no ingress in the path.
    if broker_stalled.is_empty() {
        println!("the broker's own confirms (canary) stayed under {STALL_MS} ms in every second");
    } else {
        let others = LevelResult::from_samples(outside_broker_stalls, 0, Duration::from_secs(1));
        println!(
            "the broker's own confirms (canary) took {STALL_MS} ms or more in second(s) {}; p99 over the other seconds: {:.2} ms",
            broker_stalled.join(", "),
            others.percentile_ms(0.99),
        );
    }
    for from in stalled_seconds {
        println!(
            "second {:.0} had a request over {STALL_MS} ms; by {} ms sent:",
            from.as_secs_f64(),
            STALL_SLICE.as_millis()
        );
        for tenth in 0..(Duration::from_secs(1).as_millis() / STALL_SLICE.as_millis()) as u32 {
            let offset = from + STALL_SLICE * tenth;
            let slice = open_loop.slice(offset, offset + STALL_SLICE, STALL_SLICE);
            println!(
                "{}",
                slice_line(offset, &slice, &context(offset, offset + STALL_SLICE))
            );
        }
    }
    drop((generator, canary, handler));
    if let Some(used) = host.stop() {
        println!(
            "(the host sampler used {:.2} CPU-s of the generator's)",
            used.as_secs_f64()
        );
    }
    purge(&connection, topology).await?;
    println!(
        "ingress memory: resident {} KiB at the end, peak {} KiB",
        memory_kib(pid, "VmRSS:").unwrap_or(0),
        memory_kib(pid, "VmHWM:").unwrap_or(0)
    );
    drop(child);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{OpenLoop, parse_env_pair};
    use std::time::{Duration, Instant};

    #[test]
    fn an_open_loop_slices_its_requests_by_when_they_were_sent() {
        let ms = Duration::from_millis;
        let open_loop = OpenLoop {
            started: Instant::now(),
            elapsed: ms(1500),
            outcomes: vec![
                (ms(50), ms(3), true),
                (ms(150), ms(90), true),
                (ms(999), ms(1), false),
                // Sent in the second second, answered long after it ended.
                (ms(1200), ms(4000), true),
            ],
        };
        let seconds: Vec<_> = open_loop.slices(Duration::from_secs(1)).collect();
        assert_eq!(
            seconds.len(),
            2,
            "a part-second at the end is a slice of its own"
        );
        let (from, first) = &seconds[0];
        assert_eq!(*from, Duration::ZERO);
        assert_eq!(first.latencies_us, vec![3_000, 90_000]);
        assert_eq!(first.failed, 1);
        assert_eq!(first.percentile_ms(1.0), 90.0);
        let (from, second) = &seconds[1];
        assert_eq!(*from, Duration::from_secs(1));
        assert_eq!(second.latencies_us, vec![4_000_000]);
        let tenths: Vec<_> = open_loop.slices(ms(100)).collect();
        assert_eq!(tenths.len(), 15);
        assert_eq!(tenths[1].1.latencies_us, vec![90_000]);
        assert!(tenths[5].1.latencies_us.is_empty());
        let whole = open_loop.result();
        assert_eq!((whole.latencies_us.len(), whole.failed), (3, 1));
        assert!((whole.rate - 2.0).abs() < 1e-9, "3 acked over 1.5 s");
    }

    #[test]
    fn ingress_env_takes_name_equals_value_and_refuses_anything_else() {
        assert_eq!(
            parse_env_pair("TOKIO_WORKER_THREADS=1"),
            Ok(("TOKIO_WORKER_THREADS".to_owned(), "1".to_owned()))
        );
        // Only the first `=` separates: values may contain more.
        assert_eq!(
            parse_env_pair("RUST_LOG=ingress=debug"),
            Ok(("RUST_LOG".to_owned(), "ingress=debug".to_owned()))
        );
        assert!(parse_env_pair("TOKIO_WORKER_THREADS").is_err());
        assert!(parse_env_pair("=1").is_err());
    }
}
