//! The public data model of the language module. Stable: the conversation engine and the
//! `understand` command-line tool are written against it.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Languages the fleet converses in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    En,
    Es,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Es => "es",
        }
    }
}

/// What the customer wants from this message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentName {
    Book,
    Reschedule,
    Cancel,
    Confirm,
    Decline,
    AskAvailability,
    MyBooking,
    Human,
    OptOut,
    OptIn,
    Greeting,
    Thanks,
    Other,
}

impl IntentName {
    /// The wire name used by the `understand` tool's JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            IntentName::Book => "book",
            IntentName::Reschedule => "reschedule",
            IntentName::Cancel => "cancel",
            IntentName::Confirm => "confirm",
            IntentName::Decline => "decline",
            IntentName::AskAvailability => "ask_availability",
            IntentName::MyBooking => "my_booking",
            IntentName::Human => "human",
            IntentName::OptOut => "opt_out",
            IntentName::OptIn => "opt_in",
            IntentName::Greeting => "greeting",
            IntentName::Thanks => "thanks",
            IntentName::Other => "other",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    pub name: IntentName,
    /// 0.0 ..= 1.0; intents are returned most likely first.
    pub confidence: f32,
}

/// How precise a resolved expression is: "tomorrow" is a day, "at 5" an hour, "5:30" a minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Grain {
    Minute,
    Hour,
    Day,
    Week,
    Month,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WhenKind {
    /// A point in time ("at 5", "15/01 9h"). `end` is None.
    Instant,
    /// A span ("this evening", "between 3 and 5", "after 4"). `end` is exclusive. A whole day
    /// ("tomorrow"), week or month is an instant with that grain.
    Interval,
}

/// A date/time expression resolved to absolute time in the business time zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct When {
    pub kind: WhenKind,
    pub start: DateTime<Utc>,
    /// Exclusive end for intervals. None for instants, and for open upper bounds ("after 4",
    /// "a partir de las 5"), whose `start` is the bound. An upper bound alone ("before 12")
    /// starts at `now`, or at the start of the named day if that is later. English ranges
    /// include the last named unit ("3-4pm" ends at 17:00), Spanish ones end at the named
    /// time ("de 9 a 11" ends at 11:00), as in the public corpora.
    pub end: Option<DateTime<Utc>>,
    pub grain: Grain,
    /// The words this came from, as written (for echoing and debugging; never logged).
    pub source: String,
    /// True when the expression resolved to a time before `now` (never silently moved).
    pub in_past: bool,
    /// True when the local time occurs twice (DST fall-back); `start` is the earlier one.
    pub ambiguous_fold: bool,
    /// Another reasonable reading (for example 17:00 when "at 5" was read as 05:00), so the
    /// engine can prefer whichever falls in opening hours.
    pub alternative: Option<Box<When>>,
}

/// Order of day and month in numeric dates like 05/06.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DateOrder {
    #[default]
    DayFirst,
    MonthFirst,
}

/// An option the bot last showed the customer (list row or button), so that "the second one",
/// "la 2" or "el de las 5" can be resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShownOption {
    /// The id carried by the button or row.
    pub id: String,
    /// The slot start this option stands for, if it is a time slot.
    pub start: Option<DateTime<Utc>>,
    /// The visible title.
    pub title: String,
}

/// Everything outside the message that understanding depends on.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub now: DateTime<Utc>,
    pub tz: Tz,
    /// Used when the message itself carries no language signal.
    pub default_lang: Lang,
    /// The language of the conversation so far, if known; a weaker signal than the text.
    pub lang_hint: Option<Lang>,
    /// Day/month order for English numeric dates (Spanish is always day first).
    pub date_order: DateOrder,
    pub services: &'a [String],
    pub staff: &'a [String],
    pub options: &'a [ShownOption],
}

/// Which shown option the customer picked, by position in `Context::options`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    pub index: usize,
}

/// The result of reading one message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Understanding {
    pub lang: Lang,
    /// Most likely first; never empty (`Other` when nothing fits).
    pub intents: Vec<Intent>,
    /// Resolved date/time expressions in the order they appear.
    pub when: Vec<When>,
    pub choice: Option<Choice>,
    /// Index into `Context::services` of the service mentioned, if any.
    pub service: Option<usize>,
    /// Index into `Context::staff` of the person or resource mentioned, if any.
    pub staff: Option<usize>,
}

impl Understanding {
    pub fn top_intent(&self) -> IntentName {
        self.intents
            .first()
            .map(|i| i.name)
            .unwrap_or(IntentName::Other)
    }
}
