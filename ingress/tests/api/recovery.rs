use std::process::Command;
use std::time::{Duration, Instant};

use crate::helpers::{fixture, spawn_app};

/// Closes this test's ingress connection from the broker side, as an operator or a broker
/// failover would, without touching the connections of tests running in parallel.
fn close_broker_connection(name: &str) {
    let listing = Command::new("rabbitmqctl")
        .args(["list_connections", "--silent", "pid", "client_properties"])
        .output()
        .expect("rabbitmqctl must be installed where RabbitMQ runs");
    assert!(
        listing.status.success(),
        "rabbitmqctl list_connections failed"
    );
    let text = String::from_utf8_lossy(&listing.stdout);
    let pids: Vec<&str> = text
        .lines()
        .filter(|line| line.contains(name))
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert!(!pids.is_empty(), "no broker connection named {name}");
    for pid in pids {
        let status = Command::new("rabbitmqctl")
            .args(["close_connection", pid, "closed by test"])
            .status()
            .expect("rabbitmqctl close_connection");
        assert!(status.success());
    }
}

#[tokio::test]
async fn recovers_by_itself_after_the_broker_closes_its_connection() {
    let app = spawn_app("recovery", 2).await;
    let body = fixture("meta-docs-text-message.json");
    assert_eq!(app.post_signed(&body).await.status(), 200);

    close_broker_connection(&format!("ingress:{}", app.namespace));

    // While the connection is gone, answers come fast (503 until recovered, then 200),
    // never a hanging request.
    let deadline = Instant::now() + Duration::from_secs(15);
    let (mut accepted, mut refused) = (1usize, 0usize);
    let mut saw_refusal_or_recovery = false;
    while Instant::now() < deadline {
        let started = Instant::now();
        let status = app.post_signed(&body).await.status();
        assert!(started.elapsed() < Duration::from_secs(3), "request hung");
        match status.as_u16() {
            200 => accepted += 1,
            503 => refused += 1,
            other => panic!("unexpected status {other}"),
        }
        let ready = app
            .http
            .get(app.url("/readyz"))
            .send()
            .await
            .map(|r| r.status() == 200)
            .unwrap_or(false);
        if status == 200 && ready && accepted >= 3 {
            saw_refusal_or_recovery = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        saw_refusal_or_recovery,
        "ingress did not recover within 15 s"
    );
    // Every 200 is in the queue; a 503 may or may not have reached the broker (its confirm
    // was lost with the connection), which WhatsApp's redelivery and the worker's dedup cover.
    let events = app
        .take_deliveries_between(accepted, accepted + refused)
        .await;
    let ids: std::collections::BTreeSet<String> = events
        .iter()
        .map(|(_, body, _)| shared::envelope::decode(body).expect("envelope").id)
        .collect();
    assert_eq!(ids.len(), 1, "one message, redelivered: {ids:?}");
    app.finish().await;
}
