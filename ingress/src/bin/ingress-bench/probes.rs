//! Probes that run beside the open-loop phase, to tell where a latency stall came from: the
//! broker's own confirm latency, measured without ingress in the path, and how late the
//! generator's async runtime wakes up (a late generator delays its requests and counts that
//! delay as ingress latency).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ingress::host_watch::HostWatch;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection};

/// Durations stamped with when they were measured.
#[derive(Clone, Default)]
pub struct Marks(Arc<Mutex<Vec<(Instant, Duration)>>>);

impl Marks {
    fn push(&self, at: Instant, duration: Duration) {
        if let Ok(mut marks) = self.0.lock() {
            marks.push((at, duration));
        }
    }

    /// The longest duration stamped within `start..end`.
    pub fn worst_between(&self, start: Instant, end: Instant) -> Option<Duration> {
        let marks = match self.0.lock() {
            Ok(marks) => marks,
            Err(poisoned) => poisoned.into_inner(),
        };
        marks
            .iter()
            .filter(|(at, _)| (start..end).contains(at))
            .map(|(_, duration)| *duration)
            .max()
    }
}

/// Publishes one small persistent message with confirms every few milliseconds, one at a
/// time, to a quorum queue of its own: the same path through the broker (quorum WAL, fsync,
/// confirm) as ingress's events, without ingress. Each confirm latency is stamped with when
/// its publish was sent. The queue is left for the caller to delete with the rest of its
/// queues, so a run that fails half-way leaves none behind.
pub struct BrokerCanary {
    pub confirms: Marks,
    task: tokio::task::JoinHandle<()>,
}

/// The canary queue keeps at most this many messages; older ones are dropped.
const CANARY_QUEUE_LENGTH: i64 = 100;

impl BrokerCanary {
    pub async fn start(
        connection: &Connection,
        queue: &str,
        every: Duration,
    ) -> anyhow::Result<BrokerCanary> {
        let channel = connection.create_channel().await?;
        let mut arguments = FieldTable::default();
        arguments.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        arguments.insert(
            "x-max-length".into(),
            AMQPValue::LongLongInt(CANARY_QUEUE_LENGTH),
        );
        channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                arguments,
            )
            .await?;
        let _ = channel.close(200, "canary declared".into()).await;
        let publisher = connection.create_channel().await?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let confirms = Marks::default();
        let recorded = confirms.clone();
        let routing_key = queue.to_owned();
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                ticker.tick().await;
                let sent = Instant::now();
                let published = publisher
                    .basic_publish(
                        "".into(),
                        routing_key.as_str().into(),
                        BasicPublishOptions {
                            mandatory: true,
                            ..BasicPublishOptions::default()
                        },
                        b"canary",
                        BasicProperties::default().with_delivery_mode(2),
                    )
                    .await;
                let confirmed = match published {
                    Ok(confirm) => confirm.await.is_ok_and(|confirm| confirm.is_ack()),
                    Err(_) => false,
                };
                // A refused or lost publish is recorded as unbounded, not skipped: it is the
                // broker failing, which is what the canary is for.
                let latency = if confirmed {
                    sent.elapsed()
                } else {
                    Duration::MAX
                };
                recorded.push(sent, latency);
            }
        });
        Ok(BrokerCanary { confirms, task })
    }
}

impl Drop for BrokerCanary {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Sleeps `every` over and over on the caller's runtime and stamps how much later than asked
/// each wake-up came.
pub struct LateWakeUps {
    pub late: Marks,
    task: tokio::task::JoinHandle<()>,
}

impl LateWakeUps {
    pub fn start(every: Duration) -> LateWakeUps {
        let late = Marks::default();
        let recorded = late.clone();
        let task = tokio::spawn(async move {
            loop {
                let asleep = Instant::now();
                tokio::time::sleep(every).await;
                recorded.push(asleep, asleep.elapsed().saturating_sub(every));
            }
        });
        LateWakeUps { late, task }
    }
}

impl Drop for LateWakeUps {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The histograms of ingress's own `/metrics` the bench follows: time inside the webhook
/// handler (split, publish, confirm), and per event, time until its frames were written to the
/// broker and from then until the confirm was seen.
const HANDLER_HISTOGRAMS: [&str; 3] = [
    "ingress_delivery_seconds",
    "ingress_publish_write_seconds",
    "ingress_publish_confirm_seconds",
];

/// Scrapes ingress's own latency histograms every few milliseconds. A stall the generator sees
/// that the handler's times also show happened between the handler and the broker's confirm;
/// one they do not show happened before the handler ran (the HTTP connection, the runtime).
/// Within the handler, the write and confirm stages tell frames that waited to go out from
/// confirms that came late.
pub struct HandlerTimes {
    scrapes: Arc<Mutex<Vec<Scrape>>>,
    task: tokio::task::JoinHandle<()>,
}

/// The slowest observation of each of `HANDLER_HISTOGRAMS` in a window, as the upper bound of
/// its bucket in seconds.
pub type WorstBounds = [Option<f64>; HANDLER_HISTOGRAMS.len()];

impl HandlerTimes {
    pub fn start(metrics_url: String, every: Duration) -> HandlerTimes {
        let scrapes = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&scrapes);
        let task = tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                ticker.tick().await;
                let Ok(response) = client.get(&metrics_url).send().await else {
                    continue;
                };
                let Ok(text) = response.text().await else {
                    continue;
                };
                let histograms = HANDLER_HISTOGRAMS.map(|name| histogram_buckets(&text, name));
                if !histograms[0].is_empty()
                    && let Ok(mut scrapes) = recorded.lock()
                {
                    scrapes.push((Instant::now(), histograms));
                }
            }
        });
        HandlerTimes { scrapes, task }
    }

    /// For each histogram, the upper bound of the slowest time observed between the first and
    /// the last scrape inside `start..end`; None without two scrapes or any observation between.
    pub fn worst_bounds_between(&self, start: Instant, end: Instant) -> WorstBounds {
        let scrapes = match self.scrapes.lock() {
            Ok(scrapes) => scrapes,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut inside = scrapes.iter().filter(|(at, _)| (start..end).contains(at));
        let (Some(first), Some(last)) = (inside.next(), inside.next_back()) else {
            return [None; HANDLER_HISTOGRAMS.len()];
        };
        std::array::from_fn(|histogram| worst_bound(&first.1[histogram], &last.1[histogram]))
    }
}

impl Drop for HandlerTimes {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// When a scrape was taken, and each histogram's cumulative (upper bound in seconds, count)
/// buckets.
type Scrape = (Instant, [Vec<(f64, u64)>; HANDLER_HISTOGRAMS.len()]);

/// The cumulative (upper bound in seconds, count) buckets of histogram `name` in Prometheus
/// text.
fn histogram_buckets(metrics: &str, name: &str) -> Vec<(f64, u64)> {
    let prefix = format!("{name}_bucket{{le=\"");
    metrics
        .lines()
        .filter_map(|line| line.strip_prefix(prefix.as_str()))
        .filter_map(|rest| {
            let (bound, rest) = rest.split_once("\"}")?;
            let bound = match bound {
                "+Inf" => f64::INFINITY,
                finite => finite.parse().ok()?,
            };
            Some((bound, rest.trim().parse().ok()?))
        })
        .collect()
}

/// The smallest bucket bound that holds every observation made between two scrapes.
fn worst_bound(before: &[(f64, u64)], after: &[(f64, u64)]) -> Option<f64> {
    let added = |bucket: usize| after[bucket].1.saturating_sub(before[bucket].1);
    if before.len() != after.len() || after.is_empty() {
        return None;
    }
    let total = added(after.len() - 1);
    if total == 0 {
        return None;
    }
    (0..after.len())
        .find(|&bucket| added(bucket) == total)
        .map(|bucket| after[bucket].0)
}

/// What the bench needs to print beside a slice of the open loop.
pub struct Surroundings<'a> {
    pub host: &'a HostWatch,
    pub canary: &'a Marks,
    pub generator: &'a Marks,
    pub handler: &'a HandlerTimes,
    /// The instant the open loop's offsets count from.
    pub started: Instant,
}

pub const SURROUNDINGS_LEGEND: &str = "  (after the last '|', in ms over the slice: steal = the hypervisor ran something else; \
psi cpu, io some/full = time tasks waited for a CPU, for I/O; runq = time ingress's threads (in brackets: its broker connection's \
I/O thread, which writes publishes and reads confirms), the broker's threads were runnable but not running; canary = worst broker publish-confirm with ingress not involved; handler = the slowest time \
inside ingress's webhook handler (split, publish, confirm) by its histogram's bucket bound, by when it ended, \
and within it the slowest wait of an event's frames to be written to the broker, and from then for its confirm; \
late = worst oversleep of a sampling thread, of the generator's runtime)";

impl Surroundings<'_> {
    pub fn line(&self, from: Duration, to: Duration) -> String {
        let (start, end) = (self.started + from, self.started + to);
        let window = self.host.between(start, end);
        let host = match window {
            Some(window) => {
                let c = window.counters;
                format!(
                    "steal {} | psi cpu {} io {}/{} | runq {} ({})/{} | ",
                    ms(c.steal),
                    ms(c.cpu_some),
                    ms(c.io_some),
                    ms(c.io_full),
                    ms(c.runqueue_wait[0]),
                    ms(c.named_thread_wait),
                    ms(c.runqueue_wait[1]),
                )
            }
            None => "host not sampled | ".to_owned(),
        };
        let worst = |marks: &Marks| match marks.worst_between(start, end) {
            Some(Duration::MAX) => "failed".to_owned(),
            Some(worst) => format!("{:.1}", worst.as_secs_f64() * 1000.0),
            None => "-".to_owned(),
        };
        let sampler_late = window.map_or("-".to_owned(), |window| ms(window.worst_wake_up));
        let bound = |bound: Option<f64>| match bound {
            Some(bound) if bound.is_infinite() => "over the largest bucket".to_owned(),
            Some(bound) => format!("≤{}", bound * 1000.0),
            None => "-".to_owned(),
        };
        let [handler, write, confirm] = self.handler.worst_bounds_between(start, end).map(bound);
        format!(
            "{host}canary {} | handler {handler} (write {write}, confirm {confirm}) | late {}/{}",
            worst(self.canary),
            sampler_late,
            worst(self.generator),
        )
    }
}

fn ms(duration: Duration) -> String {
    format!("{:.0}", duration.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_delivery_histogram_and_bounds_the_slowest_new_observation() {
        let before = "# HELP ingress_delivery_seconds Latency\n\
            ingress_delivery_seconds_sum 1.5\n\
            ingress_delivery_seconds_count 10\n\
            ingress_delivery_seconds_bucket{le=\"0.0005\"} 2\n\
            ingress_delivery_seconds_bucket{le=\"0.001\"} 9\n\
            ingress_delivery_seconds_bucket{le=\"+Inf\"} 10\n\
            ingress_deliveries_total{outcome=\"accepted\"} 10\n";
        let before = histogram_buckets(before, "ingress_delivery_seconds");
        assert_eq!(before, vec![(0.0005, 2), (0.001, 9), (f64::INFINITY, 10)]);
        let after = vec![(0.0005, 4), (0.001, 12), (f64::INFINITY, 13)];
        assert_eq!(worst_bound(&before, &after), Some(0.001));
        let slow = vec![(0.0005, 4), (0.001, 12), (f64::INFINITY, 14)];
        assert_eq!(worst_bound(&before, &slow), Some(f64::INFINITY));
        assert_eq!(worst_bound(&before, &before), None, "nothing observed");
        assert_eq!(worst_bound(&before, &after[..2]), None, "different buckets");
    }

    #[test]
    fn the_worst_mark_counts_only_marks_inside_the_window() {
        let marks = Marks::default();
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        marks.push(at(0), Duration::from_millis(90));
        marks.push(at(10), Duration::from_millis(3));
        marks.push(at(20), Duration::from_millis(7));
        marks.push(at(30), Duration::from_millis(50));
        assert_eq!(
            marks.worst_between(at(5), at(30)),
            Some(Duration::from_millis(7)),
            "the end is excluded, so adjacent windows never count a mark twice"
        );
        assert_eq!(marks.worst_between(at(11), at(19)), None);
    }
}
