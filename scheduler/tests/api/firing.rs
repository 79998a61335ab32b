use std::time::Duration;

use chrono::Utc;
use shared::envelope::{EventKind, conversation_key};

use crate::helpers::{counter, fleet, spec};

#[tokio::test]
async fn due_timers_arrive_in_their_conversations_partition_on_time_and_then_are_gone() {
    let mut fleet = fleet("fire", 4).await;
    let admin = fleet.start_scheduler(&[]).await;
    let base = Utc::now() + chrono::Duration::milliseconds(800);
    let timers: Vec<_> = (0..20)
        .map(|i| {
            spec(
                &format!("b-{i}:reminder:1h"),
                base + chrono::Duration::milliseconds(i * 37),
                &format!("3460011{i:04}"),
            )
        })
        .collect();
    fleet.schedule_all(&timers).await;

    let received = fleet
        .receive(
            timers.len(),
            Duration::from_secs(15),
            Duration::from_millis(500),
        )
        .await;
    assert_eq!(
        received.len(),
        timers.len(),
        "each timer fires exactly once"
    );
    for event in &received {
        let timer = timers
            .iter()
            .find(|t| t.id == event.envelope.id)
            .expect("only scheduled timers fire");
        let envelope = &event.envelope;
        assert_eq!(envelope.kind, EventKind::Timer);
        assert_eq!(envelope.tenant, timer.tenant);
        assert_eq!(envelope.customer, timer.customer);
        assert_eq!(
            event.partition,
            fleet
                .topology
                .partition_for(&conversation_key(&timer.tenant, &timer.customer)),
            "a timer goes to its conversation's partition"
        );
        assert_eq!(envelope.payload["booking"], timer.id.as_str());
        assert_eq!(
            envelope.payload["due"],
            timer
                .due
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        );
        assert!(event.at >= timer.due, "{} fired early", timer.id);
        // Generous on a shared two-core machine; the benchmark measures the real figure.
        assert!(
            event.at - timer.due < chrono::Duration::seconds(2),
            "{} fired {} late",
            timer.id,
            event.at - timer.due
        );
    }

    assert_eq!(fleet.store.pending().await.expect("pending"), 0);
    let metrics = fleet.metrics(admin).await;
    assert_eq!(counter(&metrics, "scheduler_timers_fired_total"), 20.0);
    assert!(metrics.contains("scheduler_lateness_seconds_bucket"));
    assert_eq!(counter(&metrics, "scheduler_publish_failures_total"), 0.0);
    fleet.finish().await;
}

#[tokio::test]
async fn cancelled_reminders_never_fire_and_rescheduled_ones_fire_at_the_new_time() {
    let mut fleet = fleet("cancel", 2).await;
    fleet.start_scheduler(&[]).await;
    let soon = Utc::now() + chrono::Duration::milliseconds(1000);
    let cancelled = [
        spec("b-1:reminder:24h", soon, "34600000001"),
        spec("b-1:reminder:1h", soon, "34600000001"),
    ];
    let moved = spec("b-2:reminder:1h", soon, "34600000002");
    fleet.schedule_all(&cancelled).await;
    fleet.schedule_all(std::slice::from_ref(&moved)).await;

    for timer in &cancelled {
        assert!(fleet.store.cancel(&timer.id).await.expect("cancel"));
    }
    let new_due = soon + chrono::Duration::milliseconds(1500);
    let mut rescheduled = moved.clone();
    rescheduled.due = new_due;
    fleet
        .store
        .schedule(&rescheduled)
        .await
        .expect("reschedule");

    let received = fleet
        .receive(1, Duration::from_secs(10), Duration::from_millis(1500))
        .await;
    assert_eq!(
        received.len(),
        1,
        "only the moved reminder fires: {received:?}"
    );
    let event = &received[0];
    assert_eq!(event.envelope.id, moved.id);
    assert!(event.at >= new_due, "fired at the old time");
    assert_eq!(
        event.envelope.payload["due"],
        new_due.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
    fleet.finish().await;
}

#[tokio::test]
async fn admin_endpoints_report_health_readiness_and_metrics() {
    let mut fleet = fleet("admin", 1).await;
    let admin = fleet.start_scheduler(&[]).await;
    for (path, expected) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let response = fleet
            .http
            .get(format!("http://{admin}{path}"))
            .send()
            .await
            .expect("admin reachable");
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.text().await.expect("body"), expected);
    }
    fleet
        .store
        .schedule(&spec(
            "far-future",
            Utc::now() + chrono::Duration::days(2),
            "1",
        ))
        .await
        .expect("schedule");
    // The pending gauge is refreshed about once a second.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let metrics = fleet.metrics(admin).await;
        if counter(&metrics, "scheduler_pending_timers") == 1.0 {
            for name in [
                "scheduler_timers_fired_total",
                "scheduler_claim_failures_total",
                "scheduler_publish_failures_total",
                "scheduler_complete_failures_total",
                "scheduler_rounds_total",
            ] {
                assert!(metrics.contains(name), "{name} missing from {metrics}");
            }
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pending gauge never showed the timer: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    fleet.finish().await;
}
