//! Every Redis key the worker writes, in one place, all under the fleet namespace.
//!
//! Keys of one tenant's calendar share the `{tenant}` hash tag so that a Redis Cluster keeps
//! them in one slot and the booking script can touch them atomically.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone)]
pub struct Keys {
    namespace: String,
}

impl Keys {
    pub fn new(namespace: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
        }
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Fleet membership: a sorted set of worker ids scored by their last heartbeat.
    pub fn workers(&self) -> String {
        format!("{}workers", self.namespace)
    }

    /// The lease on one partition: the id of the worker allowed to consume it.
    pub fn partition_lease(&self, partition: u16) -> String {
        format!("{}lease:p{partition}", self.namespace)
    }

    /// Conversation state: a hash with the version `v` and the JSON document `d`.
    pub fn conversation(&self, tenant: &str, customer: &str) -> String {
        format!("{}conv:{tenant}:{customer}", self.namespace)
    }

    /// Outbound messages already sent for (event, step) of one conversation.
    pub fn outbox(&self, tenant: &str, customer: &str) -> String {
        format!("{}out:{tenant}:{customer}", self.namespace)
    }

    /// The lock on one slot of one resource.
    pub fn hold(&self, tenant: &str, resource: &str, start: DateTime<Utc>) -> String {
        format!(
            "{}hold:{{{tenant}}}:{resource}:{}",
            self.namespace,
            start.timestamp()
        )
    }

    /// Monotonic counter per slot, incremented by every successful hold: the fencing token.
    pub fn fence(&self, tenant: &str, resource: &str, start: DateTime<Utc>) -> String {
        format!(
            "{}fence:{{{tenant}}}:{resource}:{}",
            self.namespace,
            start.timestamp()
        )
    }

    /// All live holds of a tenant (score = expiry in ms), so availability can subtract other
    /// conversations' holds without scanning the key space.
    pub fn holds_index(&self, tenant: &str) -> String {
        format!("{}holds:{{{tenant}}}", self.namespace)
    }

    /// Built-in calendar: bookings of one resource (score = start in seconds).
    pub fn bookings(&self, tenant: &str, resource: &str) -> String {
        format!("{}bookings:{{{tenant}}}:{resource}", self.namespace)
    }

    /// Built-in calendar: one booking's fields.
    pub fn booking(&self, tenant: &str, booking_id: &str) -> String {
        format!("{}booking:{{{tenant}}}:{booking_id}", self.namespace)
    }
}
