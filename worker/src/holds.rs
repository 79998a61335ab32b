//! Slot holds: `SET NX PX` locks with a token, released or extended only by their holder.
//!
//! The lock value is `{conversation}|{token}|{fence}`. The fence is a per-slot counter
//! incremented by every successful hold, so a stale holder (one whose hold expired and was
//! taken by someone else) can be told apart from the current one even if tokens repeat.
//! Every hold is also indexed per tenant (score = expiry) so availability can subtract other
//! conversations' holds. The Redis TTL frees the slot even when every scheduler is down.

use chrono::{DateTime, Duration, Utc};
use engine::{Busy, Slot, Tenant};
use shared::redis::Redis;

use crate::keys::Keys;

#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
}

#[derive(Clone)]
pub struct Holds {
    redis: Redis,
    keys: Keys,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldOutcome {
    /// The slot is ours (newly, or already from an earlier attempt of the same event).
    Held { fence: i64 },
    /// Someone else holds it.
    Taken,
}

impl Holds {
    pub fn new(redis: Redis, keys: Keys) -> Self {
        Self { redis, keys }
    }

    /// Takes the slot for `ttl_ms`, unless overlapping holds and bookings on the same resource
    /// already use its whole capacity: a hold is a real reservation, so a customer who was
    /// asked to confirm is never told afterwards that the time went to someone else (only an
    /// expired hold can lose its slot). Replaying the same (conversation, token) finds the
    /// hold already ours and succeeds without taking a new fence.
    pub async fn hold(
        &self,
        tenant: &Tenant,
        conversation: &str,
        slot: &Slot,
        token: &str,
        ttl_ms: u64,
    ) -> Result<HoldOutcome, HoldError> {
        let tenant_id = &tenant.phone_number_id;
        let capacity = tenant
            .staff
            .iter()
            .find(|r| r.id == slot.resource)
            .map_or(1, |r| r.capacity);
        let mut connection = self.redis.connection();
        let result: i64 = HOLD
            .key(self.keys.hold(tenant_id, &slot.resource, slot.start))
            .key(self.keys.fence(tenant_id, &slot.resource, slot.start))
            .key(self.keys.holds_index(tenant_id))
            .key(self.keys.bookings(tenant_id, &slot.resource))
            .arg(format!("{conversation}|{token}"))
            .arg(ttl_ms)
            .arg(index_member(tenant, slot, conversation, token))
            .arg(&slot.resource)
            .arg(slot.start.timestamp())
            .arg(busy_end(tenant, slot).timestamp())
            .arg(capacity)
            .arg(MAX_SPAN_SECONDS)
            .invoke_async(&mut connection)
            .await?;
        Ok(if result > 0 {
            HoldOutcome::Held { fence: result }
        } else {
            HoldOutcome::Taken
        })
    }

    /// Releases the slot only if it is still held with this token.
    pub async fn release(
        &self,
        tenant: &Tenant,
        conversation: &str,
        slot: &Slot,
        token: &str,
    ) -> Result<bool, HoldError> {
        let member = index_member(tenant, slot, conversation, token);
        self.release_entry(
            &tenant.phone_number_id,
            &slot.resource,
            slot.start,
            &format!("{conversation}|{token}"),
            &member,
        )
        .await
    }

    /// Deletes the lock if `holder` (`{conversation}|{token}`) still has it, and its index
    /// entry `member` either way.
    async fn release_entry(
        &self,
        tenant: &str,
        resource: &str,
        start: DateTime<Utc>,
        holder: &str,
        member: &str,
    ) -> Result<bool, HoldError> {
        let mut connection = self.redis.connection();
        let released: i64 = RELEASE
            .key(self.keys.hold(tenant, resource, start))
            .key(self.keys.holds_index(tenant))
            .arg(holder)
            .arg(member)
            .invoke_async(&mut connection)
            .await?;
        Ok(released == 1)
    }

    /// Extends the slot only if it is still held with this token.
    pub async fn extend(
        &self,
        tenant: &Tenant,
        conversation: &str,
        slot: &Slot,
        token: &str,
        ttl_ms: u64,
    ) -> Result<bool, HoldError> {
        let tenant_id = &tenant.phone_number_id;
        let mut connection = self.redis.connection();
        let extended: i64 = EXTEND
            .key(self.keys.hold(tenant_id, &slot.resource, slot.start))
            .key(self.keys.holds_index(tenant_id))
            .arg(format!("{conversation}|{token}"))
            .arg(ttl_ms)
            .arg(index_member(tenant, slot, conversation, token))
            .invoke_async(&mut connection)
            .await?;
        Ok(extended == 1)
    }

    /// Whether the slot is currently held with this token.
    pub async fn is_ours(
        &self,
        tenant: &str,
        conversation: &str,
        slot: &Slot,
        token: &str,
    ) -> Result<bool, HoldError> {
        let mut connection = self.redis.connection();
        let value: Option<String> = redis::cmd("GET")
            .arg(self.keys.hold(tenant, &slot.resource, slot.start))
            .query_async(&mut connection)
            .await?;
        Ok(value.is_some_and(|v| v.starts_with(&format!("{conversation}|{token}|"))))
    }

    /// The tenant's live holds: other conversations' as busy time for availability, and
    /// `conversation`'s own.
    pub async fn live(
        &self,
        tenant: &str,
        conversation: &str,
        now: DateTime<Utc>,
    ) -> Result<LiveHolds, HoldError> {
        let mut connection = self.redis.connection();
        let members: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(self.keys.holds_index(tenant))
            .arg(now.timestamp_millis())
            .arg("+inf")
            .query_async(&mut connection)
            .await?;
        let mut live = LiveHolds::default();
        for member in members {
            let Some(IndexMember {
                resource,
                start,
                end,
                holder,
                token,
            }) = IndexMember::parse(&member)
            else {
                continue;
            };
            let (Some(start), Some(end)) = (
                DateTime::from_timestamp(start, 0),
                DateTime::from_timestamp(end, 0),
            ) else {
                continue;
            };
            if holder == conversation {
                live.own.push(OwnHold {
                    resource: resource.to_owned(),
                    start,
                    token: token.to_owned(),
                    member: member.clone(),
                });
            } else {
                live.others.push(Busy {
                    resource: resource.to_owned(),
                    start,
                    end,
                });
            }
        }
        Ok(live)
    }

    /// Lets go of a hold of this conversation that its committed state does not know: taken by
    /// an attempt at an event that died before its commit, and not taken again by the replay.
    pub async fn release_stray(
        &self,
        tenant: &str,
        conversation: &str,
        stray: &OwnHold,
    ) -> Result<bool, HoldError> {
        self.release_entry(
            tenant,
            &stray.resource,
            stray.start,
            &format!("{conversation}|{}", stray.token),
            &stray.member,
        )
        .await
    }
}

/// An entry of the holds index, as [`index_member`] writes it.
#[derive(Debug, PartialEq, Eq)]
struct IndexMember<'a> {
    resource: &'a str,
    start: i64,
    end: i64,
    /// The conversation key, which itself contains a `|` (tenant|customer).
    holder: &'a str,
    token: &'a str,
}

impl<'a> IndexMember<'a> {
    fn parse(member: &'a str) -> Option<Self> {
        let mut parts = member.splitn(4, '|');
        let resource = parts.next()?;
        let start = parts.next()?.parse().ok()?;
        let end = parts.next()?.parse().ok()?;
        // Tokens are hex: the last `|` ends the holder, whatever it contains.
        let (holder, token) = parts.next()?.rsplit_once('|')?;
        Some(Self {
            resource,
            start,
            end,
            holder,
            token,
        })
    }
}

/// What [`Holds::live`] found.
#[derive(Debug, Default)]
pub struct LiveHolds {
    pub others: Vec<Busy>,
    pub own: Vec<OwnHold>,
}

/// A live hold of the conversation that asked.
#[derive(Debug, Clone)]
pub struct OwnHold {
    pub resource: String,
    pub start: DateTime<Utc>,
    pub token: String,
    /// Its entry in the holds index.
    member: String,
}

/// Longest appointment the overlap search looks back for; services are far shorter.
pub const MAX_SPAN_SECONDS: i64 = 24 * 3600;

/// When the resource is free again after this slot: its end plus the service's buffer.
pub fn busy_end(tenant: &Tenant, slot: &Slot) -> DateTime<Utc> {
    let buffer = tenant
        .service(&slot.service)
        .map_or(0, |s| i64::from(s.buffer_minutes));
    slot.end + Duration::minutes(buffer)
}

/// The hold's entry in the tenant's holds index: resource, start, busy end (with buffer),
/// holder and token. Busy time for availability is read back from it.
pub fn index_member(tenant: &Tenant, slot: &Slot, conversation: &str, token: &str) -> String {
    format!(
        "{}|{}|{}|{conversation}|{token}",
        slot.resource,
        slot.start.timestamp(),
        busy_end(tenant, slot).timestamp()
    )
}

static HOLD: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r#"
        local current = redis.call('GET', KEYS[1])
        if current then
            local prefix = ARGV[1] .. '|'
            if string.sub(current, 1, #prefix) == prefix then
                redis.call('PEXPIRE', KEYS[1], ARGV[2])
                return tonumber(string.sub(current, #prefix + 1))
            end
            return 0
        end
        -- KEYS: hold, fence, holds index, resource bookings
        -- ARGV: holder, ttl ms, index member, resource, start, busy end, capacity, max span
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
        local start = tonumber(ARGV[5])
        local stop = tonumber(ARGV[6])
        local used = 0
        for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], now, '+inf')) do
            local resource, s, e = string.match(member, '^([^|]*)|(%d+)|(%d+)|')
            if resource == ARGV[4] and tonumber(s) < stop and tonumber(e) > start then
                used = used + 1
            end
        end
        local bookings = redis.call('ZRANGEBYSCORE', KEYS[4], start - tonumber(ARGV[8]), '(' .. stop)
        for _, member in ipairs(bookings) do
            local s, e = string.match(member, '^(%d+):(%d+):')
            if tonumber(e) > start then used = used + 1 end
        end
        if used >= tonumber(ARGV[7]) then return 0 end
        local fence = redis.call('INCR', KEYS[2])
        redis.call('SET', KEYS[1], ARGV[1] .. '|' .. fence, 'PX', ARGV[2])
        redis.call('ZADD', KEYS[3], now + tonumber(ARGV[2]), ARGV[3])
        return fence
        "#,
    )
});

static RELEASE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r#"
        redis.call('ZREM', KEYS[2], ARGV[2])
        local current = redis.call('GET', KEYS[1])
        local prefix = ARGV[1] .. '|'
        if current and string.sub(current, 1, #prefix) == prefix then
            redis.call('DEL', KEYS[1])
            return 1
        end
        return 0
        "#,
    )
});

static EXTEND: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r#"
        local current = redis.call('GET', KEYS[1])
        local prefix = ARGV[1] .. '|'
        if current and string.sub(current, 1, #prefix) == prefix then
            redis.call('PEXPIRE', KEYS[1], ARGV[2])
            local t = redis.call('TIME')
            local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
            redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[3])
            return 1
        end
        return 0
        "#,
    )
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_entry_reads_back_with_its_holder_whole() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../config/tenants.toml"
        ))
        .expect("example tenants file");
        let tenants = engine::Tenants::from_toml_str(&text).expect("valid tenants");
        let tenant = tenants.iter().next().expect("a tenant");
        let service = tenant.services.first().expect("a service");
        let start = DateTime::from_timestamp(1_795_294_800, 0).expect("time");
        let slot = Slot {
            service: service.id.clone(),
            resource: "maria".into(),
            start,
            end: start + Duration::minutes(i64::from(service.minutes)),
        };
        let conversation = shared::envelope::conversation_key(&tenant.phone_number_id, "1555");
        let member = index_member(tenant, &slot, &conversation, "0a1b2c");
        assert_eq!(
            IndexMember::parse(&member),
            Some(IndexMember {
                resource: "maria",
                start: start.timestamp(),
                end: busy_end(tenant, &slot).timestamp(),
                holder: &conversation,
                token: "0a1b2c",
            })
        );
    }
}
