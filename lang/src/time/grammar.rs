//! Atoms of the time grammar, recognised at token positions.
//!
//! Each recogniser takes a token index and returns the atom and the index after it, or
//! None. Recognisers are tried longest-first at every position; words are compared after
//! normalisation, with typo tolerance for long words ("wensday", "tommorow").

use chrono::Weekday;

use super::{
    AmPm, Connector, DateSpec, DurationUnit, PartOfDay, Relative, Span, TimeOfDay, WeekdayModifier,
};
use crate::model::Grain;
use crate::numbers::{NumberMatch, number_at, ordinal_at};
use crate::tokens::{Token, fuzzy_eq};

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Atom {
    Date(DateSpec),
    Time(TimeOfDay),
    /// A part of the day; `marked` when introduced by an article or demonstrative ("por la
    /// tarde", "in the morning"), so a lone "tarde" ("llego tarde") can be ignored.
    Part {
        part: PartOfDay,
        marked: bool,
    },
    /// "tonight", "esta mañana": a day and a part of it in one word group.
    DatePart(DateSpec, PartOfDay),
    /// "13 a 15 de julio", "July 13-15".
    DateRange(DateSpec, DateSpec),
    Relative(Relative),
    Connector(Connector),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Placed {
    pub atom: Atom,
    pub first: usize,
    pub end: usize,
}

pub(crate) struct Grammar<'t> {
    t: &'t [Token],
    day_first: bool,
    /// Month and weekday read from each token with typo tolerance, computed once: the
    /// recognisers ask about the same token many times.
    fuzzy_month: Vec<Option<u32>>,
    fuzzy_weekday: Vec<Option<Weekday>>,
}

/// Everyday words one letter away from a month name ("¿a qué hora abrís?" is not April).
const NOT_MONTHS: &[&str] = &[
    "abris", "abrir", "mayor", "marco", "junta", "junto", "julia",
];

fn fuzzy_month_of(token: &Token) -> Option<u32> {
    if !token.is_word() || token.text.len() < 5 || NOT_MONTHS.contains(&token.text.as_str()) {
        return None;
    }
    MONTHS
        .iter()
        .chain(MESES.iter())
        .find(|(name, _)| name.len() >= 5 && fuzzy_eq(token, name))
        .map(|(_, m)| *m)
}

fn fuzzy_weekday_of(token: &Token) -> Option<Weekday> {
    if !token.is_word() || token.text.len() < 5 {
        return None;
    }
    WEEKDAYS
        .iter()
        .find(|(name, _)| fuzzy_eq(token, name))
        .map(|(_, d)| *d)
}

/// Scans the tokens and returns the atoms found, left to right, never overlapping.
pub(crate) fn atoms(tokens: &[Token], day_first: bool) -> Vec<Placed> {
    let g = Grammar {
        fuzzy_month: tokens.iter().map(fuzzy_month_of).collect(),
        fuzzy_weekday: tokens.iter().map(fuzzy_weekday_of).collect(),
        t: tokens,
        day_first,
    };
    let mut out: Vec<Placed> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let after_connector = out
            .last()
            .is_some_and(|p| p.end == i && matches!(p.atom, Atom::Connector(_)));
        let after_time = out
            .last()
            .is_some_and(|p| p.end == i && matches!(p.atom, Atom::Time(_)));
        let after_date = out
            .last()
            .is_some_and(|p| p.end == i && matches!(p.atom, Atom::Date(_)));
        let closing = if after_time {
            g.range_closer_at(i)
        } else if after_date {
            g.date_range_closer_at(i)
        } else {
            None
        };
        if let Some((atom, end)) = closing.or_else(|| g.atom_at(i, after_connector))
            && end > i
        {
            out.push(Placed {
                atom,
                first: i,
                end,
            });
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

const MONTHS: [(&str, u32); 12] = [
    ("january", 1),
    ("february", 2),
    ("march", 3),
    ("april", 4),
    ("may", 5),
    ("june", 6),
    ("july", 7),
    ("august", 8),
    ("september", 9),
    ("october", 10),
    ("november", 11),
    ("december", 12),
];

const MESES: [(&str, u32); 12] = [
    ("enero", 1),
    ("febrero", 2),
    ("marzo", 3),
    ("abril", 4),
    ("mayo", 5),
    ("junio", 6),
    ("julio", 7),
    ("agosto", 8),
    ("septiembre", 9),
    ("octubre", 10),
    ("noviembre", 11),
    ("diciembre", 12),
];

/// Abbreviations that are also everyday words ("may", "mar", "ago"): months only next to a
/// day number.
fn month_abbreviation(w: &str) -> Option<(u32, bool)> {
    Some(match w {
        "jan" | "ene" => (1, true),
        "feb" => (2, true),
        "mar" => (3, false),
        "apr" | "abr" => (4, true),
        "may" => (5, false),
        "jun" => (6, true),
        "jul" => (7, true),
        "aug" => (8, true),
        "ago" => (8, false),
        "sep" | "sept" | "set" | "setiembre" => (9, true),
        "oct" => (10, true),
        "nov" => (11, true),
        "dec" | "dic" => (12, true),
        _ => return None,
    })
}

const WEEKDAYS: [(&str, Weekday); 14] = [
    ("monday", Weekday::Mon),
    ("tuesday", Weekday::Tue),
    ("wednesday", Weekday::Wed),
    ("thursday", Weekday::Thu),
    ("friday", Weekday::Fri),
    ("saturday", Weekday::Sat),
    ("sunday", Weekday::Sun),
    ("lunes", Weekday::Mon),
    ("martes", Weekday::Tue),
    ("miercoles", Weekday::Wed),
    ("jueves", Weekday::Thu),
    ("viernes", Weekday::Fri),
    ("sabado", Weekday::Sat),
    ("domingo", Weekday::Sun),
];

/// Short forms; `safe` ones are not ordinary words and stand alone.
fn weekday_abbreviation(w: &str) -> Option<(Weekday, bool)> {
    Some(match w {
        "mon" | "lun" => (Weekday::Mon, true),
        "tue" | "tues" => (Weekday::Tue, true),
        "wed" | "weds" | "mie" | "mier" | "mierc" => (Weekday::Wed, true),
        "thu" | "thur" | "thurs" | "jue" => (Weekday::Thu, true),
        "fri" | "vie" => (Weekday::Fri, true),
        "sat" | "sab" => (Weekday::Sat, false),
        "sun" | "dom" => (Weekday::Sun, false),
        _ => return None,
    })
}

impl<'t> Grammar<'t> {
    fn tok(&self, i: usize) -> Option<&'t Token> {
        self.t.get(i)
    }

    fn word(&self, i: usize) -> &'t str {
        match self.t.get(i) {
            Some(t) if t.is_word() => t.text.as_str(),
            _ => "",
        }
    }

    fn is(&self, i: usize, w: &str) -> bool {
        self.word(i) == w
    }

    fn is_any(&self, i: usize, ws: &[&str]) -> bool {
        let w = self.word(i);
        !w.is_empty() && ws.contains(&w)
    }

    fn punct(&self, i: usize, c: char) -> bool {
        self.t.get(i).is_some_and(|t| t.is_punct(c))
    }

    fn glued(&self, i: usize) -> bool {
        self.t.get(i).is_some_and(|t| !t.spaced)
    }

    fn fuzzy(&self, i: usize, key: &str) -> bool {
        self.t
            .get(i)
            .is_some_and(|t| t.is_word() && fuzzy_eq(t, key))
    }

    /// Matches a sequence of words starting at `i`, returning the index after it.
    fn seq(&self, i: usize, words: &[&str]) -> Option<usize> {
        for (k, w) in words.iter().enumerate() {
            if !self.is(i + k, w) {
                return None;
            }
        }
        Some(i + words.len())
    }

    /// Skips any of the given words (at most `max` of them).
    fn skip(&self, mut i: usize, words: &[&str], max: usize) -> usize {
        let mut n = 0;
        while n < max && self.is_any(i, words) {
            i += 1;
            n += 1;
        }
        i
    }

    fn atom_at(&self, i: usize, after_connector: bool) -> Option<(Atom, usize)> {
        let token = self.tok(i)?;
        if token.is_punct(',') || token.is_punct('?') || token.is_punct('!') {
            return None;
        }
        if let Some(found) = self.relative_at(i) {
            return Some(found);
        }
        if let Some((a, b, end)) = self.day_range_at(i) {
            return Some((Atom::DateRange(a, b), end));
        }
        if let Some(found) = self.date_part_at(i) {
            return Some(found);
        }
        // A time with an explicit cue beats a date reading of the same digits ("15.30").
        let time = self.time_at(i, after_connector);
        let date = self.date_at(i);
        match (time, date) {
            (Some((t, te)), Some((d, de))) => {
                if de > te || (de == te && !self.time_is_explicit(i, te)) {
                    return Some((Atom::Date(d), de));
                }
                return Some((Atom::Time(t), te));
            }
            (Some((t, te)), None) => return Some((Atom::Time(t), te)),
            (None, Some((d, de))) => return Some((Atom::Date(d), de)),
            (None, None) => {}
        }
        if let Some((part, marked, end)) = self.part_of_day_at(i) {
            return Some((Atom::Part { part, marked }, end));
        }
        self.connector_at(i)
            .map(|(c, end)| (Atom::Connector(c), end))
    }

    /// After a time, "a", "al" and "hasta" close a range ("de 9 a 11") rather than
    /// introduce a new time.
    fn range_closer_at(&self, i: usize) -> Option<(Atom, usize)> {
        self.time_at(self.skip(i + 1, &["las", "la"], 1), true)?;
        self.range_closer_word(i)
    }

    /// After a date, "a", "al" and "hasta" close a date range ("21 de dic. a 6 de ene").
    fn date_range_closer_at(&self, i: usize) -> Option<(Atom, usize)> {
        let (date, _) = self.date_at(i + 1)?;
        if !date.is_day() {
            return None;
        }
        self.range_closer_word(i)
    }

    fn range_closer_word(&self, i: usize) -> Option<(Atom, usize)> {
        match self.word(i) {
            "a" | "al" => Some((Atom::Connector(Connector::WeakTo), i + 1)),
            "hasta" | "to" | "till" | "until" | "til" => {
                Some((Atom::Connector(Connector::To), i + 1))
            }
            _ => None,
        }
    }

    fn time_is_explicit(&self, i: usize, end: usize) -> bool {
        (i..end).any(|k| self.punct(k, ':') || self.is_any(k, &["am", "pm", "h", "las", "at"]))
    }

    // ----- connectors -------------------------------------------------------------------

    fn connector_at(&self, i: usize) -> Option<(Connector, usize)> {
        let w = self.word(i);
        if let Some(t) = self.tok(i)
            && (t.is_punct('-') || t.text == "–" || t.text == "—")
        {
            return Some((Connector::To, i + 1));
        }
        let found = match w {
            "between" | "btw" | "btwn" | "betwen" | "entre" => (Connector::Between, i + 1),
            "and" | "y" | "&" => (Connector::And, i + 1),
            "from" | "desde" => (Connector::From, self.skip(i + 1, &["las", "la", "el"], 1)),
            "de" | "del" => (Connector::WeakFrom, i + 1),
            "to" => (Connector::Target, i + 1),
            "till" | "til" | "until" | "untill" | "thru" | "through" | "hasta" => {
                (Connector::To, self.skip(i + 1, &["las", "la", "el"], 1))
            }
            "a" | "al" => (Connector::WeakTo, self.skip(i + 1, &["las", "la"], 1)),
            "after" | "since" | "past" => (Connector::After, i + 1),
            "before" | "by" => (Connector::Before, i + 1),
            "later" if self.is(i + 1, "than") => (Connector::After, i + 2),
            "earlier" if self.is(i + 1, "than") => (Connector::Before, i + 2),
            "no" if self.seq(i + 1, &["later", "than"]).is_some() => (Connector::Before, i + 3),
            "despues" | "luego" if self.is_any(i + 1, &["de", "del"]) => {
                (Connector::After, self.skip(i + 2, &["las", "la", "el"], 1))
            }
            "antes" if self.is_any(i + 1, &["de", "del"]) => {
                (Connector::Before, self.skip(i + 2, &["las", "la", "el"], 1))
            }
            "pasadas" | "pasada" if self.is_any(i + 1, &["las", "la"]) => (Connector::After, i + 2),
            "partir" if i > 0 && self.is(i - 1, "a") && self.is_any(i + 1, &["de", "del"]) => {
                (Connector::After, self.skip(i + 2, &["las", "la", "el"], 1))
            }
            _ => return None,
        };
        Some(found)
    }

    // ----- relative expressions -----------------------------------------------------------

    fn relative_at(&self, i: usize) -> Option<(Atom, usize)> {
        let w = self.word(i);
        // "now", "right now", "ahora (mismo)".
        match w {
            "now" | "ahora" | "ahorita" | "asap" => {
                let mut end = i + 1;
                if self.is(end, "mismo") {
                    end += 1;
                }
                // "a partir de ahora" and "from now" belong to a duration before them.
                if i > 0 && self.is_any(i - 1, &["from", "de", "desde"]) {
                    return None;
                }
                return Some((Atom::Relative(Relative::Now), end));
            }
            "right" | "just" if self.is(i + 1, "now") => {
                return Some((Atom::Relative(Relative::Now), i + 2));
            }
            "cuanto" if self.is(i + 1, "antes") => {
                return Some((Atom::Relative(Relative::Now), i + 2));
            }
            _ => {}
        }
        // Prefix forms.
        let prefixed = match w {
            "in" | "en" => Some((RelKind::In, i + 1)),
            "within" => Some((RelKind::Within, i + 1)),
            "dentro" if self.is(i + 1, "de") => Some((RelKind::Within, i + 2)),
            "hace" => Some((RelKind::Ago, i + 1)),
            "after" => Some((RelKind::After, i + 1)),
            "despues" if self.is(i + 1, "de") => Some((RelKind::After, i + 2)),
            "next" | "proximos" | "proximas" | "siguientes" => Some((RelKind::Next, i + 1)),
            "the" | "los" | "las"
                if self.is_any(i + 1, &["next", "proximos", "proximas", "siguientes"]) =>
            {
                Some((RelKind::Next, i + 2))
            }
            "last" | "past" | "pasados" | "pasadas" | "ultimos" | "ultimas" => {
                Some((RelKind::Last, i + 1))
            }
            "the" | "los" | "las"
                if self.is_any(
                    i + 1,
                    &["last", "past", "ultimos", "ultimas", "pasados", "pasadas"],
                ) =>
            {
                Some((RelKind::Last, i + 2))
            }
            _ => None,
        };
        if let Some((kind, j)) = prefixed {
            let j = self.skip(
                j,
                &[
                    "about",
                    "around",
                    "approximately",
                    "unos",
                    "unas",
                    "aproximadamente",
                    "more",
                ],
                1,
            );
            match kind {
                RelKind::Next | RelKind::Last => {
                    let (n, unit, end) = self.count_units_at(j)?;
                    let rel = if kind == RelKind::Next {
                        Relative::NextUnits(n, unit)
                    } else {
                        Relative::LastUnits(n, unit)
                    };
                    return Some((Atom::Relative(rel), end));
                }
                _ => {
                    if let Some((span, end)) = self.span_at(j) {
                        let rel = match kind {
                            RelKind::In => Relative::In(span),
                            RelKind::Within => Relative::Within(span),
                            RelKind::Ago => Relative::Ago(span),
                            _ => Relative::AfterSpan(span),
                        };
                        return Some((Atom::Relative(rel), end));
                    }
                    // Duckling reads "in 15" as fifteen minutes; only at the end of a message.
                    if kind == RelKind::In
                        && let Some(m) = number_at(self.t, j)
                        && !m.in_words
                        && (5..=59).contains(&m.value)
                        && self.at_end(m.next)
                    {
                        let span = Span {
                            amount: f64::from(m.value),
                            unit: DurationUnit::Minute,
                        };
                        return Some((Atom::Relative(Relative::In(span)), m.next));
                    }
                    return None;
                }
            }
        }
        // "3 próximas semanas", "3 semanas que vienen", "dos pasados meses".
        if let Some(m) = number_at(self.t, i) {
            let j = m.next;
            if self.is_any(j, &["proximas", "proximos", "siguientes"])
                && let Some(unit) = self.unit_at(j + 1)
            {
                return Some((Atom::Relative(Relative::NextUnits(m.value, unit.0)), unit.1));
            }
            if self.is_any(j, &["pasados", "pasadas", "ultimos", "ultimas"])
                && let Some(unit) = self.unit_at(j + 1)
            {
                return Some((Atom::Relative(Relative::LastUnits(m.value, unit.0)), unit.1));
            }
            if let Some((unit, k)) = self.unit_at(j)
                && let Some(end) = self.seq(k, &["que", "vienen"])
            {
                return Some((Atom::Relative(Relative::NextUnits(m.value, unit)), end));
            }
        }
        // Suffix forms: "2 hours from now", "two weeks ago", "7 days hence".
        let (span, j) = self.span_at(i)?;
        if let Some(end) = self
            .seq(j, &["from", "now"])
            .or_else(|| self.seq(j, &["from", "right", "now"]))
        {
            return Some((Atom::Relative(Relative::In(span)), end));
        }
        if let Some(end) = self
            .seq(j, &["a", "partir", "de", "ahora"])
            .or_else(|| self.seq(j, &["desde", "ahora"]))
            .or_else(|| self.seq(j, &["hence"]))
            .or_else(|| self.seq(j, &["later"]))
            .or_else(|| self.seq(j, &["mas", "tarde"]))
        {
            return Some((Atom::Relative(Relative::In(span)), end));
        }
        if self.is(j, "ago") {
            return Some((Atom::Relative(Relative::Ago(span)), j + 1));
        }
        None
    }

    fn at_end(&self, i: usize) -> bool {
        (i..self.t.len()).all(|k| {
            self.t
                .get(k)
                .is_some_and(|t| !t.is_word() && !t.is_number())
        })
    }

    fn unit_at(&self, i: usize) -> Option<(DurationUnit, usize)> {
        let w = self.word(i);
        let unit = match w {
            "minute" | "minutes" | "min" | "mins" | "minuto" | "minutos" | "minutitos"
            | "minutito" | "m" => DurationUnit::Minute,
            "hour" | "hours" | "hr" | "hrs" | "h" | "hora" | "horas" | "horitas" => {
                DurationUnit::Hour
            }
            "day" | "days" | "dia" | "dias" => DurationUnit::Day,
            "week" | "weeks" | "semana" | "semanas" | "wk" | "wks" => DurationUnit::Week,
            "month" | "months" | "mes" | "meses" => DurationUnit::Month,
            "year" | "years" | "yr" | "yrs" | "ano" | "anos" => DurationUnit::Year,
            _ => return None,
        };
        Some((unit, i + 1))
    }

    /// "3 days", "three weeks", "few days" for next/last N units.
    fn count_units_at(&self, i: usize) -> Option<(u32, DurationUnit, usize)> {
        if self.is_any(i, &["few", "couple"]) {
            let n = if self.is(i, "few") { 3 } else { 2 };
            let j = self.skip(i + 1, &["of"], 1);
            let (unit, end) = self.unit_at(j)?;
            return Some((n, unit, end));
        }
        let m = number_at(self.t, i)?;
        if m.value == 0 || m.value > 1000 {
            return None;
        }
        let (unit, end) = self.unit_at(m.next)?;
        Some((m.value, unit, end))
    }

    /// A length of time: "2 hours", "an hour and a half", "media hora", "1/2h", "2.5 hours".
    fn span_at(&self, i: usize) -> Option<(Span, usize)> {
        let minutes = |amount: f64| Span {
            amount,
            unit: DurationUnit::Minute,
        };
        // Fractions of an hour.
        let j = self.skip(i, &["a", "an", "un", "una"], 1);
        if let Some(end) = self
            .seq(j, &["half", "an", "hour"])
            .or_else(|| self.seq(j, &["half", "hour"]))
            .or_else(|| self.seq(j, &["media", "hora"]))
        {
            return Some((minutes(30.0), end));
        }
        if let Some(end) = self
            .seq(j, &["quarter", "of", "an", "hour"])
            .or_else(|| self.seq(j, &["quarter", "hour"]))
            .or_else(|| self.seq(j, &["cuarto", "de", "hora"]))
        {
            return Some((minutes(15.0), end));
        }
        if let Some(m) = number_at(self.t, i)
            && m.value == 3
            && let Some(end) = self
                .seq(m.next, &["quarters", "of", "an", "hour"])
                .or_else(|| {
                    if self.punct(m.next, '-') {
                        self.seq(m.next + 1, &["quarters", "of", "an", "hour"])
                    } else {
                        None
                    }
                })
                .or_else(|| self.seq(m.next, &["cuartos", "de", "hora"]))
        {
            return Some((minutes(45.0), end));
        }
        // "1/2 h", "3/4 hour".
        if let (Some(a), true, Some(b)) = (self.tok(i), self.punct(i + 1, '/'), self.tok(i + 2))
            && a.is_number()
            && b.is_number()
            && b.value != 0
            && a.value < b.value
            && let Some((DurationUnit::Hour, end)) = self.unit_at(i + 3)
        {
            return Some((minutes(60.0 * f64::from(a.value) / f64::from(b.value)), end));
        }
        // "an hour and a half", "hora y media", "una hora y media".
        if let Some((DurationUnit::Hour, k)) = self.unit_at(j)
            && (j > i || self.is(i, "hora"))
            && let Some(end) = self
                .seq(k, &["and", "a", "half"])
                .or_else(|| self.seq(k, &["y", "media"]))
        {
            return Some((minutes(90.0), end));
        }
        // Amount then unit.
        let (amount, j) = self.amount_at(i)?;
        let j = self.skip(j, &["more", "mas", "extra"], 1);
        let (unit, mut end) = self.unit_at(j)?;
        let mut amount = amount;
        if let Some(e) = self
            .seq(end, &["and", "a", "half"])
            .or_else(|| self.seq(end, &["y", "media"]))
        {
            amount += 0.5;
            end = e;
        }
        if amount <= 0.0 || amount > 10_000.0 {
            return None;
        }
        Some((Span { amount, unit }, end))
    }

    fn amount_at(&self, i: usize) -> Option<(f64, usize)> {
        match self.word(i) {
            "a" | "an" | "un" | "una" if self.is_any(i + 1, &["couple", "pair"]) => {
                return Some((2.0, self.skip(i + 2, &["of"], 1)));
            }
            "a" | "an" | "un" | "una" if self.is_any(i + 1, &["few"]) => return Some((3.0, i + 2)),
            "a" | "an" => return Some((1.0, i + 1)),
            "couple" | "pair" => return Some((2.0, self.skip(i + 1, &["of"], 1))),
            "few" | "unos" | "unas" if self.unit_at(i + 1).is_some() => return Some((3.0, i + 1)),
            "unos" | "unas" if self.is_any(i + 1, &["pocos", "pocas"]) => {
                return Some((3.0, i + 2));
            }
            "par" if i > 0 && self.is(i - 1, "un") => {
                return Some((2.0, self.skip(i + 1, &["de"], 1)));
            }
            "un" | "una" if self.is(i + 1, "par") => {
                return Some((2.0, self.skip(i + 2, &["de"], 1)));
            }
            _ => {}
        }
        let m = number_at(self.t, i)?;
        // "2.5 hours", "2,5 horas".
        if !m.in_words
            && (self.punct(m.next, '.') || self.punct(m.next, ','))
            && self.glued(m.next)
            && self.glued(m.next + 1)
            && let Some(frac) = self
                .tok(m.next + 1)
                .filter(|t| t.is_number() && t.digits <= 2)
        {
            let scale = if frac.digits == 1 { 10.0 } else { 100.0 };
            return Some((
                f64::from(m.value) + f64::from(frac.value) / scale,
                m.next + 2,
            ));
        }
        // "2 and a half hours".
        if let Some(end) = self
            .seq(m.next, &["and", "a", "half"])
            .or_else(|| self.seq(m.next, &["and", "an", "half"]))
        {
            return Some((f64::from(m.value) + 0.5, end));
        }
        Some((f64::from(m.value), m.next))
    }

    // ----- parts of the day -----------------------------------------------------------------

    fn part_word(&self, i: usize) -> Option<PartOfDay> {
        let token = self.tok(i).filter(|t| t.is_word())?;
        let w = token
            .text
            .strip_suffix("ish")
            .filter(|s| s.len() > 4)
            .unwrap_or(&token.text);
        Some(match w {
            "morning" | "mornings" | "morn" | "mornin" => PartOfDay::Morning,
            "afternoon" | "afternoons" | "arvo" | "tarde" | "tardes" | "tardecita" => {
                PartOfDay::Afternoon
            }
            "evening" | "evenings" | "eve" => PartOfDay::Evening,
            "night" | "nite" | "nights" | "noche" | "noches" | "nochecita" => PartOfDay::Night,
            "lunch" | "lunchtime" | "almuerzo" => PartOfDay::Lunch,
            "madrugada" => PartOfDay::SmallHours,
            "manana" | "mananas" => PartOfDay::Morning,
            _ if fuzzy_eq(token, "afternoon") => PartOfDay::Afternoon,
            _ if fuzzy_eq(token, "morning") => PartOfDay::Morning,
            _ if fuzzy_eq(token, "evening") => PartOfDay::Evening,
            _ => return None,
        })
    }

    /// Greetings that contain part-of-day words are not times.
    fn is_greeting_at(&self, i: usize) -> bool {
        i > 0 && self.is_any(i - 1, &["good", "buenas", "buenos", "buen", "gud"])
    }

    fn part_of_day_at(&self, i: usize) -> Option<(PartOfDay, bool, usize)> {
        // "after lunch", "después de comer".
        if let Some(end) = self
            .seq(i, &["after", "lunch"])
            .or_else(|| self.seq(i, &["despues", "de", "comer"]))
            .or_else(|| self.seq(i, &["despues", "del", "almuerzo"]))
            .or_else(|| self.seq(i, &["despues", "de", "almorzar"]))
            .or_else(|| self.seq(i, &["despues", "de", "la", "comida"]))
        {
            return Some((PartOfDay::AfterLunch, true, end));
        }
        if let Some(end) = self
            .seq(i, &["early", "morning"])
            .or_else(|| self.seq(i, &["early", "in", "the", "morning"]))
        {
            return Some((PartOfDay::EarlyMorning, true, end));
        }
        if let Some(end) = self
            .seq(i, &["a", "primera", "hora"])
            .or_else(|| self.seq(i, &["first", "thing"]))
        {
            return Some((PartOfDay::EarlyMorning, true, end));
        }
        if let Some(end) = self
            .seq(i, &["hora", "de", "comer"])
            .or_else(|| self.seq(i, &["la", "hora", "de", "comer"]))
            .or_else(|| self.seq(i, &["lunch", "time"]))
        {
            return Some((PartOfDay::Lunch, true, end));
        }
        // Articles and prepositions that mark a part of day.
        let marked_prefix: &[&[&str]] = &[
            &["in", "the"],
            &["during", "the"],
            &["por", "la"],
            &["por", "las"],
            &["de", "la"],
            &["en", "la"],
            &["a", "la"],
            &["durante", "la"],
            &["at"],
            &["the"],
            &["la"],
            &["las"],
        ];
        for prefix in marked_prefix {
            if let Some(j) = self.seq(i, prefix)
                && let Some(part) = self.part_word(j)
            {
                // "la mañana" is morning; "mañana" alone is tomorrow (handled as a date).
                return Some((part, true, j + 1));
            }
        }
        if self.is_greeting_at(i) {
            return None;
        }
        let part = self.part_word(i)?;
        if self.is_any(i, &["manana", "mananas"]) {
            return None;
        }
        Some((part, false, i + 1))
    }

    /// "tonight", "this morning", "esta tarde", "anoche".
    fn date_part_at(&self, i: usize) -> Option<(Atom, usize)> {
        let w = self.word(i);
        let today = DateSpec::RelativeDay(0);
        match w {
            "tonight" | "tonite" | "2nite" | "tonigth" => {
                return Some((Atom::DatePart(today, PartOfDay::Evening), i + 1));
            }
            "anoche" => {
                return Some((
                    Atom::DatePart(DateSpec::RelativeDay(-1), PartOfDay::Evening),
                    i + 1,
                ));
            }
            "this" | "esta" | "este" => {
                if let Some(part) = self.part_word(i + 1) {
                    return Some((Atom::DatePart(today, part), i + 2));
                }
            }
            _ => {}
        }
        None
    }

    // ----- times of day -----------------------------------------------------------------

    /// A time of day. `allow_bare` accepts a number with no cue, as after "between".
    pub(crate) fn time_at(&self, i: usize, allow_bare: bool) -> Option<(TimeOfDay, usize)> {
        let (cued, j) = self.time_prefix(i);
        if j > i && self.time_prefix_is_weak(i, j) && !self.time_core_follows(j) {
            return None;
        }
        let (mut time, mut end, mut explicit) = self.time_core(j, cued)?;
        // Suffixes, in any order: "3 oclock am", "3ish pm", "07:00 PM".
        for _ in 0..3 {
            if let Some((ampm, e)) = self.ampm_at(end) {
                if time.ampm.is_some() || time.hour > 12 || (time.hour == 0 && ampm == AmPm::Pm) {
                    return None;
                }
                time.ampm = Some(ampm);
                // "07:00 PM": the marker overrides the leading zero.
                time.fixed = false;
                end = e;
                explicit = true;
            } else if let Some(e) = self
                .seq(end, &["oclock"])
                .or_else(|| self.seq(end, &["o", "clock"]))
                .or_else(|| self.seq(end, &["en", "punto"]))
            {
                end = e;
                explicit = true;
            } else if self.is_any(end, &["h", "hs", "hrs"]) && self.glued(end) {
                end += 1;
                explicit = true;
            } else if (cued && self.is_any(end, &["horas", "hours", "hrs"]))
                || self.is_any(end, &["ish", "approximately", "aprox", "aproximadamente"])
            {
                end += 1;
            } else {
                break;
            }
        }
        if !(cued || explicit) {
            // A following part of day is a cue ("5 de la tarde", "8 tonight").
            let part_follows = self
                .part_of_day_at(end)
                .is_some_and(|(_, marked, _)| marked)
                || self.date_part_at(end).is_some()
                || self.is_any(end, &["tonight", "tonite"]);
            if !(allow_bare || part_follows || self.range_partner_follows(end)) {
                return None;
            }
            time.bare = !part_follows;
        }
        if time.hour > 24 || time.minute > 59 {
            return None;
        }
        if time.hour == 24 {
            time.hour = 0;
            time.fixed = true;
        }
        Some((time, end))
    }

    /// "3" in "3-4pm" or "3 to 5pm" becomes a time because a cued time closes the range.
    fn range_partner_follows(&self, i: usize) -> bool {
        let is_to = self.punct(i, '-')
            || self.is_any(
                i,
                &[
                    "to", "till", "til", "until", "a", "hasta", "and", "y", "thru",
                ],
            );
        if !is_to {
            return false;
        }
        let j = self.skip(i + 1, &["las", "la"], 1);
        self.time_at(j, false).is_some()
    }

    /// Words that introduce a time: "at", "a las", "@", "sobre las", "around".
    fn time_prefix(&self, i: usize) -> (bool, usize) {
        let mut j = i;
        let mut cued = false;
        for _ in 0..3 {
            let w = self.word(j);
            let next_is_time_word = number_at(self.t, j + 1).is_some()
                || self.is_any(
                    j + 1,
                    &[
                        "las",
                        "la",
                        "noon",
                        "midnight",
                        "mediodia",
                        "medianoche",
                        "half",
                        "quarter",
                    ],
                );
            match w {
                "at" | "around" | "approximately" | "approx" | "aprox" | "sobre" | "hacia"
                | "towards" | "round" => {
                    j += 1;
                    cued = true;
                }
                "a" if next_is_time_word && !self.is(j + 1, "a") => {
                    j += 1;
                    cued = true;
                }
                "las" if number_at(self.t, j + 1).is_some() => {
                    j += 1;
                    cued = true;
                }
                "la" if self.is(j + 1, "una") => {
                    j += 1;
                    cued = true;
                }
                "eso" if self.is(j + 1, "de") => {
                    j += 2;
                    cued = true;
                }
                _ => {
                    if self.tok(j).is_some_and(|t| t.text == "@") {
                        j += 1;
                        cued = true;
                    } else {
                        break;
                    }
                }
            }
        }
        (cued, j)
    }

    fn time_prefix_is_weak(&self, i: usize, j: usize) -> bool {
        j == i + 1 && self.is_any(i, &["a"])
    }

    fn time_core_follows(&self, j: usize) -> bool {
        number_at(self.t, j).is_some() || self.is_any(j, &["las", "la", "mediodia", "medianoche"])
    }

    fn ampm_at(&self, i: usize) -> Option<(AmPm, usize)> {
        let w = self.word(i);
        let (ampm, mut end) = match w {
            "am" => (AmPm::Am, i + 1),
            "pm" => (AmPm::Pm, i + 1),
            "a" | "p" if self.punct(i + 1, '.') && self.is(i + 2, "m") => {
                (if w == "a" { AmPm::Am } else { AmPm::Pm }, i + 3)
            }
            "a" | "p" if self.is(i + 1, "m") => (if w == "a" { AmPm::Am } else { AmPm::Pm }, i + 2),
            // "3:18a", "9p": single letters only when glued to the number.
            "a" | "p" if self.glued(i) && !self.is_word_continuing(i + 1) => {
                (if w == "a" { AmPm::Am } else { AmPm::Pm }, i + 1)
            }
            "in" if self.is(i + 1, "the") && self.is_any(i + 2, &["am", "pm"]) => (
                if self.is(i + 2, "am") {
                    AmPm::Am
                } else {
                    AmPm::Pm
                },
                i + 3,
            ),
            _ => return None,
        };
        if self.punct(end, '.') && self.glued(end) {
            end += 1;
        }
        Some((ampm, end))
    }

    fn is_word_continuing(&self, i: usize) -> bool {
        self.tok(i).is_some_and(|t| t.is_word() && !t.spaced)
    }

    /// The time proper, after any prefix. Returns the time, the end, and whether its form
    /// alone marks it as a time (a colon, "y media", "quarter past").
    fn time_core(&self, i: usize, cued: bool) -> Option<(TimeOfDay, usize, bool)> {
        let hour_time = |hour: u32, minute: u32, grain: Grain| TimeOfDay {
            hour,
            minute,
            ampm: None,
            fixed: false,
            grain,
            bare: false,
        };
        // Named times.
        match self.word(i) {
            "noon" | "midday" | "mediodia" => {
                return Some((
                    TimeOfDay {
                        fixed: true,
                        ..hour_time(12, 0, Grain::Hour)
                    },
                    i + 1,
                    true,
                ));
            }
            "medio" if self.is(i + 1, "dia") => {
                return Some((
                    TimeOfDay {
                        fixed: true,
                        ..hour_time(12, 0, Grain::Hour)
                    },
                    i + 2,
                    true,
                ));
            }
            "midnight" | "medianoche" => {
                return Some((
                    TimeOfDay {
                        fixed: true,
                        ..hour_time(0, 0, Grain::Hour)
                    },
                    i + 1,
                    true,
                ));
            }
            _ => {}
        }
        // "half past 3", "quarter to 5", "20 past 3", "ten to five", "half 4".
        if let Some(found) = self.minutes_relative_to_hour(i) {
            return Some(found);
        }
        let m = number_at(self.t, i)?;
        if m.in_words && (m.value > 24 || (!cued && m.value > 12)) {
            return None;
        }
        // "1030", "730": hour and minutes run together.
        if !m.in_words && (m.digits == 3 || m.digits == 4) {
            let (h, min) = (m.value / 100, m.value % 100);
            if h > 23 || min > 59 || !(cued || self.ampm_at(m.next).is_some()) {
                return None;
            }
            let fixed =
                m.digits == 4 && (h >= 13 || self.tok(i).is_some_and(|t| t.text.starts_with('0')));
            return Some((
                TimeOfDay {
                    fixed,
                    ..hour_time(h, min, Grain::Minute)
                },
                m.next,
                cued,
            ));
        }
        if !m.in_words && m.digits > 2 {
            return None;
        }
        let hour = m.value;
        if hour > 24 {
            return None;
        }
        let leading_zero =
            !m.in_words && m.digits == 2 && self.tok(i).is_some_and(|t| t.text.starts_with('0'));
        let fixed = hour >= 13 || hour == 0 || leading_zero;
        let j = m.next;
        // "10:30", "10.30", "10h30", "15:23:24".
        let separator = self.punct(j, ':')
            || (self.punct(j, '.') && self.glued(j))
            || (self.is(j, "h") && self.glued(j));
        if separator
            && let Some(min) = self
                .tok(j + 1)
                .filter(|t| t.is_number() && t.digits == 2 && t.value < 60)
            && (self.glued(j + 1) || self.punct(j, ':'))
        {
            // "1.3.2013" is a date, not 1:03.
            if self.punct(j, '.')
                && self.punct(j + 2, '.')
                && self.tok(j + 3).is_some_and(|t| t.is_number())
            {
                return None;
            }
            let mut end = j + 2;
            if self.punct(end, ':')
                && self
                    .tok(end + 1)
                    .is_some_and(|t| t.is_number() && t.digits == 2)
            {
                end += 2;
            }
            return Some((
                TimeOfDay {
                    fixed,
                    ..hour_time(hour, min.value, Grain::Minute)
                },
                end,
                true,
            ));
        }
        // Spanish minutes: "y media", "y cuarto", "y 20", "menos cuarto", "menos diez".
        if self.is(j, "y") || self.is(j, "and") {
            let k = j + 1;
            let minute_word = match self.word(k) {
                "media" | "half" => Some((30, k + 1)),
                "cuarto" | "quarter" => Some((15, k + 1)),
                "tres" | "3" if self.is_any(k + 1, &["cuartos", "cuarto"]) => Some((45, k + 2)),
                _ => None,
            };
            let minutes = minute_word.or_else(|| {
                if self.tok(k).is_some_and(|t| t.is_number()) && self.is(k, "3") {
                    return None;
                }
                let n = number_at(self.t, k).filter(|n| (1..60).contains(&n.value))?;
                // "entre las 4 y las 6" and "3 y 5" are ranges, not minutes.
                if !n.in_words
                    && n.value < 10
                    && n.digits == 1
                    && !self.is_any(n.next, &["min", "minutos", "minutes"])
                {
                    return None;
                }
                if n.in_words && n.value <= 12 && self.is(k, "una") {
                    return None;
                }
                let end = self.skip(n.next, &["min", "mins", "minutos", "minutes"], 1);
                // "las 3 y 10" vs "entre las 3 y 10"... a following "de la tarde" or nothing.
                Some((n.value, end))
            });
            if let Some((minute, end)) = minutes
                && (hour <= 12 || fixed)
            {
                // "between 3 and 15 people" is not 3:15; minutes after "y" need a Spanish
                // hour or a cue.
                let english_and = self.is(j, "and") && !matches!(self.word(k), "half" | "quarter");
                if !english_and {
                    return Some((
                        TimeOfDay {
                            fixed,
                            ..hour_time(hour, minute, Grain::Minute)
                        },
                        end,
                        true,
                    ));
                }
            }
        }
        if self.is(j, "menos") {
            let k = j + 1;
            let before = match self.word(k) {
                "cuarto" => Some((15, k + 1)),
                "media" => Some((30, k + 1)),
                _ => number_at(self.t, k)
                    .filter(|n| (1..60).contains(&n.value))
                    .map(|n| (n.value, self.skip(n.next, &["min", "minutos"], 1))),
            };
            if let Some((minutes, end)) = before
                && (1..=24).contains(&hour)
            {
                let prev = if hour == 0 { 23 } else { hour - 1 };
                return Some((
                    TimeOfDay {
                        fixed,
                        ..hour_time(prev, 60 - minutes, Grain::Minute)
                    },
                    end,
                    true,
                ));
            }
        }
        // English "three twenty", "at 3 15", "ten thirty am".
        if let Some(min) = number_at(self.t, j)
            && (10..60).contains(&min.value)
            && (min.in_words || min.digits == 2)
            && hour <= 12
            && (cued || self.ampm_at(min.next).is_some())
            && !self.is_any(
                min.next,
                &["minutes", "minutos", "min", "mins", "people", "personas"],
            )
        {
            return Some((
                TimeOfDay {
                    fixed,
                    ..hour_time(hour, min.value, Grain::Minute)
                },
                min.next,
                true,
            ));
        }
        if m.in_words && !cued && self.ampm_at(j).is_none() && !self.part_follows(j) {
            // Word numbers need a cue: "one" is usually a pronoun.
            return Some((hour_time(hour, 0, Grain::Hour), j, false));
        }
        Some((
            TimeOfDay {
                fixed,
                ..hour_time(hour, 0, Grain::Hour)
            },
            j,
            false,
        ))
    }

    fn part_follows(&self, i: usize) -> bool {
        self.part_of_day_at(i).is_some_and(|(_, marked, _)| marked)
    }

    fn hour_word_at(&self, i: usize) -> Option<(u32, usize, bool)> {
        match self.word(i) {
            "noon" | "mediodia" => return Some((12, i + 1, true)),
            "midnight" | "medianoche" => return Some((0, i + 1, true)),
            _ => {}
        }
        let m = number_at(self.t, i)?;
        if m.value > 12 || m.value == 0 || (!m.in_words && m.digits > 2) {
            return None;
        }
        Some((m.value, m.next, false))
    }

    fn minutes_relative_to_hour(&self, i: usize) -> Option<(TimeOfDay, usize, bool)> {
        let j = self.skip(i, &["a"], 1);
        let (minutes, k) = match self.word(j) {
            "half" => (30, j + 1),
            "quarter" => (15, j + 1),
            _ => {
                let m = number_at(self.t, j)?;
                if !(1..60).contains(&m.value) {
                    return None;
                }
                (
                    m.value,
                    self.skip(m.next, &["minutes", "minute", "mins", "min"], 1),
                )
            }
        };
        let direction = self.word(k);
        let (past, hour_index) = match direction {
            "past" | "after" => (true, k + 1),
            "to" | "til" | "till" | "before" | "of" => (false, k + 1),
            // British "half 4" is 4:30.
            _ if self.word(j) == "half" && j == i => (true, k),
            _ => return None,
        };
        // "from ten to five" is a range.
        if !past && i > 0 && self.is_any(i - 1, &["from", "between", "de", "desde"]) {
            return None;
        }
        let (hour, end, named) = self.hour_word_at(hour_index)?;
        // "5 to 10" with digits is a range unless the target is noon or midnight.
        if !past && !named && self.word(j) != "quarter" && self.word(j) != "half" {
            let m = number_at(self.t, j)?;
            if !m.in_words {
                return None;
            }
        }
        let time = if past {
            TimeOfDay {
                hour,
                minute: minutes,
                ampm: None,
                fixed: named,
                grain: Grain::Minute,
                bare: false,
            }
        } else {
            let prev = if hour == 0 { 23 } else { hour - 1 };
            TimeOfDay {
                hour: prev,
                minute: 60 - minutes,
                ampm: None,
                fixed: named,
                grain: Grain::Minute,
                bare: false,
            }
        };
        Some((time, end, true))
    }

    // ----- dates --------------------------------------------------------------------------

    fn month_at(&self, i: usize, need_safe: bool) -> Option<(u32, usize)> {
        let token = self.tok(i).filter(|t| t.is_word())?;
        let w = token.text.as_str();
        let mut end = i + 1;
        if self.punct(end, '.') && self.glued(end) {
            end += 1;
        }
        let cued = i > 0
            && self.is_any(
                i - 1,
                &[
                    "in", "en", "next", "of", "de", "this", "during", "durante", "until", "hasta",
                    "para", "for",
                ],
            );
        for (name, m) in MONTHS.iter().chain(MESES.iter()) {
            if w == *name {
                let safe = w != "may" || cued;
                if need_safe && !safe {
                    return None;
                }
                return Some((*m, end));
            }
        }
        if let Some((m, safe)) = month_abbreviation(w) {
            if need_safe && !(safe || (cued && w != "ago")) {
                return None;
            }
            return Some((m, end));
        }
        self.fuzzy_month.get(i).copied().flatten().map(|m| (m, end))
    }

    fn weekday_word(&self, i: usize) -> Option<(Weekday, bool, usize)> {
        let token = self.tok(i).filter(|t| t.is_word())?;
        let w = token.text.as_str();
        let mut end = i + 1;
        if self.punct(end, '.') && self.glued(end) {
            end += 1;
        }
        let base = w
            .strip_suffix('s')
            .filter(|b| b.ends_with("day"))
            .unwrap_or(w);
        for (name, d) in WEEKDAYS {
            if base == name {
                return Some((d, true, end));
            }
        }
        if let Some((d, safe)) = weekday_abbreviation(w) {
            return Some((d, safe, end));
        }
        self.fuzzy_weekday
            .get(i)
            .copied()
            .flatten()
            .map(|d| (d, true, end))
    }

    fn year_at(&self, i: usize) -> Option<(i32, usize)> {
        let j = self.skip(i, &["de", "del", "of"], 1);
        let j = if self.punct(j, ',') { j + 1 } else { j };
        let t = self.tok(j).filter(|t| t.is_number() && t.digits == 4)?;
        if !(1900..=2200).contains(&t.value) || self.punct(j + 1, ':') {
            return None;
        }
        Some((t.value as i32, j + 1))
    }

    /// A day-of-month number: "15", "15th", "1º", "primero", "cinco".
    fn day_number_at(&self, i: usize) -> Option<NumberMatch> {
        let m = ordinal_at(self.t, i).or_else(|| number_at(self.t, i))?;
        if !(1..=31).contains(&m.value) || (!m.in_words && m.digits > 2) {
            return None;
        }
        // "the second one" is a choice, not the 2nd.
        if self.is_any(m.next, &["one", "option", "opcion"]) {
            return None;
        }
        Some(m)
    }

    /// Numbers that are really times: "15:30", "3pm", "10h".
    fn looks_like_time_after(&self, i: usize) -> bool {
        self.punct(i, ':')
            || self.ampm_at(i).is_some()
            || (self.is_any(i, &["h", "hs"]) && self.glued(i))
            || self.is_any(i, &["oclock"])
    }

    fn date_at(&self, i: usize) -> Option<(DateSpec, usize)> {
        self.relative_day_at(i)
            .or_else(|| self.week_or_month_at(i))
            .or_else(|| self.weekday_at(i))
            .or_else(|| self.day_month_at(i))
            .or_else(|| self.month_day_at(i))
            .or_else(|| self.numeric_date_at(i))
            .or_else(|| self.day_of_month_at(i))
            .or_else(|| self.month_alone_at(i))
    }

    fn relative_day_at(&self, i: usize) -> Option<(DateSpec, usize)> {
        let rel = |d: i64, end: usize| Some((DateSpec::RelativeDay(d), end));
        let token = self.tok(i)?;
        // "2moro", "2morrow".
        if token.is_number()
            && token.value == 2
            && token.digits == 1
            && self.is_any(i + 1, &["morrow", "moro", "mrw", "morow", "mro"])
            && self.glued(i + 1)
        {
            return rel(1, i + 2);
        }
        if let Some(end) = self
            .seq(i, &["the", "day", "after", "tomorrow"])
            .or_else(|| self.seq(i, &["day", "after", "tomorrow"]))
            .or_else(|| self.seq(i, &["pasado", "manana"]))
            .or_else(|| self.seq(i, &["pasadomanana"]))
        {
            return rel(2, end);
        }
        if let Some(end) = self
            .seq(i, &["the", "day", "before", "yesterday"])
            .or_else(|| self.seq(i, &["day", "before", "yesterday"]))
            .or_else(|| self.seq(i, &["antes", "de", "ayer"]))
        {
            return rel(-2, end);
        }
        let w = self.word(i);
        match w {
            "today" | "hoy" | "tday" | "2day" | "todays" => return rel(0, i + 1),
            "tomorrow" | "tomorrows" | "tmrw" | "tmr" | "tmw" | "tmrow" | "tmoro" | "tomoro"
            | "tomorro" | "tomoz" | "tmro" => {
                return rel(1, i + 1);
            }
            "yesterday" | "ayer" => return rel(-1, i + 1),
            "anteayer" | "antier" => return rel(-2, i + 1),
            "manana" | "mnn" | "mana" => {
                // "la mañana", "de la mañana", "esta mañana" are mornings.
                if i > 0 && self.is_any(i - 1, &["la", "esta", "las", "buenas"]) {
                    return None;
                }
                return rel(1, i + 1);
            }
            _ => {}
        }
        if w.len() >= 6
            && (self.fuzzy(i, "tomorrow") || (self.fuzzy(i, "manana") && w != "mananas"))
        {
            return rel(1, i + 1);
        }
        None
    }

    fn week_or_month_at(&self, i: usize) -> Option<(DateSpec, usize)> {
        // English: "this week", "next week", "the following week", "this weekend".
        let (offset, j) = match self.word(i) {
            "this" if self.is(i + 1, "past") => (Some(-1), i + 2),
            "this" | "current" | "coming" => (Some(0), i + 1),
            "next" | "following" => (Some(1), i + 1),
            "last" | "past" | "previous" => (Some(-1), i + 1),
            "the" if self.is_any(i + 1, &["following", "next", "coming"]) => (Some(1), i + 2),
            "the" if self.is_any(i + 1, &["weekend", "wkend", "wknd"]) => (Some(0), i + 1),
            _ => (None, i),
        };
        if let Some(offset) = offset {
            if self.is_any(j, &["week", "wk"]) {
                if self.is(j + 1, "end") {
                    return Some((DateSpec::Weekend(offset), j + 2));
                }
                if self.punct(j + 1, '-') && self.is(j + 2, "end") {
                    return Some((DateSpec::Weekend(offset), j + 3));
                }
                if offset == 1 && self.seq(j + 1, &["after", "next"]).is_some() {
                    return Some((DateSpec::Week(2), j + 3));
                }
                return Some((DateSpec::Week(offset), j + 1));
            }
            if self.is_any(j, &["weekend", "wkend", "wknd", "weekends"]) || self.fuzzy(j, "weekend")
            {
                return Some((DateSpec::Weekend(offset), j + 1));
            }
            if self.is(j, "month") {
                return Some((DateSpec::RelativeMonth(offset), j + 1));
            }
            if offset == 1
                && let Some((month, end)) = self.month_at(j, false)
            {
                return Some((DateSpec::Month { month, year: None }, end));
            }
        }
        if let Some(end) = self
            .seq(i, &["week", "after", "next"])
            .or_else(|| self.seq(i, &["the", "week", "after", "next"]))
        {
            return Some((DateSpec::Week(2), end));
        }
        if self.is_any(i, &["weekend", "wkend", "wknd"])
            || (self.is(i, "week") && self.is(i + 1, "end"))
        {
            let end = if self.is(i, "week") { i + 2 } else { i + 1 };
            return Some((DateSpec::Weekend(0), end));
        }
        // Spanish: "esta semana", "la semana que viene", "la próxima semana", "el finde".
        let (es_offset, j) = match self.word(i) {
            "esta" | "este" => (Some(0), i + 1),
            "la" | "el" if self.is_any(i + 1, &["proxima", "proximo", "siguiente"]) => {
                (Some(1), i + 2)
            }
            "proxima" | "proximo" | "siguiente" => (Some(1), i + 1),
            "la" | "el" => (None, i + 1),
            _ => (None, i),
        };
        let after_noun = |end: usize, base: Option<i64>| -> (i64, usize) {
            if let Some(e) = self
                .seq(end, &["que", "viene"])
                .or_else(|| self.seq(end, &["proxima"]))
                .or_else(|| self.seq(end, &["proximo"]))
                .or_else(|| self.seq(end, &["siguiente"]))
            {
                return (1, e);
            }
            if let Some(e) = self
                .seq(end, &["pasada"])
                .or_else(|| self.seq(end, &["pasado"]))
            {
                return (-1, e);
            }
            (base.unwrap_or(0), end)
        };
        if self.is(j, "semana") {
            let (offset, end) = after_noun(j + 1, es_offset);
            if es_offset.is_none() && offset == 0 && !self.is(i, "la") {
                return None;
            }
            return Some((DateSpec::Week(offset), end));
        }
        let weekend_end = self
            .seq(j, &["fin", "de", "semana"])
            .or_else(|| self.seq(j, &["finde"]))
            .or_else(|| self.seq(j, &["fds"]))
            .or_else(|| self.seq(j, &["fin", "de", "finde"]))
            .or_else(|| self.seq(j, &["weekend"]));
        if let Some(end) = weekend_end {
            let (offset, end) = after_noun(end, es_offset);
            return Some((DateSpec::Weekend(offset), end));
        }
        if self.is(j, "mes") && (es_offset.is_some() || self.is_any(i, &["el"])) {
            let (offset, end) = after_noun(j + 1, es_offset);
            if es_offset.is_none() && offset == 0 {
                return None;
            }
            return Some((DateSpec::RelativeMonth(offset), end));
        }
        if self.seq(i, &["el", "pasado", "mes"]).is_some() {
            return Some((DateSpec::RelativeMonth(-1), i + 3));
        }
        None
    }

    fn weekday_at(&self, i: usize) -> Option<(DateSpec, usize)> {
        let (lead, j) = match self.word(i) {
            "this" | "este" | "esta" | "coming" => (Some(WeekdayModifier::This), i + 1),
            "next" | "proximo" | "proxima" | "siguiente" => (Some(WeekdayModifier::Next), i + 1),
            "el" | "the" if self.is_any(i + 1, &["proximo", "proxima", "next", "siguiente"]) => {
                (Some(WeekdayModifier::Next), i + 2)
            }
            "last" | "past" => (Some(WeekdayModifier::Last), i + 1),
            "around" if self.is(i + 1, "next") => (Some(WeekdayModifier::Next), i + 2),
            _ => (None, i),
        };
        let (weekday, safe, mut end) = self.weekday_word(j)?;
        let cue_before = lead.is_some()
            || (i > 0 && self.is_any(i - 1, &["on", "el", "los", "for", "this", "next", "every"]));
        let mut modifier = lead.unwrap_or(WeekdayModifier::Bare);
        // Trailing modifiers.
        let trailing: &[(&[&str], WeekdayModifier)] = &[
            (&["q", "viene"], WeekdayModifier::NextWeek),
            (&["k", "viene"], WeekdayModifier::NextWeek),
            (&["que", "viene"], WeekdayModifier::NextWeek),
            (
                &["de", "la", "semana", "que", "viene"],
                WeekdayModifier::NextWeek,
            ),
            (
                &["de", "la", "proxima", "semana"],
                WeekdayModifier::NextWeek,
            ),
            (
                &["de", "la", "semana", "proxima"],
                WeekdayModifier::NextWeek,
            ),
            (
                &["de", "la", "siguiente", "semana"],
                WeekdayModifier::NextWeek,
            ),
            (&["of", "next", "week"], WeekdayModifier::NextWeek),
            (&["next", "week"], WeekdayModifier::NextWeek),
            (&["proximo"], WeekdayModifier::NextWeek),
            (&["proxima"], WeekdayModifier::NextWeek),
            (&["after", "next"], WeekdayModifier::AfterNext),
            (&["of", "this", "week"], WeekdayModifier::ThisWeek),
            (&["this", "week"], WeekdayModifier::ThisWeek),
            (&["de", "esta", "semana"], WeekdayModifier::ThisWeek),
            (&["from", "last", "week"], WeekdayModifier::Last),
            (&["of", "last", "week"], WeekdayModifier::Last),
            (&["last", "week"], WeekdayModifier::Last),
            (&["de", "la", "semana", "pasada"], WeekdayModifier::Last),
            (&["pasado"], WeekdayModifier::Last),
        ];
        let mut trailing_found = false;
        for (words, m) in trailing {
            if let Some(e) = self.seq(end, words) {
                modifier = *m;
                end = e;
                trailing_found = true;
                break;
            }
        }
        // Trailing day of month: "Tuesday the 19th", "jue 15", "Thu 15th".
        let k = self.skip(end, &["the", "el"], 1);
        let k = if self.punct(k, ',') { k + 1 } else { k };
        if !trailing_found
            && let Some(m) = self.day_number_at(k)
            && !m.in_words
            && !self.looks_like_time_after(m.next)
            && !self.punct(m.next, '/')
            && !self.punct(m.next, '-')
            && !(self.punct(m.next, '.') && self.glued(m.next))
            && self
                .month_at(self.skip(m.next, &["de", "of"], 1), false)
                .is_none()
            && (k > end || self.tok(k).is_some_and(|t| t.is_number()))
            && !(i > 0 && self.is_any(k.saturating_sub(1), &["a", "las"]))
        {
            return Some((
                DateSpec::DayOfMonth {
                    day: m.value,
                    weekday: Some(weekday),
                },
                m.next,
            ));
        }
        if !safe && !cue_before && !trailing_found {
            // "sat"/"sun"/"dom" alone are usually not weekdays; accept them only next to a time.
            let time_follows = self
                .time_at(self.skip(end, &["at", "a", "@"], 1), false)
                .is_some();
            if !time_follows {
                return None;
            }
        }
        Some((DateSpec::Weekday { weekday, modifier }, end))
    }

    /// "15 de enero", "the 1st of march", "15th february", "14april 2015", "el cinco de mayo".
    fn day_month_at(&self, i: usize) -> Option<(DateSpec, usize)> {
        let j = self.skip(i, &["the", "el", "on"], 2);
        let j = self.skip(j, &["dia"], 1);
        let m = self.day_number_at(j)?;
        let k = self.skip(m.next, &["de", "of"], 1);
        let (month, end) = self.month_at(k, false)?;
        let (year, end) = match self.year_at(end) {
            Some((y, e)) => (Some(y), e),
            None => (None, end),
        };
        Some((
            DateSpec::MonthDay {
                month,
                day: m.value,
                year,
                weekday: None,
            },
            end,
        ))
    }

    /// "march 3", "February the 15th", "Jan 15th, 2026", "mayo 5 del 2013", "march first".
    fn month_day_at(&self, i: usize) -> Option<(DateSpec, usize)> {
        let (month, j) = self.month_at(i, false)?;
        let k = self.skip(j, &["the"], 1);
        let m = self.day_number_at(k)?;
        if self.looks_like_time_after(m.next)
            || (m.in_words && !self.is(k, "the") && ordinal_at(self.t, k).is_none())
        {
            return None;
        }
        let (year, end) = match self.year_at(m.next) {
            Some((y, e)) => (Some(y), e),
            None => (None, m.next),
        };
        Some((
            DateSpec::MonthDay {
                month,
                day: m.value,
                year,
                weekday: None,
            },
            end,
        ))
    }

    fn numeric_date_at(&self, i: usize) -> Option<(DateSpec, usize)> {
        let a = self.tok(i).filter(|t| t.is_number())?;
        let sep = self
            .tok(i + 1)
            .filter(|t| t.is_punct('/') || t.is_punct('-') || t.is_punct('.'))?;
        let sep_char = sep.text.chars().next()?;
        let b = self.tok(i + 2).filter(|t| t.is_number())?;
        let spaced = sep.spaced || b.spaced;
        // ISO: 2026-01-15.
        if a.digits == 4 {
            let c = self.tok(i + 4).filter(|t| t.is_number())?;
            if !self.punct(i + 3, sep_char) {
                return None;
            }
            return Some((
                DateSpec::MonthDay {
                    month: b.value,
                    day: c.value,
                    year: Some(a.value as i32),
                    weekday: None,
                },
                i + 5,
            ));
        }
        if a.digits > 2 || b.digits > 2 {
            return None;
        }
        // Third part: a year.
        let mut year = None;
        let mut end = i + 3;
        if self.punct(i + 3, sep_char)
            && let Some(c) = self.tok(i + 4).filter(|t| t.is_number())
            && self.tok(i + 3).is_some_and(|t| t.spaced) == spaced
        {
            year = Some(match c.digits {
                2 => {
                    if c.value < 50 {
                        2000 + c.value as i32
                    } else {
                        1900 + c.value as i32
                    }
                }
                4 => c.value as i32,
                _ => return None,
            });
            end = i + 5;
        }
        if year.is_none() {
            // "10.30" and "3-4pm" are times; "9-11am" a time range.
            if sep_char == '.' {
                return None;
            }
            if self.looks_like_time_after(i + 3) || self.part_follows(i + 3) {
                return None;
            }
            if sep_char == '-'
                && i > 0
                && self.is_any(
                    i - 1,
                    &["between", "from", "entre", "de", "desde", "at", "a", "las"],
                )
            {
                return None;
            }
            if spaced && sep_char == '-' {
                return None;
            }
        }
        let (x, y) = (a.value, b.value);
        let (day, month) = if self.day_first { (x, y) } else { (y, x) };
        let (day, month) = if month > 12 && day <= 12 {
            (month, day)
        } else {
            (day, month)
        };
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return None;
        }
        Some((
            DateSpec::MonthDay {
                month,
                day,
                year,
                weekday: None,
            },
            end,
        ))
    }

    /// "el 3", "the 15th", "on the 1st", "el día 20", "al 15".
    fn day_of_month_at(&self, i: usize) -> Option<(DateSpec, usize)> {
        let (cue, j) = if let Some(j) = self.seq(i, &["on", "the"]) {
            (true, j)
        } else if let Some(j) = self.seq(i, &["el", "dia"]) {
            (true, j)
        } else if self.is_any(i, &["el", "the", "dia", "al"]) {
            // "al 15": the day a booking moves to.
            (true, i + 1)
        } else {
            (false, i)
        };
        let m = self.day_number_at(j)?;
        let is_ordinal = ordinal_at(self.t, j).is_some();
        // "el primero", "the first" are choices among options more often than dates; "on
        // the first" and "el día primero" are dates.
        let explicit = self.seq(i, &["on", "the"]).is_some() || self.is(j.saturating_sub(1), "dia");
        if m.in_words && !(explicit && is_ordinal) {
            return None;
        }
        let numeric_date_follows =
            (self.punct(m.next, '-') || self.punct(m.next, '/') || self.punct(m.next, '.'))
                && self.tok(m.next + 1).is_some_and(|t| t.is_number());
        if numeric_date_follows {
            return None;
        }
        if !(cue || is_ordinal) {
            return None;
        }
        if self.looks_like_time_after(m.next)
            || self.punct(m.next, '/')
            || (self.punct(m.next, '.') && self.glued(m.next))
            || self.unit_at(m.next).is_some()
            || self.is_any(m.next, &["one", "option", "de", "personas", "people"])
                && !self.is(m.next, "de")
        {
            return None;
        }
        Some((
            DateSpec::DayOfMonth {
                day: m.value,
                weekday: None,
            },
            m.next,
        ))
    }

    fn month_alone_at(&self, i: usize) -> Option<(DateSpec, usize)> {
        let (month, end) = self.month_at(i, true)?;
        let (year, end) = match self.year_at(end) {
            Some((y, e)) => (Some(y), e),
            None => (None, end),
        };
        Some((DateSpec::Month { month, year }, end))
    }

    /// "13 a 15 de julio", "from 13th to 15th July", "July 13-15", "August 27th - 29th".
    fn day_range_at(&self, i: usize) -> Option<(DateSpec, DateSpec, usize)> {
        let is_to = |k: usize| {
            self.punct(k, '-')
                || self.is_any(
                    k,
                    &["to", "a", "al", "thru", "through", "till", "until", "hasta"],
                )
        };
        // Day first.
        let j = self.skip(i, &["from", "del", "de", "desde", "el", "the"], 2);
        if let Some(a) = self.day_number_at(j)
            && !a.in_words
            && is_to(a.next)
        {
            let k = self.skip(a.next + 1, &["el", "the"], 1);
            if let Some(b) = self.day_number_at(k)
                && !b.in_words
                && b.value > a.value
            {
                let k2 = self.skip(b.next, &["de", "of"], 1);
                if let Some((month, end)) = self.month_at(k2, false) {
                    let (year, end) = match self.year_at(end) {
                        Some((y, e)) => (Some(y), e),
                        None => (None, end),
                    };
                    return Some((
                        DateSpec::MonthDay {
                            month,
                            day: a.value,
                            year,
                            weekday: None,
                        },
                        DateSpec::MonthDay {
                            month,
                            day: b.value,
                            year,
                            weekday: None,
                        },
                        end,
                    ));
                }
            }
        }
        // Month first.
        let j = self.skip(i, &["from"], 1);
        let (month, k) = self.month_at(j, false)?;
        let a = self.day_number_at(k).filter(|a| !a.in_words)?;
        if !is_to(a.next) {
            return None;
        }
        let mut k = a.next + 1;
        if let Some((m2, e)) = self.month_at(k, false) {
            if m2 != month {
                return None;
            }
            k = e;
        }
        let b = self
            .day_number_at(k)
            .filter(|b| !b.in_words && b.value > a.value)?;
        if self.looks_like_time_after(b.next) {
            return None;
        }
        Some((
            DateSpec::MonthDay {
                month,
                day: a.value,
                year: None,
                weekday: None,
            },
            DateSpec::MonthDay {
                month,
                day: b.value,
                year: None,
                weekday: None,
            },
            b.next,
        ))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RelKind {
    In,
    Within,
    Ago,
    After,
    Next,
    Last,
}
