//! The built-in calendar: bookings in Redis, per tenant and resource.
//!
//! Booking is one Lua script that checks the hold is still ours, checks capacity against
//! overlapping bookings, records the booking and converts the hold, all atomically: two
//! conversations can never both book overlapping time beyond a resource's capacity, whatever
//! the holds say. Booking ids derive from the hold token, so a replay after a crash finds the
//! booking it already made instead of making another.

use chrono::{DateTime, Utc};
use engine::{Busy, Slot, Tenant};
use sha2::{Digest, Sha256};
use shared::redis::Redis;

use super::{BookResult, CalendarError, NewBooking};
use crate::keys::Keys;

use crate::holds::MAX_SPAN_SECONDS;

#[derive(Clone)]
pub struct BuiltinCalendar {
    redis: Redis,
    keys: Keys,
}

pub fn booking_id_for(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    format!("bk_{}", hex::encode(&digest[..10]))
}

impl BuiltinCalendar {
    pub fn new(redis: Redis, keys: Keys) -> Self {
        Self { redis, keys }
    }

    /// Bookings (with their buffers) on every resource, from a day before `from` to `to`.
    pub async fn busy(
        &self,
        tenant: &Tenant,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Busy>, CalendarError> {
        let mut connection = self.redis.connection();
        let mut pipe = redis::pipe();
        for resource in &tenant.staff {
            pipe.cmd("ZRANGEBYSCORE")
                .arg(self.keys.bookings(&tenant.phone_number_id, &resource.id))
                .arg(from.timestamp() - MAX_SPAN_SECONDS)
                .arg(format!("({}", to.timestamp()));
        }
        let per_resource: Vec<Vec<String>> = pipe.query_async(&mut connection).await?;
        let mut busy = Vec::new();
        for (resource, members) in tenant.staff.iter().zip(per_resource) {
            for member in members {
                let mut parts = member.splitn(3, ':');
                let start = parts.next().and_then(|s| s.parse::<i64>().ok());
                let end = parts.next().and_then(|s| s.parse::<i64>().ok());
                if let (Some(start), Some(end)) = (start, end)
                    && let (Some(start), Some(end)) = (
                        DateTime::from_timestamp(start, 0),
                        DateTime::from_timestamp(end, 0),
                    )
                    && end > from
                {
                    busy.push(Busy {
                        resource: resource.id.clone(),
                        start,
                        end,
                    });
                }
            }
        }
        Ok(busy)
    }

    pub async fn book(
        &self,
        tenant: &Tenant,
        request: &NewBooking<'_>,
    ) -> Result<BookResult, CalendarError> {
        let slot = request.slot;
        let Some(resource) = tenant.staff.iter().find(|r| r.id == slot.resource) else {
            return Ok(BookResult::SlotGone);
        };
        let busy_end = crate::holds::busy_end(tenant, slot);
        let booking_id = booking_id_for(request.token);
        let tenant_id = &tenant.phone_number_id;
        let mut connection = self.redis.connection();
        let (booked, detail): (i64, String) = BOOK
            .key(self.keys.hold(tenant_id, &slot.resource, slot.start))
            .key(self.keys.bookings(tenant_id, &slot.resource))
            .key(self.keys.booking(tenant_id, &booking_id))
            .key(self.keys.holds_index(tenant_id))
            .arg(format!("{}|{}", request.conversation, request.token))
            .arg(slot.start.timestamp())
            .arg(busy_end.timestamp())
            .arg(resource.capacity)
            .arg(&booking_id)
            .arg(&slot.service)
            .arg(&slot.resource)
            .arg(request.conversation)
            .arg(request.customer_name.unwrap_or(""))
            .arg(slot.end.timestamp())
            .arg(crate::holds::index_member(
                tenant,
                slot,
                request.conversation,
                request.token,
            ))
            .arg(MAX_SPAN_SECONDS)
            .invoke_async(&mut connection)
            .await?;
        Ok(match (booked, detail.as_str()) {
            (1, _) => BookResult::Booked { booking_id },
            (_, "hold_lost") => BookResult::HoldLost,
            _ => BookResult::SlotGone,
        })
    }

    /// Cancels a booking; true if it existed and was live.
    pub async fn cancel(&self, tenant: &Tenant, booking_id: &str) -> Result<bool, CalendarError> {
        let tenant_id = &tenant.phone_number_id;
        let mut connection = self.redis.connection();
        let resource: Option<String> = redis::cmd("HGET")
            .arg(self.keys.booking(tenant_id, booking_id))
            .arg("resource")
            .query_async(&mut connection)
            .await?;
        let Some(resource) = resource else {
            return Ok(false);
        };
        let cancelled: i64 = CANCEL
            .key(self.keys.booking(tenant_id, booking_id))
            .key(self.keys.bookings(tenant_id, &resource))
            .invoke_async(&mut connection)
            .await?;
        Ok(cancelled == 1)
    }

    /// Every live booking of a tenant as (booking id, resource, start, end with buffer): the
    /// audit that proves no resource is ever over capacity.
    pub async fn audit(
        &self,
        tenant: &Tenant,
    ) -> Result<Vec<(String, String, i64, i64)>, CalendarError> {
        let mut connection = self.redis.connection();
        let mut all = Vec::new();
        for resource in &tenant.staff {
            let members: Vec<String> = redis::cmd("ZRANGE")
                .arg(self.keys.bookings(&tenant.phone_number_id, &resource.id))
                .arg(0)
                .arg(-1)
                .query_async(&mut connection)
                .await?;
            for member in members {
                let mut parts = member.splitn(3, ':');
                if let (Some(Ok(start)), Some(Ok(end)), Some(id)) = (
                    parts.next().map(str::parse::<i64>),
                    parts.next().map(str::parse::<i64>),
                    parts.next(),
                ) {
                    all.push((id.to_owned(), resource.id.clone(), start, end));
                }
            }
        }
        Ok(all)
    }
}

/// Slot of a booking made here, for reschedules and audits.
pub fn slot_of(service: &str, resource: &str, start: i64, end: i64) -> Option<Slot> {
    Some(Slot {
        service: service.to_owned(),
        resource: resource.to_owned(),
        start: DateTime::from_timestamp(start, 0)?,
        end: DateTime::from_timestamp(end, 0)?,
    })
}

static BOOK: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r#"
        -- KEYS: hold, resource bookings, booking, holds index
        -- ARGV: holder, start, busy end, capacity, id, service, resource, conversation,
        --       name, end, holds index member, max span
        local existing = redis.call('HGET', KEYS[3], 'status')
        if existing == 'booked' then return {1, 'replay'} end
        local holder = ARGV[1] .. '|'
        local hold = redis.call('GET', KEYS[1])
        if (not hold) or string.sub(hold, 1, #holder) ~= holder then return {0, 'hold_lost'} end
        local start = tonumber(ARGV[2])
        local stop = tonumber(ARGV[3])
        local members = redis.call('ZRANGEBYSCORE', KEYS[2], start - tonumber(ARGV[12]), '(' .. stop)
        local overlapping = 0
        for _, member in ipairs(members) do
            local s, e = string.match(member, '^(%d+):(%d+):')
            if tonumber(e) > start then overlapping = overlapping + 1 end
        end
        if overlapping >= tonumber(ARGV[4]) then return {0, 'slot_gone'} end
        redis.call('ZADD', KEYS[2], start, ARGV[2] .. ':' .. ARGV[3] .. ':' .. ARGV[5])
        redis.call('HSET', KEYS[3], 'status', 'booked', 'service', ARGV[6], 'resource', ARGV[7],
            'start', ARGV[2], 'end', ARGV[10], 'busy_end', ARGV[3], 'conversation', ARGV[8],
            'name', ARGV[9])
        redis.call('DEL', KEYS[1])
        redis.call('ZREM', KEYS[4], ARGV[11])
        return {1, 'booked'}
        "#,
    )
});

static CANCEL: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r#"
        if redis.call('HGET', KEYS[1], 'status') ~= 'booked' then return 0 end
        local start = redis.call('HGET', KEYS[1], 'start')
        local busy_end = redis.call('HGET', KEYS[1], 'busy_end')
        local id = string.match(KEYS[1], ':([^:]+)$')
        redis.call('ZREM', KEYS[2], start .. ':' .. busy_end .. ':' .. id)
        redis.call('HSET', KEYS[1], 'status', 'cancelled')
        return 1
        "#,
    )
});
