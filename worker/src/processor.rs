//! Processing one event of one conversation: load, decide, act, save.
//!
//! The engine decides; this module performs. Outcome-bearing actions (hold, book, cancel,
//! reschedule) end a decision, and their result is fed straight back to the engine, so a taken
//! slot or a failed booking becomes alternatives in the same reply. Every effect is idempotent
//! under redelivery: hold tokens and booking keys derive from the event id, timers are upserted
//! by id, and the state is committed with compare-and-set — together with the id of the event
//! it processed and the replies it decided, which are sent only after that commit
//! (`crate::outbound`). A replay of an event that was never committed may decide differently;
//! the customer never saw the abandoned decision.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use engine::{
    Action, ConversationState, Decision, DeliveryStatus, FailureReason, Input, Outcome,
    StepContext, Tenant, Tenants, TimerKind,
};
use shared::envelope::{Envelope, conversation_key};
use shared::timers::{TimerSpec, TimerStore};
use tracing::{Instrument, debug, info_span, warn};

use crate::calendar::{Availability, BookResult, Calendar, CalendarError, NewBooking};
use crate::convert::{self, Converted};
use crate::handoff::Handoff;
use crate::holds::{HoldOutcome, Holds};
use crate::metrics::Metrics;
use crate::outbound::{Delivery, Outbox, OutboxError, Reply, Resolution};
use crate::store::{StateStore, StoreError};

/// How long an ambiguous send waits for its status webhooks before it is sent again. WhatsApp
/// reports `sent` within about a second; the margin covers slow webhooks and a busy partition.
const AMBIGUOUS_SEND_GRACE_SECONDS: i64 = 15;
/// Timer payload key of a worker-level check of an ambiguous send (not an engine timer).
const AMBIGUOUS_SEND_CHECK: &str = "ambiguous_send";

/// Engine rounds for one event (an outcome feeds the next round). Real flows need two or
/// three; the bound turns an engine bug into a dead letter instead of a hot loop.
const MAX_ROUNDS: usize = 12;

/// What happens to the delivery next.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// Retry later (nack and redeliver): something outside was unavailable.
    #[error("transient: {0}")]
    Transient(String),
    /// Retrying cannot help: dead-letter with this reason.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl From<StoreError> for ProcessError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Corrupt(reason) => ProcessError::Permanent(format!("state: {reason}")),
            other => ProcessError::Transient(other.to_string()),
        }
    }
}

impl From<CalendarError> for ProcessError {
    fn from(error: CalendarError) -> Self {
        ProcessError::Transient(error.to_string())
    }
}

impl From<crate::holds::HoldError> for ProcessError {
    fn from(error: crate::holds::HoldError) -> Self {
        ProcessError::Transient(error.to_string())
    }
}

impl From<shared::timers::TimerError> for ProcessError {
    fn from(error: shared::timers::TimerError) -> Self {
        ProcessError::Transient(format!("timers: {error}"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processed {
    /// The engine ran and the state was saved.
    Done,
    /// Already processed earlier (a redelivery); nothing was done.
    Duplicate,
    /// Not for a conversation (for example a business-level error); counted.
    Ignored(&'static str),
}

/// Which calendar serves which tenant.
#[derive(Clone)]
pub struct Calendars {
    pub builtin: Calendar,
    /// Present when a Cal.com key is configured.
    pub calcom: Option<Calendar>,
}

impl Calendars {
    fn for_tenant(&self, tenant: &Tenant) -> Result<&Calendar, ProcessError> {
        match tenant.calendar {
            engine::config::CalendarBackend::Builtin => Ok(&self.builtin),
            engine::config::CalendarBackend::Calcom => self.calcom.as_ref().ok_or_else(|| {
                ProcessError::Permanent(format!(
                    "tenant {} uses Cal.com but CALCOM_API_KEY is not set",
                    tenant.phone_number_id
                ))
            }),
        }
    }
}

#[derive(Clone)]
pub struct Processor {
    pub tenants: Arc<BTreeMap<String, Arc<Tenant>>>,
    pub calendars: Calendars,
    pub store: StateStore,
    pub holds: Holds,
    pub outbox: Outbox,
    pub timers: TimerStore,
    pub handoff: Handoff,
    pub metrics: Arc<Metrics>,
}

pub fn index_tenants(tenants: &Tenants) -> Arc<BTreeMap<String, Arc<Tenant>>> {
    Arc::new(
        tenants
            .iter()
            .map(|t| (t.phone_number_id.clone(), Arc::new(t.clone())))
            .collect(),
    )
}

/// Per-event bookkeeping shared by the engine rounds of one event.
struct EventRun<'a> {
    tenant: &'a Arc<Tenant>,
    customer: &'a str,
    conversation: String,
    event_id: &'a str,
    /// The replies decided so far, numbered across rounds: the outbox key is (event, step).
    replies: Vec<Reply>,
}

/// Where a crash can interrupt an event. [`Processor::process_until`] stops there, leaving
/// Redis and WhatsApp exactly as a worker killed at that moment would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// Holds, bookings and timers are in place; nothing is committed or sent.
    BeforeCommit,
    /// State and queued replies are committed; nothing is sent.
    BeforeDelivery,
}

/// Which of the conversation's own live holds an availability read leaves alone.
enum OwnHolds<'a> {
    /// All of them: this attempt may have taken some.
    Keep,
    /// Only the committed state's hold (if any); the attempt has not acted yet.
    KeepOnly(Option<&'a str>),
}

/// A refused reply, heard by the engine as a failed delivery in an event of its own.
struct Refusal {
    step_key: String,
    code: u32,
}

impl Processor {
    pub async fn process(&self, envelope: &Envelope) -> Result<Processed, ProcessError> {
        self.process_to(envelope, None).await
    }

    /// Processes `envelope` up to `crash`, then stops as if the worker died there.
    pub async fn process_until(
        &self,
        envelope: &Envelope,
        crash: CrashPoint,
    ) -> Result<Processed, ProcessError> {
        self.process_to(envelope, Some(crash)).await
    }

    async fn process_to(
        &self,
        envelope: &Envelope,
        crash: Option<CrashPoint>,
    ) -> Result<Processed, ProcessError> {
        let started = Instant::now();
        let tenant = self.tenants.get(&envelope.tenant).ok_or_else(|| {
            ProcessError::Permanent(format!("unknown tenant {}", envelope.tenant))
        })?;
        if let Some(step_key) = ambiguous_send_check(envelope) {
            return self.resolve_ambiguous_send(envelope, step_key).await;
        }
        let input = match convert::to_input(envelope) {
            Ok(Converted::Input(input)) => input,
            Ok(Converted::Ignore(reason)) => return Ok(Processed::Ignored(reason)),
            Err(error) => return Err(ProcessError::Permanent(error.to_string())),
        };
        // Three of every four events are delivery progress of our own replies, which changes
        // nothing in a conversation: skip the state round trip for them. Failures still reach
        // the engine (a closed window re-opens with a template; an unreachable customer goes
        // to a person).
        if let Input::Status { status, message_id } = &input
            && !matches!(status, DeliveryStatus::Failed { .. })
        {
            // A status proves its message reached Meta: it settles a send that a crash left
            // ambiguous (the callback data is the send's (event, step) key).
            if let Some(step_key) = envelope
                .payload
                .get("biz_opaque_callback_data")
                .and_then(|v| v.as_str())
            {
                self.outbox
                    .confirm_from_status(&envelope.tenant, &envelope.customer, step_key, message_id)
                    .await
                    .map_err(|e| ProcessError::Transient(e.to_string()))?;
            }
            return Ok(Processed::Ignored("delivery_progress"));
        }

        // The event, then any failed deliveries of its replies, each an event of its own.
        let mut events = VecDeque::from([(dedup_id(envelope), input)]);
        let mut first = None;
        let mut handled = 0;
        while let Some((event_id, input)) = events.pop_front() {
            handled += 1;
            if handled > MAX_ROUNDS {
                return Err(ProcessError::Permanent(format!(
                    "replies kept failing over {MAX_ROUNDS} follow-up events"
                )));
            }
            let (processed, refusals) = self
                .process_event(tenant, &envelope.customer, &event_id, input, crash)
                .await?;
            first.get_or_insert(processed);
            events.extend(refusals.into_iter().map(|refusal| {
                (
                    format!("{}:refused", refusal.step_key),
                    failed_status(&refusal.step_key, refusal.code),
                )
            }));
        }
        self.metrics.stage("total", started);
        Ok(first.unwrap_or(Processed::Done))
    }

    /// Load, decide and act, commit, deliver: one event of one conversation.
    async fn process_event(
        &self,
        tenant: &Arc<Tenant>,
        customer: &str,
        event_id: &str,
        input: Input,
        crash: Option<CrashPoint>,
    ) -> Result<(Processed, Vec<Refusal>), ProcessError> {
        let started = Instant::now();
        let tenant_id = tenant.phone_number_id.as_str();
        let loaded = self
            .store
            .load(tenant_id, customer)
            .instrument(info_span!("state.load"))
            .await?;
        self.metrics.stage("load", started);
        if loaded.was_processed(event_id) {
            // Committed before: its replies may not all have gone out before a crash.
            debug!(message = "Event already processed.", event = %event_id);
            if crash.is_some() {
                return Ok((Processed::Duplicate, Vec::new()));
            }
            let steps = self
                .outbox
                .recorded_steps(tenant_id, customer, event_id)
                .await
                .map_err(|e| ProcessError::Transient(e.to_string()))?;
            let refusals = self.deliver(tenant_id, customer, &steps).await?;
            return Ok((Processed::Duplicate, refusals));
        }
        let loaded_version = loaded.version;
        let stage_before = loaded.stage.name();
        let mut run = EventRun {
            tenant,
            customer,
            conversation: conversation_key(tenant_id, customer),
            event_id,
            replies: Vec::new(),
        };
        let calendar = self.calendars.for_tenant(tenant)?;
        let committed_hold = loaded.stage.hold().map(|hold| hold.token.clone());
        let mut availability = Availability::deferred();

        let mut state = loaded;
        let mut next = Some(input);
        let mut rounds = 0;
        while let Some(input) = next.take() {
            rounds += 1;
            if rounds > MAX_ROUNDS {
                return Err(ProcessError::Permanent(format!(
                    "engine did not settle within {MAX_ROUNDS} rounds"
                )));
            }
            let now = Utc::now();
            let rerun_state = availability.is_deferred().then(|| state.clone());
            let mut decision = self.decide(state, &input, now, tenant, &availability, event_id);
            if let Some(rerun_state) = rerun_state
                && availability.was_asked()
            {
                // Before the first round has acted, any other hold of ours is a leftover of an
                // attempt that died before its commit; later rounds took theirs in this one.
                let own = if rounds == 1 {
                    OwnHolds::KeepOnly(committed_hold.as_deref())
                } else {
                    OwnHolds::Keep
                };
                availability = self.availability(calendar, &run, own).await?;
                decision = self.decide(rerun_state, &input, now, tenant, &availability, event_id);
            }
            state = decision.state;
            let mut outcome = None;
            for action in decision.actions {
                if let Some(result) = self.perform(calendar, &mut run, &state, action).await? {
                    outcome = Some(result);
                }
            }
            if let Some(outcome) = outcome {
                if matches!(
                    outcome,
                    Outcome::HoldRejected { .. }
                        | Outcome::BookFailed {
                            reason: FailureReason::SlotGone
                        }
                        | Outcome::RescheduleFailed {
                            reason: FailureReason::SlotGone
                        }
                ) {
                    // The snapshot offered a slot that is gone: fresh alternatives, fetched
                    // when the engine asks for them.
                    availability = Availability::deferred();
                }
                next = Some(Input::Outcome(outcome));
            }
        }
        if crash == Some(CrashPoint::BeforeCommit) {
            return Ok((Processed::Done, Vec::new()));
        }

        let save_started = Instant::now();
        self.store
            .save(tenant_id, customer, loaded_version, &state, &run.replies)
            .instrument(info_span!("state.save"))
            .await?;
        self.metrics.stage("save", save_started);
        debug!(
            message = "Event processed.",
            event = %event_id,
            from = stage_before,
            to = state.stage.name(),
            version = loaded_version,
            replies = run.replies.len(),
        );
        if crash == Some(CrashPoint::BeforeDelivery) {
            return Ok((Processed::Done, Vec::new()));
        }
        let steps: Vec<(usize, String)> = run
            .replies
            .into_iter()
            .map(|reply| (reply.step, reply.key))
            .collect();
        let refusals = self.deliver(tenant_id, customer, &steps).await?;
        Ok((Processed::Done, refusals))
    }

    /// Sends an event's committed replies in step order; returns those WhatsApp refused.
    async fn deliver(
        &self,
        tenant_id: &str,
        customer: &str,
        steps: &[(usize, String)],
    ) -> Result<Vec<Refusal>, ProcessError> {
        let mut refusals = Vec::new();
        for (step, step_key) in steps {
            let started = Instant::now();
            let delivered = self
                .outbox
                .deliver(tenant_id, customer, step_key)
                .instrument(info_span!("whatsapp.send", step = *step))
                .await;
            self.metrics.stage("send", started);
            debug!(message = "Send.", step = %step_key, result = ?delivered.as_ref().map_err(ToString::to_string));
            match delivered {
                Ok(Delivery::Sent(_)) => self.metrics.sent(tenant_id),
                Ok(Delivery::AlreadySent(_) | Delivery::Forgotten) => {}
                Ok(Delivery::Ambiguous) => {
                    // Settled once the crashed attempt's status webhooks had time to
                    // arrive: sent then only if none did.
                    self.metrics.ambiguous_send();
                    self.timers
                        .schedule(&TimerSpec {
                            id: format!("resend-check:{step_key}"),
                            due: Utc::now()
                                + chrono::Duration::seconds(AMBIGUOUS_SEND_GRACE_SECONDS),
                            tenant: tenant_id.to_owned(),
                            customer: customer.to_owned(),
                            payload: serde_json::json!({ AMBIGUOUS_SEND_CHECK: step_key }),
                        })
                        .await?;
                }
                Ok(Delivery::Refused { code }) => {
                    // A closed window is expected (the engine re-opens it with a template).
                    if i64::from(code) != shared::whatsapp::OUTSIDE_WINDOW {
                        warn!(message = "WhatsApp refused a message permanently.", code);
                    }
                    refusals.push(Refusal {
                        step_key: step_key.clone(),
                        code,
                    });
                }
                Err(OutboxError::Corrupt { step_key, reason }) => {
                    return Err(ProcessError::Permanent(format!(
                        "outbox record {step_key}: {reason}"
                    )));
                }
                Err(error) => return Err(ProcessError::Transient(error.to_string())),
            }
        }
        Ok(refusals)
    }

    async fn resolve_ambiguous_send(
        &self,
        envelope: &Envelope,
        step_key: &str,
    ) -> Result<Processed, ProcessError> {
        let resolution = self
            .outbox
            .resolve_ambiguous(&envelope.tenant, &envelope.customer, step_key)
            .instrument(info_span!("whatsapp.resend_check"))
            .await;
        match resolution {
            Ok(Resolution::Resent(_)) => {
                self.metrics.sent(&envelope.tenant);
                Ok(Processed::Done)
            }
            Ok(Resolution::WasSent(_) | Resolution::Unknown) => Ok(Processed::Done),
            Err(OutboxError::Send(error)) if !error.is_transient() => {
                warn!(message = "A resend after a crash was refused.", %error);
                Ok(Processed::Done)
            }
            Err(error) => Err(ProcessError::Transient(error.to_string())),
        }
    }

    async fn availability(
        &self,
        calendar: &Calendar,
        run: &EventRun<'_>,
        own_holds: OwnHolds<'_>,
    ) -> Result<Availability, ProcessError> {
        let started = Instant::now();
        let now = Utc::now();
        let tenant_id = run.tenant.phone_number_id.as_str();
        let live = self.holds.live(tenant_id, &run.conversation, now).await?;
        if let OwnHolds::KeepOnly(committed) = own_holds {
            for stray in live
                .own
                .iter()
                .filter(|own| Some(own.token.as_str()) != committed)
            {
                if self
                    .holds
                    .release_stray(tenant_id, &run.conversation, stray)
                    .await?
                {
                    self.metrics.stray_hold_released();
                    debug!(message = "Released a hold no committed state knows.", resource = %stray.resource);
                }
            }
        }
        let availability = calendar
            .availability(run.tenant, now, live.others)
            .instrument(info_span!("calendar.availability"))
            .await;
        self.metrics.stage("availability", started);
        match availability {
            Err(CalendarError::Unreachable(reason)) => {
                warn!(message = "Calendar did not answer; the engine hands off.", %reason);
                Ok(Availability::Unreachable)
            }
            other => Ok(other?),
        }
    }

    fn decide(
        &self,
        state: ConversationState,
        input: &Input,
        now: DateTime<Utc>,
        tenant: &Tenant,
        availability: &Availability,
        event_id: &str,
    ) -> Decision {
        let started = Instant::now();
        let decision = {
            let _span = info_span!("engine.step").entered();
            engine::step(
                state,
                input,
                &StepContext {
                    now,
                    tenant,
                    availability,
                    event_id,
                },
            )
        };
        self.metrics.stage("engine", started);
        decision
    }

    /// Performs one action; returns the outcome for outcome-bearing actions.
    async fn perform(
        &self,
        calendar: &Calendar,
        run: &mut EventRun<'_>,
        state: &ConversationState,
        action: Action,
    ) -> Result<Option<Outcome>, ProcessError> {
        let tenant = run.tenant;
        let tenant_id = tenant.phone_number_id.as_str();
        match action {
            Action::Send(message) => {
                let step = run.replies.len() + 1;
                run.replies
                    .push(Reply::new(run.event_id, step, run.customer, &message));
                Ok(None)
            }
            Action::MarkRead { message_id } => {
                // Blue ticks are a courtesy: a failure must not fail the conversation.
                if let Err(error) = self.outbox.client().mark_read(tenant_id, &message_id).await {
                    debug!(message = "Mark as read failed.", %error);
                }
                Ok(None)
            }
            Action::Hold {
                slot,
                token,
                ttl_seconds,
            } => {
                let outcome = self
                    .holds
                    .hold(tenant, &run.conversation, &slot, &token, ttl_seconds * 1000)
                    .instrument(info_span!("hold.take"))
                    .await?;
                Ok(Some(match outcome {
                    HoldOutcome::Held { .. } => Outcome::Held { token },
                    HoldOutcome::Taken => Outcome::HoldRejected { token },
                }))
            }
            Action::ReleaseHold { slot, token } => {
                self.holds
                    .release(tenant, &run.conversation, &slot, &token)
                    .await?;
                Ok(None)
            }
            Action::Book {
                slot,
                token,
                customer_name,
                lang,
            } => {
                let started = Instant::now();
                let request = NewBooking {
                    slot: &slot,
                    token: &token,
                    conversation: &run.conversation,
                    customer: run.customer,
                    customer_name: customer_name.as_deref(),
                    lang,
                };
                let result = calendar
                    .book(tenant, &request)
                    .instrument(info_span!("calendar.book"))
                    .await;
                self.metrics.stage("book", started);
                Ok(Some(match result {
                    Ok(BookResult::Booked { booking_id }) => Outcome::Booked { booking_id },
                    Ok(BookResult::SlotGone | BookResult::HoldLost) => Outcome::BookFailed {
                        reason: FailureReason::SlotGone,
                    },
                    Err(CalendarError::Permanent(reason)) => {
                        warn!(message = "Calendar refused a booking.", %reason);
                        Outcome::BookFailed {
                            reason: FailureReason::Error,
                        }
                    }
                    Err(CalendarError::Unreachable(reason)) => {
                        warn!(message = "Calendar did not answer a booking.", %reason);
                        Outcome::BookFailed {
                            reason: FailureReason::Unreachable,
                        }
                    }
                    Err(transient) => return Err(transient.into()),
                }))
            }
            Action::CancelBooking { booking_id } => {
                let result = calendar
                    .cancel(tenant, &booking_id)
                    .instrument(info_span!("calendar.cancel"))
                    .await;
                Ok(Some(match result {
                    Ok(true) => Outcome::Cancelled { booking_id },
                    Ok(false) => Outcome::CancelFailed { booking_id },
                    Err(CalendarError::Permanent(_) | CalendarError::Unreachable(_)) => {
                        Outcome::CancelFailed { booking_id }
                    }
                    Err(transient) => return Err(transient.into()),
                }))
            }
            Action::RescheduleBooking {
                booking_id,
                slot,
                token,
            } => {
                let request = NewBooking {
                    slot: &slot,
                    token: &token,
                    conversation: &run.conversation,
                    customer: run.customer,
                    customer_name: state.profile_name.as_deref(),
                    lang: state.lang.unwrap_or(tenant.default_language),
                };
                let result = calendar
                    .reschedule(tenant, &booking_id, &request)
                    .instrument(info_span!("calendar.reschedule"))
                    .await;
                Ok(Some(match result {
                    Ok(BookResult::Booked {
                        booking_id: new_booking_id,
                    }) => Outcome::Rescheduled {
                        booking_id,
                        new_booking_id,
                    },
                    Ok(BookResult::SlotGone | BookResult::HoldLost) => Outcome::RescheduleFailed {
                        reason: FailureReason::SlotGone,
                    },
                    Err(CalendarError::Permanent(_)) => Outcome::RescheduleFailed {
                        reason: FailureReason::Error,
                    },
                    Err(CalendarError::Unreachable(_)) => Outcome::RescheduleFailed {
                        reason: FailureReason::Unreachable,
                    },
                    Err(transient) => return Err(transient.into()),
                }))
            }
            Action::ScheduleTimer { id, due, kind } => {
                self.timers
                    .schedule(&TimerSpec {
                        id,
                        due,
                        tenant: tenant_id.to_owned(),
                        customer: run.customer.to_owned(),
                        payload: timer_payload(&kind)?,
                    })
                    .await?;
                Ok(None)
            }
            Action::CancelTimer { id } => {
                self.timers.cancel(&id).await?;
                Ok(None)
            }
            Action::Handoff { reason, context } => {
                self.metrics.handoff(tenant_id, reason.name());
                self.handoff
                    .hand_off(tenant, run.customer, run.event_id, &reason, &context, state)
                    .await
                    .map_err(|e| ProcessError::Transient(e.to_string()))?;
                Ok(None)
            }
            Action::Metric { name, labels } => {
                self.metrics.funnel(tenant_id, &name, &labels);
                Ok(None)
            }
        }
    }
}

/// The step key of a worker-level ambiguous-send check carried by a timer event, if it is one.
fn ambiguous_send_check(envelope: &Envelope) -> Option<&str> {
    if envelope.kind != shared::envelope::EventKind::Timer {
        return None;
    }
    envelope
        .payload
        .get(AMBIGUOUS_SEND_CHECK)
        .and_then(|v| v.as_str())
}

/// The id that makes an event effectively-once. Timer ids are stable per purpose (a booking's
/// reminder keeps its id when the booking moves), so a timer event is identified by its id and
/// due time: the moved reminder is a new event, a redelivered one is not.
fn dedup_id(envelope: &Envelope) -> String {
    match (
        envelope.kind,
        envelope.payload.get("due").and_then(|d| d.as_str()),
    ) {
        (shared::envelope::EventKind::Timer, Some(due)) => {
            let due = chrono::DateTime::parse_from_rfc3339(due)
                .map(|d| d.timestamp().to_string())
                .unwrap_or_else(|_| due.to_owned());
            format!("{}@{due}", envelope.id)
        }
        _ => envelope.id.clone(),
    }
}

fn failed_status(step_key: &str, code: u32) -> Input {
    Input::Status {
        message_id: format!("local:{step_key}"),
        status: DeliveryStatus::Failed { code },
    }
}

fn timer_payload(kind: &TimerKind) -> Result<serde_json::Value, ProcessError> {
    serde_json::to_value(kind).map_err(|e| ProcessError::Permanent(format!("timer payload: {e}")))
}
