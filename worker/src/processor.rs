//! Processing one event of one conversation: load, decide, act, save.
//!
//! The engine decides; this module performs. Outcome-bearing actions (hold, book, cancel,
//! reschedule) end a decision, and their result is fed straight back to the engine, so a taken
//! slot or a failed booking becomes alternatives in the same reply. Every effect is idempotent
//! under redelivery: hold tokens and booking keys derive from the event id, sends are recorded
//! per (event, step), timers are upserted by id, and the state is saved last with
//! compare-and-set — together with the id of the event it processed.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use engine::{
    Action, ConversationState, DeliveryStatus, FailureReason, Input, Outcome, StepContext, Tenant,
    Tenants, TimerKind,
};
use shared::envelope::{Envelope, conversation_key};
use shared::timers::{TimerSpec, TimerStore};
use shared::whatsapp::SendError;
use tracing::{Instrument, debug, info_span, warn};

use crate::calendar::{Availability, BookResult, Calendar, CalendarError, NewBooking};
use crate::convert::{self, Converted};
use crate::handoff::Handoff;
use crate::holds::{HoldOutcome, Holds};
use crate::metrics::Metrics;
use crate::outbound::{Delivery, Outbox, OutboxError, Resolution};
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
    /// Numbers the sends of this event across rounds: the outbox key is (event, step).
    step: usize,
    /// Inputs to feed after the current decision (synchronous send failures).
    follow_ups: VecDeque<Input>,
}

impl Processor {
    pub async fn process(&self, envelope: &Envelope) -> Result<Processed, ProcessError> {
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

        let loaded = self
            .store
            .load(&envelope.tenant, &envelope.customer)
            .instrument(info_span!("state.load"))
            .await?;
        self.metrics.stage("load", started);
        let event_id = dedup_id(envelope);
        if loaded.was_processed(&event_id) {
            return Ok(Processed::Duplicate);
        }
        let loaded_version = loaded.version;
        let mut run = EventRun {
            tenant,
            customer: &envelope.customer,
            conversation: conversation_key(&envelope.tenant, &envelope.customer),
            event_id: &event_id,
            step: 0,
            follow_ups: VecDeque::new(),
        };
        let calendar = self.calendars.for_tenant(tenant)?;
        let mut availability = if needs_availability(&input) {
            self.availability(calendar, &run).await?
        } else {
            Availability::Unneeded
        };

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
            let engine_started = Instant::now();
            let decision = {
                let _span = info_span!("engine.step").entered();
                engine::step(
                    state,
                    &input,
                    &StepContext {
                        now,
                        tenant,
                        availability: &availability,
                        event_id: &event_id,
                    },
                )
            };
            self.metrics.stage("engine", engine_started);
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
                        | Outcome::BookFailed { .. }
                        | Outcome::RescheduleFailed { .. }
                ) {
                    // The snapshot offered a slot that is gone: fresh alternatives.
                    availability = self.availability(calendar, &run).await?;
                }
                next = Some(Input::Outcome(outcome));
            } else {
                next = run.follow_ups.pop_front();
            }
        }

        let save_started = Instant::now();
        self.store
            .save(&envelope.tenant, &envelope.customer, loaded_version, &state)
            .instrument(info_span!("state.save"))
            .await?;
        self.metrics.stage("save", save_started);
        self.metrics.stage("total", started);
        Ok(Processed::Done)
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
    ) -> Result<Availability, ProcessError> {
        let started = Instant::now();
        let now = Utc::now();
        let others = self
            .holds
            .busy_except(&run.tenant.phone_number_id, &run.conversation, now)
            .await?;
        let availability = calendar
            .availability(run.tenant, now, others)
            .instrument(info_span!("calendar.availability"))
            .await?;
        self.metrics.stage("availability", started);
        Ok(availability)
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
                run.step += 1;
                let step_key = format!("{}:{}", run.event_id, run.step);
                let started = Instant::now();
                let sent = self
                    .outbox
                    .send_once(tenant_id, run.customer, &step_key, &message)
                    .instrument(info_span!("whatsapp.send", step = run.step))
                    .await;
                self.metrics.stage("send", started);
                match sent {
                    Ok(Delivery::Sent(_)) => self.metrics.sent(tenant_id),
                    Ok(Delivery::AlreadySent(_)) => {}
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
                                customer: run.customer.to_owned(),
                                payload: serde_json::json!({ AMBIGUOUS_SEND_CHECK: step_key }),
                            })
                            .await?;
                    }
                    Err(OutboxError::Send(SendError::OutsideWindow { .. })) => {
                        run.follow_ups.push_back(failed_status(&step_key, 131047));
                    }
                    Err(OutboxError::Send(SendError::Permanent(failure))) => {
                        warn!(
                            message = "WhatsApp refused a message permanently.",
                            code = failure.code
                        );
                        let code = u32::try_from(failure.code).unwrap_or(0);
                        run.follow_ups.push_back(failed_status(&step_key, code));
                    }
                    Err(error) => return Err(ProcessError::Transient(error.to_string())),
                }
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
                    Err(CalendarError::Permanent(_)) => Outcome::CancelFailed { booking_id },
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

/// Delivery statuses and reminders never look at free slots; skipping the fetch keeps the
/// most frequent events (three statuses per reply) cheap.
fn needs_availability(input: &Input) -> bool {
    match input {
        Input::Status { .. } => false,
        Input::Timer { kind, .. } => matches!(kind, TimerKind::HoldExpiry { .. }),
        _ => true,
    }
}
