//! One trace per customer message, from the webhook to the reply, and no personal data in it.
//!
//! The whole fleet runs in this process under the real telemetry stack with an in-memory
//! exporter. Each reply the fake WhatsApp accepts carries a `traceparent`; from it the test
//! finds the trace and checks that it starts at ingress's `webhook.delivery`, crosses
//! RabbitMQ into `worker.event`, and covers Redis, the engine, the calendar and the sends,
//! with every parent link inside the trace. Then it scans every exported span for the
//! customer's phone number, name and words.
//!
//! Alone in its own binary: the subscriber it installs is process-wide.

// The end-to-end harness is shared with tests/e2e; this binary uses only part of it.
#![allow(dead_code)]

#[path = "e2e/fleet.rs"]
mod fleet;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use fakes::whatsapp::{Customer, Outbound, OutboundRecord};
use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};
use shared::config::Env;

use fleet::{CLINIC, Fleet};

/// A Spanish mobile number: distinctive enough that any appearance is a leak.
const WA_ID: &str = "34611987654";
const NAME: &str = "Zacarías Quintero";
const FIRST_MESSAGE: &str = "hola, quiero pedir una cita";
const WAIT: Duration = Duration::from_secs(20);

/// Spans every message that gets a reply must have, in one trace.
const EVERY_MESSAGE: &[&str] = &[
    "webhook.delivery",
    "publish",
    "worker.event",
    "state.load",
    "engine.step",
    "whatsapp.send",
    "whatsapp.call",
    "state.save",
];

#[tokio::test]
async fn a_message_is_one_trace_from_webhook_to_reply_without_personal_data() {
    let exporter = InMemorySpanExporter::default();
    let _telemetry = shared::telemetry::init_with_exporter(
        "tracing-test",
        &Env::from_pairs([("RUST_LOG", "warn")]),
        exporter.clone(),
    )
    .expect("telemetry installs once in this binary");
    let fleet = Fleet::start("tracing", 1).await;
    let customer = Customer::new(WA_ID, NAME);
    // Everything either side wrote, to look for afterwards.
    let mut texts = vec![FIRST_MESSAGE.to_owned()];

    // 1. A plain text: the reply's trace is the webhook's trace.
    fleet
        .whatsapp
        .customer_text(CLINIC, &customer, FIRST_MESSAGE)
        .await
        .expect("webhook delivered to ingress");
    let first = next_reply(&fleet).await;
    texts.push(first.message.body_text());
    let trace = trace_of_reply(&fleet, &exporter, &first, &[]).await;
    assert_continuous(&trace);

    // 2. Follow the conversation to the confirmation: the message that leads to it looks up
    //    free time and takes a hold, and both are in its trace. (The first message named no
    //    service, so it never asked the calendar.)
    let mut reply = first;
    let mut confirm = None;
    for _ in 0..12 {
        match &reply.message {
            Outbound::Buttons { buttons, .. } if buttons.iter().any(|b| b.id == "confirm") => {
                confirm = Some(reply.clone());
                break;
            }
            Outbound::List { sections, .. } => {
                let row = sections
                    .iter()
                    .flat_map(|s| s.rows.iter())
                    .next()
                    .expect("a list has rows")
                    .clone();
                fleet
                    .whatsapp
                    .customer_list_reply(CLINIC, &customer, &row, &reply.wamid)
                    .await
                    .expect("webhook delivered to ingress");
            }
            _ => {}
        }
        reply = next_reply(&fleet).await;
        texts.push(reply.message.body_text());
    }
    let confirm = confirm.expect("the bot asks to confirm a slot");
    let trace = trace_of_reply(
        &fleet,
        &exporter,
        &confirm,
        &["calendar.availability", "hold.take"],
    )
    .await;
    assert_continuous(&trace);

    // 3. Confirming books at Cal.com: the booking call is in the confirmation's trace.
    fleet
        .whatsapp
        .customer_button_reply(CLINIC, &customer, "confirm", "Confirmar", &confirm.wamid)
        .await
        .expect("webhook delivered to ingress");
    let booked = next_reply(&fleet).await;
    texts.push(booked.message.body_text());
    let trace = trace_of_reply(
        &fleet,
        &exporter,
        &booked,
        &["calendar.book", "calcom.call"],
    )
    .await;
    assert_continuous(&trace);

    // 4. Nothing exported anywhere, in any trace, carries personal data in clear. A canary
    //    with a known value in an attribute and in an event field proves the scan sees both.
    tracing::info_span!("canary", value = "canary-attribute").in_scope(|| {
        tracing::info!(field = "canary-event", "canary");
    });
    let all = exporter.get_finished_spans().expect("exporter readable");
    let canaries = leaks(
        &all,
        &["canary-attribute".to_owned(), "canary-event".to_owned()],
    );
    assert_eq!(
        canaries.len(),
        2,
        "the scan sees attributes and events: {canaries:?}"
    );
    let all: Vec<SpanData> = all
        .into_iter()
        .filter(|span| span.name != "canary")
        .collect();
    let mut needles = vec![
        WA_ID.to_owned(),
        // The national part alone, in case something reformats the number.
        WA_ID[2..].to_owned(),
        NAME.to_owned(),
    ];
    needles.extend(texts.into_iter().filter(|text| text.len() >= 12));
    let leaks = leaks(&all, &needles);
    assert!(
        leaks.is_empty(),
        "personal data in exported spans:\n{}",
        leaks.join("\n")
    );
    // Below INFO is dependencies' chatter (lapin logs whole AMQP frames, credentials
    // included, at trace level): none of it may be exported.
    let chatty: Vec<String> = all
        .iter()
        .flat_map(|span| span.events.iter().map(move |event| (span, event)))
        .filter(|(_, event)| {
            event.attributes.iter().any(|attribute| {
                attribute.key.as_str() == "level"
                    && matches!(attribute.value.as_str().as_ref(), "DEBUG" | "TRACE")
            })
        })
        .map(|(span, event)| format!("{}: {}", span.name, event.name))
        .collect();
    assert!(chatty.is_empty(), "debug/trace events exported: {chatty:?}");
    let names: BTreeSet<&str> = all.iter().map(|span| span.name.as_ref()).collect();
    // lapin's per-connection span is not about any message.
    assert!(!names.contains("io_loop"), "io_loop exported: {names:?}");
    eprintln!("{} spans exported; names: {names:?}", all.len());

    fleet.finish().await;
}

async fn next_reply(fleet: &Fleet) -> OutboundRecord {
    fleet
        .whatsapp
        .next_message_to(CLINIC, WA_ID, WAIT)
        .await
        .expect("a reply within 20 s")
}

/// `00-<trace id>-<span id>-<flags>`.
fn parse_traceparent(header: &str) -> (TraceId, SpanId) {
    let parts: Vec<&str> = header.split('-').collect();
    assert_eq!(parts.len(), 4, "traceparent {header:?}");
    assert_eq!(parts[0], "00", "traceparent version in {header:?}");
    let trace = TraceId::from_hex(parts[1]).expect("trace id is hex");
    let span = SpanId::from_hex(parts[2]).expect("span id is hex");
    assert_ne!(trace, TraceId::INVALID, "traceparent {header:?}");
    (trace, span)
}

/// The trace the reply's `traceparent` names, once its worker side has finished: it must
/// hold [`EVERY_MESSAGE`] and `also`, and the span the header names must be the Graph call.
async fn trace_of_reply(
    fleet: &Fleet,
    exporter: &InMemorySpanExporter,
    reply: &OutboundRecord,
    also: &[&str],
) -> Vec<SpanData> {
    let header = fleet
        .whatsapp
        .traceparent(&reply.wamid)
        .expect("the send carried a traceparent");
    let (trace_id, sender) = parse_traceparent(&header);
    let wanted: Vec<&str> = EVERY_MESSAGE.iter().chain(also).copied().collect();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let trace: Vec<SpanData> = exporter
            .get_finished_spans()
            .expect("exporter readable")
            .into_iter()
            .filter(|span| span.span_context.trace_id() == trace_id)
            .collect();
        let names: BTreeSet<&str> = trace.iter().map(|span| span.name.as_ref()).collect();
        // worker.event ends last on the worker side; until then children may be missing.
        if wanted.iter().all(|name| names.contains(name)) {
            let root = trace
                .iter()
                .find(|span| span.name == "webhook.delivery")
                .expect("checked above");
            assert_eq!(
                root.span_context.trace_id(),
                trace_id,
                "the reply's traceparent names the webhook's trace"
            );
            let named = trace
                .iter()
                .find(|span| span.span_context.span_id() == sender)
                .expect("the span the reply's traceparent names was exported in its trace");
            assert_eq!(
                named.name, "whatsapp.call",
                "traceparent names the Graph call"
            );
            eprintln!(
                "trace {trace_id} for {:?}: {names:?}",
                reply.message.body_text()
            );
            return trace;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "trace {trace_id} never had {wanted:?}; it has {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One root (`webhook.delivery`), every other span's parent inside the trace, the worker
/// side hanging off an ingress `publish` through the AMQP headers, and the work of the
/// event under `worker.event`.
fn assert_continuous(trace: &[SpanData]) {
    let by_id: HashMap<SpanId, &SpanData> = trace
        .iter()
        .map(|span| (span.span_context.span_id(), span))
        .collect();
    let roots: Vec<&str> = trace
        .iter()
        .filter(|span| span.parent_span_id == SpanId::INVALID)
        .map(|span| span.name.as_ref())
        .collect();
    assert_eq!(roots, ["webhook.delivery"], "exactly one root, the webhook");
    for span in trace {
        if span.parent_span_id != SpanId::INVALID {
            assert!(
                by_id.contains_key(&span.parent_span_id),
                "{}'s parent is not in the trace",
                span.name
            );
        }
    }
    let parent_name = |span: &SpanData| {
        by_id
            .get(&span.parent_span_id)
            .map(|parent| parent.name.to_string())
    };
    let ancestors = |span: &SpanData| {
        let mut names = Vec::new();
        let mut current = by_id.get(&span.parent_span_id);
        while let Some(parent) = current {
            names.push(parent.name.to_string());
            current = by_id.get(&parent.parent_span_id);
        }
        names
    };
    for span in trace {
        match span.name.as_ref() {
            "publish" => assert_eq!(parent_name(span).as_deref(), Some("webhook.delivery")),
            "worker.event" => {
                assert_eq!(parent_name(span).as_deref(), Some("publish"));
                assert!(
                    span.parent_span_is_remote,
                    "worker.event continues a remote parent (the AMQP headers)"
                );
            }
            "whatsapp.call" => assert!(
                ancestors(span).iter().any(|name| name == "worker.event"),
                "whatsapp.call under the worker: {:?}",
                ancestors(span)
            ),
            "calcom.call" => assert!(
                parent_name(span)
                    .is_some_and(|name| name.starts_with("calendar.") || name == "hold.take"),
                "calcom.call under a calendar or hold span, not {:?}",
                parent_name(span)
            ),
            name if name.starts_with("state.")
                || name.starts_with("calendar.")
                || name == "engine.step"
                || name == "hold.take"
                || name == "whatsapp.send" =>
            {
                assert_eq!(
                    parent_name(span).as_deref(),
                    Some("worker.event"),
                    "{name} directly under worker.event"
                );
            }
            _ => {}
        }
    }
}

/// Every place a value can hide in an exported span: its name, attribute keys and values,
/// event names and event attributes.
fn leaks(spans: &[SpanData], needles: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    let mut check = |span: &SpanData, place: &str, text: &str| {
        for needle in needles {
            if text.contains(needle.as_str()) {
                found.push(format!(
                    "{} {place}: {text:?} contains {needle:?}",
                    span.name
                ));
            }
        }
    };
    for span in spans {
        check(span, "name", &span.name);
        for attribute in &span.attributes {
            check(span, attribute.key.as_str(), &attribute.value.as_str());
        }
        for event in span.events.iter() {
            check(span, "event", &event.name);
            for attribute in &event.attributes {
                let place = format!("event {:?} field {}", event.name, attribute.key.as_str());
                check(span, &place, &attribute.value.as_str());
            }
        }
    }
    found
}
