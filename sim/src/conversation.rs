//! Runs a persona against the fleet through the fake WhatsApp: every customer message is a
//! signed webhook to ingress, every bot message is a real Graph send the fake accepted.
//!
//! One [`Router`] reads the fake's outbound feed and hands each message to its customer's
//! inbox, so thousands of waiting customers cost one reader, not one wake-up each per message.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use fakes::whatsapp::{
    Customer, CustomerMessage, DeliveryError, FakeWhatsApp, InboundContext, OutboundRecord,
};
use rand::Rng;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use crate::persona::{Act, Ending, Expect, Next, Persona, ending_of, next_act};
use crate::transcript::{Line, Speaker};

/// A bot message as a customer received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub record: OutboundRecord,
    pub at: Instant,
}

type Route = (String, String);

struct RouteEntry {
    inbox: mpsc::UnboundedSender<Received>,
    /// Highest sequence delivered, so a catch-up after a lagging feed skips what was seen.
    last_sequence: u64,
}

/// Dispatches the fake's outbound messages to per-customer inboxes.
#[derive(Clone)]
pub struct Router {
    fake: FakeWhatsApp,
    routes: Arc<Mutex<HashMap<Route, RouteEntry>>>,
}

impl Router {
    /// Starts the reader task; it ends when the fake is dropped.
    pub fn start(fake: &FakeWhatsApp) -> Router {
        let router = Router {
            fake: fake.clone(),
            routes: Arc::new(Mutex::new(HashMap::new())),
        };
        let mut feed = fake.subscribe();
        let reader = router.clone();
        tokio::spawn(async move {
            loop {
                match feed.recv().await {
                    Ok(record) => reader.deliver(record, Instant::now()),
                    Err(broadcast::error::RecvError::Lagged(_)) => reader.catch_up(),
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        router
    }

    fn routes(&self) -> MutexGuard<'_, HashMap<Route, RouteEntry>> {
        // A poisoned map is still a usable map; the panic that poisoned it is reported.
        self.routes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The inbox of one customer of one business, from now on.
    pub fn register(&self, business: &str, customer: &str) -> mpsc::UnboundedReceiver<Received> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.routes().insert(
            (business.to_owned(), customer.to_owned()),
            RouteEntry {
                inbox: tx,
                last_sequence: 0,
            },
        );
        rx
    }

    pub fn unregister(&self, business: &str, customer: &str) {
        self.routes()
            .remove(&(business.to_owned(), customer.to_owned()));
    }

    fn deliver(&self, record: OutboundRecord, at: Instant) {
        let mut routes = self.routes();
        let key = (record.business.clone(), record.customer.clone());
        if let Some(entry) = routes.get_mut(&key)
            && record.sequence > entry.last_sequence
        {
            entry.last_sequence = record.sequence;
            let _ = entry.inbox.send(Received { record, at });
        }
    }

    /// The feed dropped messages under load: re-read every registered customer's outbox.
    fn catch_up(&self) {
        let keys: Vec<Route> = self.routes().keys().cloned().collect();
        let now = Instant::now();
        for (business, customer) in keys {
            for record in self.fake.outbox(&business, &customer) {
                self.deliver(record, now);
            }
        }
    }
}

/// Why a conversation could not go on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Failure {
    /// Ingress refused or could not be reached (after the fake's retries).
    Webhook(String),
    /// A customer message got no reply in time: a lost message unless the fleet is slow.
    NoReply,
    /// The bot answered, but with nothing the persona could act on.
    Unexpected(String),
}

impl Failure {
    pub fn kind(&self) -> String {
        match self {
            Failure::Webhook(reason) => format!("webhook {reason}"),
            Failure::NoReply => "no reply in time".to_owned(),
            Failure::Unexpected(reason) => format!("unexpected reply: {reason}"),
        }
    }
}

/// Timing knobs of one conversation, and where it counts its messages live.
#[derive(Debug, Clone)]
pub struct Pace {
    /// How long a customer waits for the first reply to a message.
    pub reply_timeout: Duration,
    /// After a reply, how long without another one before the step counts as answered.
    pub quiet: Duration,
    /// A person's pause before answering; zero in load runs.
    pub think: Duration,
    /// Incremented as each customer message is accepted, for a live progress line.
    pub sent: Option<Arc<AtomicU64>>,
}

/// Everything one conversation produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub persona: Persona,
    pub business: String,
    pub customer: String,
    pub lines: Vec<Line>,
    /// Inbound-to-first-reply latency of every answered customer message.
    pub latencies: Vec<Duration>,
    /// Customer messages accepted by ingress.
    pub messages_sent: u64,
    /// Bot messages received, each tagged with the step (customer message) it answered.
    pub received: Vec<(usize, OutboundRecord)>,
    pub ending: Ending,
    pub failure: Option<Failure>,
    pub started: Instant,
    pub finished: Instant,
}

/// Runs one persona to its end.
pub async fn run(
    fake: &FakeWhatsApp,
    router: &Router,
    business: &str,
    wa_id: &str,
    persona: Persona,
    pace: Pace,
    rng: &mut impl Rng,
) -> Outcome {
    let customer = Customer::new(wa_id, &persona.name);
    let mut inbox = router.register(business, wa_id);
    let mut talk = Talk {
        fake,
        business,
        customer,
        started: Instant::now(),
        lines: Vec::new(),
        latencies: Vec::new(),
        messages_sent: 0,
        received: Vec::new(),
        step: 0,
        pace,
    };
    let mut failure = None;
    'beats: for beat in persona.beats.clone() {
        let mut acts = 0;
        loop {
            let last = talk.received.last().map(|(_, r)| r.message.clone());
            match next_act(&beat, last.as_ref(), acts, rng) {
                Next::BeatDone => break,
                Next::Stuck(reason) => {
                    failure = Some(Failure::Unexpected(reason));
                    break 'beats;
                }
                Next::Do(act, expect) => {
                    acts += 1;
                    if let Err(error) = talk.act(&act, expect, &mut inbox).await {
                        failure = Some(error);
                        break 'beats;
                    }
                }
            }
        }
    }
    // Late messages (duplicates, stragglers) still belong to the last step.
    while let Ok(received) = inbox.try_recv() {
        talk.record(received);
    }
    router.unregister(business, wa_id);
    let bot_texts: Vec<String> = talk
        .received
        .iter()
        .map(|(_, record)| record.message.body_text())
        .collect();
    let ending = match &failure {
        Some(_) => Ending::Failed,
        None => ending_of(&bot_texts, persona.lang).unwrap_or(Ending::Failed),
    };
    let finished = Instant::now();
    Outcome {
        persona,
        business: business.to_owned(),
        customer: wa_id.to_owned(),
        lines: talk.lines,
        latencies: talk.latencies,
        messages_sent: talk.messages_sent,
        received: talk.received,
        ending,
        failure,
        started: talk.started,
        finished,
    }
}

struct Talk<'a> {
    fake: &'a FakeWhatsApp,
    business: &'a str,
    customer: Customer,
    started: Instant,
    lines: Vec<Line>,
    latencies: Vec<Duration>,
    messages_sent: u64,
    received: Vec<(usize, OutboundRecord)>,
    /// Index of the customer message the next bot messages answer.
    step: usize,
    pace: Pace,
}

impl Talk<'_> {
    fn record(&mut self, received: Received) {
        self.lines.push(Line {
            at: received.at.saturating_duration_since(self.started),
            speaker: Speaker::Bot,
            message: crate::transcript::Said::Bot(received.record.message.clone()),
        });
        self.received.push((self.step, received.record));
    }

    async fn act(
        &mut self,
        act: &Act,
        expect: Expect,
        inbox: &mut mpsc::UnboundedReceiver<Received>,
    ) -> Result<(), Failure> {
        if !self.pace.think.is_zero() && !matches!(act, Act::Wait(_)) {
            tokio::time::sleep(self.pace.think).await;
        }
        let context = self.received.last().map(|(_, r)| r.wamid.clone());
        let (message, reply_to) = match act {
            Act::Wait(timeout) => {
                self.lines.push(Line {
                    at: self.started.elapsed(),
                    speaker: Speaker::Customer,
                    message: crate::transcript::Said::Silence(*timeout),
                });
                return self.wait(expect, *timeout, None, inbox).await;
            }
            Act::Text(body) => (CustomerMessage::Text { body: body.clone() }, None),
            Act::Button(button) => (
                CustomerMessage::ButtonReply {
                    id: button.id.clone(),
                    title: button.title.clone(),
                },
                context.map(InboundContext::ReplyTo),
            ),
            Act::Row(row) => (
                CustomerMessage::ListReply {
                    id: row.id.clone(),
                    title: row.title.clone(),
                    description: row.description.clone(),
                },
                context.map(InboundContext::ReplyTo),
            ),
        };
        // Anything that arrived unasked belongs to the step before this message.
        while let Ok(received) = inbox.try_recv() {
            self.record(received);
        }
        self.step += 1;
        let sent_at = Instant::now();
        self.lines.push(Line {
            at: sent_at.saturating_duration_since(self.started),
            speaker: Speaker::Customer,
            message: crate::transcript::Said::Customer(act.clone()),
        });
        self.fake
            .customer_message(self.business, &self.customer, message, reply_to)
            .await
            .map_err(|error| Failure::Webhook(webhook_kind(&error)))?;
        self.messages_sent += 1;
        if let Some(sent) = &self.pace.sent {
            sent.fetch_add(1, Ordering::Relaxed);
        }
        self.wait(expect, self.pace.reply_timeout, Some(sent_at), inbox)
            .await
    }

    /// Waits for the reply `expect` describes; records the first reply's latency.
    async fn wait(
        &mut self,
        expect: Expect,
        timeout: Duration,
        sent_at: Option<Instant>,
        inbox: &mut mpsc::UnboundedReceiver<Received>,
    ) -> Result<(), Failure> {
        let deadline = Instant::now() + timeout;
        let mut got_any = false;
        loop {
            let until = match (expect, got_any) {
                // Once something came, only a short quiet period is left to wait.
                (Expect::Reply, true) => (Instant::now() + self.pace.quiet).min(deadline),
                _ => deadline,
            };
            match tokio::time::timeout_at(until, inbox.recv()).await {
                Ok(Some(received)) => {
                    if !got_any && let Some(sent_at) = sent_at {
                        self.latencies
                            .push(received.at.saturating_duration_since(sent_at));
                    }
                    got_any = true;
                    let interactive = matches!(
                        received.record.message,
                        fakes::whatsapp::Outbound::Buttons { .. }
                            | fakes::whatsapp::Outbound::List { .. }
                    );
                    self.record(received);
                    if expect == Expect::Offer && interactive {
                        return Ok(());
                    }
                }
                Ok(None) => return Err(Failure::NoReply),
                Err(_) if got_any && expect == Expect::Reply => return Ok(()),
                Err(_) if got_any => {
                    return Err(Failure::Unexpected("an answer without a choice".into()));
                }
                Err(_) => return Err(Failure::NoReply),
            }
        }
    }
}

fn webhook_kind(error: &DeliveryError) -> String {
    match error {
        DeliveryError::Rejected { status, .. } => format!("HTTP {status}"),
        DeliveryError::Unreachable { .. } => "unreachable".to_owned(),
        DeliveryError::NoWebhookUrl => "not configured".to_owned(),
        DeliveryError::UnknownBusiness(_) => "unknown business".to_owned(),
    }
}
