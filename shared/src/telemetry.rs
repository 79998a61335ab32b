//! Logging, tracing and trace-context propagation for every binary.
//!
//! `tracing` is the only instrumentation API in the code base. An OpenTelemetry layer is always
//! installed so that every span has a W3C trace id that travels in AMQP headers and outbound
//! HTTP (one trace from webhook to reply); spans are exported over OTLP only when the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set.
//!
//! Phone numbers and message text never go into a log line or span in clear: use [`pseudonym`].

use std::sync::OnceLock;

use hmac::{Hmac, Mac};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt as _, TraceFlags, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use sha2::Sha256;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::Env;

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("RUST_LOG is invalid: {0}")]
    Filter(String),
    #[error("OTLP exporter could not be built: {0}")]
    Exporter(String),
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// Flushes and shuts the exporter down when dropped, so the last spans of a draining process
/// are not lost.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let _ = self.provider.force_flush();
        let _ = self.provider.shutdown();
    }
}

/// Installs the global subscriber: env filter (`RUST_LOG`, default `info`), human-readable
/// logs on stderr, and the OpenTelemetry layer.
pub fn init(default_service_name: &str, env: &Env) -> Result<TelemetryGuard, TelemetryError> {
    let exporting = env.get("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
        || env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some();
    let mut builder = SdkTracerProvider::builder();
    if exporting {
        // The exporter reads the standard OTEL_EXPORTER_OTLP_* variables itself.
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
            .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
        builder = builder.with_batch_exporter(exporter);
    }
    install(default_service_name, env, builder)
}

/// Installs the same global subscriber as [`init`], but exports every span to `exporter` as
/// soon as it ends (a simple, not batching, processor), whatever the OTLP variables say.
///
/// For tests and tools that inspect the spans themselves (for example with an in-memory
/// exporter): synchronous export means a span is observable right after it closes.
pub fn init_with_exporter<E>(
    default_service_name: &str,
    env: &Env,
    exporter: E,
) -> Result<TelemetryGuard, TelemetryError>
where
    E: opentelemetry_sdk::trace::SpanExporter + 'static,
{
    install(
        default_service_name,
        env,
        SdkTracerProvider::builder().with_simple_exporter(exporter),
    )
}

/// The part of [`init`] shared by every exporter choice, so tests observe exactly the layers,
/// filters and propagator the binaries run with.
fn install(
    default_service_name: &str,
    env: &Env,
    builder: opentelemetry_sdk::trace::TracerProviderBuilder,
) -> Result<TelemetryGuard, TelemetryError> {
    if let Some(key) = env.get("TELEMETRY_HASH_KEY")
        && let Ok(keyed) = PseudonymMac::new_from_slice(key.as_bytes())
    {
        let _ = PSEUDONYM_MAC.set(keyed);
    }
    let filter = EnvFilter::try_new(env.get("RUST_LOG").unwrap_or("info"))
        .map_err(|e| TelemetryError::Filter(e.to_string()))?;
    let service_name = env
        .get("OTEL_SERVICE_NAME")
        .unwrap_or(default_service_name)
        .to_owned();

    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service_name.clone())
        .build();
    let provider = builder.with_resource(resource).build();
    let tracer = provider.tracer(service_name);
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    // Spans and events below INFO stay out of traces whatever RUST_LOG says: dependencies'
    // debug/trace output is not written for export (lapin dumps whole AMQP frames at trace
    // level, SASL credentials included), and an unfiltered layer would also keep every
    // trace-level callsite in the process enabled, formatting its fields on the hot path.
    // lapin's INFO `io_loop` span lives as long as its connection: a root span per
    // connection that says nothing about a message, so only its warnings are kept.
    let exported = Targets::new()
        .with_default(LevelFilter::INFO)
        .with_target("lapin", LevelFilter::WARN);
    tracing_subscriber::registry()
        .with(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                // Every `Instrumented` poll enters and exits its spans; these three would add
                // a clock read, a thread-local context push and two attributes to each of
                // them. Propagation reads the span's own context (`Span::context`), so
                // nothing here relies on an active OpenTelemetry context, and thread names
                // say nothing about an async task.
                .with_tracked_inactivity(false)
                .with_context_activation(false)
                .with_threads(false)
                .with_filter(exported),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(filter),
        )
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    Ok(TelemetryGuard { provider })
}

type PseudonymMac = Hmac<Sha256>;

/// The MAC keyed with `TELEMETRY_HASH_KEY`, set once at start-up. Kept keyed and cloned per
/// call: keying hashes two blocks, half the work of a pseudonym, and ingress makes one per
/// event it publishes.
static PSEUDONYM_MAC: OnceLock<PseudonymMac> = OnceLock::new();
static DEFAULT_PSEUDONYM_MAC: OnceLock<Option<PseudonymMac>> = OnceLock::new();

/// A stable, keyed pseudonym for a phone number, wa_id or text, safe to put in logs, spans
/// and metrics: the same input gives the same 16 hex characters within a deployment, and it
/// cannot be reversed by enumerating phone numbers without the key (`TELEMETRY_HASH_KEY`).
pub fn pseudonym(value: &str) -> String {
    let keyed = PSEUDONYM_MAC.get().or_else(|| {
        DEFAULT_PSEUDONYM_MAC
            .get_or_init(|| PseudonymMac::new_from_slice(b"whatsapp-booking-fleet").ok())
            .as_ref()
    });
    let Some(keyed) = keyed else {
        return String::from("unhashable");
    };
    let mut mac = keyed.clone();
    mac.update(value.as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..8])
}

struct AmqpExtractor<'a>(&'a FieldTable);

impl Extractor for AmqpExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match self.0.inner().get(&ShortString::from(key))? {
            AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok(),
            AMQPValue::ShortString(s) => Some(s.as_str()),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        self.0.inner().keys().map(|k| k.as_str()).collect()
    }
}

/// A span context as W3C Trace Context headers: `traceparent`, and `tracestate` only when the
/// trace carries one.
///
/// Written here rather than by the SDK's propagator, which goes through `format!` and always
/// adds a `tracestate` header, empty or not. Every event ingress publishes carries these: the
/// formatting was a measurable share of ingress's CPU per delivery, and an empty header is
/// bytes the broker stores and parses in every message for nothing. Extraction still goes
/// through the SDK's propagator, which validates what it reads.
struct TraceHeaders {
    traceparent: [u8; 55],
    tracestate: Option<String>,
}

impl TraceHeaders {
    fn of(context: &opentelemetry::Context) -> Option<Self> {
        let span = context.span();
        let span_context = span.span_context();
        if !span_context.is_valid() {
            return None;
        }
        let flags = span_context.trace_flags() & TraceFlags::SAMPLED;
        // version-trace_id-span_id-flags: "00-" + 32 + "-" + 16 + "-" + 2 characters. The
        // ranges match the ids' fixed sizes, so the encodings cannot fail.
        let mut traceparent = *b"00-________________________________-________________-__";
        hex::encode_to_slice(span_context.trace_id().to_bytes(), &mut traceparent[3..35]).ok()?;
        hex::encode_to_slice(span_context.span_id().to_bytes(), &mut traceparent[36..52]).ok()?;
        hex::encode_to_slice([flags.to_u8()], &mut traceparent[53..55]).ok()?;
        let tracestate = span_context.trace_state().header();
        Some(Self {
            traceparent,
            tracestate: (!tracestate.is_empty()).then_some(tracestate),
        })
    }

    fn write_amqp(self, headers: &mut FieldTable) {
        headers.insert(
            ShortString::from("traceparent"),
            AMQPValue::LongString(LongString::from(self.traceparent.to_vec())),
        );
        if let Some(state) = self.tracestate {
            headers.insert(
                ShortString::from("tracestate"),
                AMQPValue::LongString(LongString::from(state.into_bytes())),
            );
        }
    }
}

/// Writes the current span's context (`traceparent`, `tracestate`) into AMQP headers.
pub fn inject_amqp_headers(headers: &mut FieldTable) {
    inject_amqp_headers_of(&tracing::Span::current(), headers);
}

/// Writes `span`'s context into AMQP headers, whether or not it is the current span.
pub fn inject_amqp_headers_of(span: &tracing::Span, headers: &mut FieldTable) {
    if let Some(trace) = TraceHeaders::of(&span.context()) {
        trace.write_amqp(headers);
    }
}

/// Makes `span` a child of the trace whose context the AMQP headers carry, if any.
pub fn continue_trace_from_amqp(span: &tracing::Span, headers: &FieldTable) {
    let parent = TraceContextPropagator::new().extract(&AmqpExtractor(headers));
    let _ = span.set_parent(parent);
}

/// Writes the current span's context into outbound HTTP request headers.
pub fn inject_http_headers(headers: &mut reqwest::header::HeaderMap) {
    use reqwest::header::HeaderValue;
    let Some(trace) = TraceHeaders::of(&tracing::Span::current().context()) else {
        return;
    };
    if let Ok(value) = HeaderValue::from_bytes(&trace.traceparent) {
        headers.insert("traceparent", value);
    }
    // Another service's trace state may hold what a header cannot; it is dropped, not the
    // request.
    if let Some(Ok(value)) = trace.tracestate.as_deref().map(HeaderValue::from_str) {
        headers.insert("tracestate", value);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::str::FromStr;

    use opentelemetry::trace::{SpanContext, SpanId, TraceId, TraceState};

    use super::*;

    fn context_with(flags: TraceFlags, state: TraceState) -> opentelemetry::Context {
        opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").expect("valid trace id"),
            SpanId::from_hex("00f067aa0ba902b7").expect("valid span id"),
            flags,
            true,
            state,
        ))
    }

    /// What the SDK's own propagator writes for the same context.
    fn sdk_headers(context: &opentelemetry::Context) -> HashMap<String, String> {
        let mut headers = HashMap::new();
        TraceContextPropagator::new().inject_context(context, &mut headers);
        headers
    }

    #[test]
    fn traceparent_is_written_exactly_as_the_sdk_writes_it() {
        for flags in [
            TraceFlags::SAMPLED,
            TraceFlags::NOT_SAMPLED,
            TraceFlags::new(0xff),
        ] {
            let context = context_with(flags, TraceState::NONE);
            let ours = TraceHeaders::of(&context).expect("a valid context has headers");
            assert_eq!(
                std::str::from_utf8(&ours.traceparent).ok(),
                sdk_headers(&context).get("traceparent").map(String::as_str),
                "flags {flags:?}"
            );
        }
        assert_eq!(
            TraceHeaders::of(&context_with(TraceFlags::SAMPLED, TraceState::NONE))
                .map(|h| h.traceparent),
            Some(*b"00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01")
        );
    }

    #[test]
    fn tracestate_is_sent_only_when_the_trace_has_one() {
        let bare = TraceHeaders::of(&context_with(TraceFlags::SAMPLED, TraceState::NONE))
            .expect("headers");
        assert_eq!(bare.tracestate, None);

        let state = TraceState::from_str("vendor=abc,other=1").expect("valid trace state");
        let context = context_with(TraceFlags::SAMPLED, state);
        let carried = TraceHeaders::of(&context).expect("headers");
        assert_eq!(
            carried.tracestate.as_deref(),
            sdk_headers(&context).get("tracestate").map(String::as_str)
        );
        assert_eq!(carried.tracestate.as_deref(), Some("vendor=abc,other=1"));
    }

    #[test]
    fn no_headers_without_a_valid_span_context() {
        assert!(TraceHeaders::of(&opentelemetry::Context::new()).is_none());
    }

    #[test]
    fn injected_amqp_headers_are_extracted_back_to_the_same_context() {
        let context = context_with(
            TraceFlags::SAMPLED,
            TraceState::from_str("vendor=abc").expect("valid trace state"),
        );
        let mut headers = FieldTable::default();
        TraceHeaders::of(&context)
            .expect("headers")
            .write_amqp(&mut headers);
        let extracted = TraceContextPropagator::new().extract(&AmqpExtractor(&headers));
        let original = context.span().span_context().clone();
        let span = extracted.span();
        let back = span.span_context();
        assert_eq!(back.trace_id(), original.trace_id());
        assert_eq!(back.span_id(), original.span_id());
        assert_eq!(back.trace_flags(), original.trace_flags());
        assert_eq!(back.trace_state().header(), "vendor=abc");
    }

    /// Pseudonyms already written to logs and dead-letter records must keep matching: the
    /// default-key value is pinned (HMAC-SHA256 with key "whatsapp-booking-fleet", first 8
    /// bytes, checked with Python's hmac module).
    #[test]
    fn pseudonym_of_a_known_input_never_changes() {
        assert_eq!(pseudonym("34600111222"), "64ad5e3c02966b72");
    }

    #[test]
    fn pseudonyms_are_stable_and_do_not_leak_the_input() {
        let a = pseudonym("34600111222");
        assert_eq!(a, pseudonym("34600111222"));
        assert_ne!(a, pseudonym("34600111223"));
        assert_eq!(a.len(), 16);
        assert!(!a.contains("600111"));
    }
}
