//! Partition leases against the real Redis on this machine.

use std::time::Duration;

use worker::keys::Keys;
use worker::lease::Leases;

const REDIS_URL: &str = "redis://127.0.0.1:6379";

fn namespace(tag: &str) -> String {
    format!("test.lease.{tag}.{}.", std::process::id())
}

fn leases(namespace: &str, worker: &str, ttl: Duration) -> Leases {
    let redis = shared::redis::open(&REDIS_URL.to_owned().into()).expect("redis");
    Leases::new(redis, &Keys::new(namespace), worker, ttl)
}

async fn cleanup(namespace: &str) {
    let client = redis::Client::open(REDIS_URL).expect("redis url");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("Redis");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{namespace}*"))
        .query_async(&mut connection)
        .await
        .expect("KEYS");
    if !keys.is_empty() {
        let () = redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut connection)
            .await
            .expect("DEL");
    }
}

#[tokio::test]
async fn only_one_worker_holds_a_partition_until_it_lets_go() {
    let namespace = namespace("exclusive");
    let first = leases(&namespace, "worker-a", Duration::from_secs(30));
    let second = leases(&namespace, "worker-b", Duration::from_secs(30));

    assert!(first.try_acquire(3).await.expect("acquire"));
    assert!(!second.try_acquire(3).await.expect("acquire"));
    // Another partition is independent.
    assert!(second.try_acquire(4).await.expect("acquire"));
    // The holder renews by acquiring again.
    assert!(first.try_acquire(3).await.expect("renew"));
    assert_eq!(
        second.holder(3).await.expect("holder").as_deref(),
        Some("worker-a")
    );

    // Releasing someone else's lease does nothing.
    second.release(3).await.expect("release");
    assert!(!second.try_acquire(3).await.expect("acquire"));

    first.release(3).await.expect("release");
    assert_eq!(first.holder(3).await.expect("holder"), None);
    assert!(second.try_acquire(3).await.expect("acquire"));
    assert!(!first.try_acquire(3).await.expect("acquire"));
    cleanup(&namespace).await;
}

#[tokio::test]
async fn a_silent_holder_loses_its_lease_after_the_ttl() {
    let namespace = namespace("lapse");
    let dead = leases(&namespace, "worker-dead", Duration::from_millis(300));
    let next = leases(&namespace, "worker-next", Duration::from_secs(30));

    assert!(dead.try_acquire(0).await.expect("acquire"));
    assert!(!next.try_acquire(0).await.expect("acquire"));
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(next.try_acquire(0).await.expect("acquire"));
    // The old holder does not get it back by renewing.
    assert!(!dead.try_acquire(0).await.expect("renew"));
    cleanup(&namespace).await;
}

#[tokio::test]
async fn renewing_extends_the_lease() {
    let namespace = namespace("renew");
    let holder = leases(&namespace, "worker-a", Duration::from_millis(400));
    let other = leases(&namespace, "worker-b", Duration::from_secs(30));

    assert!(holder.try_acquire(1).await.expect("acquire"));
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(holder.try_acquire(1).await.expect("renew"));
    }
    // 800 ms after it was first taken, twice the TTL, it is still held.
    assert!(!other.try_acquire(1).await.expect("acquire"));
    cleanup(&namespace).await;
}
