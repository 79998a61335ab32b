//! Partition leases: a partition's next owner subscribes only after the previous owner has
//! finished everything it received.
//!
//! Single-active-consumer alone is not enough at a handover. The releasing worker cancels its
//! consumer and then finishes the deliveries already in its hands; the broker makes the next
//! subscriber active the moment the cancel lands. A reply sent during that drain can be
//! answered, and the next owner could process the answer before the drain saved the state the
//! reply came from. So a worker holds a Redis lease on each partition from before it
//! subscribes until its consumer task has ended, and a worker that is assigned a partition
//! waits for the lease. A worker that dies without releasing stops renewing; its leases
//! expire with its membership.

use std::time::Duration;

use shared::redis::Redis;

use crate::keys::Keys;

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
}

#[derive(Clone)]
pub struct Leases {
    redis: Redis,
    keys: Keys,
    worker_id: String,
    ttl: Duration,
}

impl Leases {
    /// Leases of `worker_id` that lapse `ttl` after their last renewal.
    pub fn new(redis: Redis, keys: &Keys, worker_id: &str, ttl: Duration) -> Self {
        Self {
            redis,
            keys: keys.clone(),
            worker_id: worker_id.to_owned(),
            ttl,
        }
    }

    fn key(&self, partition: u16) -> String {
        self.keys.partition_lease(partition)
    }

    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX)
    }

    /// Takes the lease if it is free or already ours, for another `ttl`; `false` while another
    /// worker holds it. The owner renews by calling it again: a lease that lapsed while nobody
    /// took it is taken back, because this worker is still the partition's consumer.
    pub async fn try_acquire(&self, partition: u16) -> Result<bool, LeaseError> {
        let mut connection = self.redis.connection();
        let taken: i64 = ACQUIRE
            .key(self.key(partition))
            .arg(&self.worker_id)
            .arg(self.ttl_ms())
            .invoke_async(&mut connection)
            .await?;
        Ok(taken == 1)
    }

    /// Gives the lease up if this worker still holds it.
    pub async fn release(&self, partition: u16) -> Result<(), LeaseError> {
        let mut connection = self.redis.connection();
        RELEASE
            .key(self.key(partition))
            .arg(&self.worker_id)
            .invoke_async::<i64>(&mut connection)
            .await?;
        Ok(())
    }

    /// The worker holding the lease on `partition`, if any.
    pub async fn holder(&self, partition: u16) -> Result<Option<String>, LeaseError> {
        let mut connection = self.redis.connection();
        Ok(redis::cmd("GET")
            .arg(self.key(partition))
            .query_async(&mut connection)
            .await?)
    }
}

static ACQUIRE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r#"
        local holder = redis.call('GET', KEYS[1])
        if holder and holder ~= ARGV[1] then return 0 end
        redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
        return 1
        "#,
    )
});

static RELEASE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r#"
        if redis.call('GET', KEYS[1]) == ARGV[1] then
            return redis.call('DEL', KEYS[1])
        end
        return 0
        "#,
    )
});
