//! Loopback fake of the WhatsApp Cloud API, written from WIRE.md section A and the fixtures
//! in `fixtures/whatsapp`, not from the project's client, so it disagrees with the client
//! wherever the client disagrees with Meta.
//!
//! It plays both sides of WhatsApp: the Graph `POST /{version}/{phone_number_id}/messages`
//! endpoint the fleet sends to, and the simulated customers whose messages (and the status
//! webhooks of what the fleet sent) it signs and POSTs to the fleet's webhook.

mod config;
mod graph_error;
mod state;
mod validate;
mod webhook;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as AxumState};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use rand::Rng;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use config::{
    BusinessNumber, FakeConfig, Faults, InjectedFault, Limits, OutsideWindowMode, StatusShape,
    StatusWebhooks, TemplateSpec, WebhookDelivery,
};
pub use graph_error::GraphFailure;
pub use validate::{Header, ListRow, ListSection, Outbound, ReplyButton};
pub use webhook::{
    Customer, CustomerMessage, DeliveryState, InboundContext, InboundUpdate, Place, StatusUpdate,
    messages_payload, signature_header, status_payload, statuses_payload,
};

use state::{PairKey, State};
use validate::{Request, SendRequest};
use webhook::WamidDirection;

/// An outbound message the fake accepted, in the order it accepted them.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundRecord {
    /// Global acceptance order across all businesses and customers.
    pub sequence: u64,
    pub business: String,
    /// The recipient's wa_id (`to` without `+`).
    pub customer: String,
    /// `to` exactly as the client sent it.
    pub to: String,
    pub wamid: String,
    pub message: Outbound,
    /// The request body as received, for assertions on fields the parse does not keep.
    pub body: Value,
}

/// A status webhook the fake produced, whether or not the webhook endpoint took it.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusRecord {
    pub business: String,
    pub wamid: String,
    pub recipient_id: String,
    pub state: DeliveryState,
    pub error_code: Option<i64>,
    /// True when the webhook endpoint answered 200.
    pub acknowledged: bool,
}

/// A mark-as-read (with or without typing indicator) the fake accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadMark {
    pub business: String,
    pub message_id: String,
    pub typing_indicator: bool,
}

/// Totals since start, for assertions and the sandbox's summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    pub accepted: u64,
    /// Rejected send requests by Graph error code (including injected faults).
    pub rejected: BTreeMap<i64, u64>,
    /// Injected answers that were not Graph errors (bare HTTP statuses).
    pub bare_http_errors: u64,
    pub hangs: u64,
    pub read_marks: u64,
    pub typing_indicators: u64,
    pub webhooks_acknowledged: u64,
    pub webhooks_failed: u64,
}

/// Why a customer message did not reach the webhook endpoint.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("business phone number {0} is not configured in the fake")]
    UnknownBusiness(String),
    #[error("no webhook URL is configured")]
    NoWebhookUrl,
    #[error("webhook endpoint answered HTTP {status} after {attempts} attempts")]
    Rejected { status: u16, attempts: u32 },
    #[error("webhook endpoint unreachable after {attempts} attempts: {reason}")]
    Unreachable { attempts: u32, reason: String },
}

/// Handle on one fake; cheap to clone, all clones share state.
#[derive(Clone)]
pub struct FakeWhatsApp {
    inner: Arc<Inner>,
}

struct Inner {
    config: FakeConfig,
    state: Mutex<State>,
    /// Bumped on every recorded change so waiters re-check without polling.
    changes: watch::Sender<u64>,
    outbound_feed: broadcast::Sender<OutboundRecord>,
    /// Lets hanging requests end when the server is told to stop.
    stopping: watch::Sender<bool>,
    webhook_client: reqwest::Client,
}

impl FakeWhatsApp {
    pub fn new(config: FakeConfig) -> Self {
        let webhook_client = reqwest::Client::builder()
            .timeout(config.webhook_delivery.timeout)
            .build()
            .unwrap_or_default();
        let state = State::new(&config);
        let (changes, _) = watch::channel(0);
        let (outbound_feed, _) = broadcast::channel(1024);
        let (stopping, _) = watch::channel(false);
        Self {
            inner: Arc::new(Inner {
                config,
                state: Mutex::new(state),
                changes,
                outbound_feed,
                stopping,
                webhook_client,
            }),
        }
    }

    /// The Graph routes, for embedding in another server.
    pub fn router(&self) -> Router {
        Router::new()
            .route(
                "/{version}/{phone_number_id}/messages",
                post(handle_messages),
            )
            .fallback(unknown_path)
            .with_state(self.clone())
    }

    /// Serves on `listener` until `shutdown` resolves.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let stopping = self.inner.stopping.clone();
        let router = self.router();
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                shutdown.await;
                stopping.send_replace(true);
            })
            .await
    }

    /// Binds 127.0.0.1 on a free port and serves in the background.
    pub async fn spawn(config: FakeConfig) -> std::io::Result<RunningFake> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let fake = Self::new(config);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(fake.clone().run(listener, async move {
            let _ = stopped.await;
        }));
        Ok(RunningFake {
            fake,
            addr,
            stop: Some(stop),
            server: Some(server),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock poisons it; the data is still consistent enough
        // for a test double, and refusing to serve would only hide the original panic.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn changed(&self) {
        self.inner.changes.send_modify(|version| *version += 1);
    }

    pub fn config(&self) -> &FakeConfig {
        &self.inner.config
    }

    pub fn add_business(&self, business: BusinessNumber) {
        self.state()
            .businesses
            .insert(business.phone_number_id.clone(), business);
    }

    pub fn set_webhook_url(&self, url: &str) {
        self.state().webhook_url = Some(url.to_owned());
    }

    pub fn set_faults(&self, faults: Faults) {
        self.state().faults = faults;
    }

    /// Forces the next send requests (in order) to fail this way, before any random fault.
    pub fn inject(&self, faults: impl IntoIterator<Item = InjectedFault>) {
        self.state().injected.extend(faults);
    }

    /// Accepted sends to this recipient fail afterwards with 131026, as Meta reports a
    /// number that is not on WhatsApp.
    pub fn set_unreachable(&self, wa_id: &str) {
        self.state().unreachable.insert(wa_id.to_owned());
    }

    /// Opens (or refreshes) the customer-service window without delivering a webhook.
    pub fn open_window(&self, business: &str, customer: &str) {
        self.state()
            .windows
            .insert(PairKey::new(business, customer), Instant::now());
    }

    /// Closes the window as if 24 hours had passed since the customer last wrote.
    pub fn close_window(&self, business: &str, customer: &str) {
        self.state()
            .windows
            .remove(&PairKey::new(business, customer));
    }

    pub fn window_open(&self, business: &str, customer: &str) -> bool {
        let window = self.inner.config.customer_service_window;
        self.state()
            .window_open(&PairKey::new(business, customer), window)
    }

    // ----- customers -----

    pub async fn customer_text(
        &self,
        business: &str,
        customer: &Customer,
        text: &str,
    ) -> Result<String, DeliveryError> {
        self.customer_message(
            business,
            customer,
            CustomerMessage::Text {
                body: text.to_owned(),
            },
            None,
        )
        .await
    }

    /// A tap on a reply button of the business message `context_wamid`.
    pub async fn customer_button_reply(
        &self,
        business: &str,
        customer: &Customer,
        id: &str,
        title: &str,
        context_wamid: &str,
    ) -> Result<String, DeliveryError> {
        let message = CustomerMessage::ButtonReply {
            id: id.to_owned(),
            title: title.to_owned(),
        };
        let context = Some(InboundContext::ReplyTo(context_wamid.to_owned()));
        self.customer_message(business, customer, message, context)
            .await
    }

    /// A row picked from the list message `context_wamid`.
    pub async fn customer_list_reply(
        &self,
        business: &str,
        customer: &Customer,
        row: &ListRow,
        context_wamid: &str,
    ) -> Result<String, DeliveryError> {
        let message = CustomerMessage::ListReply {
            id: row.id.clone(),
            title: row.title.clone(),
            description: row.description.clone(),
        };
        let context = Some(InboundContext::ReplyTo(context_wamid.to_owned()));
        self.customer_message(business, customer, message, context)
            .await
    }

    /// A tap on a template quick-reply button; Meta omits the context in some deliveries.
    pub async fn customer_template_button(
        &self,
        business: &str,
        customer: &Customer,
        payload: &str,
        text: &str,
        context_wamid: Option<&str>,
    ) -> Result<String, DeliveryError> {
        let message = CustomerMessage::TemplateButton {
            payload: payload.to_owned(),
            text: text.to_owned(),
        };
        let context = context_wamid.map(|wamid| InboundContext::ReplyTo(wamid.to_owned()));
        self.customer_message(business, customer, message, context)
            .await
    }

    pub async fn customer_location(
        &self,
        business: &str,
        customer: &Customer,
        latitude: f64,
        longitude: f64,
        place: Option<Place>,
    ) -> Result<String, DeliveryError> {
        let message = CustomerMessage::Location {
            latitude,
            longitude,
            place,
        };
        self.customer_message(business, customer, message, None)
            .await
    }

    pub async fn customer_image(
        &self,
        business: &str,
        customer: &Customer,
        caption: Option<&str>,
    ) -> Result<String, DeliveryError> {
        let media_id: u64 = rand::rng().random_range(10_000_000..99_999_999);
        let message = CustomerMessage::Image {
            media_id: media_id.to_string(),
            mime_type: "image/jpeg".to_owned(),
            sha256: "dGhpcyBpcyBub3QgYW4gaW1hZ2U=".to_owned(),
            caption: caption.map(str::to_owned),
            url: Some(format!(
                "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid={media_id}&source=webhook"
            )),
        };
        self.customer_message(business, customer, message, None)
            .await
    }

    /// `emoji: None` removes a reaction.
    pub async fn customer_reaction(
        &self,
        business: &str,
        customer: &Customer,
        message_id: &str,
        emoji: Option<&str>,
    ) -> Result<String, DeliveryError> {
        let message = CustomerMessage::Reaction {
            message_id: message_id.to_owned(),
            emoji: emoji.map(str::to_owned),
        };
        self.customer_message(business, customer, message, None)
            .await
    }

    /// Something WhatsApp cannot pass on (an edit, a poll): `type: "unsupported"`.
    pub async fn customer_unsupported(
        &self,
        business: &str,
        customer: &Customer,
        kind: Option<&str>,
    ) -> Result<String, DeliveryError> {
        let message = CustomerMessage::Unsupported {
            kind: kind.map(str::to_owned),
        };
        self.customer_message(business, customer, message, None)
            .await
    }

    pub async fn customer_message(
        &self,
        business: &str,
        customer: &Customer,
        message: CustomerMessage,
        context: Option<InboundContext>,
    ) -> Result<String, DeliveryError> {
        let mut wamids = self
            .customer_batch(business, vec![(customer.clone(), message, context)])
            .await?;
        Ok(wamids.pop().unwrap_or_default())
    }

    /// Several customer messages in one signed delivery, as Meta batches them.
    /// Returns their wamids in order. Windows open even if delivery fails: the customers
    /// did write.
    pub async fn customer_batch(
        &self,
        business: &str,
        messages: Vec<(Customer, CustomerMessage, Option<InboundContext>)>,
    ) -> Result<Vec<String>, DeliveryError> {
        let (payload, wamids) = {
            let mut state = self.state();
            let number = state
                .businesses
                .get(business)
                .cloned()
                .ok_or_else(|| DeliveryError::UnknownBusiness(business.to_owned()))?;
            let timestamp = unix_now();
            let updates: Vec<InboundUpdate> = messages
                .into_iter()
                .map(|(customer, message, context)| InboundUpdate {
                    wamid: webhook::new_wamid(&customer.key(), WamidDirection::Inbound),
                    customer,
                    message,
                    context,
                    timestamp,
                })
                .collect();
            let now = Instant::now();
            for update in &updates {
                let key = PairKey::new(business, &update.customer.key());
                state.windows.insert(key, now);
                state
                    .inbound_ids
                    .insert(update.wamid.clone(), business.to_owned());
            }
            let wamids = updates.iter().map(|update| update.wamid.clone()).collect();
            (messages_payload(&number, &updates), wamids)
        };
        self.changed();
        self.deliver(&payload).await?;
        Ok(wamids)
    }

    async fn deliver(&self, payload: &Value) -> Result<(), DeliveryError> {
        let url = self
            .state()
            .webhook_url
            .clone()
            .ok_or(DeliveryError::NoWebhookUrl)?;
        let body = serde_json::to_vec(payload).unwrap_or_default();
        let signature = signature_header(&self.inner.config.app_secret, &body);
        let policy = &self.inner.config.webhook_delivery;
        let attempts = policy.attempts.max(1);
        let mut last = DeliveryError::NoWebhookUrl;
        for attempt in 1..=attempts {
            let outcome = self
                .inner
                .webhook_client
                .post(&url)
                .header("content-type", "application/json")
                .header("x-hub-signature-256", &signature)
                .body(body.clone())
                .send()
                .await;
            match outcome {
                // Meta treats anything but 200 as not delivered.
                Ok(response) if response.status() == StatusCode::OK => {
                    self.state().counters.webhooks_acknowledged += 1;
                    return Ok(());
                }
                Ok(response) => {
                    last = DeliveryError::Rejected {
                        status: response.status().as_u16(),
                        attempts: attempt,
                    };
                }
                Err(error) => {
                    last = DeliveryError::Unreachable {
                        attempts: attempt,
                        reason: error.to_string(),
                    };
                }
            }
            if attempt < attempts {
                tokio::time::sleep(policy.retry_after).await;
            }
        }
        self.state().counters.webhooks_failed += 1;
        Err(last)
    }

    // ----- observability -----

    /// Everything accepted for this (business, customer), in acceptance order.
    pub fn outbox(&self, business: &str, customer: &str) -> Vec<OutboundRecord> {
        self.state()
            .outbox
            .get(&PairKey::new(business, customer))
            .cloned()
            .unwrap_or_default()
    }

    /// Everything accepted, for all pairs, in acceptance order.
    pub fn all_outbound(&self) -> Vec<OutboundRecord> {
        let mut all: Vec<OutboundRecord> =
            self.state().outbox.values().flatten().cloned().collect();
        all.sort_by_key(|record| record.sequence);
        all
    }

    /// The `traceparent` header the send that produced this outbound wamid carried, if any.
    pub fn traceparent(&self, wamid: &str) -> Option<String> {
        self.state().traceparents.get(wamid).cloned()
    }

    /// Every accepted message as it is accepted; lagging receivers lose the oldest.
    pub fn subscribe(&self) -> broadcast::Receiver<OutboundRecord> {
        self.inner.outbound_feed.subscribe()
    }

    /// The next message to this customer not yet returned by this method, waiting up to
    /// `timeout`. Each message is returned once, so a test can walk a conversation.
    pub async fn next_message_to(
        &self,
        business: &str,
        customer: &str,
        timeout: Duration,
    ) -> Option<OutboundRecord> {
        let key = PairKey::new(business, customer);
        self.wait_for(timeout, |state| {
            let taken = state.taken.get(&key).copied().unwrap_or(0);
            let record = state.outbox.get(&key)?.get(taken)?.clone();
            state.taken.insert(key.clone(), taken + 1);
            Some(record)
        })
        .await
    }

    /// Waits until at least `count` messages were accepted for this pair, returns them all.
    pub async fn wait_for_outbox(
        &self,
        business: &str,
        customer: &str,
        count: usize,
        timeout: Duration,
    ) -> Option<Vec<OutboundRecord>> {
        let key = PairKey::new(business, customer);
        self.wait_for(timeout, |state| {
            let records = state.outbox.get(&key)?;
            (records.len() >= count).then(|| records.clone())
        })
        .await
    }

    /// Waits until the fake produced this status for this wamid.
    pub async fn wait_for_status(
        &self,
        wamid: &str,
        state: DeliveryState,
        timeout: Duration,
    ) -> Option<StatusRecord> {
        self.wait_for(timeout, |fake_state| {
            fake_state
                .statuses
                .iter()
                .find(|record| record.wamid == wamid && record.state == state)
                .cloned()
        })
        .await
    }

    async fn wait_for<T>(
        &self,
        timeout: Duration,
        mut probe: impl FnMut(&mut State) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        loop {
            // Subscribe before probing so a change between the two is not missed.
            let mut changes = self.inner.changes.subscribe();
            if let Some(found) = probe(&mut self.state()) {
                return Some(found);
            }
            if tokio::time::timeout_at(deadline, changes.changed())
                .await
                .is_err()
            {
                return None;
            }
        }
    }

    pub fn statuses(&self) -> Vec<StatusRecord> {
        self.state().statuses.clone()
    }

    pub fn read_marks(&self) -> Vec<ReadMark> {
        self.state().read_marks.clone()
    }

    pub fn counters(&self) -> Counters {
        self.state().counters.clone()
    }

    // ----- the Graph endpoint -----

    async fn handle_send(
        &self,
        version: &str,
        phone_number_id: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Response {
        if !self.authorized(headers) {
            return self.reject(GraphFailure::invalid_token());
        }
        if !is_graph_version(version) {
            return self.reject(GraphFailure::unknown_path(&format!("/{version}/")));
        }
        match self.draw_fault() {
            None => {}
            Some(InjectedFault::GraphError(code)) => {
                return self.reject(GraphFailure::for_code(code));
            }
            Some(InjectedFault::BareStatus(status)) => {
                self.state().counters.bare_http_errors += 1;
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
                return (status, "upstream unavailable").into_response();
            }
            Some(InjectedFault::Hang(duration)) => {
                self.state().counters.hangs += 1;
                let mut stopping = self.inner.stopping.subscribe();
                tokio::select! {
                    _ = tokio::time::sleep(duration) => {}
                    _ = stopping.wait_for(|stop| *stop) => {}
                }
                return self.reject(GraphFailure::service_unavailable());
            }
            Some(InjectedFault::Slow(duration)) => tokio::time::sleep(duration).await,
        }
        let Some(business) = self.state().businesses.get(phone_number_id).cloned() else {
            return self.reject(GraphFailure::unknown_object(phone_number_id));
        };
        let request =
            match validate::parse_request(body, &business, self.inner.config.require_plus_in_to) {
                Ok(request) => request,
                Err(failure) => return self.reject(failure),
            };
        match request {
            Request::MarkRead {
                message_id,
                typing_indicator,
            } => self.mark_read(&business, message_id, typing_indicator),
            Request::Send(send) => {
                // Clients propagate W3C trace context; keep it so tests can follow a reply
                // back to the trace of the message that caused it.
                let traceparent = headers
                    .get("traceparent")
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned);
                self.accept_send(&business, send, body, traceparent)
            }
        }
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        headers
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .is_some_and(|token| token == self.inner.config.access_token)
    }

    fn draw_fault(&self) -> Option<InjectedFault> {
        let mut state = self.state();
        if let Some(fault) = state.injected.pop_front() {
            return Some(fault);
        }
        let faults = state.faults.clone();
        let roll: f64 = state.rng.random();
        let mut threshold = faults.too_many_calls;
        if roll < threshold {
            return Some(InjectedFault::GraphError(4));
        }
        threshold += faults.server_error;
        if roll < threshold {
            let code = [131000, 133004, 2][state.rng.random_range(0..3)];
            return Some(InjectedFault::GraphError(code));
        }
        threshold += faults.hang;
        if roll < threshold {
            return Some(InjectedFault::Hang(faults.hang_for));
        }
        threshold += faults.slow;
        if roll < threshold {
            return Some(InjectedFault::Slow(faults.slow_by));
        }
        None
    }

    fn reject(&self, failure: GraphFailure) -> Response {
        *self
            .state()
            .counters
            .rejected
            .entry(failure.code)
            .or_default() += 1;
        self.changed();
        failure.into_response()
    }

    fn mark_read(
        &self,
        business: &BusinessNumber,
        message_id: String,
        typing_indicator: bool,
    ) -> Response {
        {
            let mut state = self.state();
            if state.inbound_ids.get(&message_id) != Some(&business.phone_number_id) {
                drop(state);
                return self.reject(GraphFailure::invalid_parameter(format!(
                    "message_id {message_id} is not a message received by this phone number"
                )));
            }
            state.counters.read_marks += 1;
            if typing_indicator {
                state.counters.typing_indicators += 1;
            }
            state.read_marks.push(ReadMark {
                business: business.phone_number_id.clone(),
                message_id,
                typing_indicator,
            });
        }
        self.changed();
        (StatusCode::OK, axum::Json(json!({ "success": true }))).into_response()
    }

    fn accept_send(
        &self,
        business: &BusinessNumber,
        send: SendRequest,
        raw: &[u8],
        traceparent: Option<String>,
    ) -> Response {
        let config = &self.inner.config;
        let pair = PairKey::new(&business.phone_number_id, &send.wa_id);
        let mut failed_later = None;
        let record = {
            let mut state = self.state();
            let now = Instant::now();
            if !state.take_throughput(&business.phone_number_id, &config.limits, now) {
                drop(state);
                return self.reject(GraphFailure::throughput_exceeded());
            }
            if !state.take_pair(&pair, &config.limits, now) {
                drop(state);
                return self.reject(GraphFailure::pair_rate_exceeded());
            }
            if send.message.is_free_form()
                && !state.window_open(&pair, config.customer_service_window)
            {
                match config.outside_window {
                    OutsideWindowMode::SyncError => {
                        drop(state);
                        return self.reject(GraphFailure::outside_window());
                    }
                    OutsideWindowMode::AcceptThenFailedStatus => {
                        failed_later = Some(GraphFailure::outside_window());
                    }
                }
            }
            if failed_later.is_none() && state.unreachable.contains(&send.wa_id) {
                failed_later = Some(GraphFailure::undeliverable());
            }
            if failed_later.is_none()
                && config.statuses.failure_probability > 0.0
                && state
                    .rng
                    .random_bool(config.statuses.failure_probability.clamp(0.0, 1.0))
            {
                failed_later = Some(GraphFailure::for_code(config.statuses.failure_code));
            }
            state.sequence += 1;
            let record = OutboundRecord {
                sequence: state.sequence,
                business: business.phone_number_id.clone(),
                customer: send.wa_id.clone(),
                to: send.to.clone(),
                wamid: webhook::new_wamid(&send.wa_id, WamidDirection::Outbound),
                message: send.message.clone(),
                body: serde_json::from_slice(raw).unwrap_or(Value::Null),
            };
            if let Some(traceparent) = traceparent {
                state.traceparents.insert(record.wamid.clone(), traceparent);
            }
            state.outbox.entry(pair).or_default().push(record.clone());
            state.counters.accepted += 1;
            record
        };
        self.changed();
        let _ = self.inner.outbound_feed.send(record.clone());
        let skip_delivered = {
            let probability = config.statuses.skip_delivered_probability.clamp(0.0, 1.0);
            probability > 0.0 && self.state().rng.random_bool(probability)
        };
        if config.statuses.enabled {
            let fake = self.clone();
            let business = business.clone();
            let record = record.clone();
            let callback = send.biz_opaque_callback_data.clone();
            tokio::spawn(async move {
                fake.status_sequence(business, record, callback, failed_later, skip_delivered)
                    .await;
            });
        }
        let answer = json!({
            "messaging_product": "whatsapp",
            "contacts": [{ "input": send.to, "wa_id": send.wa_id }],
            "messages": [{ "id": record.wamid }],
        });
        (StatusCode::OK, axum::Json(answer)).into_response()
    }

    async fn status_sequence(
        &self,
        business: BusinessNumber,
        record: OutboundRecord,
        biz_opaque_callback_data: Option<String>,
        failure: Option<GraphFailure>,
        skip_delivered: bool,
    ) {
        let timing = self.inner.config.statuses.clone();
        let category = match &record.message {
            Outbound::Template { .. } => "utility",
            _ => "service",
        };
        let mut plan = Vec::new();
        if let Some(failure) = failure {
            plan.push((timing.sent_after, DeliveryState::Failed, Some(failure)));
        } else {
            plan.push((timing.sent_after, DeliveryState::Sent, None));
            if !skip_delivered {
                plan.push((timing.delivered_after, DeliveryState::Delivered, None));
            }
            if let Some(read_after) = timing.read_after {
                plan.push((read_after, DeliveryState::Read, None));
            }
        }
        let mut elapsed = Duration::ZERO;
        for (at, state, failure) in plan {
            tokio::time::sleep(at.saturating_sub(elapsed)).await;
            elapsed = elapsed.max(at);
            let update = StatusUpdate {
                wamid: record.wamid.clone(),
                state,
                recipient_id: record.customer.clone(),
                timestamp: unix_now(),
                biz_opaque_callback_data: biz_opaque_callback_data.clone(),
                category: category.to_owned(),
                failure: failure.clone(),
            };
            if timing.batch_window.is_zero() {
                let payload = status_payload(&business, timing.shape, &update);
                let acknowledged = self.deliver(&payload).await.is_ok();
                self.record_statuses(&business, std::slice::from_ref(&update), acknowledged);
            } else {
                self.batch_status(&business, update);
            }
        }
    }

    /// Queues a status for its business number's next batched delivery; the first status
    /// into an empty batch schedules the delivery one window later.
    fn batch_status(&self, business: &BusinessNumber, update: StatusUpdate) {
        let starts_batch = {
            let mut state = self.state();
            let batch = state
                .status_batches
                .entry(business.phone_number_id.clone())
                .or_default();
            batch.push(update);
            batch.len() == 1
        };
        if starts_batch {
            let fake = self.clone();
            let business = business.clone();
            tokio::spawn(async move {
                tokio::time::sleep(fake.inner.config.statuses.batch_window).await;
                fake.flush_statuses(&business).await;
            });
        }
    }

    async fn flush_statuses(&self, business: &BusinessNumber) {
        loop {
            let updates: Vec<StatusUpdate> = {
                let mut state = self.state();
                let Some(batch) = state.status_batches.get_mut(&business.phone_number_id) else {
                    return;
                };
                let take = batch.len().min(MAX_UPDATES_PER_DELIVERY);
                batch.drain(..take).collect()
            };
            if updates.is_empty() {
                return;
            }
            let payload = statuses_payload(business, self.inner.config.statuses.shape, &updates);
            let acknowledged = self.deliver(&payload).await.is_ok();
            self.record_statuses(business, &updates, acknowledged);
        }
    }

    fn record_statuses(
        &self,
        business: &BusinessNumber,
        updates: &[StatusUpdate],
        acknowledged: bool,
    ) {
        {
            let mut state = self.state();
            for update in updates {
                state.statuses.push(StatusRecord {
                    business: business.phone_number_id.clone(),
                    wamid: update.wamid.clone(),
                    recipient_id: update.recipient_id.clone(),
                    state: update.state,
                    error_code: update.failure.as_ref().map(|failure| failure.code),
                    acknowledged,
                });
            }
        }
        self.changed();
    }
}

/// Meta's ceiling on updates aggregated into one webhook POST.
const MAX_UPDATES_PER_DELIVERY: usize = 1000;

/// A fake serving on loopback; stops when dropped.
pub struct RunningFake {
    fake: FakeWhatsApp,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl RunningFake {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What a client uses as its API base, e.g. `http://127.0.0.1:4567/v25.0`.
    pub fn graph_base_url(&self) -> String {
        format!("http://{}/v25.0", self.addr)
    }

    pub fn fake(&self) -> &FakeWhatsApp {
        &self.fake
    }

    /// Stops accepting, ends hanging requests, waits for the server to finish.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.server.take() {
            Some(server) => server.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }
}

impl std::ops::Deref for RunningFake {
    type Target = FakeWhatsApp;

    fn deref(&self) -> &FakeWhatsApp {
        &self.fake
    }
}

impl Drop for RunningFake {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

async fn handle_messages(
    AxumState(fake): AxumState<FakeWhatsApp>,
    Path((version, phone_number_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Meta finishes what it received even when the caller has stopped waiting (a client
    // timeout): the send runs on its own task, so a late answer still delivers the message.
    let task = tokio::spawn(async move {
        fake.handle_send(&version, &phone_number_id, &headers, &body)
            .await
    });
    task.await
        .unwrap_or_else(|_| GraphFailure::service_unavailable().into_response())
}

async fn unknown_path(uri: Uri) -> Response {
    GraphFailure::unknown_path(uri.path()).into_response()
}

/// `v25.0` and the like; Graph answers anything else as an unknown path.
fn is_graph_version(version: &str) -> bool {
    version
        .strip_prefix('v')
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(major, minor)| {
            !major.is_empty()
                && !minor.is_empty()
                && major.bytes().all(|b| b.is_ascii_digit())
                && minor.bytes().all(|b| b.is_ascii_digit())
        })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}
