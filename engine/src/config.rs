//! The tenants file: which business answers on which WhatsApp number, and how it books.
//!
//! The file is read by the caller (the engine does no I/O) and handed to
//! [`Tenants::from_toml_str`], which parses and validates everything at start-up. Every problem
//! is reported with the tenant, the field and the line, and all problems are reported at once
//! so an operator fixes the file in one pass.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use chrono::{NaiveDate, Weekday};
use chrono_tz::Tz;
use lang::{DateOrder, Lang};
use serde::Deserialize;
use thiserror::Error;
use toml::Spanned;

/// All businesses served by this fleet, keyed by their WhatsApp `phone_number_id`.
#[derive(Debug, Clone)]
pub struct Tenants {
    /// Validated tenants by `phone_number_id`, the key every webhook is routed on.
    by_phone_number_id: BTreeMap<String, Tenant>,
}

impl Tenants {
    /// Parses and validates the tenants file.
    pub fn from_toml_str(text: &str) -> Result<Tenants, ConfigError> {
        parse(text)
    }

    /// The business that owns this WhatsApp number.
    pub fn get(&self, phone_number_id: &str) -> Option<&Tenant> {
        self.by_phone_number_id.get(phone_number_id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Tenant> {
        self.by_phone_number_id.values()
    }

    pub fn len(&self) -> usize {
        self.by_phone_number_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_phone_number_id.is_empty()
    }
}

/// One business, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    /// The WhatsApp number id webhooks arrive on and messages are sent from.
    pub phone_number_id: String,
    /// Name customers see in greetings and confirmations.
    pub name: String,
    /// The business's IANA zone; opening hours and every echoed time are in it.
    pub time_zone: Tz,
    /// Language used until the customer's own is known, and for customers writing in a
    /// language the business does not speak.
    pub default_language: Lang,
    /// Languages the business answers in; names and templates exist for each.
    pub languages: Vec<Lang>,
    /// How English numeric dates like 05/06 are read.
    pub date_order: DateOrder,
    /// What can be booked.
    pub services: Vec<Service>,
    /// Opening periods per weekday, Monday first; an empty day is closed.
    pub hours: [Vec<OpenPeriod>; 7],
    /// Local dates on which nothing can be booked (holidays).
    pub closed_dates: BTreeSet<NaiveDate>,
    /// People or rooms that serve bookings, each with a capacity.
    pub staff: Vec<Resource>,
    /// How long a chosen slot stays held while the customer confirms.
    pub hold_minutes: u32,
    /// Reminder offsets before the start, in minutes, largest first.
    pub reminder_minutes: Vec<u32>,
    /// Bookings must start at least this long after the customer asks.
    pub min_lead_minutes: u32,
    /// Bookings can start at most this many days ahead.
    pub horizon_days: u32,
    /// Distance between proposed start times within an opening period.
    pub slot_step_minutes: u32,
    /// Minutes after a booking's end to ask for feedback; None disables follow-ups.
    pub follow_up_minutes: Option<u32>,
    /// Minutes after a booking's start to check whether the customer came; None disables it.
    pub no_show_check_minutes: Option<u32>,
    /// Approved templates per purpose and language, for messages outside the 24-hour window.
    pub templates: BTreeMap<TemplatePurpose, PerLang<TemplateRef>>,
    /// Where bookings live.
    pub calendar: CalendarBackend,
    /// Where conversations go when a person must answer.
    pub handoff: HandoffTarget,
}

/// Something a customer can book.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// Stable machine id used in button ids, timers and calendar calls.
    pub id: String,
    /// Name shown to customers, per language.
    pub names: PerLang<String>,
    /// How long the appointment lasts.
    pub minutes: u32,
    /// Clean-up time after the appointment during which the resource stays busy.
    pub buffer_minutes: u32,
    /// Price as shown to customers ("$35", "40 €"), when the business wants it shown.
    pub price: Option<String>,
    /// Cal.com event type booked for this service when the calendar is Cal.com.
    pub calcom_event_type_id: Option<u64>,
}

impl Service {
    /// The name in `lang`, falling back to any name (validation guarantees one per language).
    pub fn name(&self, lang: Lang) -> &str {
        self.names
            .get(lang)
            .or_else(|| self.names.any())
            .map(String::as_str)
            .unwrap_or(self.id.as_str())
    }
}

/// One value per language the engine speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerLang<T> {
    /// The English value, if the business has one.
    pub en: Option<T>,
    /// The Spanish value, if the business has one.
    pub es: Option<T>,
}

impl<T> Default for PerLang<T> {
    fn default() -> Self {
        PerLang { en: None, es: None }
    }
}

impl<T> PerLang<T> {
    pub fn get(&self, lang: Lang) -> Option<&T> {
        match lang {
            Lang::En => self.en.as_ref(),
            Lang::Es => self.es.as_ref(),
        }
    }

    pub fn insert(&mut self, lang: Lang, value: T) {
        match lang {
            Lang::En => self.en = Some(value),
            Lang::Es => self.es = Some(value),
        }
    }

    /// Some value, English first; for fallbacks when a language is missing.
    pub fn any(&self) -> Option<&T> {
        self.en.as_ref().or(self.es.as_ref())
    }

    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.en.iter().chain(self.es.iter())
    }
}

/// A person or room that serves bookings.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// Stable machine id used in holds and slot ids.
    pub id: String,
    /// Name customers may ask for ("with Ana").
    pub name: String,
    /// How many bookings can overlap on this resource (a room with two chairs has 2).
    pub capacity: u32,
    /// Service ids this resource performs; empty means all.
    pub services: Vec<String>,
}

impl Resource {
    pub fn performs(&self, service_id: &str) -> bool {
        self.services.is_empty() || self.services.iter().any(|s| s == service_id)
    }
}

/// One opening period of a weekday, in minutes after local midnight, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct OpenPeriod {
    /// Local minute of day the period opens.
    pub start_minute: u32,
    /// Local minute of day the period closes; appointments end by then.
    pub end_minute: u32,
}

/// Why a template is sent; each purpose has a fixed parameter list the engine fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TemplatePurpose {
    /// Before an appointment: customer name, date and time, service.
    Reminder,
    /// A hold ran out while the window was closed: customer name, date and time.
    HoldExpired,
    /// After an appointment: customer name, service.
    FollowUp,
    /// Any other notice outside the window (a person will answer, a booking changed):
    /// customer name.
    Reopen,
}

impl TemplatePurpose {
    pub const ALL: [TemplatePurpose; 4] = [
        TemplatePurpose::Reminder,
        TemplatePurpose::HoldExpired,
        TemplatePurpose::FollowUp,
        TemplatePurpose::Reopen,
    ];

    pub fn key(self) -> &'static str {
        match self {
            TemplatePurpose::Reminder => "reminder",
            TemplatePurpose::HoldExpired => "hold_expired",
            TemplatePurpose::FollowUp => "follow_up",
            TemplatePurpose::Reopen => "reopen",
        }
    }

    /// The number of body parameters the engine fills for this purpose.
    pub fn parameter_count(self) -> usize {
        match self {
            TemplatePurpose::Reminder => 3,
            TemplatePurpose::HoldExpired => 2,
            TemplatePurpose::FollowUp => 2,
            TemplatePurpose::Reopen => 1,
        }
    }

    fn from_key(key: &str) -> Option<TemplatePurpose> {
        TemplatePurpose::ALL.into_iter().find(|p| p.key() == key)
    }
}

/// What a quick-reply button on a template does when tapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuickReply {
    Confirm,
    Reschedule,
    Cancel,
}

impl QuickReply {
    pub fn key(self) -> &'static str {
        match self {
            QuickReply::Confirm => "confirm",
            QuickReply::Reschedule => "reschedule",
            QuickReply::Cancel => "cancel",
        }
    }

    fn from_key(key: &str) -> Option<QuickReply> {
        [
            QuickReply::Confirm,
            QuickReply::Reschedule,
            QuickReply::Cancel,
        ]
        .into_iter()
        .find(|q| q.key() == key)
    }
}

/// An approved template in one language.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateRef {
    /// Name as approved in WhatsApp Manager.
    pub name: String,
    /// Language code of the approved translation ("en_US").
    pub language_code: String,
    /// Body parameter count of the approved template; equals the purpose's count.
    pub parameters: usize,
    /// Quick-reply buttons in order, so their payloads can carry the booking id.
    pub quick_replies: Vec<QuickReply>,
}

/// Where bookings are stored.
#[derive(Debug, Clone, PartialEq)]
pub enum CalendarBackend {
    /// Bookings and availability kept in Redis by the fleet itself.
    Builtin,
    /// Cal.com API v2; each service names its event type.
    Calcom,
}

/// Where handed-off conversations are announced.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HandoffTarget {
    /// Webhook that receives the handoff context; None means agents watch the inbox only.
    pub url: Option<String>,
    /// Name of the environment variable holding the webhook's signing secret (never the
    /// secret itself, so the file can be committed).
    pub secret_env: Option<String>,
}

impl Tenant {
    pub fn service(&self, id: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.id == id)
    }

    pub fn resource(&self, id: &str) -> Option<&Resource> {
        self.staff.iter().find(|r| r.id == id)
    }

    pub fn template(&self, purpose: TemplatePurpose, lang: Lang) -> Option<&TemplateRef> {
        let by_lang = self.templates.get(&purpose)?;
        by_lang
            .get(lang)
            .or_else(|| by_lang.get(self.default_language))
    }

    /// The language to answer in: the customer's when the business speaks it.
    pub fn reply_language(&self, customer: Option<Lang>) -> Lang {
        match customer {
            Some(lang) if self.languages.contains(&lang) => lang,
            _ => self.default_language,
        }
    }

    pub fn opening(&self, weekday: Weekday) -> &[OpenPeriod] {
        &self.hours[weekday.num_days_from_monday() as usize]
    }
}

/// Every problem found in a tenants file.
#[derive(Debug, Clone, PartialEq, Error)]
pub struct ConfigError {
    /// The problems in file order, so the operator can fix them top to bottom.
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid tenants file:")?;
        for problem in &self.problems {
            write!(f, "\n  {problem}")?;
        }
        Ok(())
    }
}

/// One problem in the tenants file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The tenant's display name or number id, when the problem lies inside a tenant.
    pub tenant: Option<String>,
    /// Dotted path of the field ("services.haircut.minutes").
    pub field: String,
    /// 1-based line in the file, when known.
    pub line: Option<usize>,
    /// What is wrong, in words.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if let Some(tenant) = &self.tenant {
            write!(f, "tenant {tenant:?}: ")?;
        }
        write!(f, "`{}`: {}", self.field, self.message)
    }
}

// Raw shapes of the file. `Spanned` keeps byte offsets so validation errors can name lines.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    tenant: Vec<Spanned<RawTenant>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTenant {
    phone_number_id: Spanned<String>,
    name: Spanned<String>,
    time_zone: Spanned<String>,
    default_language: Spanned<String>,
    #[serde(default)]
    languages: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    date_order: Option<Spanned<String>>,
    #[serde(default)]
    hold_minutes: Option<Spanned<u32>>,
    #[serde(default)]
    reminder_minutes: Option<Spanned<Vec<u32>>>,
    #[serde(default)]
    min_lead_minutes: Option<Spanned<u32>>,
    #[serde(default)]
    horizon_days: Option<Spanned<u32>>,
    #[serde(default)]
    slot_step_minutes: Option<Spanned<u32>>,
    #[serde(default)]
    follow_up_minutes: Option<Spanned<u32>>,
    #[serde(default)]
    no_show_check_minutes: Option<Spanned<u32>>,
    #[serde(default)]
    closed_dates: Vec<Spanned<String>>,
    calendar: Spanned<RawCalendar>,
    #[serde(default)]
    handoff: Option<Spanned<RawHandoff>>,
    hours: Spanned<BTreeMap<String, Spanned<RawDay>>>,
    services: Vec<Spanned<RawService>>,
    staff: Vec<Spanned<RawStaff>>,
    templates: RawTemplates,
}

/// Templates by purpose, then by language code.
type RawTemplates = Spanned<BTreeMap<String, Spanned<BTreeMap<String, Spanned<RawTemplate>>>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCalendar {
    backend: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHandoff {
    #[serde(default)]
    url: Option<Spanned<String>>,
    #[serde(default)]
    secret_env: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDay {
    open: Spanned<String>,
    close: Spanned<String>,
    #[serde(default)]
    breaks: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    id: Spanned<String>,
    names: Spanned<BTreeMap<String, String>>,
    minutes: Spanned<u32>,
    #[serde(default)]
    buffer_minutes: Option<Spanned<u32>>,
    #[serde(default)]
    price: Option<String>,
    #[serde(default)]
    calcom_event_type_id: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStaff {
    id: Spanned<String>,
    name: Spanned<String>,
    #[serde(default)]
    capacity: Option<Spanned<u32>>,
    #[serde(default)]
    services: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplate {
    name: Spanned<String>,
    #[serde(default)]
    language_code: Option<Spanned<String>>,
    params: Spanned<usize>,
    #[serde(default)]
    buttons: Option<Spanned<Vec<String>>>,
}

/// The tenant identity, read leniently first so that even a type error deep inside a tenant
/// can say which tenant it is in.
#[derive(Deserialize)]
struct IdentFile {
    #[serde(default)]
    tenant: Vec<Spanned<Ident>>,
}

#[derive(Deserialize)]
struct Ident {
    #[serde(default)]
    name: Option<toml::Value>,
    #[serde(default)]
    phone_number_id: Option<toml::Value>,
}

const DEFAULT_HOLD_MINUTES: u32 = 15;
const DEFAULT_REMINDERS: [u32; 2] = [24 * 60, 60];
const DEFAULT_MIN_LEAD_MINUTES: u32 = 60;
const DEFAULT_HORIZON_DAYS: u32 = 60;
const DEFAULT_SLOT_STEP_MINUTES: u32 = 15;
const WEEKDAY_KEYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

struct Problems<'t> {
    text: &'t str,
    tenant: Option<String>,
    found: Vec<ConfigProblem>,
}

impl Problems<'_> {
    fn line_of(&self, span: &Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    fn add(&mut self, field: impl Into<String>, span: &Range<usize>, message: impl Into<String>) {
        let line = Some(self.line_of(span));
        self.found.push(ConfigProblem {
            tenant: self.tenant.clone(),
            field: field.into(),
            line,
            message: message.into(),
        });
    }
}

fn parse(text: &str) -> Result<Tenants, ConfigError> {
    let raw: RawFile = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(error) => {
            return Err(ConfigError {
                problems: vec![deserialisation_problem(text, &error)],
            });
        }
    };
    let mut problems = Problems {
        text,
        tenant: None,
        found: Vec::new(),
    };
    let mut by_phone_number_id: BTreeMap<String, Tenant> = BTreeMap::new();
    if raw.tenant.is_empty() {
        problems.add("tenant", &(0..0), "no [[tenant]] defined");
    }
    for raw_tenant in raw.tenant {
        let span = raw_tenant.span();
        let raw_tenant = raw_tenant.into_inner();
        problems.tenant = Some(raw_tenant.name.get_ref().clone());
        if let Some(tenant) = validate_tenant(raw_tenant, &mut problems)
            && let Some(previous) =
                by_phone_number_id.insert(tenant.phone_number_id.clone(), tenant)
        {
            problems.add(
                "phone_number_id",
                &span,
                format!(
                    "{} is also used by tenant {:?}",
                    previous.phone_number_id, previous.name
                ),
            );
        }
    }
    if problems.found.is_empty() {
        Ok(Tenants { by_phone_number_id })
    } else {
        problems.found.sort_by_key(|p| p.line);
        Err(ConfigError {
            problems: problems.found,
        })
    }
}

fn deserialisation_problem(text: &str, error: &toml::de::Error) -> ConfigProblem {
    let span = error.span();
    let line = span.as_ref().map(|span| {
        text.as_bytes()[..span.start.min(text.len())]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    });
    let message = error.message().trim().to_string();
    // serde names the field in backticks for missing/unknown fields; otherwise the key written
    // on the offending line is the field.
    let field = backticked(&message)
        .or_else(|| {
            let span = span.as_ref()?;
            let line_start = text[..span.start.min(text.len())]
                .rfind('\n')
                .map_or(0, |i| i + 1);
            let line_text = text[line_start..].lines().next()?;
            let key = line_text.split('=').next()?.trim();
            (!key.is_empty() && !key.starts_with('[')).then(|| key.to_string())
        })
        .unwrap_or_else(|| "(file)".to_string());
    let tenant = span.and_then(|span| tenant_at(text, span.start));
    ConfigProblem {
        tenant,
        field,
        line,
        message,
    }
}

fn backticked(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_string())
}

fn tenant_at(text: &str, offset: usize) -> Option<String> {
    let idents: IdentFile = toml::from_str(text).ok()?;
    let ident = idents
        .tenant
        .iter()
        .filter(|ident| ident.span().start <= offset)
        .max_by_key(|ident| ident.span().start)?;
    let ident = ident.get_ref();
    ident
        .name
        .as_ref()
        .or(ident.phone_number_id.as_ref())
        .and_then(|value| value.as_str().map(str::to_string))
}

fn parse_lang(value: &str) -> Option<Lang> {
    match value {
        "en" => Some(Lang::En),
        "es" => Some(Lang::Es),
        _ => None,
    }
}

/// Parses "HH:MM" into minutes after midnight; "24:00" closes at midnight.
fn parse_clock(value: &str) -> Option<u32> {
    let (hours, minutes) = value.trim().split_once(':')?;
    if hours.len() > 2 || minutes.len() != 2 {
        return None;
    }
    let (hours, minutes): (u32, u32) = (hours.parse().ok()?, minutes.parse().ok()?);
    if minutes >= 60 || hours > 24 || (hours == 24 && minutes != 0) {
        return None;
    }
    Some(hours * 60 + minutes)
}

fn parse_range(value: &str) -> Option<(u32, u32)> {
    let (start, end) = value.split_once('-')?;
    Some((parse_clock(start)?, parse_clock(end)?))
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

fn validate_tenant(raw: RawTenant, problems: &mut Problems<'_>) -> Option<Tenant> {
    let before = problems.found.len();

    let phone_number_id = raw.phone_number_id.get_ref().trim().to_string();
    if phone_number_id.is_empty() || !phone_number_id.chars().all(|c| c.is_ascii_digit()) {
        problems.add(
            "phone_number_id",
            &raw.phone_number_id.span(),
            "must be the numeric WhatsApp phone number id",
        );
    }
    let name = raw.name.get_ref().trim().to_string();
    if name.is_empty() {
        problems.add("name", &raw.name.span(), "must not be empty");
    }

    let time_zone = match Tz::from_str(raw.time_zone.get_ref()) {
        Ok(tz) => Some(tz),
        Err(_) => {
            problems.add(
                "time_zone",
                &raw.time_zone.span(),
                format!(
                    "unknown time zone {:?} (use an IANA name like \"Europe/Madrid\")",
                    raw.time_zone.get_ref()
                ),
            );
            None
        }
    };

    let default_language = parse_lang(raw.default_language.get_ref());
    if default_language.is_none() {
        problems.add(
            "default_language",
            &raw.default_language.span(),
            format!(
                "unknown language {:?}; supported: en, es",
                raw.default_language.get_ref()
            ),
        );
    }
    let mut languages = Vec::new();
    if let Some(listed) = &raw.languages {
        for code in listed.get_ref() {
            match parse_lang(code) {
                Some(lang) if !languages.contains(&lang) => languages.push(lang),
                Some(_) => {}
                None => problems.add(
                    "languages",
                    &listed.span(),
                    format!("unknown language {code:?}; supported: en, es"),
                ),
            }
        }
    }
    if let Some(default) = default_language
        && !languages.contains(&default)
    {
        languages.insert(0, default);
    }

    let date_order = match raw.date_order.as_ref().map(|v| v.get_ref().as_str()) {
        None | Some("day_first") => DateOrder::DayFirst,
        Some("month_first") => DateOrder::MonthFirst,
        Some(other) => {
            let span = raw.date_order.as_ref().map(Spanned::span).unwrap_or(0..0);
            problems.add(
                "date_order",
                &span,
                format!("{other:?} is neither \"day_first\" nor \"month_first\""),
            );
            DateOrder::DayFirst
        }
    };

    let positive =
        |problems: &mut Problems<'_>, field: &str, value: &Option<Spanned<u32>>, default: u32| {
            match value {
                Some(v) if *v.get_ref() == 0 => {
                    problems.add(field, &v.span(), "must be greater than zero");
                    default
                }
                Some(v) => *v.get_ref(),
                None => default,
            }
        };
    let hold_minutes = positive(
        problems,
        "hold_minutes",
        &raw.hold_minutes,
        DEFAULT_HOLD_MINUTES,
    );
    let horizon_days = positive(
        problems,
        "horizon_days",
        &raw.horizon_days,
        DEFAULT_HORIZON_DAYS,
    );
    let slot_step_minutes = positive(
        problems,
        "slot_step_minutes",
        &raw.slot_step_minutes,
        DEFAULT_SLOT_STEP_MINUTES,
    );
    let min_lead_minutes = raw
        .min_lead_minutes
        .as_ref()
        .map_or(DEFAULT_MIN_LEAD_MINUTES, |v| *v.get_ref());
    let follow_up_minutes = raw.follow_up_minutes.as_ref().map(|v| *v.get_ref());
    let no_show_check_minutes = raw.no_show_check_minutes.as_ref().map(|v| *v.get_ref());
    let mut reminder_minutes = match &raw.reminder_minutes {
        Some(listed) => {
            if listed.get_ref().contains(&0) {
                problems.add(
                    "reminder_minutes",
                    &listed.span(),
                    "offsets must be greater than zero",
                );
            }
            listed.get_ref().clone()
        }
        None => DEFAULT_REMINDERS.to_vec(),
    };
    reminder_minutes.sort_unstable_by(|a, b| b.cmp(a));
    reminder_minutes.dedup();

    let mut closed_dates = BTreeSet::new();
    for date in &raw.closed_dates {
        match NaiveDate::parse_from_str(date.get_ref(), "%Y-%m-%d") {
            Ok(parsed) => {
                closed_dates.insert(parsed);
            }
            Err(_) => problems.add(
                "closed_dates",
                &date.span(),
                format!("{:?} is not a date like \"2026-12-25\"", date.get_ref()),
            ),
        }
    }

    let hours = validate_hours(&raw.hours, problems);

    let calendar = match raw.calendar.get_ref().backend.get_ref().as_str() {
        "builtin" => CalendarBackend::Builtin,
        "calcom" => CalendarBackend::Calcom,
        other => {
            problems.add(
                "calendar.backend",
                &raw.calendar.get_ref().backend.span(),
                format!("{other:?} is neither \"builtin\" nor \"calcom\""),
            );
            CalendarBackend::Builtin
        }
    };

    let mut services: Vec<Service> = Vec::new();
    for raw_service in &raw.services {
        let span = raw_service.span();
        let raw_service = raw_service.get_ref();
        let id = raw_service.id.get_ref().clone();
        let field = |name: &str| format!("services.{id}.{name}");
        if !valid_id(&id) {
            problems.add(
                field("id"),
                &raw_service.id.span(),
                "ids use letters, digits, '_', '-' or '.' only",
            );
        }
        if services.iter().any(|s| s.id == id) {
            problems.add(field("id"), &span, "duplicate service id");
        }
        let mut names = PerLang::default();
        for (code, value) in raw_service.names.get_ref() {
            match parse_lang(code) {
                Some(lang) if !value.trim().is_empty() => {
                    names.insert(lang, value.trim().to_string());
                }
                Some(_) => problems.add(
                    field("names"),
                    &raw_service.names.span(),
                    format!("empty name for {code}"),
                ),
                None => problems.add(
                    field("names"),
                    &raw_service.names.span(),
                    format!("unknown language {code:?}; supported: en, es"),
                ),
            }
        }
        for lang in &languages {
            if names.get(*lang).is_none() {
                problems.add(
                    field("names"),
                    &raw_service.names.span(),
                    format!("missing language {}: the business speaks it", lang.code()),
                );
            }
        }
        let minutes = *raw_service.minutes.get_ref();
        if minutes == 0 || minutes > 24 * 60 {
            problems.add(
                field("minutes"),
                &raw_service.minutes.span(),
                "must be between 1 and 1440",
            );
        }
        let calcom_event_type_id = raw_service
            .calcom_event_type_id
            .as_ref()
            .map(|v| *v.get_ref());
        if calendar == CalendarBackend::Calcom && calcom_event_type_id.is_none() {
            problems.add(
                field("calcom_event_type_id"),
                &span,
                "required when calendar.backend = \"calcom\"",
            );
        }
        services.push(Service {
            id,
            names,
            minutes,
            buffer_minutes: raw_service
                .buffer_minutes
                .as_ref()
                .map_or(0, |v| *v.get_ref()),
            price: raw_service.price.clone(),
            calcom_event_type_id,
        });
    }
    if services.is_empty() {
        problems.add(
            "services",
            &raw.name.span(),
            "at least one service is required",
        );
    }
    if services.len() > crate::outbound::MAX_LIST_ROWS {
        problems.add(
            "services",
            &raw.name.span(),
            format!(
                "{} services: a WhatsApp list shows at most {}",
                services.len(),
                crate::outbound::MAX_LIST_ROWS
            ),
        );
    }

    let mut staff: Vec<Resource> = Vec::new();
    for raw_staff in &raw.staff {
        let span = raw_staff.span();
        let raw_staff = raw_staff.get_ref();
        let id = raw_staff.id.get_ref().clone();
        let field = |name: &str| format!("staff.{id}.{name}");
        if !valid_id(&id) {
            problems.add(
                field("id"),
                &raw_staff.id.span(),
                "ids use letters, digits, '_', '-' or '.' only",
            );
        }
        if staff.iter().any(|s| s.id == id) {
            problems.add(field("id"), &span, "duplicate staff id");
        }
        let capacity = match &raw_staff.capacity {
            Some(c) if *c.get_ref() == 0 => {
                problems.add(field("capacity"), &c.span(), "must be at least 1");
                1
            }
            Some(c) => *c.get_ref(),
            None => 1,
        };
        let performs = raw_staff
            .services
            .as_ref()
            .map(|s| s.get_ref().clone())
            .unwrap_or_default();
        if let Some(listed) = &raw_staff.services {
            for service in listed.get_ref() {
                if !services.iter().any(|s| &s.id == service) {
                    problems.add(
                        field("services"),
                        &listed.span(),
                        format!("unknown service {service:?}"),
                    );
                }
            }
        }
        staff.push(Resource {
            id,
            name: raw_staff.name.get_ref().trim().to_string(),
            capacity,
            services: performs,
        });
    }
    for service in &services {
        if !staff.iter().any(|r| r.performs(&service.id)) {
            problems.add(
                format!("services.{}", service.id),
                &raw.name.span(),
                "no staff member performs this service",
            );
        }
    }

    let templates = validate_templates(&raw.templates, &languages, problems);

    let handoff = match &raw.handoff {
        None => HandoffTarget::default(),
        Some(handoff) => {
            let handoff_ref = handoff.get_ref();
            let url = handoff_ref.url.as_ref().map(|u| u.get_ref().clone());
            let secret_env = handoff_ref.secret_env.as_ref().map(|s| s.get_ref().clone());
            if let Some(url_value) = &handoff_ref.url
                && !(url_value.get_ref().starts_with("https://")
                    || url_value.get_ref().starts_with("http://"))
            {
                problems.add("handoff.url", &url_value.span(), "must be an http(s) URL");
            }
            if url.is_some() && secret_env.is_none() {
                problems.add(
                    "handoff.secret_env",
                    &handoff.span(),
                    "a handoff URL needs the name of the environment variable holding its secret",
                );
            }
            if let Some(secret) = &handoff_ref.secret_env
                && !secret
                    .get_ref()
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            {
                problems.add(
                    "handoff.secret_env",
                    &secret.span(),
                    "must be an environment variable name (A-Z, 0-9, _), not the secret",
                );
            }
            HandoffTarget { url, secret_env }
        }
    };

    if problems.found.len() != before {
        return None;
    }
    Some(Tenant {
        phone_number_id,
        name,
        time_zone: time_zone?,
        default_language: default_language?,
        languages,
        date_order,
        services,
        hours,
        closed_dates,
        staff,
        hold_minutes,
        reminder_minutes,
        min_lead_minutes,
        horizon_days,
        slot_step_minutes,
        follow_up_minutes,
        no_show_check_minutes,
        templates,
        calendar,
        handoff,
    })
}

fn validate_hours(
    raw: &Spanned<BTreeMap<String, Spanned<RawDay>>>,
    problems: &mut Problems<'_>,
) -> [Vec<OpenPeriod>; 7] {
    let mut hours: [Vec<OpenPeriod>; 7] = Default::default();
    for (key, day) in raw.get_ref() {
        let Some(index) = WEEKDAY_KEYS.iter().position(|k| k == key) else {
            problems.add(
                format!("hours.{key}"),
                &day.span(),
                "unknown weekday; use mon, tue, wed, thu, fri, sat, sun",
            );
            continue;
        };
        let day_ref = day.get_ref();
        let (Some(open), Some(close)) = (
            parse_clock(day_ref.open.get_ref()),
            parse_clock(day_ref.close.get_ref()),
        ) else {
            problems.add(
                format!("hours.{key}"),
                &day.span(),
                "open and close are times like \"09:00\"",
            );
            continue;
        };
        if open >= close {
            problems.add(
                format!("hours.{key}.close"),
                &day_ref.close.span(),
                "must be after open",
            );
            continue;
        }
        let mut breaks: Vec<(u32, u32, Range<usize>)> = Vec::new();
        for raw_break in &day_ref.breaks {
            match parse_range(raw_break.get_ref()) {
                Some((start, end)) if start < end && start >= open && end <= close => {
                    breaks.push((start, end, raw_break.span()));
                }
                Some(_) => problems.add(
                    format!("hours.{key}.breaks"),
                    &raw_break.span(),
                    format!(
                        "break {:?} must lie within {}-{}",
                        raw_break.get_ref(),
                        day_ref.open.get_ref(),
                        day_ref.close.get_ref()
                    ),
                ),
                None => problems.add(
                    format!("hours.{key}.breaks"),
                    &raw_break.span(),
                    format!(
                        "{:?} is not a range like \"13:00-14:00\"",
                        raw_break.get_ref()
                    ),
                ),
            }
        }
        breaks.sort_by_key(|b| b.0);
        let mut overlapping = false;
        for pair in breaks.windows(2) {
            if pair[1].0 < pair[0].1 {
                problems.add(
                    format!("hours.{key}.breaks"),
                    &pair[1].2,
                    "overlapping hours: breaks overlap each other",
                );
                overlapping = true;
            }
        }
        if overlapping {
            continue;
        }
        let mut periods = Vec::new();
        let mut cursor = open;
        for (start, end, _) in &breaks {
            if *start > cursor {
                periods.push(OpenPeriod {
                    start_minute: cursor,
                    end_minute: *start,
                });
            }
            cursor = *end;
        }
        if close > cursor {
            periods.push(OpenPeriod {
                start_minute: cursor,
                end_minute: close,
            });
        }
        hours[index] = periods;
    }
    if hours.iter().all(Vec::is_empty) && problems.found.is_empty() {
        problems.add("hours", &raw.span(), "the business is never open");
    }
    hours
}

fn validate_templates(
    raw: &RawTemplates,
    languages: &[Lang],
    problems: &mut Problems<'_>,
) -> BTreeMap<TemplatePurpose, PerLang<TemplateRef>> {
    let mut templates = BTreeMap::new();
    for (key, by_lang) in raw.get_ref() {
        let Some(purpose) = TemplatePurpose::from_key(key) else {
            problems.add(
                format!("templates.{key}"),
                &by_lang.span(),
                "unknown purpose; use reminder, hold_expired, follow_up or reopen",
            );
            continue;
        };
        let mut parsed = PerLang::default();
        for (code, template) in by_lang.get_ref() {
            let field = format!("templates.{key}.{code}");
            let Some(lang) = parse_lang(code) else {
                problems.add(
                    field,
                    &template.span(),
                    "unknown language; supported: en, es",
                );
                continue;
            };
            let template_ref = template.get_ref();
            let parameters = *template_ref.params.get_ref();
            if parameters != purpose.parameter_count() {
                problems.add(
                    format!("{field}.params"),
                    &template_ref.params.span(),
                    format!(
                        "wrong number of parameters: {key} templates take {} ({}), not {parameters}",
                        purpose.parameter_count(),
                        parameter_names(purpose)
                    ),
                );
            }
            let mut quick_replies = Vec::new();
            if let Some(buttons) = &template_ref.buttons {
                for button in buttons.get_ref() {
                    match QuickReply::from_key(button) {
                        Some(q) => quick_replies.push(q),
                        None => problems.add(
                            format!("{field}.buttons"),
                            &buttons.span(),
                            format!(
                                "unknown quick reply {button:?}; use confirm, reschedule or cancel"
                            ),
                        ),
                    }
                }
            }
            let name = template_ref.name.get_ref().trim().to_string();
            if name.is_empty() {
                problems.add(
                    format!("{field}.name"),
                    &template_ref.name.span(),
                    "must not be empty",
                );
            }
            parsed.insert(
                lang,
                TemplateRef {
                    name,
                    language_code: template_ref
                        .language_code
                        .as_ref()
                        .map_or_else(|| lang.code().to_string(), |c| c.get_ref().clone()),
                    parameters,
                    quick_replies,
                },
            );
        }
        for lang in languages {
            if parsed.get(*lang).is_none() {
                problems.add(
                    format!("templates.{key}.{}", lang.code()),
                    &by_lang.span(),
                    format!("missing language {}: the business speaks it", lang.code()),
                );
            }
        }
        templates.insert(purpose, parsed);
    }
    for purpose in TemplatePurpose::ALL {
        if !templates.contains_key(&purpose) {
            problems.add(
                format!("templates.{}", purpose.key()),
                &raw.span(),
                "missing: needed for messages outside the 24-hour window",
            );
        }
    }
    templates
}

fn parameter_names(purpose: TemplatePurpose) -> &'static str {
    match purpose {
        TemplatePurpose::Reminder => "customer name, date and time, service",
        TemplatePurpose::HoldExpired => "customer name, date and time",
        TemplatePurpose::FollowUp => "customer name, service",
        TemplatePurpose::Reopen => "customer name",
    }
}
