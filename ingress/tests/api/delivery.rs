use serde_json::{Value, json};
use shared::envelope::EventKind;

use crate::helpers::{fixture, fixture_dir, spawn_app, spawn_app_with};

/// Every webhook fixture, with the one event it must produce: kind, tenant, customer, profile.
const FIXTURES: &[(&str, EventKind, &str, &str, Option<&str>)] = &[
    (
        "meta-docs-interactive-button-reply.json",
        EventKind::Message,
        "106540352242922",
        "16505551234",
        Some("Pablo Morales"),
    ),
    (
        "meta-docs-interactive-list-reply.json",
        EventKind::Message,
        "106540352242922",
        "16505551234",
        Some("Pablo Morales"),
    ),
    (
        "meta-docs-status-failed-131049.json",
        EventKind::Status,
        "106540352242922",
        "16505551234",
        None,
    ),
    (
        "meta-docs-status-sent-marketing.json",
        EventKind::Status,
        "106540352242922",
        "16505551234",
        None,
    ),
    (
        "meta-docs-status-v24-minimal.json",
        EventKind::Status,
        "106540352242922",
        "16505551234",
        None,
    ),
    (
        "meta-docs-text-message.json",
        EventKind::Message,
        "106540352242922",
        "16505551234",
        Some("Sheena Nelson"),
    ),
    (
        "meta-docs-unsupported-edit.json",
        EventKind::Message,
        "106540352242922",
        "16505551234",
        Some("Sheena Nelson"),
    ),
    (
        "meta-docs-value-errors-130429.json",
        EventKind::Error,
        "106540352242922",
        "",
        None,
    ),
    (
        "pywa-image-with-url.json",
        EventKind::Message,
        "1122334455667",
        "972987654321",
        Some("Test Name"),
    ),
    (
        "pywa-image.json",
        EventKind::Message,
        "1122334455667",
        "972987654321",
        Some("Test Name"),
    ),
    (
        "pywa-interactive-button-reply.json",
        EventKind::Message,
        "1122334455667",
        "972987654321",
        Some("Test Name"),
    ),
    (
        "pywa-interactive-list-reply-with-description.json",
        EventKind::Message,
        "1122334455667",
        "972987654321",
        Some("Test Name"),
    ),
    (
        "pywa-interactive-list-reply.json",
        EventKind::Message,
        "1122334455667",
        "972987654321",
        Some("Test Name"),
    ),
    (
        "pywa-location-chosen-place.json",
        EventKind::Message,
        "1122334455667",
        "972987654321",
        Some("Test Name"),
    ),
    (
        "pywa-location-current.json",
        EventKind::Message,
        "1122334455667",
        "972987654321",
        Some("Test Name"),
    ),
    (
        "pywa-reaction-removed-empty-emoji.json",
        EventKind::Message,
        "1122334455667",
        "972987654321",
        Some("Test Name"),
    ),
    (
        "pywa-reaction-removed-no-emoji.json",
        EventKind::Message,
        "1122334455667",
        "972987654321",
        Some("Test Name"),
    ),
    (
        "pywa-reaction.json",
        EventKind::Message,
        "1122334455667",
        "972987654321",
        Some("Test Name"),
    ),
    (
        "pywa-status-delivered.json",
        EventKind::Status,
        "1122334455667",
        "972987654321",
        None,
    ),
    (
        "pywa-status-failed-130472.json",
        EventKind::Status,
        "1122334455667",
        "972987654321",
        None,
    ),
    (
        "pywa-status-read.json",
        EventKind::Status,
        "1122334455667",
        "972987654321",
        None,
    ),
    (
        "pywa-status-sent-biz-opaque-callback-data.json",
        EventKind::Status,
        "1122334455667",
        "972987654321",
        None,
    ),
    (
        "pywa-status-sent.json",
        EventKind::Status,
        "1122334455667",
        "972987654321",
        None,
    ),
    (
        "pywa-template-quick-reply-button-no-context-bsuid.json",
        EventKind::Message,
        "1122334455667",
        "972987654321",
        Some("Test Name"),
    ),
    (
        "pywa-template-quick-reply-button.json",
        EventKind::Message,
        "1122334455667",
        "972987654321",
        Some("Test Name"),
    ),
    (
        "pywa-text-reply-with-context.json",
        EventKind::Message,
        "1122334455667",
        "972987654321",
        Some("Test Name"),
    ),
    (
        "pywa-text.json",
        EventKind::Message,
        "1122334455667",
        "972987654321",
        Some("Test Name"),
    ),
    (
        "pywa-unsupported-with-type.json",
        EventKind::Message,
        "1122334455667",
        "972987654321",
        Some("Test Name"),
    ),
    (
        "pywa-unsupported.json",
        EventKind::Message,
        "1122334455667",
        "972987654321",
        Some("Test Name"),
    ),
    (
        "thirdparty-zaple-status-sent-pmp-free-customer-service.json",
        EventKind::Status,
        "838463922683351",
        "918866230663",
        None,
    ),
    (
        "thirdparty-zaple-template-quick-reply-button.json",
        EventKind::Message,
        "838463922683351",
        "918866230663",
        Some("~smit"),
    ),
];

#[tokio::test]
async fn every_webhook_fixture_is_accepted_as_the_right_event() {
    // The table must cover every webhook payload in the fixtures folder.
    let mut on_disk: Vec<String> = std::fs::read_dir(fixture_dir())
        .expect("fixtures folder")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.ends_with(".json") && !n.contains(".request") && !n.contains(".response"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = FIXTURES.iter().map(|f| f.0.to_owned()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "fixture table is out of date");

    let app = spawn_app("fixtures", 4).await;
    for (name, kind, tenant, customer, profile) in FIXTURES {
        let body = fixture(name);
        let response = app.post_signed(&body).await;
        assert_eq!(response.status(), 200, "{name}");
        let events = app.take_events(1).await;
        let (partition, event) = &events[0];
        assert_eq!(event.kind, *kind, "{name}");
        assert_eq!(event.tenant, *tenant, "{name}");
        assert_eq!(event.customer, *customer, "{name}");
        assert_eq!(event.profile_name.as_deref(), *profile, "{name}");
        assert_eq!(
            *partition,
            app.topology.partition_for(&event.conversation_key())
        );
        let original: Value = serde_json::from_slice(&body).expect("fixture is JSON");
        let value = &original["entry"][0]["changes"][0]["value"];
        match kind {
            EventKind::Message => {
                assert_eq!(
                    event.id,
                    value["messages"][0]["id"].as_str().expect("wamid")
                );
                assert_eq!(
                    event.payload, value["messages"][0],
                    "{name}: original object carried"
                );
                assert!(event.wa_timestamp.is_some(), "{name}");
            }
            EventKind::Status => {
                let status = &value["statuses"][0];
                assert_eq!(
                    event.id,
                    format!(
                        "{}:{}",
                        status["id"].as_str().expect("id"),
                        status["status"].as_str().expect("status")
                    )
                );
                assert_eq!(event.payload, *status);
            }
            EventKind::Error => {
                assert!(event.id.starts_with("error:"));
                assert_eq!(event.payload, value["errors"][0]);
            }
            other => panic!("unexpected kind {other:?}"),
        }
    }
    app.finish().await;
}

#[tokio::test]
async fn bad_signatures_are_refused_and_publish_nothing() {
    let app = spawn_app("signatures", 2).await;
    let body = fixture("meta-docs-text-message.json");
    let good = ingress::signature::header_value(crate::helpers::APP_SECRET.as_bytes(), &body);
    let wrong = ingress::signature::header_value(b"not-the-secret", &body);
    let cases: Vec<Option<String>> = vec![
        None,
        Some(String::new()),
        Some("sha256=".into()),
        Some(good.replace("sha256=", "sha1=")),
        Some(good[..good.len() - 2].to_owned()),
        Some(wrong),
    ];
    for header in cases {
        let mut request = app.http.post(app.url("/webhook")).body(body.clone());
        if let Some(value) = &header {
            request = request.header("x-hub-signature-256", value);
        }
        let response = request.send().await.expect("request");
        assert_eq!(response.status(), 401, "header {header:?}");
    }
    // A valid signature over a different body must fail too.
    let mut tampered = body.clone();
    tampered.extend_from_slice(b"\n");
    let response = app
        .http
        .post(app.url("/webhook"))
        .header("x-hub-signature-256", good)
        .body(tampered)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 401);
    app.take_events(0).await;
    app.finish().await;
}

fn text_update(id: &str, from: &str, body: &str) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": "555000111"},
        "contacts": [{"profile": {"name": format!("Customer {from}")}, "wa_id": from}],
        "messages": [{"from": from, "id": id, "timestamp": "1750000000", "type": "text", "text": {"body": body}}]
    })
}

fn delivery(changes: Vec<Value>) -> Vec<u8> {
    let changes: Vec<Value> = changes
        .into_iter()
        .map(|value| json!({"field": "messages", "value": value}))
        .collect();
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA", "changes": changes}]
    }))
    .expect("serialises")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_beyond_the_in_flight_limit_are_refused_at_once_and_publish_nothing() {
    let app = spawn_app_with("inflight", 4, &[("INGRESS_MAX_IN_FLIGHT", "1")]).await;
    let bodies: Vec<Vec<u8>> = (0..64)
        .map(|n| {
            delivery(vec![text_update(
                &format!("wamid.inflight{n}"),
                &format!("3460022{n:04}"),
                "hola",
            )])
        })
        .collect();
    // Sent all at once: while one waits for its confirm, the others find no room.
    let responses =
        futures::future::join_all(bodies.iter().map(|body| app.post_signed(body))).await;
    let mut accepted = 0;
    let mut refused = 0;
    for response in responses {
        match response.status().as_u16() {
            200 => accepted += 1,
            503 => {
                assert_eq!(
                    response.text().await.expect("body"),
                    "too many deliveries in flight"
                );
                refused += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(
        accepted >= 1 && refused >= 1,
        "{accepted} accepted, {refused} refused"
    );
    assert_eq!(accepted + refused, 64);
    // Exactly the accepted deliveries were published; a refused one is redelivered by WhatsApp.
    app.take_events(accepted).await;
    // The room is given back: one at a time, every delivery is accepted.
    for body in &bodies[..3] {
        assert_eq!(app.post_signed(body).await.status(), 200);
    }
    app.take_events(3).await;
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(&format!("outcome=\"overloaded\"}} {refused}")),
        "{metrics}"
    );
    app.finish().await;
}

#[tokio::test]
async fn one_customers_events_land_in_one_partition_in_order() {
    let app = spawn_app("ordering", 8).await;
    for n in 0..40 {
        let body = delivery(vec![text_update(
            &format!("wamid.order{n}"),
            "34600111222",
            &format!("message {n}"),
        )]);
        assert_eq!(app.post_signed(&body).await.status(), 200);
    }
    let events = app.take_events(40).await;
    let partitions: std::collections::BTreeSet<u16> = events.iter().map(|(p, _)| *p).collect();
    assert_eq!(partitions.len(), 1, "one conversation, one partition");
    let ids: Vec<&str> = events.iter().map(|(_, e)| e.id.as_str()).collect();
    let expected: Vec<String> = (0..40).map(|n| format!("wamid.order{n}")).collect();
    assert_eq!(ids, expected.iter().map(String::as_str).collect::<Vec<_>>());
    app.finish().await;
}

#[tokio::test]
async fn a_batch_of_1000_updates_becomes_1000_events() {
    let app = spawn_app("batch", 8).await;
    // 10 entries x 10 changes x (5 messages + 5 statuses), across 100 customers.
    let mut entries = Vec::new();
    for e in 0..10 {
        let mut changes = Vec::new();
        for c in 0..10 {
            let customer = format!("3460{e}{c:02}0000");
            let messages: Vec<Value> = (0..5)
                .map(|m| json!({"from": customer, "id": format!("wamid.b{e}.{c}.{m}"), "timestamp": "1750000000", "type": "text", "text": {"body": "hola"}}))
                .collect();
            let statuses: Vec<Value> = (0..5)
                .map(|s| json!({"id": format!("wamid.out{e}.{c}.{s}"), "status": "delivered", "timestamp": "1750000001", "recipient_id": customer}))
                .collect();
            changes.push(json!({"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550001111", "phone_number_id": "555000111"},
                "contacts": [{"profile": {"name": "Batch"}, "wa_id": customer}],
                "messages": messages, "statuses": statuses}}));
        }
        entries.push(json!({"id": "WABA", "changes": changes}));
    }
    let body =
        serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": entries}))
            .expect("json");
    let response = app.post_signed(&body).await;
    assert_eq!(response.status(), 200);
    let events = app.take_events(1000).await;
    assert_eq!(
        events
            .iter()
            .filter(|(_, e)| e.kind == EventKind::Message)
            .count(),
        500
    );
    assert_eq!(
        events
            .iter()
            .filter(|(_, e)| e.kind == EventKind::Status)
            .count(),
        500
    );
    let ids: std::collections::HashSet<&str> = events.iter().map(|(_, e)| e.id.as_str()).collect();
    assert_eq!(ids.len(), 1000, "every update is its own event");
    for (partition, event) in &events {
        assert_eq!(
            *partition,
            app.topology.partition_for(&event.conversation_key())
        );
    }
    // Each confirmed event's time is split into its two stages, once per event.
    let metrics = app.metrics().await;
    for stage in ["write", "confirm"] {
        let count = format!("ingress_publish_{stage}_seconds_count 1000");
        assert!(metrics.contains(&count), "{count} in {metrics}");
    }
    app.finish().await;
}

#[tokio::test]
async fn business_scoped_user_ids_key_the_conversation_when_wa_id_is_absent() {
    let app = spawn_app("bsuid", 4).await;
    let value = json!({
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": "555000111"},
        "contacts": [{"profile": {"name": "Ana", "username": "ana.b"}, "user_id": "US.13491208655302741918"}],
        "messages": [{"from_user_id": "US.13491208655302741918", "id": "wamid.bsuid1", "timestamp": "1750000000", "type": "text", "text": {"body": "hi"}}]
    });
    assert_eq!(app.post_signed(&delivery(vec![value])).await.status(), 200);
    let events = app.take_events(1).await;
    assert_eq!(events[0].1.customer, "US.13491208655302741918");
    assert_eq!(events[0].1.profile_name.as_deref(), Some("Ana"));
    app.finish().await;
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let app = spawn_app("oversize", 2).await;
    let body = vec![b' '; ingress::MAX_BODY_BYTES + 1];
    let response = app.post_signed(&body).await;
    assert_eq!(response.status(), 413);
    // Just under the limit is read (and, being no JSON, kept raw).
    let body = vec![b' '; 3 * 1024 * 1024];
    assert_eq!(app.post_signed(&body).await.status(), 200);
    app.take_events(0).await;
    app.finish().await;
}

#[tokio::test]
async fn unhandled_kinds_are_acknowledged_and_unreadable_ones_kept() {
    let app = spawn_app("unhandled", 2).await;
    // Another webhook field: acknowledged, counted, no event.
    let account_update = serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA", "changes": [{"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT"}}]}]
    }))
    .expect("json");
    assert_eq!(app.post_signed(&account_update).await.status(), 200);
    // Another object entirely.
    let page = br#"{"object":"page","entry":[]}"#;
    assert_eq!(app.post_signed(page).await.status(), 200);
    app.take_events(0).await;

    // Signed but not JSON: kept raw in the unparsed queue, acknowledged.
    let garbage = b"{not json";
    assert_eq!(app.post_signed(garbage).await.status(), 200);
    // A message without an id: the readable rest is published, the delivery kept raw.
    let mut broken = text_update("wamid.ok", "34600999888", "fine");
    broken["messages"].as_array_mut().expect("array").push(
        json!({"from": "34600999888", "timestamp": "1", "type": "text", "text": {"body": "no id"}}),
    );
    let broken_body = delivery(vec![broken]);
    assert_eq!(app.post_signed(&broken_body).await.status(), 200);
    let events = app.take_events(1).await;
    assert_eq!(events[0].1.id, "wamid.ok");
    let kept = app.drain_queue(&app.topology.unparsed_queue()).await;
    assert_eq!(kept.len(), 2);
    assert_eq!(kept[0].0, garbage.to_vec());
    assert_eq!(kept[1].0, broken_body);
    assert!(
        shared::amqp::header_str(&kept[1].1, "x-unparsed-reason")
            .is_some_and(|r| r.contains("message without a readable id"))
    );

    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"ingress_ignored_updates_total{reason="field:account_update"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"ingress_ignored_updates_total{reason="object:page"} 1"#),
        "{metrics}"
    );
    app.finish().await;
}

#[tokio::test]
async fn published_events_carry_a_w3c_traceparent() {
    let app = spawn_app("traceparent", 2).await;
    assert_eq!(
        app.post_signed(&fixture("pywa-text.json")).await.status(),
        200
    );
    let found = app.take_deliveries(1).await;
    let traceparent = shared::amqp::header_str(&found[0].2, "traceparent")
        .expect("every published event carries the trace context");
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(parts[0], "00");
    assert_eq!(parts[1].len(), 32);
    assert_ne!(parts[1], "0".repeat(32));
    app.finish().await;
}
