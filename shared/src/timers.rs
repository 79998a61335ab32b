//! Durable timers: hold expiries, reminders, follow-ups and no-show checks.
//!
//! The worker schedules and cancels them; the `scheduler` binary claims due ones and publishes
//! them as events into the conversation's partition. A timer is never lost: it stays in Redis
//! until a scheduler has had it confirmed by the broker.
//!
//! Layout, per shard `s` in `0..TIMER_SHARDS` (the shard is a fixed-forever hash of the id):
//! - `{ns}timers:{s}` — sorted set, member = timer id, score = Unix milliseconds at which the
//!   timer is next eligible: its due time while waiting, the end of its lease while claimed;
//! - `{ns}timers:{s}:data` — hash, field = timer id, value = the timer's JSON record (due time,
//!   tenant, customer, payload).
//!
//! `{s}` is written with literal braces: it is a Redis Cluster hash tag, so both keys of a
//! shard live in one slot and every script touches a single slot.
//!
//! Claiming is one Lua script per shard: it takes up to `limit` members with score <= now,
//! moves their score to `now + lease` and returns them with that lease score. A scheduler that
//! dies before publishing leaves the timer leased; when the lease ends it is due again and
//! another scheduler claims it. [`TimerStore::complete`] deletes the timer only if it is still
//! under that very claim (same lease score and same record), so a timer rescheduled or
//! re-created while it was being published survives.
//!
//! **Invariant:** at least once, never zero times. A timer can fire twice (a claimer that
//! published but died before completing, or a publish slower than the lease), and a timer
//! cancelled or rescheduled between claim and publish still fires once with its old record.
//! The worker therefore makes timers effectively-once by id and due time, and checks a timer
//! against the conversation's current state (a reminder of a cancelled booking is dropped).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::envelope::{Envelope, EventKind, SCHEMA_VERSION};
use crate::partition::partition_of;
use crate::redis::Redis;

/// Shards of the timer sets. Fixed forever, like the partition function: changing it would
/// strand every timer already written under the old shard of its id.
pub const TIMER_SHARDS: u16 = 16;

/// AMQP `message-id` holds 255 bytes and the id is also a Redis member; keep it short.
pub const MAX_TIMER_ID_BYTES: usize = 200;

/// The shard of a timer id: the first 8 bytes of its SHA-256, big endian, modulo
/// [`TIMER_SHARDS`] (the partition function, whose algorithm is pinned by its own tests).
pub fn shard_of(id: &str) -> u16 {
    partition_of(id, TIMER_SHARDS)
}

/// A timer as the worker asks for it.
#[derive(Debug, Clone, PartialEq)]
pub struct TimerSpec {
    /// Idempotency key chosen by the conversation engine (for example
    /// `booking-42:reminder:24h`); scheduling the same id again moves the timer.
    pub id: String,
    /// When it should fire. Kept to the millisecond.
    pub due: DateTime<Utc>,
    /// The business (`phone_number_id`): with `customer`, decides the partition.
    pub tenant: String,
    /// The customer the timer concerns: with `tenant`, decides the partition.
    pub customer: String,
    /// What the worker needs to act on the timer (kind, booking id, ...). Must be a JSON
    /// object: the published event adds `"due"` to it.
    pub payload: serde_json::Value,
}

/// A timer taken by one scheduler for the length of its lease.
#[derive(Debug, Clone)]
pub struct ClaimedTimer {
    /// The timer as it was scheduled.
    pub timer: TimerSpec,
    /// Where it lives, so completing it touches only its own shard.
    pub shard: u16,
    /// When the claim lapses and the timer becomes due again for any scheduler.
    pub lease_until: DateTime<Utc>,
    /// The lease score exactly as written by the claim, compared by `complete`.
    lease_ms: i64,
    /// The stored record exactly as claimed: a reschedule changes it, so `complete` can tell
    /// the claimed timer from a newer one with the same id.
    record: String,
}

impl ClaimedTimer {
    /// The event a scheduler publishes for this timer: its id is the timer id, its payload the
    /// timer's payload with the due time added (`"due"`, RFC 3339 with milliseconds).
    pub fn envelope(&self, received_at: DateTime<Utc>) -> Envelope {
        let mut payload = self.timer.payload.clone();
        let due = self
            .timer
            .due
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        match payload.as_object_mut() {
            Some(object) => {
                object.insert("due".into(), serde_json::Value::String(due));
            }
            // `schedule` refuses anything but an object; a record from elsewhere is carried
            // whole rather than dropped.
            None => {
                payload = serde_json::json!({ "value": payload, "due": due });
            }
        }
        Envelope {
            v: SCHEMA_VERSION,
            id: self.timer.id.clone(),
            kind: EventKind::Timer,
            tenant: self.timer.tenant.clone(),
            customer: self.timer.customer.clone(),
            wa_timestamp: None,
            received_at,
            profile_name: None,
            payload,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TimerError {
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("invalid timer: {0}")]
    Invalid(String),
    #[error("shard {0} is outside 0..{TIMER_SHARDS}")]
    NoSuchShard(u16),
}

/// What is stored per timer besides its id. Short field names: this is most of the Redis
/// memory per timer.
#[derive(Serialize, Deserialize)]
struct Record {
    /// Due time, Unix milliseconds: the sorted-set score holds the lease while claimed.
    #[serde(rename = "d")]
    due_ms: i64,
    #[serde(rename = "t")]
    tenant: String,
    #[serde(rename = "c")]
    customer: String,
    #[serde(rename = "p")]
    payload: serde_json::Value,
}

/// The timer store, shared by the worker (schedule, cancel) and the scheduler (claim,
/// complete). Cheap to clone.
#[derive(Clone)]
pub struct TimerStore {
    /// Redis connections; every operation takes one for the length of one command or script.
    redis: Redis,
    /// Prefix of every key, so fleets and tests sharing one Redis never see each other.
    namespace: String,
}

impl TimerStore {
    pub fn new(redis: Redis, namespace: &str) -> Self {
        Self {
            redis,
            namespace: namespace.to_owned(),
        }
    }

    /// The sorted set of a shard (score = due time or lease end).
    pub fn due_key(&self, shard: u16) -> String {
        format!("{}timers:{{{shard}}}", self.namespace)
    }

    /// The hash of a shard's timer records.
    pub fn data_key(&self, shard: u16) -> String {
        format!("{}timers:{{{shard}}}:data", self.namespace)
    }

    /// Creates the timer, or moves it if one with this id exists. Scheduling a timer exactly
    /// as it already stands changes nothing, so a replayed event neither resets a running
    /// lease nor makes an in-flight timer fire twice.
    pub async fn schedule(&self, timer: &TimerSpec) -> Result<(), TimerError> {
        check_id(&timer.id)?;
        if !timer.payload.is_object() {
            return Err(TimerError::Invalid(format!(
                "payload of {} must be a JSON object",
                timer.id
            )));
        }
        let due_ms = timer.due.timestamp_millis();
        // Sorted-set scores are doubles: integers beyond 2^53 would lose precision.
        if !(0..(1_i64 << 53)).contains(&due_ms) {
            return Err(TimerError::Invalid(format!(
                "due time of {} is out of range",
                timer.id
            )));
        }
        let record = serde_json::to_string(&Record {
            due_ms,
            tenant: timer.tenant.clone(),
            customer: timer.customer.clone(),
            payload: timer.payload.clone(),
        })
        .map_err(|e| TimerError::Invalid(e.to_string()))?;
        let shard = shard_of(&timer.id);
        let mut connection = self.redis.connection();
        let _: i64 = SCHEDULE
            .key(self.due_key(shard))
            .key(self.data_key(shard))
            .arg(&timer.id)
            .arg(due_ms)
            .arg(record)
            .invoke_async(&mut connection)
            .await?;
        Ok(())
    }

    /// Removes the timer. True if it existed. A timer already claimed and being published is
    /// removed too, but its event may still go out once (see the module invariant).
    pub async fn cancel(&self, id: &str) -> Result<bool, TimerError> {
        let shard = shard_of(id);
        let mut connection = self.redis.connection();
        let removed: i64 = CANCEL
            .key(self.due_key(shard))
            .key(self.data_key(shard))
            .arg(id)
            .invoke_async(&mut connection)
            .await?;
        Ok(removed > 0)
    }

    /// The timer as currently stored, if any.
    pub async fn get(&self, id: &str) -> Result<Option<TimerSpec>, TimerError> {
        let shard = shard_of(id);
        let mut connection = self.redis.connection();
        let record: Option<String> = redis::cmd("HGET")
            .arg(self.data_key(shard))
            .arg(id)
            .query_async(&mut connection)
            .await?;
        Ok(record.and_then(|record| decode(id, &record)))
    }

    /// Atomically claims up to `limit` timers of `shard` due at or before `now`, leasing each
    /// until `now + lease`.
    ///
    /// `now` comes from the caller rather than from Redis `TIME` inside the script so that the
    /// store has no hidden clock (tests claim "as of" any instant); the scheduler passes
    /// [`TimerStore::now`], the Redis clock, so that replicas on hosts with skewed clocks
    /// still agree on what is due and when a lease ends.
    pub async fn claim_due(
        &self,
        shard: u16,
        now: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<ClaimedTimer>, TimerError> {
        if shard >= TIMER_SHARDS {
            return Err(TimerError::NoSuchShard(shard));
        }
        if limit == 0 {
            return Ok(Vec::new());
        }
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX).max(1);
        let mut connection = self.redis.connection();
        let reply: redis::Value = CLAIM
            .key(self.due_key(shard))
            .key(self.data_key(shard))
            .arg(now.timestamp_millis())
            .arg(lease_ms)
            .arg(limit)
            .invoke_async(&mut connection)
            .await?;
        let (lease_until_ms, pairs) = parse_claim_reply(reply)?;
        let lease_until = DateTime::from_timestamp_millis(lease_until_ms).unwrap_or(now);
        let mut claimed = Vec::with_capacity(pairs.len());
        for (id, record) in pairs {
            // A record that cannot be read stays leased and comes back every lease: loud in
            // the logs, never silently dropped.
            let Some(timer) = decode(&id, &record) else {
                continue;
            };
            claimed.push(ClaimedTimer {
                timer,
                shard,
                lease_until,
                lease_ms: lease_until_ms,
                record,
            });
        }
        Ok(claimed)
    }

    /// Deletes a published timer, but only if it is still exactly as claimed: a timer that was
    /// rescheduled (or cancelled and re-created) while it was being published survives.
    pub async fn complete(&self, claimed: &ClaimedTimer) -> Result<(), TimerError> {
        let mut connection = self.redis.connection();
        let _: i64 = COMPLETE
            .key(self.due_key(claimed.shard))
            .key(self.data_key(claimed.shard))
            .arg(&claimed.timer.id)
            .arg(claimed.lease_ms)
            .arg(&claimed.record)
            .invoke_async(&mut connection)
            .await?;
        Ok(())
    }

    /// Gives a claimed timer back before its lease ends (its publish failed), due again at
    /// `retry_at`. False if the timer changed meanwhile; it is then left as it is.
    pub async fn release(
        &self,
        claimed: &ClaimedTimer,
        retry_at: DateTime<Utc>,
    ) -> Result<bool, TimerError> {
        let mut connection = self.redis.connection();
        let released: i64 = RELEASE
            .key(self.due_key(claimed.shard))
            .key(self.data_key(claimed.shard))
            .arg(&claimed.timer.id)
            .arg(claimed.lease_ms)
            .arg(&claimed.record)
            .arg(retry_at.timestamp_millis())
            .invoke_async(&mut connection)
            .await?;
        Ok(released == 1)
    }

    /// The earliest score across shards: the next due time, or the end of the earliest lease.
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>, TimerError> {
        let mut pipe = redis::pipe();
        for shard in 0..TIMER_SHARDS {
            pipe.cmd("ZRANGE")
                .arg(self.due_key(shard))
                .arg(0)
                .arg(0)
                .arg("WITHSCORES");
        }
        let mut connection = self.redis.connection();
        let firsts: Vec<Vec<(String, f64)>> = pipe.query_async(&mut connection).await?;
        let earliest = firsts
            .iter()
            .filter_map(|first| first.first().map(|(_, score)| *score))
            .fold(None, |min: Option<f64>, score| {
                Some(min.map_or(score, |m| m.min(score)))
            });
        Ok(earliest.and_then(|ms| DateTime::from_timestamp_millis(ms as i64)))
    }

    /// Timers stored, waiting or leased.
    pub async fn pending(&self) -> Result<u64, TimerError> {
        let mut pipe = redis::pipe();
        for shard in 0..TIMER_SHARDS {
            pipe.cmd("ZCARD").arg(self.due_key(shard));
        }
        let mut connection = self.redis.connection();
        let counts: Vec<u64> = pipe.query_async(&mut connection).await?;
        Ok(counts.iter().sum())
    }

    /// The Redis server's clock: one clock for every scheduler replica, whatever their hosts'.
    pub async fn now(&self) -> Result<DateTime<Utc>, TimerError> {
        let mut connection = self.redis.connection();
        let (seconds, micros): (i64, i64) = redis::cmd("TIME").query_async(&mut connection).await?;
        DateTime::from_timestamp(seconds, (micros * 1000) as u32)
            .ok_or_else(|| TimerError::Invalid(format!("Redis TIME {seconds}.{micros}")))
    }
}

fn check_id(id: &str) -> Result<(), TimerError> {
    if id.is_empty() || id.len() > MAX_TIMER_ID_BYTES {
        return Err(TimerError::Invalid(format!(
            "timer id must be 1..={MAX_TIMER_ID_BYTES} bytes"
        )));
    }
    Ok(())
}

fn decode(id: &str, record: &str) -> Option<TimerSpec> {
    let decoded = serde_json::from_str::<Record>(record)
        .ok()
        .and_then(|record| {
            Some(TimerSpec {
                id: id.to_owned(),
                due: DateTime::from_timestamp_millis(record.due_ms)?,
                tenant: record.tenant,
                customer: record.customer,
                payload: record.payload,
            })
        });
    if decoded.is_none() {
        warn!(message = "Timer record is unreadable; leaving it in place.", timer = %id);
    }
    decoded
}

/// The claim script answers `[lease_until_ms, id1, record1, id2, record2, ...]`.
fn parse_claim_reply(reply: redis::Value) -> Result<(i64, Vec<(String, String)>), TimerError> {
    let unexpected = || {
        TimerError::Redis(redis::RedisError::from((
            redis::ErrorKind::UnexpectedReturnType,
            "claim script reply",
        )))
    };
    let redis::Value::Array(items) = reply else {
        return Err(unexpected());
    };
    let mut items = items.into_iter();
    let lease_until_ms = match items.next() {
        Some(redis::Value::Int(ms)) => ms,
        _ => return Err(unexpected()),
    };
    let mut pairs = Vec::with_capacity(items.len() / 2);
    while let (Some(id), Some(record)) = (items.next(), items.next()) {
        let id: String = redis::from_redis_value(id).map_err(|_| unexpected())?;
        let record: String = redis::from_redis_value(record).map_err(|_| unexpected())?;
        pairs.push((id, record));
    }
    Ok((lease_until_ms, pairs))
}

/// KEYS: due set, data hash. ARGV: id, due ms, record. Identical re-scheduling is a no-op.
static SCHEDULE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r#"
        if redis.call('HGET', KEYS[2], ARGV[1]) == ARGV[3]
            and redis.call('ZSCORE', KEYS[1], ARGV[1]) then
            return 0
        end
        redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
        redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
        return 1
        "#,
    )
});

/// KEYS: due set, data hash. ARGV: id.
static CANCEL: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r#"
        local removed = redis.call('ZREM', KEYS[1], ARGV[1])
        return removed + redis.call('HDEL', KEYS[2], ARGV[1])
        "#,
    )
});

/// KEYS: due set, data hash. ARGV: now ms, lease ms, limit. Members without a record cannot
/// be published and are dropped (only a partial write by hand can make one).
static CLAIM: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r#"
        local now = tonumber(ARGV[1])
        local lease_until = now + tonumber(ARGV[2])
        local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
        local out = { lease_until }
        for _, id in ipairs(ids) do
            local record = redis.call('HGET', KEYS[2], id)
            if record then
                redis.call('ZADD', KEYS[1], 'XX', lease_until, id)
                out[#out + 1] = id
                out[#out + 1] = record
            else
                redis.call('ZREM', KEYS[1], id)
            end
        end
        return out
        "#,
    )
});

/// KEYS: due set, data hash. ARGV: id, lease ms, record.
static COMPLETE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r#"
        local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
        if score and tonumber(score) == tonumber(ARGV[2])
            and redis.call('HGET', KEYS[2], ARGV[1]) == ARGV[3] then
            redis.call('ZREM', KEYS[1], ARGV[1])
            redis.call('HDEL', KEYS[2], ARGV[1])
            return 1
        end
        return 0
        "#,
    )
});

/// KEYS: due set, data hash. ARGV: id, lease ms, record, retry ms.
static RELEASE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r#"
        local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
        if score and tonumber(score) == tonumber(ARGV[2])
            and redis.call('HGET', KEYS[2], ARGV[1]) == ARGV[3] then
            redis.call('ZADD', KEYS[1], 'XX', ARGV[4], ARGV[1])
            return 1
        end
        return 0
        "#,
    )
});

#[cfg(test)]
mod tests {
    use super::*;

    /// Pinned: the shard of an id must never change, or stored timers become unreachable by
    /// `cancel`. Same function as the partitions, so these follow its pinned vectors.
    #[test]
    fn shards_never_change() {
        assert_eq!(shard_of("106540352242922|16505551234"), 13);
        assert_eq!(shard_of("15550001111|34600111222"), 3);
    }

    #[tokio::test]
    async fn keys_share_one_cluster_slot_per_shard() {
        // The connection is lazy: nothing here talks to Redis.
        let redis =
            crate::redis::open(&"redis://127.0.0.1:6379".to_owned().into()).expect("redis config");
        let store = TimerStore::new(redis, "ns.");
        assert_eq!(store.due_key(7), "ns.timers:{7}");
        assert_eq!(store.data_key(7), "ns.timers:{7}:data");
    }
}
