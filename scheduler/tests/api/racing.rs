use std::time::Duration;

use chrono::Utc;

use crate::helpers::{counter, counts_by_id, fleet, spec};

/// Replicas racing over the same shards, with small batches so that they meet on every
/// shard many times: while nothing dies, every timer is published exactly once.
async fn replicas_publish_each_timer_exactly_once(replicas: usize, total: i64) {
    let mut fleet = fleet(&format!("race{replicas}"), 4).await;
    let now = Utc::now();
    // Half already due when the replicas start, half falling due while they run.
    let timers: Vec<_> = (0..total)
        .map(|i| {
            let due = if i % 2 == 0 {
                now - chrono::Duration::seconds(1)
            } else {
                now + chrono::Duration::milliseconds(1000 + (i % 2000))
            };
            spec(&format!("race-{i}"), due, &format!("3460044{:04}", i % 500))
        })
        .collect();
    fleet.schedule_all(&timers).await;

    let mut admins = Vec::new();
    for _ in 0..replicas {
        admins.push(
            fleet
                .start_scheduler(&[("SCHEDULER_CLAIM_BATCH", "25")])
                .await,
        );
    }
    let received = fleet
        .receive(
            timers.len(),
            Duration::from_secs(60),
            Duration::from_secs(2),
        )
        .await;
    let counts = counts_by_id(&received);
    let duplicated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicated.is_empty(), "published twice: {duplicated:?}");
    assert_eq!(counts.len(), timers.len());
    assert_eq!(received.len(), timers.len());

    let mut fired_by_replica = Vec::new();
    for admin in &admins {
        let metrics = fleet.metrics(*admin).await;
        fired_by_replica.push(counter(&metrics, "scheduler_timers_fired_total"));
    }
    assert_eq!(fired_by_replica.iter().sum::<f64>(), total as f64);
    assert!(
        fired_by_replica.iter().filter(|n| **n > 0.0).count() >= 2,
        "the replicas did not actually race: {fired_by_replica:?}"
    );
    assert_eq!(fleet.store.pending().await.expect("pending"), 0);
    fleet.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_racing_schedulers_publish_each_timer_exactly_once() {
    replicas_publish_each_timer_exactly_once(2, 3000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_racing_schedulers_publish_each_timer_exactly_once() {
    replicas_publish_each_timer_exactly_once(3, 3000).await;
}
