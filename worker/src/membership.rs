//! Which worker consumes which partitions.
//!
//! RabbitMQ 3.10 gives a single-active-consumer queue to whichever consumer subscribed first
//! and never moves it, so a fleet that simply subscribed everywhere would pile every partition
//! on the oldest worker. Instead each worker heartbeats into a Redis sorted set, every worker
//! computes the same assignment from the same member list, and a worker subscribes only to the
//! partitions assigned to it. The broker still enforces one active consumer per partition, so
//! two workers briefly disagreeing during a change cannot both process a partition.
//!
//! The assignment is rendezvous hashing with load bounds: each partition goes to the member
//! with the highest hash score that still has room, where room is `floor(P/n)`, plus one for
//! exactly `P mod n` members. That is balanced to ±1 by construction and, like plain
//! rendezvous hashing, moves few partitions when a member joins or leaves.

use std::collections::BTreeMap;
use std::time::Duration;

use sha2::{Digest, Sha256};
use shared::redis::Redis;

use crate::keys::Keys;

/// Partitions per member for `members` (sorted, deduplicated ids).
pub fn assign(partitions: u16, members: &[String]) -> BTreeMap<String, Vec<u16>> {
    let mut assignment: BTreeMap<String, Vec<u16>> =
        members.iter().map(|m| (m.clone(), Vec::new())).collect();
    if members.is_empty() {
        return assignment;
    }
    let n = members.len();
    let floor = usize::from(partitions) / n;
    let extra = usize::from(partitions) % n;
    let mut at_ceiling = 0usize;
    for partition in 0..partitions {
        let mut ranked: Vec<(u64, &String)> = members
            .iter()
            .map(|member| (score(member, partition), member))
            .collect();
        ranked.sort_unstable_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
        for (_, member) in ranked {
            let load = assignment.get(member).map_or(0, Vec::len);
            let has_room = load < floor || (load == floor && at_ceiling < extra);
            if has_room {
                if load == floor {
                    at_ceiling += 1;
                }
                if let Some(owned) = assignment.get_mut(member) {
                    owned.push(partition);
                }
                break;
            }
        }
    }
    assignment
}

fn score(member: &str, partition: u16) -> u64 {
    let digest = Sha256::digest(format!("{member}|{partition}").as_bytes());
    let mut first8 = [0u8; 8];
    first8.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first8)
}

/// Heartbeats and the live member list, in one Redis sorted set (score = last heartbeat, ms).
#[derive(Clone)]
pub struct Membership {
    redis: Redis,
    key: String,
    worker_id: String,
    /// A member silent for longer than this is considered gone.
    expiry: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
}

impl Membership {
    pub fn new(redis: Redis, keys: &Keys, worker_id: &str, expiry: Duration) -> Self {
        Self {
            redis,
            key: keys.workers(),
            worker_id: worker_id.to_owned(),
            expiry,
        }
    }

    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// Records this worker as alive and returns the live members, sorted. Uses Redis's clock
    /// so that workers with skewed clocks still agree on who is alive.
    pub async fn heartbeat(&self) -> Result<Vec<String>, MembershipError> {
        let mut connection = self.redis.connection();
        let members: Vec<String> = HEARTBEAT
            .key(&self.key)
            .arg(&self.worker_id)
            .arg(self.expiry.as_millis() as u64)
            .invoke_async(&mut connection)
            .await?;
        Ok(members)
    }

    /// Leaves at once, so the others take over this worker's partitions without waiting for
    /// its heartbeat to expire.
    pub async fn leave(&self) -> Result<(), MembershipError> {
        let mut connection = self.redis.connection();
        redis::cmd("ZREM")
            .arg(&self.key)
            .arg(&self.worker_id)
            .query_async::<()>(&mut connection)
            .await?;
        Ok(())
    }
}

static HEARTBEAT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r#"
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        redis.call('ZADD', KEYS[1], now, ARGV[1])
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
        redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 10)
        return redis.call('ZRANGE', KEYS[1], 0, -1)
        "#,
    )
});

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn members(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("worker-{i}")).collect()
    }

    proptest! {
        #[test]
        fn every_partition_has_exactly_one_owner_and_loads_differ_by_at_most_one(
            partitions in 1u16..200,
            n in 1usize..12,
        ) {
            let assignment = assign(partitions, &members(n));
            let mut owned: Vec<u16> = assignment.values().flatten().copied().collect();
            owned.sort_unstable();
            prop_assert_eq!(owned, (0..partitions).collect::<Vec<_>>());
            let loads: Vec<usize> = assignment.values().map(Vec::len).collect();
            let (min, max) = (loads.iter().min().copied().unwrap_or(0), loads.iter().max().copied().unwrap_or(0));
            prop_assert!(max - min <= 1, "loads {:?}", loads);
        }

        #[test]
        fn a_joining_member_moves_few_partitions(n in 2usize..8) {
            let before = assign(64, &members(n));
            let after = assign(64, &members(n + 1));
            let moved = (0..64u16)
                .filter(|p| {
                    let owner = |a: &BTreeMap<String, Vec<u16>>| a.iter().find(|(_, ps)| ps.contains(p)).map(|(m, _)| m.clone());
                    owner(&before) != owner(&after)
                })
                .count();
            // The ideal is 64/(n+1); allow the bounded-load reshuffle some slack, far below
            // the near-total movement of modulo assignment.
            prop_assert!(moved <= 2 * 64 / (n + 1) + 4, "moved {} of 64 with {} -> {}", moved, n, n + 1);
        }
    }

    #[test]
    fn same_members_same_assignment_regardless_of_order() {
        let mut shuffled = members(5);
        shuffled.reverse();
        let mut sorted = shuffled.clone();
        sorted.sort();
        assert_eq!(assign(16, &members(5)), assign(16, &sorted));
    }
}
