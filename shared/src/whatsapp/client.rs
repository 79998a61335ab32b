//! `WhatsAppClient`: paced, retried sends to the Graph messages endpoint.

use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::error::{ErrorClass, GraphFailure, SendError, TransientCause, classify};
use super::pacing::{Pacer, PacingConfig};
use super::types::{
    GraphErrorEnvelope, Interactive, MarkRead, OutboundMessage, SendResponse, SuccessResponse,
    Template,
};

pub const DEFAULT_API_BASE: &str = "https://graph.facebook.com/v25.0";

/// `GraphFailure::code` when the answer carried no Graph error code at all.
pub const NO_GRAPH_CODE: i64 = -1;

/// Meta's advice after a failure is to retry after 4^n seconds (1, 4, 16, …).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub first_delay: Duration,
    pub factor: f32,
    pub max_delay: Duration,
    /// Retries after the first attempt.
    pub max_retries: usize,
    /// Total sleeping between attempts; past it the send fails as transient so the caller
    /// can requeue instead of holding its delivery.
    pub max_total_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_secs(1),
            factor: 4.0,
            max_delay: Duration::from_secs(64),
            max_retries: 4,
            max_total_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    fn backoff(&self) -> ExponentialBuilder {
        // Jitter adds up to one more delay, so concurrent senders that failed together
        // (a throughput error hits all of them) do not retry together.
        ExponentialBuilder::default()
            .with_min_delay(self.first_delay)
            .with_factor(self.factor)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_retries)
            .with_total_delay(Some(self.max_total_delay))
            .with_jitter()
    }
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Graph base including the version, e.g. `https://graph.facebook.com/v25.0`.
    pub api_base: String,
    /// System-user or business token; `SecretString` keeps it out of Debug output.
    pub access_token: SecretString,
    /// Whole-request limit per attempt.
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    pub pacing: PacingConfig,
    pub retry: RetryPolicy,
}

impl ClientConfig {
    pub fn new(access_token: SecretString) -> Self {
        Self {
            api_base: DEFAULT_API_BASE.to_owned(),
            access_token,
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            pacing: PacingConfig::default(),
            retry: RetryPolicy::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the access token contains characters not allowed in an HTTP header")]
    InvalidToken,
    #[error("the API base {0:?} is not an http(s) URL")]
    InvalidApiBase(String),
    #[error("HTTP client could not be built: {0}")]
    Http(#[from] reqwest::Error),
}

/// A send Meta accepted (not yet delivered: that arrives as status webhooks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub wamid: String,
    /// The recipient's WhatsApp id as Meta resolved it.
    pub wa_id: Option<String>,
}

/// Cheap to clone; clones share pacing state and connections.
#[derive(Clone, Debug)]
pub struct WhatsAppClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ClientConfig,
    http: reqwest::Client,
    pacer: Pacer,
}

/// One attempt's failure: retry it, or give the caller this answer now.
#[derive(Debug)]
enum AttemptError {
    Retry(TransientCause),
    Stop(SendError),
}

impl WhatsAppClient {
    pub fn new(config: ClientConfig) -> Result<Self, BuildError> {
        if authorization_value(&config.access_token).is_none() {
            return Err(BuildError::InvalidToken);
        }
        let base = config.api_base.trim_end_matches('/');
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(BuildError::InvalidApiBase(config.api_base.clone()));
        }
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout)
            .build()?;
        let pacer = Pacer::new(&config.pacing);
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                http,
                pacer,
            }),
        })
    }

    pub async fn send_text(
        &self,
        phone_number_id: &str,
        to: &str,
        body: &str,
    ) -> Result<Sent, SendError> {
        self.send(phone_number_id, &OutboundMessage::text(to, body))
            .await
    }

    /// Reply buttons or a list.
    pub async fn send_interactive(
        &self,
        phone_number_id: &str,
        to: &str,
        interactive: Interactive,
    ) -> Result<Sent, SendError> {
        self.send(
            phone_number_id,
            &OutboundMessage::interactive(to, interactive),
        )
        .await
    }

    pub async fn send_template(
        &self,
        phone_number_id: &str,
        to: &str,
        template: Template,
    ) -> Result<Sent, SendError> {
        self.send(phone_number_id, &OutboundMessage::template(to, template))
            .await
    }

    /// Paces per number and per customer, then sends, retrying what Meta says is worth
    /// retrying. A pair-rate error (131056) retries only this customer's send.
    pub async fn send(
        &self,
        phone_number_id: &str,
        message: &OutboundMessage,
    ) -> Result<Sent, SendError> {
        let customer = message.to.trim_start_matches('+');
        let response: SendResponse = self
            .post_with_retry(phone_number_id, Some(customer), message)
            .await?;
        let wamid = response.wamid().map(str::to_owned).ok_or_else(|| {
            SendError::Permanent(unexpected_answer(200, "send answer without messages[0].id"))
        })?;
        Ok(Sent {
            wamid,
            wa_id: response
                .contacts
                .first()
                .map(|contact| contact.wa_id.clone()),
        })
    }

    /// Marks an inbound message (and those before it) read: the customer sees blue ticks.
    pub async fn mark_read(
        &self,
        phone_number_id: &str,
        message_id: &str,
    ) -> Result<(), SendError> {
        self.read_receipt(phone_number_id, MarkRead::new(message_id, false))
            .await
    }

    /// Marks the message read and shows "typing…" until the reply (or about 25 s).
    pub async fn show_typing(
        &self,
        phone_number_id: &str,
        message_id: &str,
    ) -> Result<(), SendError> {
        self.read_receipt(phone_number_id, MarkRead::new(message_id, true))
            .await
    }

    async fn read_receipt(&self, phone_number_id: &str, body: MarkRead) -> Result<(), SendError> {
        let answer: SuccessResponse = self.post_with_retry(phone_number_id, None, &body).await?;
        if answer.success {
            Ok(())
        } else {
            Err(SendError::Permanent(unexpected_answer(
                200,
                "success: false",
            )))
        }
    }

    async fn post_with_retry<B, R>(
        &self,
        phone_number_id: &str,
        customer: Option<&str>,
        body: &B,
    ) -> Result<R, SendError>
    where
        B: Serialize,
        R: DeserializeOwned,
    {
        let url = self.messages_url(phone_number_id)?;
        let attempt = || async {
            let pacing = match customer {
                Some(customer) => self.inner.pacer.acquire(phone_number_id, customer).await,
                None => self.inner.pacer.acquire_business(phone_number_id).await,
            };
            pacing.map_err(|cause| AttemptError::Stop(SendError::Transient(cause)))?;
            self.post_once(&url, body).await
        };
        // One span per call (all its attempts): a child of the caller's span, and the parent
        // that `traceparent` names, so the Graph request sits inside the message's trace.
        let span = tracing::info_span!(
            "whatsapp.call",
            operation = if customer.is_some() { "send" } else { "read" },
        );
        let outcome = attempt
            .retry(self.inner.config.retry.backoff())
            .sleep(tokio::time::sleep)
            // A message that may already be with Meta is not sent again here: the caller
            // settles it from its status webhooks. Read receipts are safe to repeat.
            .when(|error| {
                matches!(error, AttemptError::Retry(cause)
                    if customer.is_none() || !cause.may_have_arrived())
            })
            .notify(|error, delay| {
                if let AttemptError::Retry(cause) = error {
                    tracing::warn!(
                        message = "WhatsApp send failed, retrying.",
                        cause = %cause,
                        delay_ms = delay.as_millis() as u64,
                    );
                }
            })
            .instrument(span)
            .await;
        outcome.map_err(|error| match error {
            AttemptError::Retry(cause) => SendError::Transient(cause),
            AttemptError::Stop(error) => error,
        })
    }

    async fn post_once<B, R>(&self, url: &str, body: &B) -> Result<R, AttemptError>
    where
        B: Serialize,
        R: DeserializeOwned,
    {
        let response = self
            .inner
            .http
            .post(url)
            .headers(self.request_headers()?)
            .json(body)
            .send()
            .await
            .map_err(|error| AttemptError::Retry(transport_cause(&error)))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|error| AttemptError::Retry(transport_cause(&error)))?;
        if (200..300).contains(&status) {
            // Meta accepted the message; retrying on an unreadable answer would send twice.
            return serde_json::from_slice(&bytes).map_err(|error| {
                AttemptError::Stop(SendError::Permanent(unexpected_answer(
                    status,
                    &format!("unreadable success answer: {error}"),
                )))
            });
        }
        Err(classify_failure(status, &bytes))
    }

    /// Every header of every request is built here, and only here.
    fn request_headers(&self) -> Result<HeaderMap, AttemptError> {
        let authorization =
            authorization_value(&self.inner.config.access_token).ok_or_else(|| {
                AttemptError::Stop(SendError::Permanent(unexpected_answer(
                    0,
                    "access token not usable as a header",
                )))
            })?;
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, authorization);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        // `traceparent` of the current span: the trace continues on the other side.
        crate::telemetry::inject_http_headers(&mut headers);
        Ok(headers)
    }

    fn messages_url(&self, phone_number_id: &str) -> Result<String, SendError> {
        // Phone number ids are numeric; anything else could rewrite the request path.
        if phone_number_id.is_empty() || !phone_number_id.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(SendError::Permanent(unexpected_answer(
                0,
                "phone_number_id must be alphanumeric",
            )));
        }
        Ok(format!(
            "{}/{}/messages",
            self.inner.config.api_base.trim_end_matches('/'),
            phone_number_id
        ))
    }
}

fn authorization_value(token: &SecretString) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret())).ok()?;
    value.set_sensitive(true);
    Some(value)
}

fn transport_cause(error: &reqwest::Error) -> TransientCause {
    // reqwest errors name the URL, which holds no secret or phone number.
    if error.is_connect() {
        TransientCause::Connection(error.to_string())
    } else if error.is_timeout() {
        TransientCause::Timeout
    } else {
        TransientCause::Interrupted(error.to_string())
    }
}

fn classify_failure(status: u16, body: &[u8]) -> AttemptError {
    match serde_json::from_slice::<GraphErrorEnvelope>(body) {
        Ok(envelope) => {
            let failure = GraphFailure::from_graph(status, envelope.error);
            match classify(failure.code, Some(status)) {
                ErrorClass::Retryable => AttemptError::Retry(TransientCause::Graph(failure)),
                ErrorClass::OutsideWindow => AttemptError::Stop(SendError::OutsideWindow {
                    details: failure.details,
                }),
                ErrorClass::Permanent => AttemptError::Stop(SendError::Permanent(failure)),
            }
        }
        Err(_) if status >= 500 || status == 429 => {
            AttemptError::Retry(TransientCause::Http { status })
        }
        Err(_) => {
            let excerpt: String = String::from_utf8_lossy(body).chars().take(200).collect();
            AttemptError::Stop(SendError::Permanent(unexpected_answer(
                status,
                &format!("answer without a Graph error body: {excerpt}"),
            )))
        }
    }
}

fn unexpected_answer(http_status: u16, message: &str) -> GraphFailure {
    GraphFailure {
        http_status,
        code: NO_GRAPH_CODE,
        message: message.to_owned(),
        details: None,
        fbtrace_id: None,
    }
}
