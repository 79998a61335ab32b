//! The step function: one event in, new state and actions out.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use lang::{Grain, IntentName, Lang, ShownOption, Understanding, When, WhenKind};
use sha2::{Digest, Sha256};

use crate::action::{Action, HandoffContext, HandoffReason};
use crate::availability::{AvailabilityView, Slot, opening_slots};
use crate::config::{QuickReply, TemplatePurpose, Tenant};
use crate::input::{
    CalendarChange, Content, DeliveryStatus, FailureReason, Input, Outcome, TimerKind,
};
use crate::outbound::{
    self, Button, List, MAX_LIST_ROWS, MAX_ROW_DESCRIPTION, MAX_ROW_TITLE, MessageError,
    OutboundMessage, ReplyButtons, Row, Section, Template, Text,
};
use crate::state::{Booking, ConversationState, Hold, RequestedTime, Speaker, Stage};
use crate::texts::{self, ListReason, Texts};

/// Everything outside the conversation that a step depends on.
#[derive(Clone, Copy)]
pub struct StepContext<'a> {
    /// The current time, from the caller's clock.
    pub now: DateTime<Utc>,
    /// The business this conversation belongs to.
    pub tenant: &'a Tenant,
    /// Free slots as the worker knows them for this step.
    pub availability: &'a dyn AvailabilityView,
    /// Id of the event being processed (message id, timer event id, ...): deduplicates
    /// redeliveries and seeds hold tokens, so a replay yields the same tokens.
    pub event_id: &'a str,
}

/// The result of one step.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The state to store (compare-and-set on the loaded version).
    pub state: ConversationState,
    /// Effects to perform, in order; an outcome-bearing action is always last.
    pub actions: Vec<Action>,
}

/// How far around a requested day alternatives are searched.
const ALTERNATIVE_SEARCH_DAYS: i64 = 14;
/// Soonest-times lists show at most this many per day, so the customer sees several days.
const SOONEST_PER_DAY: usize = 3;
/// The hold lock outlives the hold the customer is told about by this much, so the expiry
/// timer (which tells the customer) runs before the lock frees the slot for others.
const HOLD_LOCK_GRACE_SECONDS: u64 = 60;
/// Graph error codes the worker retries itself; the conversation is unaffected.
const RETRYABLE_CODES: [u32; 10] = [
    1, 2, 4, 80007, 130429, 131000, 131016, 131056, 131057, 133004,
];
/// Free-form message sent outside the customer-service window.
const REENGAGEMENT_CODE: u32 = 131047;
/// Consecutive misunderstandings that hand a conversation to a person.
const MISUNDERSTANDINGS_BEFORE_HANDOFF: u32 = 2;

/// Applies one input to a conversation.
pub fn step(state: ConversationState, input: &Input, ctx: &StepContext<'_>) -> Decision {
    let is_outcome = matches!(input, Input::Outcome(_));
    if !is_outcome && state.was_processed(ctx.event_id) {
        return Decision {
            state,
            actions: Vec::new(),
        };
    }
    let mut run = Run {
        state,
        ctx,
        actions: Vec::new(),
        seed_version: 0,
        tokens_issued: 0,
        greeting: None,
        reopen_sent: false,
        lapsed_hold: None,
    };
    run.seed_version = run.state.version;
    if is_outcome
        && !run
            .state
            .transcript
            .iter()
            .any(|turn| turn.speaker == Speaker::Bot)
    {
        // The first reply of a first contact can come from an outcome (a hold that was taken):
        // it still opens with the greeting.
        let texts = run.texts();
        run.greeting = Some(texts.greeting(run.state.profile_name.as_deref(), &ctx.tenant.name));
    }
    if !is_outcome {
        run.state.remember_processed(ctx.event_id, ctx.now);
    }
    run.forget_past_bookings();
    match input {
        Input::Customer {
            message_id,
            profile_name,
            at,
            content,
        } => run.on_customer(message_id, profile_name.as_deref(), *at, content),
        Input::Status { status, .. } => run.on_status(*status),
        Input::Timer { kind, .. } => run.on_timer(kind),
        Input::Outcome(outcome) => run.on_outcome(outcome),
        Input::AgentReleased => run.on_released(),
        Input::CalendarChanged { booking_id, change } => run.on_calendar_change(booking_id, change),
    }
    run.state.version += 1;
    Decision {
        state: run.state,
        actions: run.actions,
    }
}

/// What a tap or a clear text boils down to.
enum Command {
    PickSlot {
        start: DateTime<Utc>,
        resource: Option<String>,
    },
    ChooseService(String),
    ConfirmHold,
    OtherTime,
    DropHold,
    ConfirmCancel(String),
    KeepBooking(String),
    Attend(String),
    Reschedule(String),
    Cancel(String),
}

struct Run<'a, 'c> {
    state: ConversationState,
    ctx: &'c StepContext<'a>,
    actions: Vec<Action>,
    /// The version the step started from; with `event_id` it seeds tokens deterministically.
    seed_version: u64,
    /// Tokens derived so far in this step, so two in one step differ.
    tokens_issued: u32,
    /// A greeting to put before the first message of a first contact.
    greeting: Option<String>,
    /// Outside the window only one re-open template is sent per step.
    reopen_sent: bool,
    /// A hold found past its expiry at the start of this step (its timer was late).
    lapsed_hold: Option<Hold>,
}

impl Run<'_, '_> {
    fn tenant(&self) -> &Tenant {
        self.ctx.tenant
    }

    fn now(&self) -> DateTime<Utc> {
        self.ctx.now
    }

    fn tz(&self) -> Tz {
        self.ctx.tenant.time_zone
    }

    fn lang(&self) -> Lang {
        self.tenant().reply_language(self.state.lang)
    }

    fn texts(&self) -> Texts {
        Texts::new(self.lang())
    }

    fn when_text(&self, at: DateTime<Utc>) -> String {
        texts::when(at, self.tz(), self.lang())
    }

    fn service_name(&self, service: &str) -> String {
        let lang = self.lang();
        self.tenant()
            .service(service)
            .map_or_else(|| service.to_string(), |s| s.name(lang).to_string())
    }

    /// The staff member's name, or None when the resource is not a person the customer
    /// would know (an external calendar's host id, for example).
    fn resource_name(&self, resource: &str) -> Option<String> {
        self.tenant().resource(resource).map(|r| r.name.clone())
    }

    /// Where a conversation goes once its hold ends: a reschedule goes on without the hold
    /// (the booking stays); anything else goes back to choosing a time for that service.
    fn stage_after_hold(&self, hold: &Hold) -> Stage {
        self.stage_with_hold(
            None,
            Stage::ChoosingTime {
                service: hold.slot.service.clone(),
                options: Vec::new(),
            },
        )
    }

    /// A reschedule keeps its booking and options and takes `hold` in place of its own; any
    /// other stage becomes `otherwise`.
    fn stage_with_hold(&self, hold: Option<Hold>, otherwise: Stage) -> Stage {
        match self.state.stage.clone() {
            Stage::Rescheduling {
                booking_id,
                options,
                ..
            } => Stage::Rescheduling {
                booking_id,
                options,
                hold,
            },
            _ => otherwise,
        }
    }

    fn slot_line(&self, slot: &Slot) -> String {
        self.texts().booking_line(
            &self.service_name(&slot.service),
            &self.when_text(slot.start),
            self.resource_name(&slot.resource).as_deref(),
        )
    }

    fn customer_name(&self) -> String {
        self.state
            .profile_name
            .clone()
            .unwrap_or_else(|| self.texts().anonymous_name())
    }

    fn metric(&mut self, name: &str, labels: &[(&str, &str)]) {
        let mut map = BTreeMap::new();
        map.insert("tenant".to_string(), self.tenant().phone_number_id.clone());
        for (key, value) in labels {
            map.insert((*key).to_string(), (*value).to_string());
        }
        self.actions.push(Action::Metric {
            name: name.to_string(),
            labels: map,
        });
    }

    fn derive_token(&mut self, purpose: &str, slot: &Slot) -> String {
        self.tokens_issued += 1;
        let mut hasher = Sha256::new();
        for part in [
            purpose,
            self.ctx.event_id,
            &self.seed_version.to_string(),
            &self.tokens_issued.to_string(),
            &slot.resource,
            &slot.start.timestamp().to_string(),
        ] {
            hasher.update(part.as_bytes());
            hasher.update([0u8]);
        }
        let digest = hasher.finalize();
        digest.iter().take(12).map(|b| format!("{b:02x}")).collect()
    }

    // ---- sending -------------------------------------------------------------------------

    /// Prepends the pending greeting to the first body of the step.
    fn body(&mut self, text: String) -> String {
        match self.greeting.take() {
            Some(greeting) => format!("{greeting}\n{text}"),
            None => text,
        }
    }

    /// Queues a message; outside the 24-hour window a free-form message becomes the tenant's
    /// re-open template, since WhatsApp would refuse it (131047).
    fn send(&mut self, message: Result<OutboundMessage, MessageError>) {
        let message = match message {
            Ok(message) => message,
            Err(error) => {
                // Built from tenant data that passed validation; if a limit is still hit, the
                // customer gets the plain sentence rather than nothing.
                let reason = error.to_string();
                self.metric("message_rejected", &[("reason", reason.as_str())]);
                return;
            }
        };
        if !message.is_template() && !self.state.in_service_window(self.now()) {
            if !self.reopen_sent {
                self.reopen_sent = true;
                self.send_template(TemplatePurpose::Reopen, vec![self.customer_name()], None);
            }
            return;
        }
        let visible = message.visible_text();
        self.state.push_turn(self.now(), Speaker::Bot, &visible);
        self.actions.push(Action::Send(message));
    }

    fn send_text(&mut self, text: String) {
        let body = self.body(text);
        let message = Text::new(body).map(OutboundMessage::Text);
        self.send(message);
    }

    fn send_template(
        &mut self,
        purpose: TemplatePurpose,
        parameters: Vec<String>,
        booking_id: Option<&str>,
    ) {
        let lang = self.lang();
        let Some(template) = self.tenant().template(purpose, lang).cloned() else {
            self.metric("template_missing", &[("purpose", purpose.key())]);
            return;
        };
        let payloads = template
            .quick_replies
            .iter()
            .filter_map(|reply| booking_id.map(|id| format!("{}:{id}", reply.key())))
            .collect();
        let parameters = parameters
            .into_iter()
            .map(|p| p.replace(['\n', '\t'], " "))
            .collect();
        let message = Template::new(
            template.name,
            template.language_code,
            template.parameters,
            parameters,
            payloads,
        )
        .map(OutboundMessage::Template);
        if let Ok(message) = &message {
            let visible = message.visible_text();
            self.state.push_turn(self.now(), Speaker::Bot, &visible);
        }
        match message {
            Ok(message) => self.actions.push(Action::Send(message)),
            Err(error) => {
                let reason = error.to_string();
                self.metric("message_rejected", &[("reason", reason.as_str())]);
            }
        }
    }

    /// Sends free-form inside the window, else the purpose's template.
    fn notify(
        &mut self,
        free_form: impl FnOnce(&mut Self) -> Result<OutboundMessage, MessageError>,
        purpose: TemplatePurpose,
        parameters: Vec<String>,
        booking_id: Option<&str>,
    ) {
        if self.state.in_service_window(self.now()) {
            let message = free_form(self);
            self.send(message);
        } else {
            self.send_template(purpose, parameters, booking_id);
        }
    }

    fn buttons(&mut self, body: String, footer: Option<String>, buttons: Vec<(String, String)>) {
        let body = self.body(body);
        let built = buttons
            .into_iter()
            .map(|(id, title)| Button::new(id, title))
            .collect::<Result<Vec<_>, _>>()
            .and_then(|buttons| ReplyButtons::new(body, footer, buttons))
            .map(OutboundMessage::ReplyButtons);
        self.send(built);
    }

    // ---- customer messages ---------------------------------------------------------------

    fn on_customer(
        &mut self,
        message_id: &str,
        profile_name: Option<&str>,
        at: DateTime<Utc>,
        content: &Content,
    ) {
        if let Some(name) = profile_name.map(str::trim).filter(|n| !n.is_empty()) {
            self.state.profile_name = Some(name.to_string());
        }
        let first_contact = !self
            .state
            .transcript
            .iter()
            .any(|turn| turn.speaker == Speaker::Bot);
        if self
            .state
            .last_customer_message_at
            .is_none_or(|last| at > last)
        {
            self.state.last_customer_message_at = Some(at);
        }
        let described = describe(content);
        self.state.push_turn(at, Speaker::Customer, &described);
        self.metric("message_in", &[("kind", content_kind(content))]);

        match &self.state.stage {
            Stage::OptedOut { .. } => {
                if let Content::Text { body } = content
                    && self.understand(body).top_intent() == IntentName::OptIn
                {
                    self.state.stage = Stage::Idle;
                    self.state.misunderstandings = 0;
                    self.metric("opt_in", &[]);
                    let text = self.texts().opted_in();
                    self.send_text(text);
                }
                return;
            }
            Stage::HandedOff { .. } => {
                // A person is answering; the bot only honours a withdrawal of consent.
                if let Content::Text { body } = content
                    && self.understand(body).top_intent() == IntentName::OptOut
                {
                    self.opt_out();
                }
                return;
            }
            _ => {}
        }

        self.actions.push(Action::MarkRead {
            message_id: message_id.to_string(),
        });
        if let Some(hold) = self.state.stage.hold().cloned()
            && hold.expires_at <= self.now()
        {
            // The expiry timer is late (scheduler down or backed up): the lock may already be
            // gone, so the hold must not be confirmed.
            self.release_hold();
            self.lapsed_hold = Some(hold);
        }
        if first_contact {
            let texts = self.texts();
            self.greeting =
                Some(texts.greeting(self.state.profile_name.as_deref(), &self.tenant().name));
        }
        match content {
            Content::Text { body } => self.on_text(body, first_contact),
            Content::ButtonReply { id, .. } | Content::ListReply { id, .. } => self.on_tap(id),
            Content::TemplateButton { payload, .. } => self.on_tap(payload),
            Content::Media {
                caption: Some(caption),
                ..
            } if !caption.trim().is_empty() => self.on_text(caption, first_contact),
            Content::Media { .. } | Content::Location { .. } | Content::Unsupported { .. } => {
                self.not_understood(true);
            }
            // A reaction acknowledges; answering it would be noise.
            Content::Reaction { .. } => self.greeting = None,
        }
    }

    fn understand(&self, text: &str) -> Understanding {
        let tenant = self.tenant();
        let (aliases, _) = service_aliases(tenant);
        let staff: Vec<String> = tenant.staff.iter().map(|r| r.name.clone()).collect();
        let options = self.shown_options();
        let context = lang::Context {
            now: self.now(),
            tz: tenant.time_zone,
            default_lang: tenant.default_language,
            lang_hint: self.state.lang,
            date_order: tenant.date_order,
            services: &aliases,
            staff: &staff,
            options: &options,
        };
        lang::understand(text, &context)
    }

    /// The options last shown, in the order the customer sees them.
    fn shown_options(&self) -> Vec<ShownOption> {
        match &self.state.stage {
            Stage::ChoosingTime { options, .. } | Stage::Rescheduling { options, .. } => options
                .iter()
                .map(|slot| ShownOption {
                    id: slot_id(slot),
                    start: Some(slot.start),
                    title: self.when_text(slot.start),
                })
                .collect(),
            Stage::ChoosingService { .. } => {
                let lang = self.lang();
                self.tenant()
                    .services
                    .iter()
                    .map(|service| ShownOption {
                        id: format!("service:{}", service.id),
                        start: None,
                        title: service.name(lang).to_string(),
                    })
                    .collect()
            }
            _ => Vec::new(),
        }
    }

    fn on_text(&mut self, body: &str, first_contact: bool) {
        let understanding = self.understand(body);
        // STOP, START and "ok" are used whatever language a customer speaks: a bare keyword
        // keeps the conversation's language instead of switching it.
        let bare_keyword = body.split_whitespace().count() <= 2
            && matches!(
                understanding.top_intent(),
                IntentName::OptOut | IntentName::OptIn | IntentName::Confirm
            );
        if !(bare_keyword && self.state.lang.is_some()) {
            self.state.lang = Some(understanding.lang);
        }
        if first_contact {
            // The greeting was prepared before the language was known.
            let texts = self.texts();
            self.greeting =
                Some(texts.greeting(self.state.profile_name.as_deref(), &self.tenant().name));
        }
        let intent = understanding.top_intent();
        let (_, owners) = service_aliases(self.tenant());
        let service = understanding
            .service
            .and_then(|index| owners.get(index))
            .map(|&index| self.tenant().services[index].id.clone());
        let staff = understanding
            .staff
            .and_then(|index| self.tenant().staff.get(index))
            .map(|r| r.id.clone());
        let when = understanding.when.first().cloned();

        match intent {
            IntentName::OptOut => return self.opt_out(),
            IntentName::Human => {
                self.state.misunderstandings = 0;
                return self.handoff(HandoffReason::Requested, true);
            }
            _ => {}
        }
        if let Some(choice) = understanding.choice
            && let Some(command) = self.option_command(choice.index)
        {
            self.state.misunderstandings = 0;
            return self.apply(command);
        }

        let understood = self.on_intent(intent, service, staff, when);
        if understood {
            self.state.misunderstandings = 0;
        } else {
            self.not_understood(false);
        }
    }

    /// Returns false when the message meant nothing in this conversation.
    fn on_intent(
        &mut self,
        intent: IntentName,
        service: Option<String>,
        staff: Option<String>,
        when: Option<When>,
    ) -> bool {
        let stage = self.state.stage.clone();
        match (&stage, intent) {
            (Stage::Held { .. }, IntentName::Confirm) => {
                self.apply(Command::ConfirmHold);
                return true;
            }
            (Stage::Rescheduling { hold: Some(_), .. }, IntentName::Confirm) => {
                self.apply(Command::ConfirmHold);
                return true;
            }
            (
                Stage::Held { .. } | Stage::Rescheduling { hold: Some(_), .. },
                IntentName::Decline,
            ) if when.is_none() => {
                self.apply(Command::OtherTime);
                return true;
            }
            (Stage::Held { .. }, IntentName::Cancel) => {
                self.apply(Command::DropHold);
                return true;
            }
            (Stage::Rescheduling { booking_id, .. }, IntentName::Cancel | IntentName::Decline)
                if when.is_none() =>
            {
                self.apply(Command::KeepBooking(booking_id.clone()));
                return true;
            }
            (Stage::ConfirmingCancel { booking_id }, IntentName::Confirm | IntentName::Cancel) => {
                self.apply(Command::ConfirmCancel(booking_id.clone()));
                return true;
            }
            (Stage::ConfirmingCancel { booking_id }, IntentName::Decline) => {
                self.apply(Command::KeepBooking(booking_id.clone()));
                return true;
            }
            _ => {}
        }
        match intent {
            IntentName::Cancel => {
                if matches!(self.state.stage, Stage::Held { .. }) {
                    self.apply(Command::DropHold);
                } else if let Some(booking) = self.booking_meant(when.as_ref()) {
                    self.apply(Command::Cancel(booking.id));
                } else {
                    let text = self.texts().nothing_to_cancel();
                    self.send_text(text);
                }
                true
            }
            IntentName::Reschedule => {
                match self.booking_meant(None) {
                    Some(booking) => self.start_reschedule(&booking.id, when, staff),
                    None => self.request_time(service, staff, when),
                }
                true
            }
            IntentName::MyBooking => {
                self.show_bookings();
                true
            }
            IntentName::Book | IntentName::AskAvailability
                if when.is_some() && matches!(self.state.stage, Stage::Rescheduling { .. }) =>
            {
                // "Saturday at 10" while moving a booking is the new time, not a new booking.
                if let Stage::Rescheduling { booking_id, .. } = self.state.stage.clone() {
                    self.start_reschedule(&booking_id, when, staff);
                }
                true
            }
            IntentName::Book | IntentName::AskAvailability => {
                self.request_time(service, staff, when);
                true
            }
            IntentName::Greeting | IntentName::OptIn if when.is_none() && service.is_none() => {
                self.greet();
                true
            }
            IntentName::Thanks if when.is_none() => {
                let text = self.texts().thanks_reply();
                self.send_text(text);
                true
            }
            _ if when.is_some() || service.is_some() => {
                if matches!(self.state.stage, Stage::Rescheduling { .. }) {
                    let Stage::Rescheduling { booking_id, .. } = self.state.stage.clone() else {
                        return true;
                    };
                    self.start_reschedule(&booking_id, when, staff);
                } else {
                    self.request_time(service, staff, when);
                }
                true
            }
            _ => false,
        }
    }

    /// The booking a cancel or move refers to: the one at the mentioned time, else the soonest.
    fn booking_meant(&self, when: Option<&When>) -> Option<Booking> {
        if let Some(when) = when {
            let end = when.end.unwrap_or(when.start + Duration::minutes(1));
            if let Some(booking) = self.state.bookings.iter().find(|b| {
                b.start >= when.start && b.start < end.max(when.start + Duration::minutes(1))
            }) {
                return Some(booking.clone());
            }
        }
        self.state.next_booking().cloned()
    }

    fn option_command(&self, index: usize) -> Option<Command> {
        match &self.state.stage {
            Stage::ChoosingTime { options, .. } | Stage::Rescheduling { options, .. } => {
                options.get(index).map(|slot| Command::PickSlot {
                    start: slot.start,
                    resource: Some(slot.resource.clone()),
                })
            }
            Stage::ChoosingService { .. } => self
                .tenant()
                .services
                .get(index)
                .map(|s| Command::ChooseService(s.id.clone())),
            _ => None,
        }
    }

    fn on_tap(&mut self, id: &str) {
        let command = match id.split_once(':') {
            None => match id {
                "confirm" => Some(Command::ConfirmHold),
                "other" => Some(Command::OtherTime),
                "cancel_hold" => Some(Command::DropHold),
                _ => None,
            },
            Some(("slot", rest)) => rest.split_once(':').and_then(|(unix, resource)| {
                let start = DateTime::from_timestamp(unix.parse().ok()?, 0)?;
                Some(Command::PickSlot {
                    start,
                    resource: Some(resource.to_string()),
                })
            }),
            Some(("service", service)) => Some(Command::ChooseService(service.to_string())),
            Some(("cancel_yes", booking)) => Some(Command::ConfirmCancel(booking.to_string())),
            Some(("cancel_no", booking)) => Some(Command::KeepBooking(booking.to_string())),
            Some(("confirm", booking)) => Some(Command::Attend(booking.to_string())),
            Some(("reschedule", booking)) => Some(Command::Reschedule(booking.to_string())),
            Some(("cancel", booking)) => Some(Command::Cancel(booking.to_string())),
            Some(_) => None,
        };
        match command {
            Some(command) => {
                self.state.misunderstandings = 0;
                self.apply(command);
            }
            None => self.stale_option(),
        }
    }

    fn apply(&mut self, command: Command) {
        match command {
            Command::PickSlot { start, resource } => self.pick_slot(start, resource),
            Command::ChooseService(service) => {
                if self.tenant().service(&service).is_none() {
                    return self.stale_option();
                }
                let requested = match &self.state.stage {
                    Stage::ChoosingService { requested } => requested.clone(),
                    _ => None,
                };
                self.state.service = Some(service.clone());
                match requested {
                    Some(requested) => {
                        self.look_for(&service, None, requested.start, requested.end)
                    }
                    None => self.show_soonest(&service),
                }
            }
            Command::ConfirmHold => match self.state.stage.clone() {
                Stage::Held { hold } => {
                    self.metric("confirm", &[("service", hold.slot.service.as_str())]);
                    let lang = self.lang();
                    self.actions.push(Action::Book {
                        slot: hold.slot,
                        token: hold.token,
                        customer_name: self.state.profile_name.clone(),
                        lang,
                    });
                }
                Stage::Rescheduling {
                    booking_id,
                    hold: Some(hold),
                    ..
                } => {
                    self.metric("confirm", &[("service", hold.slot.service.as_str())]);
                    self.actions.push(Action::RescheduleBooking {
                        booking_id,
                        slot: hold.slot,
                        token: hold.token,
                    });
                }
                _ => match self.lapsed_hold.clone() {
                    Some(lapsed) => {
                        let asked = self.when_text(lapsed.slot.start);
                        self.offer_alternatives(
                            &lapsed.slot.service,
                            lapsed.slot.start,
                            None,
                            ListReason::HoldExpired,
                            &asked,
                        );
                    }
                    None => self.stale_option(),
                },
            },
            Command::OtherTime => match self.state.stage.hold().cloned() {
                Some(hold) => {
                    self.release_hold();
                    let asked = self.when_text(hold.slot.start);
                    self.offer_alternatives(
                        &hold.slot.service,
                        hold.slot.start,
                        Some(&hold.slot),
                        ListReason::Other,
                        &asked,
                    );
                }
                None => self.stale_option(),
            },
            Command::DropHold => match self.state.stage.clone() {
                Stage::Held { .. } => {
                    self.release_hold();
                    self.state.stage = Stage::Idle;
                    self.metric("hold_dropped", &[]);
                    let text = self.texts().hold_released();
                    self.send_text(text);
                }
                Stage::Rescheduling { booking_id, .. } => {
                    self.apply(Command::KeepBooking(booking_id))
                }
                _ => self.stale_option(),
            },
            Command::ConfirmCancel(booking_id) => {
                let asked = matches!(&self.state.stage, Stage::ConfirmingCancel { booking_id: b } if *b == booking_id);
                if asked && self.state.booking(&booking_id).is_some() {
                    self.actions.push(Action::CancelBooking { booking_id });
                } else {
                    self.stale_option();
                }
            }
            Command::KeepBooking(booking_id) => {
                self.release_hold();
                self.state.stage = Stage::Idle;
                match self.state.booking(&booking_id).cloned() {
                    Some(booking) => {
                        let line = self.slot_line(&booking.slot());
                        let text = self.texts().kept(&line);
                        self.send_text(text);
                    }
                    None => self.stale_option(),
                }
            }
            Command::Attend(booking_id) => {
                match self.state.bookings.iter_mut().find(|b| b.id == booking_id) {
                    Some(booking) => {
                        booking.attendance_confirmed = true;
                        self.metric("attendance_confirmed", &[]);
                        let text = self.texts().attendance_confirmed();
                        self.send_text(text);
                    }
                    None => self.stale_option(),
                }
            }
            Command::Reschedule(booking_id) => {
                if self.state.booking(&booking_id).is_some() {
                    self.start_reschedule(&booking_id, None, None);
                } else {
                    self.stale_option();
                }
            }
            Command::Cancel(booking_id) => match self.state.booking(&booking_id).cloned() {
                Some(booking) => {
                    self.release_hold();
                    self.state.stage = Stage::ConfirmingCancel {
                        booking_id: booking.id.clone(),
                    };
                    let texts = self.texts();
                    let line = self.slot_line(&booking.slot());
                    self.buttons(
                        texts.cancel_question(&line),
                        None,
                        vec![
                            (
                                format!("cancel_yes:{}", booking.id),
                                texts.yes_cancel_button(),
                            ),
                            (format!("cancel_no:{}", booking.id), texts.keep_button()),
                        ],
                    );
                }
                None => self.stale_option(),
            },
        }
    }

    fn greet(&mut self) {
        let texts = self.texts();
        let name = self.state.profile_name.clone();
        match self.state.next_booking().cloned() {
            Some(booking) => {
                // A returning customer: their booking, not a fresh sales pitch.
                self.greeting = None;
                let line = self.slot_line(&booking.slot());
                let text = texts.welcome_back(name.as_deref(), &line);
                self.send_text(text);
            }
            None => {
                let greeting = self
                    .greeting
                    .take()
                    .unwrap_or_else(|| texts.greeting(name.as_deref(), &self.tenant().name));
                self.send_text(format!("{greeting}\n{}", texts.how_can_i_help()));
            }
        }
    }

    fn show_bookings(&mut self) {
        let mut bookings = self.state.bookings.clone();
        bookings.sort_by_key(|b| b.start);
        if bookings.is_empty() {
            let text = self.texts().nothing_to_cancel();
            return self.send_text(text);
        }
        let lines: Vec<String> = bookings.iter().map(|b| self.slot_line(&b.slot())).collect();
        let text = self.texts().your_booking(&lines.join("; "));
        self.send_text(text);
    }

    fn stale_option(&mut self) {
        let texts = self.texts();
        self.send_text(format!(
            "{} {}",
            texts.stale_option(),
            texts.how_can_i_help()
        ));
    }

    fn not_understood(&mut self, unreadable: bool) {
        self.state.misunderstandings += 1;
        self.metric("not_understood", &[]);
        if self.state.misunderstandings >= MISUNDERSTANDINGS_BEFORE_HANDOFF {
            self.state.misunderstandings = 0;
            return self.handoff(HandoffReason::Misunderstood, true);
        }
        let texts = self.texts();
        let text = if unreadable {
            texts.media_not_read()
        } else {
            texts.not_understood()
        };
        self.send_text(text);
    }

    fn opt_out(&mut self) {
        self.release_hold();
        self.greeting = None;
        self.state.stage = Stage::OptedOut { since: self.now() };
        self.metric("opt_out", &[]);
        let text = self.texts().opted_out();
        self.send_text(text);
    }

    // ---- finding times ---------------------------------------------------------------------

    /// The service a request is about: named now, or in progress, or the only one.
    fn current_service(&self, named: Option<String>) -> Option<String> {
        named
            .or_else(|| match &self.state.stage {
                Stage::ChoosingTime { service, .. } => Some(service.clone()),
                Stage::Held { hold } => Some(hold.slot.service.clone()),
                Stage::Rescheduling { booking_id, .. } => {
                    self.state.booking(booking_id).map(|b| b.service.clone())
                }
                _ => None,
            })
            .or_else(|| self.state.service.clone())
            .or_else(|| match self.tenant().services.as_slice() {
                [only] => Some(only.id.clone()),
                _ => None,
            })
    }

    fn request_time(&mut self, named: Option<String>, staff: Option<String>, when: Option<When>) {
        if matches!(
            self.state.stage,
            Stage::Rescheduling { .. } | Stage::ConfirmingCancel { .. }
        ) {
            // A plain booking request abandons a half-finished move or cancel.
            self.release_hold();
            self.state.stage = Stage::Idle;
        }
        let Some(service) = self.current_service(named) else {
            let requested = when.as_ref().map(|w| {
                let (start, end) = self.range_of(w);
                RequestedTime { start, end }
            });
            self.release_hold();
            self.state.stage = Stage::ChoosingService { requested };
            return self.ask_service();
        };
        self.state.service = Some(service.clone());
        match when {
            None => self.show_soonest(&service),
            Some(when) => {
                let (start, end) = self.range_of(&when);
                let exact = end.is_none();
                let (start, end) = if exact {
                    (self.pick_reading(&service, &when), None)
                } else {
                    (start, end)
                };
                if exact && when.in_past && start <= self.now() {
                    let asked = self.when_text(start);
                    return self.offer_alternatives(
                        &service,
                        self.now(),
                        None,
                        ListReason::Past,
                        &asked,
                    );
                }
                self.look_for(&service, staff, start, end)
            }
        }
    }

    /// An exact time (end None) or the range a `When` covers.
    fn range_of(&self, when: &When) -> (DateTime<Utc>, Option<DateTime<Utc>>) {
        let exact =
            when.kind == WhenKind::Instant && matches!(when.grain, Grain::Minute | Grain::Hour);
        if exact {
            return (when.start, None);
        }
        let end = when.end.unwrap_or_else(|| match when.grain {
            Grain::Week => when.start + Duration::days(7),
            Grain::Month => when.start + Duration::days(31),
            _ => end_of_local_day(self.tz(), when.start),
        });
        (when.start, Some(end.max(when.start + Duration::minutes(1))))
    }

    /// "At 5" may mean 05:00 or 17:00: prefer the reading that is open and not past.
    fn pick_reading(&self, service: &str, when: &When) -> DateTime<Utc> {
        let Some(alternative) = &when.alternative else {
            return when.start;
        };
        let usable = |at: DateTime<Utc>, past: bool| {
            !past
                && !opening_slots(
                    self.tenant(),
                    self.now(),
                    service,
                    at,
                    at + Duration::seconds(1),
                )
                .is_empty()
        };
        if !usable(when.start, when.in_past) && usable(alternative.start, alternative.in_past) {
            alternative.start
        } else {
            when.start
        }
    }

    fn look_for(
        &mut self,
        service: &str,
        staff: Option<String>,
        start: DateTime<Utc>,
        end: Option<DateTime<Utc>>,
    ) {
        if self.calendar_unreachable() {
            return;
        }
        let now = self.now();
        match end {
            None => {
                let free =
                    self.ctx
                        .availability
                        .free_slots(service, start, start + Duration::seconds(1));
                let chosen = prefer(
                    free.into_iter().filter(|s| s.start == start).collect(),
                    staff.as_deref(),
                );
                if let Some(slot) = chosen {
                    return self.hold(slot);
                }
                let tenant = self.tenant();
                let reason = if start <= now {
                    ListReason::Past
                } else if start > now + Duration::days(i64::from(tenant.horizon_days)) {
                    ListReason::BeyondHorizon
                } else if start < now + Duration::minutes(i64::from(tenant.min_lead_minutes)) {
                    ListReason::TooSoon
                } else if opening_slots(tenant, now, service, start, start + Duration::seconds(1))
                    .is_empty()
                {
                    ListReason::Closed
                } else {
                    ListReason::Taken
                };
                let asked = self.when_text(start);
                self.metric(
                    "requested_unavailable",
                    &[("reason", list_reason_name(reason))],
                );
                self.offer_alternatives(service, start.max(now), None, reason, &asked);
            }
            Some(end) => {
                let from = start.max(now);
                let free = if from < end {
                    self.ctx.availability.free_slots(service, from, end)
                } else {
                    Vec::new()
                };
                let unique = unique_starts(free, staff.as_deref());
                if unique.is_empty() {
                    let tenant = self.tenant();
                    let reason = if end <= now {
                        ListReason::Past
                    } else if start > now + Duration::days(i64::from(tenant.horizon_days)) {
                        ListReason::BeyondHorizon
                    } else if from < end
                        && opening_slots(tenant, now, service, from, end).is_empty()
                    {
                        ListReason::Closed
                    } else {
                        ListReason::Taken
                    };
                    let asked = texts::day(start, self.tz(), self.lang());
                    self.metric(
                        "requested_unavailable",
                        &[("reason", list_reason_name(reason))],
                    );
                    return self.offer_alternatives(service, from, None, reason, &asked);
                }
                let options = spread(unique, MAX_LIST_ROWS);
                self.show_list(service, options, ListReason::Requested, None);
            }
        }
    }

    fn show_soonest(&mut self, service: &str) {
        if self.calendar_unreachable() {
            return;
        }
        let now = self.now();
        let horizon = now + Duration::days(i64::from(self.tenant().horizon_days));
        let free = self.ctx.availability.free_slots(
            service,
            now,
            horizon.min(now + Duration::days(ALTERNATIVE_SEARCH_DAYS)),
        );
        let mut per_day: BTreeMap<NaiveDate, usize> = BTreeMap::new();
        let tz = self.tz();
        let options: Vec<Slot> = unique_starts(free, None)
            .into_iter()
            .filter(|slot| {
                let count = per_day
                    .entry(slot.start.with_timezone(&tz).date_naive())
                    .or_default();
                *count += 1;
                *count <= SOONEST_PER_DAY
            })
            .take(MAX_LIST_ROWS)
            .collect();
        if options.is_empty() {
            self.metric("no_availability", &[]);
            return self.handoff(HandoffReason::NoAvailability, true);
        }
        self.show_list(service, options, ListReason::Soonest, None);
    }

    /// The nearest free times to `target`: same day first (closest first), then the following
    /// days, then the preceding ones; shown in date order.
    fn alternatives(
        &self,
        service: &str,
        target: DateTime<Utc>,
        exclude: Option<&Slot>,
    ) -> Vec<Slot> {
        let now = self.now();
        let tz = self.tz();
        let horizon = now + Duration::days(i64::from(self.tenant().horizon_days));
        let day = target.with_timezone(&tz).date_naive();
        let day_start = start_of_local_day(tz, day);
        let day_end = end_of_local_day(tz, target);
        let span = Duration::days(ALTERNATIVE_SEARCH_DAYS);
        let view = self.ctx.availability;
        // A time that was just lost is left out entirely, even on another resource: listing
        // "17:00" right under "17:00 was just taken" reads as a mistake.
        let keep =
            |slot: &Slot| exclude.is_none_or(|lost| lost.start != slot.start) && slot.start > now;

        let mut same_day: Vec<Slot> = view
            .free_slots(service, day_start.max(now), day_end)
            .into_iter()
            .filter(keep)
            .collect();
        same_day.sort_by_key(|slot| ((slot.start - target).num_seconds().abs(), slot.start));
        let forward = if day_end < horizon {
            view.free_slots(service, day_end, (day_end + span).min(horizon))
        } else {
            Vec::new()
        };
        let backward_end = day_start.min(horizon);
        let mut backward: Vec<Slot> = if backward_end > now {
            view.free_slots(service, (backward_end - span).max(now), backward_end)
        } else {
            Vec::new()
        };
        backward.reverse();

        let mut chosen: Vec<Slot> = Vec::new();
        for slot in same_day
            .into_iter()
            .chain(forward.into_iter().filter(keep))
            .chain(backward.into_iter().filter(keep))
        {
            if chosen.len() == MAX_LIST_ROWS {
                break;
            }
            if !chosen.iter().any(|c| c.start == slot.start) {
                chosen.push(slot);
            }
        }
        chosen.sort_by_key(|slot| slot.start);
        chosen
    }

    fn offer_alternatives(
        &mut self,
        service: &str,
        target: DateTime<Utc>,
        exclude: Option<&Slot>,
        reason: ListReason,
        asked: &str,
    ) {
        if self.calendar_unreachable() {
            return;
        }
        let options = self.alternatives(service, target, exclude);
        if options.is_empty() {
            self.metric("no_availability", &[]);
            return self.handoff(HandoffReason::NoAvailability, true);
        }
        self.show_list(service, options, reason, Some(asked));
    }

    fn show_list(
        &mut self,
        service: &str,
        options: Vec<Slot>,
        reason: ListReason,
        asked: Option<&str>,
    ) {
        self.release_hold();
        let tz = self.tz();
        let lang = self.lang();
        let texts = self.texts();
        let service_name = self.service_name(service);
        let minutes = self.tenant().service(service).map_or(0, |s| s.minutes);
        let mut sections: Vec<(String, Vec<Result<Row, MessageError>>)> = Vec::new();
        for slot in &options {
            let day = texts::day(slot.start, tz, lang);
            let description = outbound::fit(
                &match self.resource_name(&slot.resource) {
                    Some(staff) => format!("{service_name} · {} · {staff}", texts.minutes(minutes)),
                    None => format!("{service_name} · {}", texts.minutes(minutes)),
                },
                MAX_ROW_DESCRIPTION,
            );
            let row = Row::new(
                slot_id(slot),
                outbound::fit(&texts::clock(slot.start, tz), MAX_ROW_TITLE),
                Some(description),
            );
            match sections.last_mut() {
                Some((title, rows)) if *title == day => rows.push(row),
                _ => sections.push((day, vec![row])),
            }
        }
        let body = self.body(texts.list_body(reason, asked, &service_name));
        let list = sections
            .into_iter()
            .map(|(title, rows)| {
                Section::new(title, rows.into_iter().collect::<Result<Vec<_>, _>>()?)
            })
            .collect::<Result<Vec<_>, _>>()
            .and_then(|sections| List::new(body, texts.times_button(), sections))
            .map(OutboundMessage::List);
        self.state.stage = match self.state.stage.clone() {
            Stage::Rescheduling { booking_id, .. } => Stage::Rescheduling {
                booking_id,
                options,
                hold: None,
            },
            _ => Stage::ChoosingTime {
                service: service.to_string(),
                options,
            },
        };
        self.metric("proposed", &[("reason", list_reason_name(reason))]);
        self.send(list);
    }

    fn ask_service(&mut self) {
        let lang = self.lang();
        let texts = self.texts();
        let rows = self
            .tenant()
            .services
            .iter()
            .map(|service| {
                let mut description = texts.minutes(service.minutes);
                if let Some(price) = &service.price {
                    description = format!("{description} · {price}");
                }
                Row::new(
                    format!("service:{}", service.id),
                    outbound::fit(service.name(lang), MAX_ROW_TITLE),
                    Some(outbound::fit(&description, MAX_ROW_DESCRIPTION)),
                )
            })
            .take(MAX_LIST_ROWS)
            .collect::<Result<Vec<_>, _>>();
        let body = self.body(texts.ask_service());
        let list = rows
            .and_then(|rows| Section::new(outbound::fit(&self.tenant().name, 24), rows))
            .and_then(|section| List::new(body, texts.services_button(), vec![section]))
            .map(OutboundMessage::List);
        self.send(list);
    }

    fn pick_slot(&mut self, start: DateTime<Utc>, resource: Option<String>) {
        let Some(service) = self.current_service(None) else {
            return self.stale_option();
        };
        if self.calendar_unreachable() {
            return;
        }
        if start <= self.now() {
            let asked = self.when_text(start);
            return self.offer_alternatives(&service, self.now(), None, ListReason::Past, &asked);
        }
        let free = self
            .ctx
            .availability
            .free_slots(&service, start, start + Duration::seconds(1));
        match prefer(
            free.into_iter().filter(|s| s.start == start).collect(),
            resource.as_deref(),
        ) {
            Some(slot) => self.hold(slot),
            None => {
                let asked = self.when_text(start);
                self.offer_alternatives(&service, start, None, ListReason::JustTaken, &asked);
            }
        }
    }

    // ---- holds and bookings --------------------------------------------------------------

    fn hold(&mut self, slot: Slot) {
        self.release_hold();
        let token = self.derive_token("hold", &slot);
        let hold = Hold {
            slot: slot.clone(),
            token: token.clone(),
            expires_at: self.now() + Duration::minutes(i64::from(self.tenant().hold_minutes)),
        };
        self.state.stage = self.stage_with_hold(Some(hold.clone()), Stage::Held { hold });
        self.actions.push(Action::Hold {
            slot,
            token,
            ttl_seconds: u64::from(self.tenant().hold_minutes) * 60 + HOLD_LOCK_GRACE_SECONDS,
        });
    }

    /// Lets go of the current hold, if any: releases the lock and its expiry timer.
    fn release_hold(&mut self) {
        let Some(hold) = self.state.stage.hold().cloned() else {
            return;
        };
        self.actions.push(Action::ReleaseHold {
            slot: hold.slot.clone(),
            token: hold.token.clone(),
        });
        self.actions.push(Action::CancelTimer {
            id: hold.timer_id(),
        });
        self.state.stage = self.stage_after_hold(&hold);
    }

    /// Forgets the current hold without releasing it (it was never ours, or is already gone).
    fn forget_hold(&mut self) {
        if let Some(hold) = self.state.stage.hold().cloned() {
            self.actions.push(Action::CancelTimer {
                id: hold.timer_id(),
            });
            self.state.stage = self.stage_with_hold(None, Stage::Idle);
        }
    }

    fn on_outcome(&mut self, outcome: &Outcome) {
        let hold = self.state.stage.hold().cloned();
        match outcome {
            Outcome::Held { token } => {
                let Some(hold) = hold.filter(|h| &h.token == token) else {
                    return;
                };
                self.metric("held", &[("service", hold.slot.service.as_str())]);
                self.ask_to_confirm(&hold);
                self.actions.push(Action::ScheduleTimer {
                    id: hold.timer_id(),
                    due: hold.expires_at,
                    kind: TimerKind::HoldExpiry {
                        token: hold.token.clone(),
                    },
                });
            }
            Outcome::HoldRejected { token } => {
                let Some(hold) = hold.filter(|h| &h.token == token) else {
                    return;
                };
                self.metric("hold_rejected", &[]);
                self.forget_hold();
                let asked = self.when_text(hold.slot.start);
                self.offer_alternatives(
                    &hold.slot.service,
                    hold.slot.start,
                    Some(&hold.slot),
                    ListReason::JustTaken,
                    &asked,
                );
            }
            Outcome::Booked { booking_id } => {
                let Some(hold) = hold.filter(|_| matches!(self.state.stage, Stage::Held { .. }))
                else {
                    return;
                };
                self.release_hold();
                self.state.stage = Stage::Idle;
                let booking = Booking {
                    id: booking_id.clone(),
                    service: hold.slot.service.clone(),
                    resource: hold.slot.resource.clone(),
                    start: hold.slot.start,
                    end: hold.slot.end,
                    attendance_confirmed: false,
                };
                self.state.bookings.retain(|b| b.id != booking.id);
                self.state.bookings.push(booking.clone());
                self.state.bookings.sort_by_key(|b| b.start);
                self.metric("booked", &[("service", booking.service.as_str())]);
                let line = self.slot_line(&booking.slot());
                let text = self.texts().booked(&line);
                self.send_text(text);
                self.schedule_booking_timers(&booking);
            }
            Outcome::BookFailed { reason } | Outcome::RescheduleFailed { reason } => {
                let Some(hold) = hold else {
                    return;
                };
                self.metric("book_failed", &[("reason", failure_name(*reason))]);
                match reason {
                    FailureReason::SlotGone => {
                        self.release_hold();
                        let asked = self.when_text(hold.slot.start);
                        self.offer_alternatives(
                            &hold.slot.service,
                            hold.slot.start,
                            Some(&hold.slot),
                            ListReason::JustTaken,
                            &asked,
                        );
                    }
                    // The handoff names the held slot for the person, then releases it.
                    FailureReason::Error => self.handoff(HandoffReason::CalendarFailed, true),
                    FailureReason::Unreachable => {
                        self.handoff(HandoffReason::CalendarUnreachable, true);
                    }
                }
            }
            Outcome::Rescheduled {
                booking_id,
                new_booking_id,
            } => {
                let Some(hold) = hold else {
                    return;
                };
                self.release_hold();
                self.state.stage = Stage::Idle;
                let Some(old) = self.state.booking(booking_id).cloned() else {
                    return;
                };
                self.cancel_booking_timers(&old);
                let moved = Booking {
                    id: new_booking_id.clone(),
                    service: old.service.clone(),
                    resource: hold.slot.resource.clone(),
                    start: hold.slot.start,
                    end: hold.slot.end,
                    attendance_confirmed: false,
                };
                self.state
                    .bookings
                    .retain(|b| b.id != old.id && b.id != moved.id);
                self.state.bookings.push(moved.clone());
                self.state.bookings.sort_by_key(|b| b.start);
                self.metric("rescheduled", &[]);
                let line = self.slot_line(&moved.slot());
                let text = self.texts().rescheduled(&line);
                self.send_text(text);
                self.schedule_booking_timers(&moved);
            }
            Outcome::Cancelled { booking_id } => {
                let Some(booking) = self.state.booking(booking_id).cloned() else {
                    return;
                };
                self.state.bookings.retain(|b| b.id != booking.id);
                self.leave_stage_about(&booking.id);
                self.cancel_booking_timers(&booking);
                self.metric("cancelled", &[]);
                let line = self.slot_line(&booking.slot());
                let text = self.texts().cancelled(&line);
                self.send_text(text);
            }
            Outcome::CancelFailed { .. } => {
                self.metric("cancel_failed", &[]);
                self.handoff(HandoffReason::CalendarFailed, true);
            }
        }
    }

    fn ask_to_confirm(&mut self, hold: &Hold) {
        let texts = self.texts();
        let line = self.slot_line(&hold.slot);
        let customer_local = self.state.customer_tz.and_then(|customer_tz| {
            let business = hold
                .slot
                .start
                .with_timezone(&self.tz())
                .format("%z")
                .to_string();
            let theirs = hold
                .slot
                .start
                .with_timezone(&customer_tz)
                .format("%z")
                .to_string();
            (business != theirs).then(|| texts::when(hold.slot.start, customer_tz, self.lang()))
        });
        let mut buttons = vec![
            ("confirm".to_string(), texts.confirm_button()),
            ("other".to_string(), texts.other_time_button()),
        ];
        buttons.push(("cancel_hold".to_string(), texts.cancel_button()));
        self.buttons(
            texts.confirm_question(&line, customer_local.as_deref()),
            Some(texts.held_footer(self.tenant().hold_minutes)),
            buttons,
        );
    }

    fn start_reschedule(&mut self, booking_id: &str, when: Option<When>, staff: Option<String>) {
        let Some(booking) = self.state.booking(booking_id).cloned() else {
            return self.stale_option();
        };
        if !matches!(&self.state.stage, Stage::Rescheduling { booking_id: b, .. } if b == booking_id)
        {
            self.release_hold();
            self.state.stage = Stage::Rescheduling {
                booking_id: booking.id.clone(),
                options: Vec::new(),
                hold: None,
            };
        }
        match when {
            None => {
                let line = self.slot_line(&booking.slot());
                let text = self.texts().reschedule_which_time(&line);
                self.send_text(text);
            }
            Some(when) => {
                let service = booking.service.clone();
                let (start, end) = self.range_of(&when);
                if end.is_none() {
                    let start = self.pick_reading(&service, &when);
                    if when.in_past && start <= self.now() {
                        let asked = self.when_text(start);
                        return self.offer_alternatives(
                            &service,
                            self.now(),
                            None,
                            ListReason::Past,
                            &asked,
                        );
                    }
                    self.look_for(&service, staff, start, None);
                } else {
                    self.look_for(&service, staff, start, end);
                }
            }
        }
    }

    fn booking_timer_ids(&self, booking: &Booking) -> Vec<String> {
        let tenant = self.tenant();
        let mut ids: Vec<String> = tenant
            .reminder_minutes
            .iter()
            .map(|minutes| reminder_timer_id(&booking.id, *minutes))
            .collect();
        ids.push(format!("{}:follow_up", booking.id));
        ids.push(format!("{}:no_show", booking.id));
        ids
    }

    fn schedule_booking_timers(&mut self, booking: &Booking) {
        let now = self.now();
        let tenant = self.tenant();
        let mut timers = Vec::new();
        for minutes in &tenant.reminder_minutes {
            let due = booking.start - Duration::minutes(i64::from(*minutes));
            if due > now {
                timers.push((
                    reminder_timer_id(&booking.id, *minutes),
                    due,
                    TimerKind::Reminder {
                        booking_id: booking.id.clone(),
                        minutes_before: *minutes,
                    },
                ));
            }
        }
        if let Some(minutes) = tenant.no_show_check_minutes {
            timers.push((
                format!("{}:no_show", booking.id),
                booking.start + Duration::minutes(i64::from(minutes)),
                TimerKind::NoShowCheck {
                    booking_id: booking.id.clone(),
                },
            ));
        }
        if let Some(minutes) = tenant.follow_up_minutes {
            timers.push((
                format!("{}:follow_up", booking.id),
                booking.end + Duration::minutes(i64::from(minutes)),
                TimerKind::FollowUp {
                    booking_id: booking.id.clone(),
                },
            ));
        }
        for (id, due, kind) in timers {
            self.actions.push(Action::ScheduleTimer { id, due, kind });
        }
    }

    fn cancel_booking_timers(&mut self, booking: &Booking) {
        for id in self.booking_timer_ids(booking) {
            self.actions.push(Action::CancelTimer { id });
        }
    }

    fn forget_past_bookings(&mut self) {
        // Kept until its follow-up has run (plus a day), so the follow-up and a late "my
        // booking" still find it.
        let follow_up = Duration::minutes(i64::from(self.tenant().follow_up_minutes.unwrap_or(0)));
        let cutoff = self.now() - Duration::days(1) - follow_up;
        self.state.bookings.retain(|b| b.end > cutoff);
        let forgotten = self
            .stage_booking()
            .filter(|id| self.state.booking(id).is_none())
            .map(str::to_owned);
        if let Some(booking_id) = forgotten {
            self.leave_stage_about(&booking_id);
        }
    }

    /// The booking a reschedule or cancel in progress is about.
    fn stage_booking(&self) -> Option<&str> {
        match &self.state.stage {
            Stage::Rescheduling { booking_id, .. } | Stage::ConfirmingCancel { booking_id } => {
                Some(booking_id)
            }
            _ => None,
        }
    }

    /// Ends a reschedule or cancel in progress for `booking_id`, releasing its hold: once the
    /// booking is cancelled, moved, followed up or aged out, there is nothing left for it to
    /// act on, and a late pick finds a stale option instead of a missing booking.
    fn leave_stage_about(&mut self, booking_id: &str) {
        if self.stage_booking() == Some(booking_id) {
            self.release_hold();
            self.state.stage = Stage::Idle;
        }
    }

    // ---- timers, statuses, agents, calendar ---------------------------------------------

    fn silent(&self) -> bool {
        matches!(
            self.state.stage,
            Stage::HandedOff { .. } | Stage::OptedOut { .. }
        )
    }

    fn on_timer(&mut self, kind: &TimerKind) {
        match kind {
            TimerKind::HoldExpiry { token } => {
                let Some(hold) = self
                    .state
                    .stage
                    .hold()
                    .cloned()
                    .filter(|h| &h.token == token)
                else {
                    // Confirmed, replaced or released before the timer fired.
                    return;
                };
                self.metric("hold_expired", &[]);
                self.actions.push(Action::ReleaseHold {
                    slot: hold.slot.clone(),
                    token: hold.token.clone(),
                });
                self.state.stage = self.stage_after_hold(&hold);
                let asked = self.when_text(hold.slot.start);
                if self.state.in_service_window(self.now()) {
                    let options = self.alternatives(&hold.slot.service, hold.slot.start, None);
                    if options.is_empty() {
                        let text = self.texts().list_body(
                            ListReason::HoldExpired,
                            Some(&asked),
                            &self.service_name(&hold.slot.service),
                        );
                        self.send_text(text);
                    } else {
                        self.show_list(
                            &hold.slot.service,
                            options,
                            ListReason::HoldExpired,
                            Some(&asked),
                        );
                    }
                } else {
                    self.send_template(
                        TemplatePurpose::HoldExpired,
                        vec![self.customer_name(), asked],
                        None,
                    );
                }
            }
            TimerKind::Reminder { booking_id, .. } => {
                let Some(booking) = self.state.booking(booking_id).cloned() else {
                    return;
                };
                if self.silent() || booking.start <= self.now() {
                    return;
                }
                self.metric("reminder", &[]);
                let line = self.slot_line(&booking.slot());
                let name = self.customer_name();
                let service = self.service_name(&booking.service);
                let when = self.when_text(booking.start);
                self.notify(
                    |run| {
                        let texts = run.texts();
                        let buttons = [
                            (QuickReply::Confirm, texts.confirm_button()),
                            (QuickReply::Reschedule, texts.reschedule_button()),
                            (QuickReply::Cancel, texts.cancel_button()),
                        ]
                        .into_iter()
                        .map(|(reply, title)| {
                            Button::new(format!("{}:{}", reply.key(), booking.id), title)
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                        ReplyButtons::new(texts.reminder(&name, &line), None, buttons)
                            .map(OutboundMessage::ReplyButtons)
                    },
                    TemplatePurpose::Reminder,
                    vec![self.customer_name(), when, service],
                    Some(&booking.id),
                );
            }
            TimerKind::FollowUp { booking_id } => {
                let Some(booking) = self.state.booking(booking_id).cloned() else {
                    return;
                };
                self.state.bookings.retain(|b| b.id != booking.id);
                self.leave_stage_about(&booking.id);
                if self.silent() {
                    return;
                }
                self.metric("follow_up", &[]);
                let name = self.customer_name();
                let service = self.service_name(&booking.service);
                let text = self.texts().follow_up(&name, &service);
                self.notify(
                    move |_| Text::new(text).map(OutboundMessage::Text),
                    TemplatePurpose::FollowUp,
                    vec![name.clone(), service.clone()],
                    None,
                );
            }
            TimerKind::NoShowCheck { booking_id } => {
                // Attendance is the business's to record; what the engine knows is whether the
                // customer confirmed, which is the funnel signal for no-show risk.
                let Some(booking) = self.state.booking(booking_id) else {
                    return;
                };
                let confirmed = if booking.attendance_confirmed {
                    "true"
                } else {
                    "false"
                };
                self.metric("no_show_check", &[("confirmed", confirmed)]);
            }
        }
    }

    fn on_status(&mut self, status: DeliveryStatus) {
        let DeliveryStatus::Failed { code } = status else {
            return;
        };
        let code_text = code.to_string();
        self.metric("delivery_failed", &[("code", code_text.as_str())]);
        if self.silent() || RETRYABLE_CODES.contains(&code) {
            return;
        }
        if code == REENGAGEMENT_CODE {
            // The window closed before a free-form message arrived: re-open it with a template.
            self.state.last_customer_message_at = None;
            self.send_template(TemplatePurpose::Reopen, vec![self.customer_name()], None);
            return;
        }
        // The customer cannot be reached by the bot; a person may find another way.
        self.handoff(HandoffReason::DeliveryFailed { code }, false);
    }

    fn on_released(&mut self) {
        if matches!(self.state.stage, Stage::HandedOff { .. }) {
            self.state.stage = Stage::Idle;
            self.state.misunderstandings = 0;
            self.metric("released", &[]);
        }
    }

    fn on_calendar_change(&mut self, booking_id: &str, change: &CalendarChange) {
        let Some(booking) = self.state.booking(booking_id).cloned() else {
            return;
        };
        self.leave_stage_about(booking_id);
        self.cancel_booking_timers(&booking);
        let (text, updated) = match change {
            CalendarChange::Cancelled => {
                self.state.bookings.retain(|b| b.id != booking.id);
                self.metric("cancelled_externally", &[]);
                let line = self.slot_line(&booking.slot());
                (self.texts().cancelled_by_business(&line), None)
            }
            CalendarChange::Rescheduled {
                new_booking_id,
                start,
                end,
            } => {
                let moved = Booking {
                    id: new_booking_id.clone(),
                    start: *start,
                    end: *end,
                    attendance_confirmed: false,
                    ..booking.clone()
                };
                self.state
                    .bookings
                    .retain(|b| b.id != booking.id && b.id != moved.id);
                self.state.bookings.push(moved.clone());
                self.state.bookings.sort_by_key(|b| b.start);
                self.metric("rescheduled_externally", &[]);
                let line = self.slot_line(&moved.slot());
                (self.texts().moved_by_business(&line), Some(moved))
            }
        };
        if let Some(moved) = &updated {
            self.schedule_booking_timers(moved);
        }
        if self.silent() {
            return;
        }
        let name = self.customer_name();
        self.notify(
            move |_| Text::new(text).map(OutboundMessage::Text),
            TemplatePurpose::Reopen,
            vec![name],
            None,
        );
    }

    // ---- handoff -------------------------------------------------------------------------

    /// Hands off when the calendar did not answer. "Nothing is free" would be a guess, and
    /// a customer who asked for a time deserves a person rather than silence while the
    /// calendar is down.
    fn calendar_unreachable(&mut self) -> bool {
        if self.ctx.availability.reachable() {
            return false;
        }
        self.handoff(HandoffReason::CalendarUnreachable, true);
        true
    }

    fn handoff(&mut self, reason: HandoffReason, tell_customer: bool) {
        let hold = self.state.stage.hold().cloned();
        let summary = format!(
            "stage {}, reason {}, {} booking(s)",
            self.state.stage.name(),
            reason.name(),
            self.state.bookings.len()
        );
        let mut entities = BTreeMap::new();
        entities.insert("language".to_string(), self.lang().code().to_string());
        if let Some(name) = &self.state.profile_name {
            entities.insert("profile_name".to_string(), name.clone());
        }
        if let Some(service) = &self.state.service {
            entities.insert("service".to_string(), service.clone());
        }
        if let Some(hold) = &hold {
            entities.insert(
                "held_slot".to_string(),
                format!("{} {}", hold.slot.resource, hold.slot.start.to_rfc3339()),
            );
        }
        if let Stage::ChoosingTime { options, .. } | Stage::Rescheduling { options, .. } =
            &self.state.stage
            && !options.is_empty()
        {
            let shown: Vec<String> = options.iter().map(|s| s.start.to_rfc3339()).collect();
            entities.insert("offered".to_string(), shown.join(", "));
        }
        for (index, booking) in self.state.bookings.iter().enumerate() {
            entities.insert(
                format!("booking.{index}"),
                format!(
                    "{} {} {} {}",
                    booking.id,
                    booking.service,
                    booking.resource,
                    booking.start.to_rfc3339()
                ),
            );
        }
        self.release_hold();
        if tell_customer {
            let business = &self.tenant().name;
            let text = match reason {
                HandoffReason::CalendarUnreachable => {
                    self.texts().calendar_unreachable_notice(business)
                }
                _ => self.texts().handoff_notice(business),
            };
            let name = self.customer_name();
            self.notify(
                move |run| {
                    let body = run.body(text);
                    Text::new(body).map(OutboundMessage::Text)
                },
                TemplatePurpose::Reopen,
                vec![name],
                None,
            );
        }
        self.state.stage = Stage::HandedOff {
            reason: reason.clone(),
            since: self.now(),
        };
        self.metric("handoff", &[("reason", reason.name())]);
        self.actions.push(Action::Handoff {
            reason,
            context: HandoffContext {
                transcript: self.state.transcript.clone(),
                summary,
                entities,
            },
        });
    }
}

// ---- helpers ---------------------------------------------------------------------------

/// Every name a service may be called by (each language's name and its id), and for each the
/// index of the service it names, for the language module's service matching.
fn service_aliases(tenant: &Tenant) -> (Vec<String>, Vec<usize>) {
    let mut aliases = Vec::new();
    let mut owners = Vec::new();
    for (index, service) in tenant.services.iter().enumerate() {
        for name in service.names.values().chain(std::iter::once(&service.id)) {
            aliases.push(name.clone());
            owners.push(index);
        }
    }
    (aliases, owners)
}

/// The button/row id of a slot: carries the instant and resource so a tap needs no guessing.
pub fn slot_id(slot: &Slot) -> String {
    format!("slot:{}:{}", slot.start.timestamp(), slot.resource)
}

/// The stable id of a booking's reminder timer.
pub fn reminder_timer_id(booking_id: &str, minutes_before: u32) -> String {
    format!("{booking_id}:reminder:{minutes_before}")
}

fn prefer(slots: Vec<Slot>, resource: Option<&str>) -> Option<Slot> {
    let preferred = resource.and_then(|r| slots.iter().find(|s| s.resource == r).cloned());
    preferred.or_else(|| slots.into_iter().next())
}

/// One slot per start time, preferring the named resource, in start order.
fn unique_starts(mut slots: Vec<Slot>, resource: Option<&str>) -> Vec<Slot> {
    slots.sort_by_key(|s| (s.start, resource.is_none_or(|r| s.resource != r)));
    slots.dedup_by_key(|s| s.start);
    slots
}

/// At most `count` items spread evenly over `items`, first and last included.
fn spread(items: Vec<Slot>, count: usize) -> Vec<Slot> {
    if items.len() <= count || count < 2 {
        return items.into_iter().take(count).collect();
    }
    let last = items.len() - 1;
    let picks: Vec<usize> = (0..count).map(|i| i * last / (count - 1)).collect();
    items
        .into_iter()
        .enumerate()
        .filter(|(index, _)| picks.contains(index))
        .map(|(_, slot)| slot)
        .collect()
}

fn start_of_local_day(tz: Tz, day: NaiveDate) -> DateTime<Utc> {
    // Some zones skip midnight on DST days; the first existing minute starts the day.
    (0..=180)
        .step_by(15)
        .find_map(|minutes| {
            tz.from_local_datetime(
                &(day.and_time(chrono::NaiveTime::MIN) + Duration::minutes(minutes)),
            )
            .earliest()
        })
        .map_or_else(
            || day.and_time(chrono::NaiveTime::MIN).and_utc(),
            |t| t.with_timezone(&Utc),
        )
}

fn end_of_local_day(tz: Tz, at: DateTime<Utc>) -> DateTime<Utc> {
    let day = at.with_timezone(&tz).date_naive();
    match day.succ_opt() {
        Some(next) => start_of_local_day(tz, next),
        None => at + Duration::days(1),
    }
}

fn describe(content: &Content) -> String {
    match content {
        Content::Text { body } => body.clone(),
        Content::ButtonReply { title, .. } | Content::ListReply { title, .. } => {
            format!("[tapped] {title}")
        }
        Content::TemplateButton { text, .. } => format!("[tapped] {text}"),
        Content::Location { name, address, .. } => {
            format!(
                "[location] {}",
                name.as_deref().or(address.as_deref()).unwrap_or("")
            )
        }
        Content::Media { kind, caption } => {
            format!("[{kind}] {}", caption.as_deref().unwrap_or(""))
        }
        Content::Reaction { emoji } => format!("[reaction] {}", emoji.as_deref().unwrap_or("")),
        Content::Unsupported { kind } => format!("[unsupported] {kind}"),
    }
}

fn content_kind(content: &Content) -> &'static str {
    match content {
        Content::Text { .. } => "text",
        Content::ButtonReply { .. } => "button",
        Content::ListReply { .. } => "list",
        Content::TemplateButton { .. } => "template_button",
        Content::Location { .. } => "location",
        Content::Media { .. } => "media",
        Content::Reaction { .. } => "reaction",
        Content::Unsupported { .. } => "unsupported",
    }
}

fn list_reason_name(reason: ListReason) -> &'static str {
    match reason {
        ListReason::Requested => "requested",
        ListReason::Soonest => "soonest",
        ListReason::Taken => "taken",
        ListReason::Closed => "closed",
        ListReason::TooSoon => "too_soon",
        ListReason::BeyondHorizon => "beyond_horizon",
        ListReason::Past => "past",
        ListReason::JustTaken => "just_taken",
        ListReason::HoldExpired => "hold_expired",
        ListReason::Other => "other",
    }
}

fn failure_name(reason: FailureReason) -> &'static str {
    match reason {
        FailureReason::SlotGone => "slot_gone",
        FailureReason::Error => "error",
        FailureReason::Unreachable => "unreachable",
    }
}
