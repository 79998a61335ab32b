//! A small interpreter for conversation transcripts.
//!
//! A transcript is a list of lines. Unindented lines are events (what the customer, a timer,
//! the calendar or WhatsApp does); indented lines are assertions about the actions the engine
//! returned for the last event. Times are local to the tenant. See `tests/transcripts.rs`.
#![allow(dead_code)]

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use engine::availability::{AvailabilityView, BuiltinAvailability, Busy, Slot};
use engine::outbound::OutboundMessage;
use engine::{
    Action, CalendarChange, Content, ConversationState, DeliveryStatus, FailureReason, Input,
    Outcome, Stage, StepContext, Tenant, Tenants, TimerKind, step,
};

pub const EXAMPLE: &str = include_str!("../../../config/tenants.toml");

pub fn tenants() -> Tenants {
    Tenants::from_toml_str(EXAMPLE).expect("example tenants file is valid")
}

pub fn tenant(short: &str) -> Tenant {
    let id = match short {
        "salon" => "106540352242922",
        "clinic" => "106540352242923",
        other => panic!("unknown tenant {other}"),
    };
    tenants().get(id).cloned().expect("tenant")
}

/// One conversation being driven through the engine.
pub struct Conversation {
    pub tenant: Tenant,
    pub state: ConversationState,
    pub now: DateTime<Utc>,
    pub busy: Vec<Busy>,
    /// Actions returned by the last event (all steps of it, outcomes included).
    pub last: Vec<Action>,
    /// Every action so far, for timers scheduled earlier.
    pub history: Vec<Action>,
    pub profile_name: Option<String>,
    next_message: u32,
    last_event: Option<(Input, String)>,
    line: usize,
    pending_outcome: bool,
    event_id: String,
    /// While true, steps see a calendar that did not answer.
    calendar_down: bool,
}

/// A calendar service that did not answer.
struct Unreachable;

impl AvailabilityView for Unreachable {
    fn free_slots(&self, _: &str, _: DateTime<Utc>, _: DateTime<Utc>) -> Vec<Slot> {
        Vec::new()
    }

    fn reachable(&self) -> bool {
        false
    }
}

pub fn local(tz: Tz, text: &str) -> DateTime<Utc> {
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M")
        .unwrap_or_else(|_| panic!("bad local time {text:?}, use YYYY-MM-DD HH:MM"));
    tz.from_local_datetime(&naive)
        .earliest()
        .expect("local time exists")
        .with_timezone(&Utc)
}

impl Conversation {
    pub fn new(tenant: Tenant, now: DateTime<Utc>) -> Self {
        Conversation {
            tenant,
            state: ConversationState::new(),
            now,
            busy: Vec::new(),
            last: Vec::new(),
            history: Vec::new(),
            profile_name: Some("Ana".into()),
            next_message: 0,
            last_event: None,
            line: 0,
            pending_outcome: false,
            event_id: String::new(),
            calendar_down: false,
        }
    }

    fn tz(&self) -> Tz {
        self.tenant.time_zone
    }

    /// Applies one input with the current clock, checking invariants on the result.
    pub fn apply(&mut self, input: Input, event_id: &str) -> Vec<Action> {
        let is_outcome = matches!(input, Input::Outcome(_));
        assert_eq!(
            is_outcome,
            self.pending_outcome,
            "line {}: {} (the worker feeds an outcome back exactly when the last action asks for one)",
            self.line,
            if is_outcome {
                "outcome without a pending action"
            } else {
                "event while an outcome is pending"
            }
        );
        let builtin = BuiltinAvailability::new(&self.tenant, self.now, &self.busy);
        let view: &dyn AvailabilityView = if self.calendar_down {
            &Unreachable
        } else {
            &builtin
        };
        let ctx = StepContext {
            now: self.now,
            tenant: &self.tenant,
            availability: view,
            event_id,
        };
        let before = self.state.clone();
        let decision = step(self.state.clone(), &input, &ctx);
        // Purity: the same inputs give the same decision.
        assert_eq!(
            step(before, &input, &ctx),
            decision,
            "step is deterministic"
        );
        check_invariants(&self.tenant, self.now, &decision.state, &decision.actions);
        self.pending_outcome = decision.actions.last().is_some_and(Action::expects_outcome);
        self.state = decision.state;
        self.history.extend(decision.actions.iter().cloned());
        decision.actions
    }

    fn event(&mut self, input: Input, event_id: String) {
        self.last = self.apply(input.clone(), &event_id);
        self.last_event = Some((input, event_id.clone()));
        self.event_id = event_id;
    }

    fn outcome(&mut self, outcome: Outcome) {
        let event_id = self.event_id.clone();
        let actions = self.apply(Input::Outcome(outcome), &event_id);
        self.last.extend(actions);
    }

    fn customer(&mut self, content: Content) {
        self.next_message += 1;
        let id = format!("wamid.{}", self.next_message);
        let input = Input::Customer {
            message_id: id.clone(),
            profile_name: self.profile_name.clone(),
            at: self.now,
            content,
        };
        self.event(input, id);
    }

    fn last_hold_token(&self) -> String {
        self.history
            .iter()
            .rev()
            .find_map(|a| match a {
                Action::Hold { token, .. } => Some(token.clone()),
                _ => None,
            })
            .expect("a hold was requested")
    }

    fn booking_in_flight(&self) -> String {
        self.history
            .iter()
            .rev()
            .find_map(|a| match a {
                Action::CancelBooking { booking_id }
                | Action::RescheduleBooking { booking_id, .. } => Some(booking_id.clone()),
                _ => None,
            })
            .expect("a booking action was requested")
    }

    fn scheduled_timer(&self, matches: impl Fn(&TimerKind) -> bool) -> (String, TimerKind) {
        self.history
            .iter()
            .rev()
            .find_map(|a| match a {
                Action::ScheduleTimer { id, kind, .. } if matches(kind) => {
                    Some((id.clone(), kind.clone()))
                }
                _ => None,
            })
            .expect("such a timer was scheduled")
    }

    fn last_list_row(&self, index: usize) -> String {
        self.history
            .iter()
            .rev()
            .find_map(|a| match a {
                Action::Send(OutboundMessage::List(list)) => {
                    Some(list.rows().nth(index - 1).map(|r| r.id().to_string()))
                }
                _ => None,
            })
            .flatten()
            .expect("a list with that row was sent")
    }

    /// Runs a transcript.
    pub fn run(script: &str) -> Conversation {
        let mut conversation: Option<Conversation> = None;
        let mut tenant_name = String::new();
        for (index, raw) in script.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(name) = line.strip_prefix("tenant ") {
                tenant_name = name.to_string();
                continue;
            }
            if let Some(at) = line.strip_prefix("now ") {
                let tenant = tenant(&tenant_name);
                let now = local(tenant.time_zone, at);
                match &mut conversation {
                    Some(c) => c.now = now,
                    None => conversation = Some(Conversation::new(tenant, now)),
                }
                continue;
            }
            let c = conversation
                .as_mut()
                .expect("`tenant` and `now` come first");
            c.line = index + 1;
            let indented = raw.starts_with(' ') || raw.starts_with('\t');
            if indented {
                c.check(line);
            } else {
                c.act(line);
            }
        }
        conversation.expect("a transcript")
    }

    fn act(&mut self, line: &str) {
        let tz = self.tz();
        if let Some(text) = line.strip_prefix("customer: ") {
            return self.customer(Content::Text {
                body: text.to_string(),
            });
        }
        if let Some(rest) = line.strip_prefix("advance ") {
            let minutes: i64 = rest
                .trim_end_matches(" min")
                .parse()
                .expect("advance N min");
            self.now += Duration::minutes(minutes);
            return;
        }
        if let Some(rest) = line.strip_prefix("busy ") {
            // busy <resource> <YYYY-MM-DD HH:MM> <minutes>
            let parts: Vec<&str> = rest.split_whitespace().collect();
            let start = local(tz, &format!("{} {}", parts[1], parts[2]));
            let minutes: i64 = parts[3].parse().expect("minutes");
            self.busy.push(Busy {
                resource: parts[0].to_string(),
                start,
                end: start + Duration::minutes(minutes),
            });
            return;
        }
        if let Some(name) = line.strip_prefix("profile name ") {
            self.profile_name = Some(name.to_string());
            return;
        }
        if let Some(zone) = line.strip_prefix("customer zone ") {
            self.state.customer_tz = Some(zone.parse().expect("zone"));
            return;
        }
        if let Some(payload) = line.strip_prefix("customer taps template ") {
            return self.customer(Content::TemplateButton {
                payload: payload.to_string(),
                text: payload.to_string(),
            });
        }
        if let Some(id) = line.strip_prefix("customer taps ") {
            return self.customer(Content::ButtonReply {
                id: id.to_string(),
                title: id.to_string(),
            });
        }
        if let Some(row) = line.strip_prefix("customer picks row ") {
            let id = self.last_list_row(row.parse().expect("row number"));
            return self.customer(Content::ListReply {
                id: id.clone(),
                title: id,
            });
        }
        match line {
            "customer sends a voice note" => {
                return self.customer(Content::Media {
                    kind: "audio".into(),
                    caption: None,
                });
            }
            "customer sends a location" => {
                return self.customer(Content::Location {
                    latitude: 40.4,
                    longitude: -3.7,
                    name: None,
                    address: None,
                });
            }
            "customer reacts 👍" => {
                return self.customer(Content::Reaction {
                    emoji: Some("👍".into()),
                });
            }
            "redeliver" => {
                let (input, id) = self.last_event.clone().expect("an earlier event");
                self.last = self.apply(input, &id);
                return;
            }
            "outcome held" => {
                let token = self.last_hold_token();
                return self.outcome(Outcome::Held { token });
            }
            "outcome hold rejected" => {
                let token = self.last_hold_token();
                return self.outcome(Outcome::HoldRejected { token });
            }
            "outcome slot gone" => {
                return self.outcome(Outcome::BookFailed {
                    reason: FailureReason::SlotGone,
                });
            }
            "outcome calendar error" => {
                return self.outcome(Outcome::BookFailed {
                    reason: FailureReason::Error,
                });
            }
            "outcome calendar unreachable" => {
                return self.outcome(Outcome::BookFailed {
                    reason: FailureReason::Unreachable,
                });
            }
            "calendar stops answering" => {
                self.calendar_down = true;
                return;
            }
            "outcome reschedule slot gone" => {
                return self.outcome(Outcome::RescheduleFailed {
                    reason: FailureReason::SlotGone,
                });
            }
            "outcome cancelled" => {
                let booking_id = self.booking_in_flight();
                return self.outcome(Outcome::Cancelled { booking_id });
            }
            "outcome cancel failed" => {
                let booking_id = self.booking_in_flight();
                return self.outcome(Outcome::CancelFailed { booking_id });
            }
            "agent releases" => {
                let id = format!("release.{}", self.history.len());
                return self.event(Input::AgentReleased, id);
            }
            "timer hold expiry" => {
                let (timer_id, kind) =
                    self.scheduled_timer(|k| matches!(k, TimerKind::HoldExpiry { .. }));
                return self.event(
                    Input::Timer {
                        timer_id: timer_id.clone(),
                        kind,
                    },
                    timer_id,
                );
            }
            "timer follow up" => {
                let (timer_id, kind) =
                    self.scheduled_timer(|k| matches!(k, TimerKind::FollowUp { .. }));
                return self.event(
                    Input::Timer {
                        timer_id: timer_id.clone(),
                        kind,
                    },
                    timer_id,
                );
            }
            "timer no show" => {
                let (timer_id, kind) =
                    self.scheduled_timer(|k| matches!(k, TimerKind::NoShowCheck { .. }));
                return self.event(
                    Input::Timer {
                        timer_id: timer_id.clone(),
                        kind,
                    },
                    timer_id,
                );
            }
            _ => {}
        }
        if let Some(id) = line.strip_prefix("outcome booked ") {
            return self.outcome(Outcome::Booked {
                booking_id: id.to_string(),
            });
        }
        if let Some(id) = line.strip_prefix("outcome rescheduled ") {
            let booking_id = self.booking_in_flight();
            return self.outcome(Outcome::Rescheduled {
                booking_id,
                new_booking_id: id.to_string(),
            });
        }
        if let Some(minutes) = line.strip_prefix("timer reminder ") {
            let minutes: u32 = minutes.parse().expect("minutes");
            let (timer_id, kind) = self.scheduled_timer(|k| matches!(k, TimerKind::Reminder { minutes_before, .. } if *minutes_before == minutes));
            return self.event(
                Input::Timer {
                    timer_id: timer_id.clone(),
                    kind,
                },
                format!("{timer_id}@{}", self.now.timestamp()),
            );
        }
        if let Some(code) = line.strip_prefix("status failed ") {
            let code = code.parse().expect("code");
            let id = format!("status.{}", self.history.len());
            return self.event(
                Input::Status {
                    message_id: "wamid.out".into(),
                    status: DeliveryStatus::Failed { code },
                },
                id,
            );
        }
        if let Some(rest) = line.strip_prefix("calendar cancels ") {
            let id = format!("cal.{}", self.history.len());
            return self.event(
                Input::CalendarChanged {
                    booking_id: rest.to_string(),
                    change: CalendarChange::Cancelled,
                },
                id,
            );
        }
        if let Some(rest) = line.strip_prefix("calendar moves ") {
            // calendar moves <booking> to <YYYY-MM-DD HH:MM> as <new id>
            let parts: Vec<&str> = rest.split_whitespace().collect();
            let start = local(tz, &format!("{} {}", parts[2], parts[3]));
            let id = format!("cal.{}", self.history.len());
            let booking = self.state.booking(parts[0]).cloned().expect("booking");
            return self.event(
                Input::CalendarChanged {
                    booking_id: parts[0].to_string(),
                    change: CalendarChange::Rescheduled {
                        new_booking_id: parts[5].to_string(),
                        start,
                        end: start + (booking.end - booking.start),
                    },
                },
                id,
            );
        }
        panic!("line {}: unknown event {line:?}", self.line);
    }

    fn sends(&self) -> Vec<&OutboundMessage> {
        self.last
            .iter()
            .filter_map(|a| match a {
                Action::Send(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    fn fail(&self, what: &str) -> ! {
        panic!(
            "line {}: expected {what}\nactions were:\n{}",
            self.line,
            self.last
                .iter()
                .map(|a| format!("  {a:?}"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    }

    fn check(&mut self, line: &str) {
        let tz = self.tz();
        let quoted = |s: &str| -> String {
            let start = s.find('"').map(|i| i + 1).unwrap_or(0);
            let end = s[start..].find('"').map(|i| i + start).unwrap_or(s.len());
            s[start..end].to_string()
        };
        if let Some(rest) = line.strip_prefix("bot says ") {
            let needle = quoted(rest);
            if !self
                .sends()
                .iter()
                .any(|m| m.visible_text().contains(&needle))
            {
                self.fail(&format!("a message containing {needle:?}"));
            }
            return;
        }
        if let Some(rest) = line.strip_prefix("bot asks ") {
            let needle = quoted(rest);
            let titles: Vec<String> = rest
                .rsplit_once('[')
                .map(|(_, t)| {
                    t.trim_end_matches(']')
                        .split('|')
                        .map(|s| s.trim().to_string())
                        .collect()
                })
                .unwrap_or_default();
            let found = self.sends().iter().any(|m| match m {
                OutboundMessage::ReplyButtons(b) => {
                    b.body().contains(&needle)
                        && (titles.is_empty()
                            || b.buttons()
                                .iter()
                                .map(|x| x.title().to_string())
                                .collect::<Vec<_>>()
                                == titles)
                }
                _ => false,
            });
            if !found {
                self.fail(&format!("buttons {needle:?} {titles:?}"));
            }
            return;
        }
        if let Some(rest) = line.strip_prefix("bot lists ") {
            // bot lists "<body>" [rows: <day> <time>, <day> <time>, ...]
            let needle = quoted(rest);
            let expected_rows: Option<Vec<String>> = rest
                .split_once("rows: ")
                .map(|(_, rows)| rows.split(',').map(|r| r.trim().to_string()).collect());
            let lists: Vec<_> = self
                .sends()
                .into_iter()
                .filter_map(|m| match m {
                    OutboundMessage::List(l) => Some(l.clone()),
                    _ => None,
                })
                .collect();
            let Some(list) = lists.iter().find(|l| l.body().contains(&needle)) else {
                self.fail(&format!("a list whose body contains {needle:?}"));
            };
            if let Some(expected) = expected_rows {
                let actual: Vec<String> = list
                    .sections()
                    .iter()
                    .flat_map(|s| {
                        s.rows()
                            .iter()
                            .map(move |r| format!("{} {}", s.title(), r.title()))
                    })
                    .collect();
                let shown: Vec<String> = actual.iter().take(expected.len()).cloned().collect();
                if expected.last().map(String::as_str) == Some("...") {
                    let prefix = &expected[..expected.len() - 1];
                    assert_eq!(
                        &actual[..prefix.len().min(actual.len())],
                        prefix,
                        "line {}: list rows",
                        self.line
                    );
                } else {
                    assert_eq!(
                        actual, expected,
                        "line {}: list rows (first {:?})",
                        self.line, shown
                    );
                }
            }
            return;
        }
        if let Some(rest) = line.strip_prefix("bot holds ") {
            // bot holds <YYYY-MM-DD HH:MM> [with <resource>]
            let (at, resource) = match rest.split_once(" with ") {
                Some((at, resource)) => (at, Some(resource)),
                None => (rest, None),
            };
            let start = local(tz, at);
            let found = self.last.iter().any(|a| match a {
                Action::Hold { slot, .. } => {
                    slot.start == start && resource.is_none_or(|r| slot.resource == r)
                }
                _ => false,
            });
            if !found {
                self.fail(&format!("a hold at {at}"));
            }
            return;
        }
        if let Some(rest) = line.strip_prefix("bot schedules reminder ") {
            // bot schedules reminder <minutes> at <YYYY-MM-DD HH:MM>
            let (minutes, at) = rest.split_once(" at ").expect("reminder <m> at <time>");
            let due = local(tz, at);
            let minutes: u32 = minutes.parse().expect("minutes");
            let found = self.last.iter().any(|a| matches!(a,
                Action::ScheduleTimer { due: d, kind: TimerKind::Reminder { minutes_before, .. }, id }
                    if *d == due && *minutes_before == minutes && id.ends_with(&format!(":reminder:{minutes}"))));
            if !found {
                self.fail(&format!("a reminder {minutes} min before, due {at}"));
            }
            return;
        }
        if let Some(id) = line.strip_prefix("bot cancels timer ") {
            if !self
                .last
                .iter()
                .any(|a| matches!(a, Action::CancelTimer { id: i } if i == id))
            {
                self.fail(&format!("timer {id} cancelled"));
            }
            return;
        }
        if let Some(rest) = line.strip_prefix("bot sends template ") {
            // bot sends template <name> (<p1> | <p2> ...) [buttons <payload>, ...]
            let (name, rest) = rest.split_once(' ').unwrap_or((rest, ""));
            let params: Option<Vec<String>> = rest
                .strip_prefix('(')
                .and_then(|r| r.split_once(')'))
                .map(|(p, _)| p.split('|').map(|s| s.trim().to_string()).collect());
            let payloads: Option<Vec<String>> = rest
                .split_once("buttons ")
                .map(|(_, b)| b.split(',').map(|s| s.trim().to_string()).collect());
            let found = self.sends().iter().any(|m| match m {
                OutboundMessage::Template(t) => {
                    t.name() == name
                        && params
                            .as_ref()
                            .is_none_or(|p| t.body_parameters() == p.as_slice())
                        && payloads
                            .as_ref()
                            .is_none_or(|p| t.quick_reply_payloads() == p.as_slice())
                }
                _ => false,
            });
            if !found {
                self.fail(&format!("template {name} {params:?} {payloads:?}"));
            }
            return;
        }
        if let Some(reason) = line.strip_prefix("bot hands off ") {
            let found = self
                .last
                .iter()
                .any(|a| matches!(a, Action::Handoff { reason: r, .. } if r.name() == reason));
            if !found {
                self.fail(&format!("a handoff ({reason})"));
            }
            return;
        }
        if let Some(entity) = line.strip_prefix("handoff notes ") {
            // handoff notes <entity>: the person is told it (held_slot, service, ...)
            let found = self.last.iter().any(|a| {
                matches!(a, Action::Handoff { context, .. } if context.entities.contains_key(entity))
            });
            if !found {
                self.fail(&format!("a handoff noting {entity}"));
            }
            return;
        }
        if let Some(name) = line.strip_prefix("stage ") {
            let actual = if name == "booked" {
                (matches!(self.state.stage, Stage::Idle) && !self.state.bookings.is_empty())
                    .then_some("booked")
            } else {
                Some(self.state.stage.name())
            };
            assert_eq!(actual, Some(name), "line {}: stage", self.line);
            return;
        }
        if let Some(count) = line.strip_prefix("bookings ") {
            assert_eq!(
                self.state.bookings.len(),
                count.parse::<usize>().expect("count"),
                "line {}",
                self.line
            );
            return;
        }
        let has = |f: &dyn Fn(&Action) -> bool| self.last.iter().any(f);
        let ok = match line {
            "bot marks read" => has(&|a| matches!(a, Action::MarkRead { .. })),
            "bot books" => has(&|a| matches!(a, Action::Book { .. })),
            "bot reschedules" => has(&|a| matches!(a, Action::RescheduleBooking { .. })),
            "bot cancels booking" => has(&|a| matches!(a, Action::CancelBooking { .. })),
            "bot releases hold" => has(&|a| matches!(a, Action::ReleaseHold { .. })),
            "bot schedules hold expiry" => has(&|a| {
                matches!(
                    a,
                    Action::ScheduleTimer {
                        kind: TimerKind::HoldExpiry { .. },
                        ..
                    }
                )
            }),
            "bot schedules follow up" => has(&|a| {
                matches!(
                    a,
                    Action::ScheduleTimer {
                        kind: TimerKind::FollowUp { .. },
                        ..
                    }
                )
            }),
            "bot does not hold" => !has(&|a| matches!(a, Action::Hold { .. })),
            "bot does not hand off" => !has(&|a| matches!(a, Action::Handoff { .. })),
            "bot sends nothing" => self.sends().is_empty(),
            "bot sends one message" => self.sends().len() == 1,
            "bot is silent" => self.last.iter().all(|a| matches!(a, Action::Metric { .. })),
            "bot does nothing" => self.last.is_empty(),
            other => panic!("line {}: unknown assertion {other:?}", self.line),
        };
        if !ok {
            self.fail(line);
        }
    }
}

/// What must hold after every step, whatever the conversation.
pub fn check_invariants(
    tenant: &Tenant,
    now: DateTime<Utc>,
    state: &ConversationState,
    actions: &[Action],
) {
    // Outcome-bearing actions end a decision, and there is at most one.
    let outcome_bearing = actions.iter().filter(|a| a.expects_outcome()).count();
    assert!(
        outcome_bearing <= 1,
        "at most one outcome-bearing action: {actions:?}"
    );
    if outcome_bearing == 1 {
        assert!(
            actions.last().is_some_and(Action::expects_outcome),
            "outcome-bearing action is last: {actions:?}"
        );
    }
    // A reschedule or cancel in progress is about a booking the state still has.
    if let Stage::Rescheduling { booking_id, .. } | Stage::ConfirmingCancel { booking_id } =
        &state.stage
    {
        assert!(
            state.booking(booking_id).is_some(),
            "{:?} for a booking the state no longer has",
            state.stage
        );
    }
    // At most one hold: a new hold is only requested once the previous one is released.
    let holds: Vec<&engine::Slot> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Hold { slot, .. } => Some(slot),
            _ => None,
        })
        .collect();
    assert!(holds.len() <= 1);
    if let Some(hold) = state.stage.hold() {
        let released = actions
            .iter()
            .any(|a| matches!(a, Action::ReleaseHold { token, .. } if *token == hold.token));
        assert!(!released, "the kept hold was not released");
        // A hold whose expiry timer has not fired yet (scheduler late) may outlive its slot; the
        // engine must then never book it, which the Book check below covers.
        assert!(
            hold.slot.start > now || hold.expires_at <= now,
            "never holding the past"
        );
    }
    for action in actions {
        match action {
            Action::Book { slot, .. } | Action::RescheduleBooking { slot, .. } => {
                assert!(slot.start > now, "booking in the past");
                let hold = state.stage.hold().expect("booking a held slot");
                assert!(hold.expires_at > now, "booking on a lapsed hold");
            }
            Action::Hold { slot, .. } => {
                assert!(slot.start > now, "hold in the past");
                let grid = engine::availability::opening_slots(
                    tenant,
                    now,
                    &slot.service,
                    slot.start,
                    slot.start + Duration::seconds(1),
                );
                assert!(!grid.is_empty(), "hold outside opening hours: {slot:?}");
            }
            Action::Send(message) => {
                // Round trip through serde re-runs every WhatsApp limit check.
                let json = serde_json::to_string(message).expect("serialises");
                let back: OutboundMessage =
                    serde_json::from_str(&json).expect("valid under WhatsApp limits");
                assert_eq!(&back, message);
                if !message.is_template() {
                    assert!(
                        state.in_service_window(now),
                        "free-form only inside the 24-hour window"
                    );
                }
                if let OutboundMessage::List(list) = message {
                    for row in list.rows() {
                        if let Some(rest) = row.id().strip_prefix("slot:") {
                            let unix: i64 = rest
                                .split(':')
                                .next()
                                .and_then(|u| u.parse().ok())
                                .expect("slot id");
                            let start = DateTime::from_timestamp(unix, 0).expect("instant");
                            assert!(start > now, "proposal in the past: {}", row.id());
                            let service = match &state.stage {
                                Stage::ChoosingTime { service, .. } => service.clone(),
                                Stage::Rescheduling { booking_id, .. } => {
                                    state.booking(booking_id).expect("booking").service.clone()
                                }
                                other => panic!("list of slots while {other:?}"),
                            };
                            let grid = engine::availability::opening_slots(
                                tenant,
                                now,
                                &service,
                                start,
                                start + Duration::seconds(1),
                            );
                            assert!(
                                !grid.is_empty(),
                                "proposal outside opening hours: {}",
                                row.id()
                            );
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if let Stage::HandedOff { .. } | Stage::OptedOut { .. } = state.stage {
        assert!(state.stage.hold().is_none());
    }
}
