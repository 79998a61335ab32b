//! Ingress metrics, rendered as Prometheus text on `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

pub struct Metrics {
    pub registry: Registry,
    /// Webhook deliveries by how they were answered.
    pub deliveries: Family<OutcomeLabel, Counter>,
    /// Events published, by kind.
    pub events: Family<KindLabel, Counter>,
    /// Well-signed updates acknowledged without an event (kinds we do not handle).
    pub ignored: Family<ReasonLabel, Counter>,
    /// Updates kept raw in the unparsed queue because they could not be read.
    pub unreadable: Counter,
    /// Time from request to answer for authenticated deliveries.
    pub delivery_seconds: Histogram,
    /// Per confirmed event, time from publishing until its frames were written to the broker.
    pub publish_write_seconds: Histogram,
    /// Per confirmed event, time from the frames written until the handler saw the confirm.
    pub publish_confirm_seconds: Histogram,
    /// HTTP connections served now (bounded by `INGRESS_MAX_CONNECTIONS`).
    pub connections_open: Gauge,
    /// Connections answered 503 at once because `INGRESS_MAX_CONNECTIONS` were open.
    pub connections_refused: Counter,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("ingress");
        let deliveries = Family::<OutcomeLabel, Counter>::default();
        let events = Family::<KindLabel, Counter>::default();
        let ignored = Family::<ReasonLabel, Counter>::default();
        let unreadable = Counter::default();
        let delivery_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register(
            "deliveries",
            "Webhook deliveries by outcome",
            deliveries.clone(),
        );
        registry.register("events", "Events published by kind", events.clone());
        registry.register(
            "ignored_updates",
            "Updates of unhandled kinds",
            ignored.clone(),
        );
        registry.register(
            "unreadable_updates",
            "Updates kept raw as unreadable",
            unreadable.clone(),
        );
        registry.register(
            "delivery_seconds",
            "Latency of authenticated webhook deliveries",
            delivery_seconds.clone(),
        );
        // From 0.1 ms: writing frames normally takes tens of microseconds.
        let publish_write_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        registry.register(
            "publish_write_seconds",
            "Time from publishing an event until its frames were written to the broker",
            publish_write_seconds.clone(),
        );
        let publish_confirm_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        registry.register(
            "publish_confirm_seconds",
            "Time from an event's frames written until the broker's confirm was seen",
            publish_confirm_seconds.clone(),
        );
        let connections_open = Gauge::default();
        registry.register(
            "connections_open",
            "HTTP connections open now",
            connections_open.clone(),
        );
        let connections_refused = Counter::default();
        registry.register(
            "connections_refused",
            "Connections answered 503 at once because the connection limit was reached",
            connections_refused.clone(),
        );
        Self {
            registry,
            connections_open,
            connections_refused,
            deliveries,
            events,
            ignored,
            unreadable,
            delivery_seconds,
            publish_write_seconds,
            publish_confirm_seconds,
        }
    }

    /// Records a confirmed publish's stages into the two publish histograms.
    pub fn stage_observer(&self) -> shared::amqp::StageObserver {
        let (write, confirm) = (
            self.publish_write_seconds.clone(),
            self.publish_confirm_seconds.clone(),
        );
        std::sync::Arc::new(move |stages: shared::amqp::PublishStages| {
            write.observe(stages.written.as_secs_f64());
            confirm.observe(stages.confirmed.as_secs_f64());
        })
    }

    pub fn delivery(&self, outcome: &'static str) {
        self.deliveries
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
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
