//! `sim load`: customers arrive at a fixed rate for a while, each runs a short booking
//! conversation; a progress line every second; then a report and an audit of the calendars
//! and of every message.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use secrecy::ExposeSecret;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::conversation::{self, Outcome, Pace};
use crate::persona::{Ending, load_customer};
use crate::report::{
    Latencies, LoadReport, audit_messages, endings, errors_by_kind, ms, over_capacity,
};
use crate::sandbox::Sandbox;
use crate::world::Backend;

/// What a load run does.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Most customers that arrive in the whole run.
    pub customers: u64,
    /// Customer arrivals per second.
    pub rate: f64,
    /// How long customers keep arriving.
    pub duration: Duration,
    /// How long a customer waits for a reply before counting the message as unanswered.
    pub reply_timeout: Duration,
    pub seed: u64,
    /// Print the progress line.
    pub progress: bool,
}

/// Live counters shared by the customers and the progress line.
#[derive(Default)]
struct Live {
    arrived: AtomicU64,
    finished: AtomicU64,
    booked: AtomicU64,
    failed: AtomicU64,
    sent: Arc<AtomicU64>,
}

pub async fn run(sandbox: &Sandbox, options: &LoadOptions) -> (LoadReport, Vec<Outcome>) {
    let live = Arc::new(Live::default());
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Outcome>();
    let businesses = sandbox.world.businesses.clone();
    let pids = sandbox.fleet.worker_pids();
    let mut peak_rss: HashMap<u32, u64> = HashMap::new();

    let wal = ingress::broker_wal::WalWatch::start(ingress::broker_wal::DEBIAN_WAL_DIR.into());
    let started = Instant::now();
    let arrivals_end = started + options.duration;
    let interval = Duration::from_secs_f64(1.0 / options.rate.max(0.001));
    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut next_arrival = started;
    let mut next_report = started + Duration::from_secs(1);
    let mut outcomes = Vec::new();
    let mut latencies = Latencies::default();
    let mut sent_in_window = None;
    let mut last_bot = 0;
    let mut index: u64 = 0;

    // Arrivals, progress and collection in one loop: one timer wheel, no extra tasks.
    loop {
        let now = Instant::now();
        if now >= arrivals_end && sent_in_window.is_none() {
            sent_in_window = Some(live.sent.load(Ordering::Relaxed));
        }
        let arriving = now < arrivals_end && index < options.customers;
        if arriving && now >= next_arrival {
            // Catch up in a burst if the loop fell behind: the rate is the rate.
            while next_arrival <= now && index < options.customers {
                let business = &businesses[rng.random_range(0..businesses.len())];
                let persona = load_customer(index, business.lang, &mut rng);
                let wa_id = format!("1{:010}", index);
                let fake = sandbox.fake().clone();
                let router = sandbox.router.clone();
                let business_id = business.phone_number_id.clone();
                let pace = Pace {
                    reply_timeout: options.reply_timeout,
                    quiet: Duration::from_millis(300),
                    think: Duration::ZERO,
                    sent: Some(live.sent.clone()),
                };
                let live = live.clone();
                let done = done_tx.clone();
                let seed = rng.random();
                live.arrived.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    let mut rng = StdRng::seed_from_u64(seed);
                    let outcome = conversation::run(
                        &fake,
                        &router,
                        &business_id,
                        &wa_id,
                        persona,
                        pace,
                        &mut rng,
                    )
                    .await;
                    live.finished.fetch_add(1, Ordering::Relaxed);
                    match outcome.ending {
                        Ending::Booked => live.booked.fetch_add(1, Ordering::Relaxed),
                        Ending::Failed => live.failed.fetch_add(1, Ordering::Relaxed),
                        _ => 0,
                    };
                    let _ = done.send(outcome);
                });
                index += 1;
                next_arrival += interval;
            }
        }
        while let Ok(outcome) = done_rx.try_recv() {
            latencies.extend(outcome.latencies.iter().copied());
            outcomes.push(outcome);
        }
        if now >= next_report {
            next_report += Duration::from_secs(1);
            for pid in &pids {
                if let Some(kib) = crate::fleet::resident_kib(*pid) {
                    let peak = peak_rss.entry(*pid).or_insert(0);
                    *peak = (*peak).max(kib);
                }
            }
            let bot = sandbox.fake().counters().accepted;
            if options.progress {
                let arrived = live.arrived.load(Ordering::Relaxed);
                let finished = live.finished.load(Ordering::Relaxed);
                let sent = live.sent.load(Ordering::Relaxed);
                let elapsed = started.elapsed().as_secs_f64().max(0.001);
                eprint!(
                    "\r[{:>4.0}s] customers {arrived} arrived, {} active, {finished} done, {} booked, {} failed | customer msgs {sent} ({:.0}/s) | bot msgs {bot} (+{}/s) | p99 {}    ",
                    elapsed,
                    arrived - finished,
                    live.booked.load(Ordering::Relaxed),
                    live.failed.load(Ordering::Relaxed),
                    sent as f64 / elapsed,
                    bot - last_bot,
                    ms(latencies.percentile(99.0)),
                );
                let _ = std::io::stderr().flush();
            }
            last_bot = bot;
        }
        let arrived = live.arrived.load(Ordering::Relaxed);
        if !arriving && live.finished.load(Ordering::Relaxed) >= arrived {
            break;
        }
        let wake = if arriving {
            next_arrival.min(next_report)
        } else {
            next_report
        };
        tokio::time::sleep_until(wake.min(Instant::now() + Duration::from_millis(50))).await;
    }
    drop(done_tx);
    while let Some(outcome) = done_rx.recv().await {
        latencies.extend(outcome.latencies.iter().copied());
        outcomes.push(outcome);
    }
    let elapsed = started.elapsed();
    if options.progress {
        eprintln!();
    }
    settle(sandbox).await;

    let arrival_window = options.duration.min(elapsed).as_secs_f64().max(0.001);
    let sent_in_window = sent_in_window.unwrap_or_else(|| live.sent.load(Ordering::Relaxed));
    let counters = sandbox.fake().counters();
    let (calendar_bookings, double_bookings) = audit_calendars(sandbox).await;
    let messages = audit_messages(&outcomes, started, |business, customer| {
        sandbox.fake().outbox(business, customer)
    });
    let mut worker_rss_kib: Vec<u64> = pids
        .iter()
        .filter_map(|pid| peak_rss.get(pid).copied())
        .collect();
    worker_rss_kib.sort_unstable();
    let report = LoadReport {
        command: String::new(),
        machine: machine(),
        workers: sandbox.workers,
        partitions: sandbox.partitions,
        businesses: businesses.len(),
        elapsed,
        arrived: live.arrived.load(Ordering::Relaxed),
        completed: outcomes.iter().filter(|o| o.failure.is_none()).count() as u64,
        endings: endings(&outcomes),
        customer_messages: messages.customer_messages,
        bot_messages: counters.accepted,
        status_webhooks: sandbox.fake().statuses().len() as u64,
        messages_per_second: sent_in_window as f64 / arrival_window,
        p50: latencies.percentile(50.0),
        p95: latencies.percentile(95.0),
        p99: latencies.percentile(99.0),
        max: latencies.percentile(100.0),
        errors: errors_by_kind(&outcomes),
        graph_rejections: counters.rejected.clone(),
        calendar_bookings,
        confirmed_to_customers: outcomes
            .iter()
            .filter(|o| o.ending == Ending::Booked)
            .count() as u64,
        double_bookings,
        messages,
        worker_rss_kib,
        broker_wal: wal.map(|watch| watch.between(started.into_std(), std::time::Instant::now())),
    };
    (report, outcomes)
}

/// Waits until the fake has accepted nothing new for a second (at most ten): late and
/// duplicated replies must be in the outbox before the audit reads it.
async fn settle(sandbox: &Sandbox) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = sandbox.fake().counters().accepted;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = sandbox.fake().counters().accepted;
        if now == last {
            return;
        }
        last = now;
    }
}

/// (live bookings in all calendars, double bookings found).
pub async fn audit_calendars(sandbox: &Sandbox) -> (u64, u64) {
    let mut bookings = 0u64;
    let mut doubles = 0u64;
    let tenants = match engine::Tenants::from_toml_str(&sandbox.world.tenants_toml()) {
        Ok(tenants) => tenants,
        Err(error) => {
            eprintln!("sim: cannot audit, tenants file invalid: {error}");
            return (0, u64::MAX);
        }
    };
    let builtin: Vec<_> = sandbox
        .world
        .businesses
        .iter()
        .filter(|b| b.backend == Backend::Builtin)
        .filter_map(|b| tenants.get(&b.phone_number_id))
        .collect();
    if !builtin.is_empty() {
        match shared::redis::open(&sandbox_redis_url(sandbox)) {
            Ok(redis) => {
                let calendar = worker::calendar::BuiltinCalendar::new(
                    redis,
                    worker::keys::Keys::new(&sandbox.namespace),
                );
                for tenant in builtin {
                    match calendar.audit(tenant).await {
                        Ok(rows) => {
                            bookings += rows.len() as u64;
                            let capacity: HashMap<String, u32> = tenant
                                .staff
                                .iter()
                                .map(|r| (r.id.clone(), r.capacity))
                                .collect();
                            let intervals: Vec<(String, i64, i64)> = rows
                                .into_iter()
                                .map(|(_, resource, start, end)| (resource, start, end))
                                .collect();
                            doubles += over_capacity(&intervals, &capacity);
                        }
                        Err(error) => eprintln!("sim: audit of {} failed: {error}", tenant.name),
                    }
                }
            }
            Err(error) => eprintln!("sim: audit cannot reach Redis: {error}"),
        }
    }
    let calcom = sandbox.calcom.fake();
    bookings += calcom
        .bookings()
        .iter()
        .filter(|b| {
            matches!(
                b.status,
                fakes::calcom::BookingStatus::Accepted | fakes::calcom::BookingStatus::Pending
            )
        })
        .count() as u64;
    doubles += calcom.double_bookings().len() as u64;
    (bookings, doubles)
}

fn sandbox_redis_url(sandbox: &Sandbox) -> secrecy::SecretString {
    secrecy::SecretString::from(sandbox.services().redis_url.expose_secret().to_owned())
}

/// "AMD EPYC 7B13, 2 cores, 23.5 GiB RAM, Linux 6.1" from /proc, best effort.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<f64>()
                        .ok()
                })
        })
        .map_or_else(String::new, |kib| {
            format!(", {:.1} GiB RAM", kib / 1024.0 / 1024.0)
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|r| format!(", Linux {}", r.trim()))
        .unwrap_or_default();
    format!("{cpu}, {cores} cores{memory}{kernel}")
}
