use std::time::Duration;

use chrono::Utc;
use shared::timers::TIMER_SHARDS;

use crate::helpers::{counts_by_id, fleet, spec};

/// A scheduler that claimed timers and died before publishing them, simulated exactly: the
/// claims are taken through the store and never completed. Nobody may publish them while the
/// lease runs; the surviving scheduler publishes every one of them once it ends.
#[tokio::test]
async fn timers_of_a_claimer_that_died_before_publishing_still_fire_when_the_lease_ends() {
    let mut fleet = fleet("dead-claimer", 4).await;
    let now = fleet.store.now().await.expect("Redis clock");
    let timers: Vec<_> = (0..50)
        .map(|i| spec(&format!("hold-{i}:expiry"), now, &format!("3460022{i:04}")))
        .collect();
    fleet.schedule_all(&timers).await;

    let lease = Duration::from_secs(2);
    let mut abandoned = Vec::new();
    for shard in 0..TIMER_SHARDS {
        abandoned.extend(
            fleet
                .store
                .claim_due(shard, now, lease, 1000)
                .await
                .expect("claim"),
        );
    }
    assert_eq!(abandoned.len(), timers.len());
    let lease_until = abandoned[0].lease_until;

    fleet.start_scheduler(&[]).await;
    let received = fleet
        .receive(
            timers.len(),
            Duration::from_secs(15),
            Duration::from_millis(500),
        )
        .await;
    let counts = counts_by_id(&received);
    assert_eq!(counts.len(), timers.len(), "every abandoned timer fires");
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    for event in &received {
        // Redis and this process read the same host clock here.
        assert!(
            event.at >= lease_until - chrono::Duration::milliseconds(20),
            "{} fired at {} while still leased until {lease_until}",
            event.envelope.id,
            event.at
        );
    }
    assert_eq!(fleet.store.pending().await.expect("pending"), 0);
    fleet.finish().await;
}

/// Timers keep their place while no scheduler runs, and one started later fires them all:
/// late, but never lost.
#[tokio::test]
async fn timers_due_while_no_scheduler_runs_fire_when_one_starts() {
    let mut fleet = fleet("late-start", 2).await;
    let past = Utc::now() - chrono::Duration::minutes(10);
    let timers: Vec<_> = (0..30)
        .map(|i| spec(&format!("b-{i}:follow-up"), past, &format!("3460033{i:04}")))
        .collect();
    fleet.schedule_all(&timers).await;
    fleet.start_scheduler(&[]).await;
    let received = fleet
        .receive(
            timers.len(),
            Duration::from_secs(15),
            Duration::from_millis(500),
        )
        .await;
    assert_eq!(counts_by_id(&received).len(), timers.len());
    assert_eq!(received.len(), timers.len());
    fleet.finish().await;
}
