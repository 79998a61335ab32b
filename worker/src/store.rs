//! Conversation state in Redis, written with compare-and-set on the version.
//!
//! The state document carries the recently processed event ids, so "processed" is recorded in
//! the same atomic write as the state change it caused: a crash before the write means the
//! redelivered event is processed again (its effects are idempotent), never lost. The same
//! write queues the event's replies in the outbox (`crate::outbound`): the customer only ever
//! hears a decision that was committed.

use engine::ConversationState;
use shared::redis::Redis;

use crate::keys::Keys;
use crate::outbound::{OUTBOX_TTL_SECONDS, Reply};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("stored conversation state is unreadable: {0}")]
    Corrupt(String),
    #[error("conversation changed underneath (expected version {expected})")]
    Conflict { expected: u64 },
}

#[derive(Clone)]
pub struct StateStore {
    redis: Redis,
    keys: Keys,
}

/// Conversations with nothing upcoming are forgotten after this long without activity.
const IDLE_TTL_SECONDS: i64 = 90 * 24 * 3600;

impl StateStore {
    pub fn new(redis: Redis, keys: Keys) -> Self {
        Self { redis, keys }
    }

    /// The stored state, or a fresh one for a new conversation.
    pub async fn load(
        &self,
        tenant: &str,
        customer: &str,
    ) -> Result<ConversationState, StoreError> {
        let mut connection = self.redis.connection();
        let document: Option<String> = redis::cmd("HGET")
            .arg(self.keys.conversation(tenant, customer))
            .arg("d")
            .query_async(&mut connection)
            .await?;
        match document {
            None => Ok(ConversationState::default()),
            Some(json) => {
                ConversationState::decode(&json).map_err(|e| StoreError::Corrupt(e.to_string()))
            }
        }
    }

    /// Writes `state`, and queues `replies` in the outbox, if the stored version is still
    /// `expected_version`; otherwise writes nothing.
    pub async fn save(
        &self,
        tenant: &str,
        customer: &str,
        expected_version: u64,
        state: &ConversationState,
        replies: &[Reply],
    ) -> Result<(), StoreError> {
        let document = state.encode();
        // Keep the state at least until a week after its last booking ends, so reminders,
        // follow-ups and "when is my appointment" always find it.
        let now = chrono::Utc::now().timestamp();
        let last_booking_end = state
            .bookings
            .iter()
            .map(|b| b.end.timestamp())
            .max()
            .unwrap_or(now);
        let ttl = IDLE_TTL_SECONDS.max(last_booking_end - now + 7 * 24 * 3600);
        let mut script = SAVE.key(self.keys.conversation(tenant, customer));
        script
            .key(self.keys.outbox(tenant, customer))
            .arg(expected_version)
            .arg(state.version)
            .arg(document)
            .arg(ttl)
            .arg(OUTBOX_TTL_SECONDS);
        for reply in replies {
            let (field, value) = reply.queued_record();
            script.arg(field).arg(value);
        }
        let mut connection = self.redis.connection();
        let written: i64 = script.invoke_async(&mut connection).await?;
        if written == 1 {
            Ok(())
        } else {
            Err(StoreError::Conflict {
                expected: expected_version,
            })
        }
    }
}

static SAVE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r#"
        local current = redis.call('HGET', KEYS[1], 'v') or '0'
        if current ~= ARGV[1] then return 0 end
        redis.call('HSET', KEYS[1], 'v', ARGV[2], 'd', ARGV[3])
        redis.call('EXPIRE', KEYS[1], ARGV[4])
        if #ARGV > 5 then
            -- Never over a record of an earlier attempt: a sent wamid must stay.
            for i = 6, #ARGV, 2 do
                redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 1])
            end
            redis.call('EXPIRE', KEYS[2], ARGV[5])
        end
        return 1
        "#,
    )
});
