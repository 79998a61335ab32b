//! The booking funnel and the worker's health, as Prometheus text on the admin port.
//!
//! Labels carry tenant ids and engine-defined names only: never a phone number or a text.

use std::collections::BTreeMap;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub kind: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    pub stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FunnelLabels {
    pub tenant: String,
    pub event: String,
    /// The engine's own labels (for example `intent=book`), joined.
    pub detail: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantReasonLabels {
    pub tenant: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantLabels {
    pub tenant: String,
}

pub struct Metrics {
    registry: Registry,
    events: Family<EventLabels, Counter>,
    stages: Family<StageLabels, Histogram>,
    funnel: Family<FunnelLabels, Counter>,
    handoffs: Family<TenantReasonLabels, Counter>,
    sent: Family<TenantLabels, Counter>,
    dead_letters: Family<TenantReasonLabels, Counter>,
    ambiguous_sends: Counter,
    stray_holds_released: Counter,
    retries: Counter,
    event_age: Histogram,
    pub partitions_owned: Gauge,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("worker");
        let events = Family::<EventLabels, Counter>::default();
        let stages = Family::<StageLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 16))
        });
        let funnel = Family::<FunnelLabels, Counter>::default();
        let handoffs = Family::<TenantReasonLabels, Counter>::default();
        let sent = Family::<TenantLabels, Counter>::default();
        let dead_letters = Family::<TenantReasonLabels, Counter>::default();
        let ambiguous_sends = Counter::default();
        let stray_holds_released = Counter::default();
        let retries = Counter::default();
        let event_age = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        let partitions_owned = Gauge::default();
        registry.register(
            "events",
            "Events handled, by kind and result",
            events.clone(),
        );
        registry.register("stage_seconds", "Time per processing stage", stages.clone());
        registry.register(
            "funnel",
            "Booking funnel events (intents, holds, bookings, expiries)",
            funnel.clone(),
        );
        registry.register(
            "handoffs",
            "Conversations handed to a person",
            handoffs.clone(),
        );
        registry.register(
            "messages_sent",
            "Messages accepted by WhatsApp",
            sent.clone(),
        );
        registry.register(
            "dead_letters",
            "Events moved to the dead-letter queue",
            dead_letters.clone(),
        );
        registry.register(
            "ambiguous_sends",
            "Sends interrupted by a crash and not repeated",
            ambiguous_sends.clone(),
        );
        registry.register(
            "stray_holds_released",
            "Holds taken by an attempt that died before its commit, let go by the replay",
            stray_holds_released.clone(),
        );
        registry.register(
            "retries",
            "Event processing attempts retried",
            retries.clone(),
        );
        registry.register(
            "event_age_seconds",
            "From ingress receiving an event to the worker finishing it",
            event_age.clone(),
        );
        registry.register(
            "partitions_owned",
            "Partitions this worker consumes",
            partitions_owned.clone(),
        );
        Self {
            registry,
            events,
            stages,
            funnel,
            handoffs,
            sent,
            dead_letters,
            ambiguous_sends,
            stray_holds_released,
            retries,
            event_age,
            partitions_owned,
        }
    }

    pub fn event(&self, kind: &str, result: &str) {
        self.events
            .get_or_create(&EventLabels {
                kind: kind.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    pub fn stage(&self, stage: &str, started: Instant) {
        self.stages
            .get_or_create(&StageLabels {
                stage: stage.to_owned(),
            })
            .observe(started.elapsed().as_secs_f64());
    }

    pub fn funnel(&self, tenant: &str, event: &str, labels: &BTreeMap<String, String>) {
        let detail = labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        self.funnel
            .get_or_create(&FunnelLabels {
                tenant: tenant.to_owned(),
                event: event.to_owned(),
                detail,
            })
            .inc();
    }

    pub fn handoff(&self, tenant: &str, reason: &str) {
        self.handoffs
            .get_or_create(&TenantReasonLabels {
                tenant: tenant.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    pub fn sent(&self, tenant: &str) {
        self.sent
            .get_or_create(&TenantLabels {
                tenant: tenant.to_owned(),
            })
            .inc();
    }

    pub fn dead_letter(&self, tenant: &str, reason: &str) {
        self.dead_letters
            .get_or_create(&TenantReasonLabels {
                tenant: tenant.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    pub fn ambiguous_send(&self) {
        self.ambiguous_sends.inc();
    }

    pub fn stray_hold_released(&self) {
        self.stray_holds_released.inc();
    }

    pub fn retry(&self) {
        self.retries.inc();
    }

    pub fn event_age(&self, seconds: f64) {
        self.event_age.observe(seconds.max(0.0));
    }

    pub fn render(&self) -> String {
        let mut text = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
