//! Scheduler metrics, rendered as Prometheus text on `/metrics`.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub struct Metrics {
    pub registry: Registry,
    /// Timers published with a broker confirm: the scheduler's whole output.
    pub fired: Counter,
    /// Claim rounds on a shard that failed (Redis unreachable or slow): timers wait, none lost.
    pub claim_failures: Counter,
    /// Publishes that were not confirmed: the timer is given back and retried.
    pub publish_failures: Counter,
    /// Completions that failed after a confirmed publish: the timer will fire again when its
    /// lease ends, so the worker sees a duplicate.
    pub complete_failures: Counter,
    /// Confirmed time minus due time: the promise made to customers ("your reminder comes on
    /// time") as a distribution.
    pub lateness_seconds: Histogram,
    /// Timers stored, waiting or leased, across all shards.
    pub pending: Gauge,
    /// Claim rounds run, so a stalled loop shows as a flat line.
    pub rounds: Counter,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("scheduler");
        let fired = Counter::default();
        let claim_failures = Counter::default();
        let publish_failures = Counter::default();
        let complete_failures = Counter::default();
        let lateness_seconds = Histogram::new([
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
        ]);
        let pending = Gauge::default();
        let rounds = Counter::default();
        registry.register(
            "timers_fired",
            "Timers published and confirmed",
            fired.clone(),
        );
        registry.register(
            "claim_failures",
            "Shard claims that failed",
            claim_failures.clone(),
        );
        registry.register(
            "publish_failures",
            "Timer publishes not confirmed by the broker",
            publish_failures.clone(),
        );
        registry.register(
            "complete_failures",
            "Confirmed timers that could not be removed",
            complete_failures.clone(),
        );
        registry.register(
            "lateness_seconds",
            "Time from a timer's due time to its confirmed publish",
            lateness_seconds.clone(),
        );
        registry.register(
            "pending_timers",
            "Timers stored, waiting or leased",
            pending.clone(),
        );
        registry.register("rounds", "Claim rounds run", rounds.clone());
        Self {
            registry,
            fired,
            claim_failures,
            publish_failures,
            complete_failures,
            lateness_seconds,
            pending,
            rounds,
        }
    }

    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
