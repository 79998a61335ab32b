//! Operator actions that enter a conversation as events in its partition, so that the worker
//! owning the partition stays the single writer of its state.

use chrono::Utc;
use serde_json::json;
use shared::amqp::{PublishError, Publisher};
use shared::envelope::{Envelope, EventKind, SCHEMA_VERSION};

/// Hands a handed-off conversation back to the bot. `reference` identifies this release (for
/// example the agent tool's ticket id) and makes a repeated release effectively-once.
pub async fn release_conversation(
    publisher: &Publisher,
    tenant: &str,
    customer: &str,
    reference: &str,
) -> Result<(), PublishError> {
    publisher
        .publish_envelope(&Envelope {
            v: SCHEMA_VERSION,
            id: format!("release:{reference}"),
            kind: EventKind::AgentRelease,
            tenant: tenant.to_owned(),
            customer: customer.to_owned(),
            wa_timestamp: None,
            received_at: Utc::now(),
            profile_name: None,
            payload: json!({ "reference": reference }),
        })
        .await
}
