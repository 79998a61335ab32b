//! The timer store against the real Redis on this machine (127.0.0.1:6379). Each test gets its
//! own key namespace and deletes it afterwards, so tests run in parallel safely.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;
use shared::envelope::EventKind;
use shared::timers::{TIMER_SHARDS, TimerError, TimerSpec, TimerStore, shard_of};

const REDIS_URL: &str = "redis://127.0.0.1:6379";
const LEASE: Duration = Duration::from_secs(30);

struct TestStore {
    store: TimerStore,
    redis: shared::redis::Redis,
    namespace: String,
}

async fn test_store(tag: &str) -> TestStore {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let namespace = format!(
        "test.timers.{tag}.{}.{}.",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let redis = shared::redis::open(&REDIS_URL.to_owned().into()).expect("redis");
    shared::redis::ping(&redis)
        .await
        .expect("Redis must be running on 127.0.0.1:6379");
    TestStore {
        store: TimerStore::new(redis.clone(), &namespace),
        redis,
        namespace,
    }
}

impl TestStore {
    /// Every key of the namespace, so a test can prove nothing is left behind.
    async fn keys(&self) -> Vec<String> {
        let mut connection = self.redis.connection();
        let mut keys = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}*", self.namespace))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut connection)
                .await
                .expect("SCAN");
            keys.extend(batch);
            if next == 0 {
                return keys;
            }
            cursor = next;
        }
    }

    async fn finish(self) {
        let keys = self.keys().await;
        if !keys.is_empty() {
            let mut connection = self.redis.connection();
            let _: i64 = redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut connection)
                .await
                .expect("DEL");
        }
    }
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_790_000_000 + seconds, 0)
        .single()
        .expect("valid instant")
}

fn spec(id: &str, due: DateTime<Utc>) -> TimerSpec {
    TimerSpec {
        id: id.to_owned(),
        due,
        tenant: "106540352242922".into(),
        customer: "34600111222".into(),
        payload: json!({ "kind": "reminder", "booking": "b-1", "offset": "24h" }),
    }
}

/// Claims from every shard as of `now`.
async fn claim_all(
    store: &TimerStore,
    now: DateTime<Utc>,
    lease: Duration,
) -> Vec<shared::timers::ClaimedTimer> {
    let mut claimed = Vec::new();
    for shard in 0..TIMER_SHARDS {
        claimed.extend(
            store
                .claim_due(shard, now, lease, 1000)
                .await
                .expect("claim"),
        );
    }
    claimed
}

#[tokio::test]
async fn a_timer_is_claimed_only_once_due_and_completing_removes_every_trace() {
    let t = test_store("lifecycle").await;
    let timer = spec("b-1:reminder:24h", at(100));
    t.store.schedule(&timer).await.expect("schedule");
    assert_eq!(t.store.pending().await.expect("pending"), 1);
    assert_eq!(t.store.next_due().await.expect("next due"), Some(at(100)));

    let early = at(100) - chrono::Duration::milliseconds(1);
    assert!(claim_all(&t.store, early, LEASE).await.is_empty());

    let claimed = claim_all(&t.store, at(100), LEASE).await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].timer, timer);
    assert_eq!(claimed[0].shard, shard_of(&timer.id));
    assert_eq!(claimed[0].lease_until, at(130));

    t.store.complete(&claimed[0]).await.expect("complete");
    assert_eq!(t.store.pending().await.expect("pending"), 0);
    assert_eq!(t.store.get(&timer.id).await.expect("get"), None);
    assert_eq!(t.store.next_due().await.expect("next due"), None);
    assert!(
        t.keys().await.is_empty(),
        "completed timers leave no keys behind"
    );
    t.finish().await;
}

/// The claimer that dies between claim and publish: nobody else may take the timer while the
/// lease runs, and everybody may once it ends. The late claimer's `complete` then changes
/// nothing, and the second claim completes normally.
#[tokio::test]
async fn a_claim_that_is_never_completed_reappears_when_its_lease_ends() {
    let t = test_store("lease").await;
    t.store
        .schedule(&spec("hold-9:expiry", at(0)))
        .await
        .expect("schedule");
    let first = claim_all(&t.store, at(0), LEASE).await;
    assert_eq!(first.len(), 1);

    let just_before = at(30) - chrono::Duration::milliseconds(1);
    assert!(claim_all(&t.store, at(1), LEASE).await.is_empty());
    assert!(claim_all(&t.store, just_before, LEASE).await.is_empty());
    assert_eq!(t.store.next_due().await.expect("next due"), Some(at(30)));

    let second = claim_all(&t.store, at(30), LEASE).await;
    assert_eq!(second.len(), 1, "the dead claimer's timer fires anyway");
    assert_eq!(second[0].timer, first[0].timer);

    t.store.complete(&first[0]).await.expect("stale complete");
    assert_eq!(
        t.store.pending().await.expect("pending"),
        1,
        "a stale claim does not delete a timer someone else now holds"
    );
    t.store.complete(&second[0]).await.expect("complete");
    assert_eq!(t.store.pending().await.expect("pending"), 0);
    t.finish().await;
}

#[tokio::test]
async fn rescheduling_moves_the_timer_and_never_duplicates_it() {
    let t = test_store("reschedule").await;
    t.store
        .schedule(&spec("b-2:reminder:1h", at(3600)))
        .await
        .expect("schedule");
    let moved = spec("b-2:reminder:1h", at(7200));
    t.store.schedule(&moved).await.expect("reschedule");
    assert_eq!(t.store.pending().await.expect("pending"), 1);
    assert_eq!(
        t.store.get(&moved.id).await.expect("get"),
        Some(moved.clone())
    );
    assert!(claim_all(&t.store, at(3600), LEASE).await.is_empty());
    let claimed = claim_all(&t.store, at(7200), LEASE).await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].timer.due, at(7200));

    // Moving it earlier works the same way.
    let earlier = spec("b-2:reminder:1h", at(60));
    t.store.schedule(&earlier).await.expect("reschedule");
    assert_eq!(claim_all(&t.store, at(60), LEASE).await.len(), 1);
    t.finish().await;
}

#[tokio::test]
async fn cancelling_removes_the_timer_and_is_idempotent() {
    let t = test_store("cancel").await;
    for offset in ["24h", "1h"] {
        t.store
            .schedule(&spec(&format!("b-3:reminder:{offset}"), at(10)))
            .await
            .expect("schedule");
    }
    assert!(t.store.cancel("b-3:reminder:24h").await.expect("cancel"));
    assert!(t.store.cancel("b-3:reminder:1h").await.expect("cancel"));
    assert!(!t.store.cancel("b-3:reminder:1h").await.expect("cancel"));
    assert!(!t.store.cancel("never-existed").await.expect("cancel"));
    assert!(claim_all(&t.store, at(1_000_000), LEASE).await.is_empty());
    assert_eq!(t.store.pending().await.expect("pending"), 0);
    assert!(
        t.keys().await.is_empty(),
        "a cancelled timer keeps no payload"
    );
    t.finish().await;
}

/// The race between a reschedule and a claim: the claimed (old) timer still goes out once, but
/// completing it must not delete the new one.
#[tokio::test]
async fn a_timer_rescheduled_while_claimed_survives_the_old_claims_completion() {
    let t = test_store("race-reschedule").await;
    t.store
        .schedule(&spec("b-4:no-show", at(0)))
        .await
        .expect("schedule");
    let claimed = claim_all(&t.store, at(0), LEASE).await;
    assert_eq!(claimed.len(), 1);

    let moved = spec("b-4:no-show", at(5000));
    t.store.schedule(&moved).await.expect("reschedule");
    t.store.complete(&claimed[0]).await.expect("complete");

    assert_eq!(t.store.get(&moved.id).await.expect("get"), Some(moved));
    assert!(claim_all(&t.store, at(4999), LEASE).await.is_empty());
    assert_eq!(claim_all(&t.store, at(5000), LEASE).await.len(), 1);
    t.finish().await;
}

/// Rescheduling to the very same due time while claimed must not be mistaken for the claim
/// either: the record is the same but the score is no longer the lease.
#[tokio::test]
async fn a_timer_recreated_identically_after_its_claim_fires_again() {
    let t = test_store("race-recreate").await;
    let timer = spec("b-5:follow-up", at(0));
    t.store.schedule(&timer).await.expect("schedule");
    let claimed = claim_all(&t.store, at(0), LEASE).await;
    assert!(t.store.cancel(&timer.id).await.expect("cancel"));
    t.store.schedule(&timer).await.expect("recreate");
    t.store.complete(&claimed[0]).await.expect("complete");
    assert_eq!(claim_all(&t.store, at(1), LEASE).await.len(), 1);
    t.finish().await;
}

#[tokio::test]
async fn a_timer_cancelled_while_claimed_is_gone_after_completion() {
    let t = test_store("race-cancel").await;
    t.store
        .schedule(&spec("b-6:reminder:24h", at(0)))
        .await
        .expect("schedule");
    let claimed = claim_all(&t.store, at(0), LEASE).await;
    assert!(t.store.cancel("b-6:reminder:24h").await.expect("cancel"));
    t.store.complete(&claimed[0]).await.expect("complete");
    assert!(!t.store.release(&claimed[0], at(1)).await.expect("release"));
    assert!(claim_all(&t.store, at(100), LEASE).await.is_empty());
    assert!(t.keys().await.is_empty());
    t.finish().await;
}

/// A replayed `schedule` of the same timer (the worker redelivered an event) must not reset a
/// running lease, which would make an in-flight timer fire a second time.
#[tokio::test]
async fn scheduling_an_identical_timer_again_changes_nothing() {
    let t = test_store("replay").await;
    let timer = spec("b-7:reminder:1h", at(0));
    t.store.schedule(&timer).await.expect("schedule");
    let claimed = claim_all(&t.store, at(0), LEASE).await;
    assert_eq!(claimed.len(), 1);
    t.store.schedule(&timer).await.expect("replayed schedule");
    assert!(claim_all(&t.store, at(1), LEASE).await.is_empty());
    t.store.complete(&claimed[0]).await.expect("complete");
    assert_eq!(t.store.pending().await.expect("pending"), 0);
    t.finish().await;
}

#[tokio::test]
async fn a_released_claim_is_due_again_at_the_retry_time() {
    let t = test_store("release").await;
    t.store
        .schedule(&spec("hold-1:expiry", at(0)))
        .await
        .expect("schedule");
    let claimed = claim_all(&t.store, at(0), LEASE).await;
    assert!(t.store.release(&claimed[0], at(2)).await.expect("release"));
    assert!(claim_all(&t.store, at(1), LEASE).await.is_empty());
    assert_eq!(claim_all(&t.store, at(2), LEASE).await.len(), 1);
    t.finish().await;
}

#[tokio::test]
async fn a_claim_takes_at_most_the_limit_earliest_first() {
    let t = test_store("limit").await;
    let shard = 5;
    let ids: Vec<String> = (0..)
        .map(|i| format!("t-{i}"))
        .filter(|id| shard_of(id) == shard)
        .take(30)
        .collect();
    for (i, id) in ids.iter().enumerate() {
        // Scheduled in reverse order of due time, so insertion order does not help.
        t.store
            .schedule(&spec(id, at(100 - i as i64)))
            .await
            .expect("schedule");
    }
    let claimed = t
        .store
        .claim_due(shard, at(1000), LEASE, 10)
        .await
        .expect("claim");
    let dues: Vec<_> = claimed.iter().map(|c| c.timer.due).collect();
    let expected: Vec<_> = (71..=80).map(at).collect();
    assert_eq!(dues, expected);
    assert!(matches!(
        t.store.claim_due(TIMER_SHARDS, at(0), LEASE, 10).await,
        Err(TimerError::NoSuchShard(_))
    ));
    t.finish().await;
}

/// Atomicity: many claimers hammering the same shards at the same instant split the due timers
/// between them, and no timer is handed to two claimers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claimers_never_share_a_timer() {
    let t = test_store("concurrent").await;
    let total = 2000;
    for i in 0..total {
        t.store
            .schedule(&spec(&format!("c-{i}"), at(i % 50)))
            .await
            .expect("schedule");
    }
    let claimers = (0..6).map(|offset| {
        let store = t.store.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            for round in 0..40 {
                let shard = ((offset + round) % u32::from(TIMER_SHARDS)) as u16;
                for claimed in store
                    .claim_due(shard, at(100), LEASE, 7)
                    .await
                    .expect("claim")
                {
                    mine.push(claimed.timer.id);
                }
            }
            mine
        })
    });
    let mut seen = HashSet::new();
    let mut handed_out = 0;
    for claimer in claimers {
        for id in claimer.await.expect("claimer task") {
            handed_out += 1;
            assert!(seen.insert(id.clone()), "{id} was claimed twice");
        }
    }
    let rest = claim_all(&t.store, at(100), LEASE).await;
    for claimed in &rest {
        assert!(seen.insert(claimed.timer.id.clone()));
    }
    assert_eq!(handed_out + rest.len(), total as usize);
    t.finish().await;
}

#[tokio::test]
async fn the_published_event_carries_the_timer_and_its_due_time() {
    let t = test_store("envelope").await;
    let due = at(0) + chrono::Duration::milliseconds(123);
    let timer = spec("b-8:reminder:24h", due);
    t.store.schedule(&timer).await.expect("schedule");
    let claimed = claim_all(&t.store, due, LEASE).await;
    let received_at = at(1);
    let envelope = claimed[0].envelope(received_at);
    assert_eq!(envelope.id, "b-8:reminder:24h");
    assert_eq!(envelope.kind, EventKind::Timer);
    assert_eq!(envelope.tenant, timer.tenant);
    assert_eq!(envelope.customer, timer.customer);
    assert_eq!(envelope.received_at, received_at);
    assert_eq!(
        envelope.payload,
        json!({ "kind": "reminder", "booking": "b-1", "offset": "24h",
                "due": "2026-09-21T14:13:20.123Z" })
    );
    let decoded =
        shared::envelope::decode(&serde_json::to_vec(&envelope).expect("encode")).expect("decodes");
    assert_eq!(decoded, envelope);
    t.finish().await;
}

#[tokio::test]
async fn malformed_timers_are_refused_before_anything_is_written() {
    let t = test_store("invalid").await;
    let mut not_an_object = spec("x", at(0));
    not_an_object.payload = json!("just a string");
    let too_long = spec(&"x".repeat(201), at(0));
    let empty = spec("", at(0));
    for timer in [not_an_object, too_long, empty] {
        assert!(matches!(
            t.store.schedule(&timer).await,
            Err(TimerError::Invalid(_))
        ));
    }
    assert!(t.keys().await.is_empty());
    t.finish().await;
}

#[tokio::test]
async fn the_redis_clock_is_close_to_ours() {
    let t = test_store("clock").await;
    let skew = t.store.now().await.expect("TIME") - Utc::now();
    assert!(skew.num_milliseconds().abs() < 1000, "skew {skew}");
    t.finish().await;
}
