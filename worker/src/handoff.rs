//! Handing a conversation to a person, with everything they need to continue.
//!
//! The context is published to the durable `handoff` exchange (agent tooling consumes it; the
//! publish is confirmed, so a handoff is never lost) and, when the tenant configures a URL,
//! POSTed there signed with HMAC-SHA256 (`X-Signature-256: sha256=<hex>`) so the receiver can
//! trust it. The webhook is best effort: the durable copy is the record.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use engine::{ConversationState, HandoffContext, HandoffReason, Tenant};
use hmac::{Hmac, Mac};
use lapin::types::FieldTable;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sha2::Sha256;
use shared::amqp::Publisher;
use tracing::warn;

#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    #[error("handoff could not be published: {0}")]
    Publish(#[from] shared::amqp::PublishError),
}

#[derive(Clone)]
pub struct Handoff {
    publisher: Publisher,
    http: reqwest::Client,
    /// Signing secret per tenant (`phone_number_id`), read at start-up from the variable
    /// the tenants file names.
    secrets: BTreeMap<String, SecretString>,
}

impl Handoff {
    pub fn new(publisher: Publisher, secrets: BTreeMap<String, SecretString>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Self {
            publisher,
            http,
            secrets,
        }
    }

    pub async fn hand_off(
        &self,
        tenant: &Tenant,
        customer: &str,
        event_id: &str,
        reason: &HandoffReason,
        context: &HandoffContext,
        state: &ConversationState,
    ) -> Result<(), HandoffError> {
        let body = json!({
            "tenant": tenant.phone_number_id,
            "business": tenant.name,
            "customer": customer,
            "event_id": event_id,
            "reason": reason,
            "context": context,
            "stage": state.stage.name(),
            "language": state.lang.map(|l| l.code()),
            "bookings": state.bookings,
            "at": Utc::now(),
        });
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut headers = FieldTable::default();
        shared::telemetry::inject_amqp_headers(&mut headers);
        self.publisher
            .publish(
                &self.publisher.topology().handoff_exchange(),
                "",
                &bytes,
                headers,
                Some(&format!("{event_id}:handoff")),
            )
            .await?;
        if let Some(url) = &tenant.handoff.url {
            let mut request = self
                .http
                .post(url)
                .header("content-type", "application/json");
            if let Some(secret) = self.secrets.get(&tenant.phone_number_id)
                && let Ok(mut mac) =
                    Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
            {
                mac.update(&bytes);
                request = request.header(
                    "x-signature-256",
                    format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
                );
            }
            let mut headers = reqwest::header::HeaderMap::new();
            shared::telemetry::inject_http_headers(&mut headers);
            match request.headers(headers).body(bytes).send().await {
                Ok(response) if response.status().is_success() => {}
                Ok(response) => {
                    warn!(
                        message = "Handoff webhook refused.",
                        status = response.status().as_u16()
                    )
                }
                Err(error) => warn!(message = "Handoff webhook unreachable.", %error),
            }
        }
        Ok(())
    }
}
