//! Date and time expressions: a small grammar over tokens, then resolution against `now`
//! in the business time zone.
//!
//! Reading happens in three layers, each a plain function over data:
//! 1. [`grammar`] recognises atoms at token positions: a date ("el próximo martes",
//!    "15/01"), a time of day ("a las 5 y media", "quarter past 3"), a part of the day
//!    ("por la tarde"), a connector ("between", "hasta"), a relative duration ("in 2 hours").
//! 2. [`assemble`] folds neighbouring atoms into expressions: a moment (date + time + part
//!    of day), a range, an open bound, a relative offset.
//! 3. [`resolve`] turns expressions into absolute [`When`](crate::When)s, choosing between
//!    readings ("at 5": 05:00 or 17:00) and reporting the one not chosen.

mod assemble;
mod grammar;
mod resolve;

use chrono::Weekday;

use crate::model::{Context, Grain, Lang, When};
use crate::tokens::Token;

pub(crate) use assemble::Expr;

/// One expression found in a message, with the tokens it spans.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub expr: Expr,
    pub first_token: usize,
    /// Exclusive.
    pub end_token: usize,
}

/// Finds every date/time expression in the tokens, in order.
pub(crate) fn find(tokens: &[Token], lang: Lang, ctx: &Context<'_>) -> Vec<Found> {
    let day_first = lang == Lang::Es || ctx.date_order == crate::model::DateOrder::DayFirst;
    let atoms = grammar::atoms(tokens, day_first);
    assemble::expressions(tokens, &atoms)
}

/// Resolves one expression; None when it does not denote a real time (a bare number that
/// turned out not to be part of a range, an impossible date).
pub(crate) fn resolve(
    found: &Found,
    tokens: &[Token],
    text: &str,
    lang: Lang,
    ctx: &Context<'_>,
) -> Option<When> {
    let source = source_text(tokens, text, found.first_token, found.end_token);
    resolve::resolve(&found.expr, lang, ctx, source)
}

fn source_text(tokens: &[Token], text: &str, first: usize, end: usize) -> String {
    let start = tokens.get(first).map(|t| t.start).unwrap_or(0);
    let stop = end
        .checked_sub(1)
        .and_then(|i| tokens.get(i))
        .map(|t| t.end)
        .unwrap_or(start);
    text.get(start..stop).unwrap_or_default().to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AmPm {
    Am,
    Pm,
}

/// A time of day as written, before choosing between its 12-hour readings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeOfDay {
    pub hour: u32,
    pub minute: u32,
    pub ampm: Option<AmPm>,
    /// Written so that only the 24-hour reading makes sense ("17h", "09:30", "0:15").
    pub fixed: bool,
    pub grain: Grain,
    /// Written without any time cue ("3" in "between 3 and 5"); meaningful only inside a
    /// range or bound.
    pub bare: bool,
}

/// Parts of the day, with Duckling's hour spans so results line up with public corpora.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PartOfDay {
    EarlyMorning,
    Morning,
    Lunch,
    AfterLunch,
    Afternoon,
    Evening,
    Night,
    SmallHours,
}

impl PartOfDay {
    /// Local hours [start, end); an end of 24 is midnight of the next day.
    pub fn hours(self) -> (u32, u32) {
        match self {
            PartOfDay::EarlyMorning => (4, 9),
            PartOfDay::Morning => (4, 12),
            PartOfDay::Lunch => (12, 14),
            PartOfDay::AfterLunch => (13, 17),
            PartOfDay::Afternoon => (12, 19),
            PartOfDay::Evening | PartOfDay::Night => (18, 24),
            PartOfDay::SmallHours => (0, 6),
        }
    }

    /// Which half of the day an unmarked hour belongs to when said with this part of day:
    /// "a las 8 de la tarde" is 20:00, "3 de la mañana" is 03:00.
    pub fn ampm_for(self, hour: u32) -> AmPm {
        match self {
            PartOfDay::EarlyMorning | PartOfDay::Morning | PartOfDay::SmallHours => AmPm::Am,
            // "las 2 de la noche" is the small hours; "las 10 de la noche" is 22:00.
            PartOfDay::Night if (1..=5).contains(&hour) || hour == 12 => AmPm::Am,
            _ => AmPm::Pm,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WeekdayModifier {
    /// "monday": the next one after today.
    Bare,
    /// "this monday": the next one, today included.
    This,
    /// "next monday", "el próximo lunes": the next one after today.
    Next,
    /// "el lunes que viene", "monday of next week": that day in next calendar week.
    NextWeek,
    /// "monday after next".
    AfterNext,
    /// "last monday", "el lunes pasado".
    Last,
    /// "monday of this week".
    ThisWeek,
}

/// A date as written, before resolution against today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DateSpec {
    /// Days from today: "today" 0, "mañana" 1, "anteayer" -2.
    RelativeDay(i64),
    Weekday {
        weekday: Weekday,
        modifier: WeekdayModifier,
    },
    DayOfMonth {
        day: u32,
        weekday: Option<Weekday>,
    },
    MonthDay {
        month: u32,
        day: u32,
        year: Option<i32>,
        weekday: Option<Weekday>,
    },
    /// Calendar weeks from this one (weeks start on Monday).
    Week(i64),
    /// Weekends from the coming one.
    Weekend(i64),
    Month {
        month: u32,
        year: Option<i32>,
    },
    /// Calendar months from this one.
    RelativeMonth(i64),
}

impl DateSpec {
    /// Dates naming a single day, which can carry a time of day.
    pub fn is_day(self) -> bool {
        matches!(
            self,
            DateSpec::RelativeDay(_)
                | DateSpec::Weekday { .. }
                | DateSpec::DayOfMonth { .. }
                | DateSpec::MonthDay { .. }
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DurationUnit {
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

/// A length of time as written: "2 hours", "media hora" (30 minutes), "a couple of days".
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Span {
    pub amount: f64,
    pub unit: DurationUnit,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Relative {
    Now,
    /// "in 2 hours", "2 hours from now".
    In(Span),
    /// "within 2 weeks", "dentro de tres horas": from now until then.
    Within(Span),
    /// "2 hours ago", "hace dos horas".
    Ago(Span),
    /// "after 5 days".
    AfterSpan(Span),
    /// "next 3 days", "próximas 3 horas": the following whole units.
    NextUnits(u32, DurationUnit),
    /// "last 2 weeks", "pasados 2 días".
    LastUnits(u32, DurationUnit),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Connector {
    /// "between", "entre".
    Between,
    /// "and", "y": closes a "between".
    And,
    /// "from", "desde": opens a range, or an open bound when nothing closes it.
    From,
    /// "de" before a time: opens a range only when "a" closes it ("de 9 a 11").
    WeakFrom,
    /// "till", "until", "-", "hasta": closes a range, or an upper bound when alone.
    To,
    /// "to": closes a range; alone it names a target ("move it to Friday at 11"), never
    /// an upper bound.
    Target,
    /// "a", "al": closes a range, nothing on its own.
    WeakTo,
    /// "after", "después de", "a partir de".
    After,
    /// "before", "antes de", "by".
    Before,
}
