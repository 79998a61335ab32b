//! Resolution of expressions against `now` in the business time zone.
//!
//! Conventions follow Duckling's, so results compare with public corpora: a day is an
//! instant at local midnight with grain day; parts of the day are hour-grain intervals;
//! weekends run from Friday 18:00 to Monday 00:00; weeks start on Monday. Local times that
//! do not exist (spring-forward gap) move forward by the length of the gap; local times that
//! occur twice take the earlier occurrence and are flagged.

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone,
    Timelike, Utc,
};
use chrono_tz::Tz;

use super::assemble::{Expr, Moment};
use super::{AmPm, DateSpec, DurationUnit, PartOfDay, Relative, Span, TimeOfDay, WeekdayModifier};
use crate::model::{Context, Grain, Lang, When, WhenKind};

/// A date written without a year that fell this many days ago is kept and flagged as past
/// rather than moved to next year: the customer most likely made a slip worth asking about.
const RECENT_PAST_DAYS: i64 = 7;

struct Clock {
    tz: Tz,
    now: DateTime<Utc>,
    now_local: NaiveDateTime,
    today: NaiveDate,
}

impl Clock {
    fn new(ctx: &Context<'_>) -> Self {
        let now_local = ctx.now.with_timezone(&ctx.tz).naive_local();
        Clock {
            tz: ctx.tz,
            now: ctx.now,
            now_local,
            today: now_local.date(),
        }
    }

    /// Local wall time to an instant. Gaps move forward by the gap's length; folds take the
    /// earlier instant and report it.
    fn to_utc(&self, local: NaiveDateTime) -> (DateTime<Utc>, bool) {
        match self.tz.from_local_datetime(&local) {
            LocalResult::Single(t) => (t.with_timezone(&Utc), false),
            LocalResult::Ambiguous(earlier, _) => (earlier.with_timezone(&Utc), true),
            LocalResult::None => {
                // Use the offset in force just before the gap: 02:30 in a 02:00-03:00 gap
                // becomes 03:30, the same instant a clock that was not changed would show.
                let probe = local - Duration::hours(6);
                let offset = match self.tz.from_local_datetime(&probe) {
                    LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.offset().fix(),
                    LocalResult::None => return (Utc.from_utc_datetime(&local), false),
                };
                let utc = local - Duration::seconds(i64::from(offset.local_minus_utc()));
                (Utc.from_utc_datetime(&utc), false)
            }
        }
    }

    fn local_of(&self, t: DateTime<Utc>) -> NaiveDateTime {
        t.with_timezone(&self.tz).naive_local()
    }
}

use chrono::Offset;

fn at(date: NaiveDate, hour: u32, minute: u32) -> Option<NaiveDateTime> {
    date.and_hms_opt(hour, minute, 0)
}

fn midnight(date: NaiveDate) -> NaiveDateTime {
    date.and_time(NaiveTime::MIN)
}

fn monday_of(date: NaiveDate) -> NaiveDate {
    date - Duration::days(i64::from(date.weekday().num_days_from_monday()))
}

fn add_months(date: NaiveDate, months: i64) -> Option<NaiveDate> {
    let total = i64::from(date.year()) * 12 + i64::from(date.month0()) + months;
    let year = i32::try_from(total.div_euclid(12)).ok()?;
    let month = u32::try_from(total.rem_euclid(12)).ok()? + 1;
    let mut day = date.day();
    loop {
        if let Some(d) = NaiveDate::from_ymd_opt(year, month, day) {
            return Some(d);
        }
        if day <= 28 {
            return None;
        }
        day -= 1;
    }
}

fn first_of_month(date: NaiveDate) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(date.year(), date.month(), 1)
}

/// The end of the unit an instant of this grain names, to decide whether it is past.
fn grain_end(start: NaiveDateTime, grain: Grain) -> Option<NaiveDateTime> {
    match grain {
        Grain::Minute => Some(start + Duration::minutes(1)),
        Grain::Hour => Some(start + Duration::hours(1)),
        Grain::Day => Some(start + Duration::days(1)),
        Grain::Week => Some(start + Duration::days(7)),
        Grain::Month => add_months(start.date(), 1).map(midnight),
    }
}

fn finer(a: Grain, b: Grain) -> Grain {
    let rank = |g: Grain| match g {
        Grain::Minute => 0,
        Grain::Hour => 1,
        Grain::Day => 2,
        Grain::Week => 3,
        Grain::Month => 4,
    };
    if rank(a) <= rank(b) { a } else { b }
}

impl Clock {
    fn instant(&self, local: NaiveDateTime, grain: Grain, source: &str) -> When {
        let (start, fold) = self.to_utc(local);
        let in_past = grain_end(local, grain)
            .map(|e| self.to_utc(e).0 <= self.now)
            .unwrap_or(false);
        When {
            kind: WhenKind::Instant,
            start,
            end: None,
            grain,
            source: source.to_string(),
            in_past,
            ambiguous_fold: fold,
            alternative: None,
        }
    }

    fn interval(
        &self,
        start: NaiveDateTime,
        end: Option<NaiveDateTime>,
        grain: Grain,
        source: &str,
    ) -> When {
        let (start_utc, fold) = self.to_utc(start);
        let end_utc = end.map(|e| self.to_utc(e).0);
        let in_past = end_utc.is_some_and(|e| e <= self.now);
        When {
            kind: WhenKind::Interval,
            start: start_utc,
            end: end_utc,
            grain,
            source: source.to_string(),
            in_past,
            ambiguous_fold: fold,
            alternative: None,
        }
    }

    fn instant_now(&self, utc: DateTime<Utc>, grain: Grain, source: &str) -> When {
        When {
            kind: WhenKind::Instant,
            start: utc,
            end: None,
            grain,
            source: source.to_string(),
            in_past: false,
            ambiguous_fold: false,
            alternative: None,
        }
    }
}

pub(crate) fn resolve(expr: &Expr, lang: Lang, ctx: &Context<'_>, source: String) -> Option<When> {
    let clock = Clock::new(ctx);
    let src = source.as_str();
    match *expr {
        Expr::Moment(m) => clock.moment(&m, src),
        Expr::Range(a, b) => clock.range(&a, &b, lang, src),
        Expr::After(m) => {
            let w = clock.moment(&m, src)?;
            let alternative = w.alternative.map(|alt| {
                Box::new(When {
                    kind: WhenKind::Interval,
                    end: None,
                    in_past: false,
                    ..*alt
                })
            });
            Some(When {
                kind: WhenKind::Interval,
                end: None,
                in_past: false,
                alternative,
                ..w
            })
        }
        Expr::Before(m) => {
            let w = clock.moment(&m, src)?;
            let bound_local = clock.local_of(w.start);
            let from = if m.date.is_some() && bound_local.date() > clock.today {
                clock.to_utc(midnight(bound_local.date())).0
            } else {
                clock.now
            };
            let start = from.min(w.start);
            Some(When {
                kind: WhenKind::Interval,
                start,
                end: Some(w.start),
                in_past: w.start <= clock.now,
                alternative: None,
                ..w
            })
        }
        Expr::Relative(r) => clock.relative(r, src),
        Expr::DateRange(a, b) => {
            let (start, _) = clock.day(a)?;
            let end = clock.day_on_or_after(b, start)?;
            Some(clock.interval(
                midnight(start),
                Some(midnight(end + Duration::days(1))),
                Grain::Day,
                src,
            ))
        }
    }
}

/// The 24-hour readings of a written time, most plausible first.
struct Readings {
    first: u32,
    second: Option<u32>,
    /// Both readings are ordinary business hours ("at 8": 08:00 or 20:00), so the next
    /// occurrence decides.
    both_plausible: bool,
}

fn to_24(hour: u32, ampm: AmPm) -> u32 {
    match ampm {
        AmPm::Am => hour % 12,
        AmPm::Pm => hour % 12 + 12,
    }
}

fn readings(t: &TimeOfDay, part: Option<PartOfDay>) -> Readings {
    let single = |h| Readings {
        first: h,
        second: None,
        both_plausible: false,
    };
    if t.fixed || t.hour > 12 {
        return single(t.hour % 24);
    }
    if let Some(ampm) = t.ampm {
        return single(to_24(t.hour, ampm));
    }
    if let Some(p) = part {
        return single(to_24(t.hour, p.ampm_for(t.hour)));
    }
    let am = t.hour % 12;
    let pm = am + 12;
    match t.hour {
        12 => Readings {
            first: 12,
            second: Some(0),
            both_plausible: false,
        },
        // Nobody books at 3 in the morning: "at 3" is 15:00 unless said otherwise.
        1..=6 => Readings {
            first: pm,
            second: Some(am),
            both_plausible: false,
        },
        7..=9 => Readings {
            first: am,
            second: Some(pm),
            both_plausible: true,
        },
        _ => Readings {
            first: am,
            second: Some(pm),
            both_plausible: false,
        },
    }
}

impl Clock {
    fn moment(&self, m: &Moment, src: &str) -> Option<When> {
        match (m.date, m.time, m.part) {
            (None, None, Some(part)) => {
                let (_, end_hour) = part.hours();
                let today_end = at(self.today, 0, 0)? + Duration::hours(i64::from(end_hour));
                let day = if today_end > self.now_local {
                    self.today
                } else {
                    self.today.succ_opt()?
                };
                Some(self.part_of(day, part, src))
            }
            (Some(date), None, part) => {
                if let (Some(part), true) = (part, date.is_day()) {
                    let (day, alt) = self.day(date)?;
                    let mut w = self.part_of(day, part, src);
                    w.alternative = alt.map(|d| Box::new(self.part_of(d, part, src)));
                    return Some(w);
                }
                self.date_alone(date, src)
            }
            (date, Some(time), part) => self.time_of_day(date, &time, part, src),
            (None, None, None) => None,
        }
    }

    fn part_of(&self, day: NaiveDate, part: PartOfDay, src: &str) -> When {
        let (from, to) = part.hours();
        let start = midnight(day) + Duration::hours(i64::from(from));
        let end = midnight(day) + Duration::hours(i64::from(to));
        self.interval(start, Some(end), Grain::Hour, src)
    }

    fn date_alone(&self, date: DateSpec, src: &str) -> Option<When> {
        match date {
            DateSpec::Week(n) => {
                let monday = monday_of(self.today) + Duration::weeks(n);
                Some(self.instant(midnight(monday), Grain::Week, src))
            }
            DateSpec::Weekend(n) => {
                let friday = monday_of(self.today) + Duration::days(4) + Duration::weeks(n);
                let start = at(friday, 18, 0)?;
                let end = midnight(friday + Duration::days(3));
                Some(self.interval(start, Some(end), Grain::Hour, src))
            }
            DateSpec::Month { month, year } => {
                let year = match year {
                    Some(y) => y,
                    None if month >= self.today.month() => self.today.year(),
                    None => self.today.year() + 1,
                };
                let first = NaiveDate::from_ymd_opt(year, month, 1)?;
                Some(self.instant(midnight(first), Grain::Month, src))
            }
            DateSpec::RelativeMonth(n) => {
                let first = add_months(first_of_month(self.today)?, n)?;
                Some(self.instant(midnight(first), Grain::Month, src))
            }
            day_spec => {
                let (day, alt) = self.day(day_spec)?;
                let mut w = self.instant(midnight(day), Grain::Day, src);
                w.alternative = alt.map(|d| Box::new(self.instant(midnight(d), Grain::Day, src)));
                Some(w)
            }
        }
    }

    /// The day a date names, and another reasonable reading if there is one.
    fn day(&self, date: DateSpec) -> Option<(NaiveDate, Option<NaiveDate>)> {
        let today = self.today;
        match date {
            DateSpec::RelativeDay(n) => Some((today + Duration::days(n), None)),
            DateSpec::Weekday { weekday, modifier } => {
                let target = i64::from(weekday.num_days_from_monday());
                let current = i64::from(today.weekday().num_days_from_monday());
                let ahead = (target - current).rem_euclid(7);
                let next_after_today = today + Duration::days(if ahead == 0 { 7 } else { ahead });
                let in_next_week = monday_of(today) + Duration::days(7 + target);
                let differs = |a: NaiveDate, b: NaiveDate| if a != b { Some(b) } else { None };
                Some(match modifier {
                    WeekdayModifier::Bare => (
                        next_after_today,
                        if ahead == 0 { Some(today) } else { None },
                    ),
                    WeekdayModifier::This => (today + Duration::days(ahead), None),
                    WeekdayModifier::Next => {
                        (next_after_today, differs(next_after_today, in_next_week))
                    }
                    WeekdayModifier::NextWeek => {
                        (in_next_week, differs(in_next_week, next_after_today))
                    }
                    WeekdayModifier::AfterNext => (next_after_today + Duration::days(7), None),
                    WeekdayModifier::Last => {
                        let back = (current - target).rem_euclid(7);
                        (
                            today - Duration::days(if back == 0 { 7 } else { back }),
                            None,
                        )
                    }
                    WeekdayModifier::ThisWeek => (monday_of(today) + Duration::days(target), None),
                })
            }
            DateSpec::DayOfMonth { day, weekday } => {
                let first = first_of_month(today)?;
                for offset in 0..60 {
                    let month_start = add_months(first, offset)?;
                    let Some(d) =
                        NaiveDate::from_ymd_opt(month_start.year(), month_start.month(), day)
                    else {
                        continue;
                    };
                    if d >= today && weekday.is_none_or(|w| d.weekday() == w) {
                        return Some((d, None));
                    }
                }
                None
            }
            DateSpec::MonthDay {
                month,
                day,
                year: Some(year),
                ..
            } => Some((NaiveDate::from_ymd_opt(year, month, day)?, None)),
            DateSpec::MonthDay {
                month,
                day,
                year: None,
                weekday,
            } => {
                let this_year = today.year();
                let is_recent_or_future =
                    |d: NaiveDate| d >= today || (today - d).num_days() <= RECENT_PAST_DAYS;
                if let Some(w) = weekday {
                    for y in this_year..this_year + 12 {
                        if let Some(d) = NaiveDate::from_ymd_opt(y, month, day)
                            && d.weekday() == w
                            && (y > this_year || is_recent_or_future(d))
                        {
                            return Some((d, None));
                        }
                    }
                }
                if let Some(d) = NaiveDate::from_ymd_opt(this_year, month, day)
                    && is_recent_or_future(d)
                {
                    let alt = if d < today {
                        NaiveDate::from_ymd_opt(this_year + 1, month, day)
                    } else {
                        None
                    };
                    return Some((d, alt));
                }
                // Leap days wait for the next leap year.
                (1..=8)
                    .find_map(|k| NaiveDate::from_ymd_opt(this_year + k, month, day))
                    .map(|d| (d, None))
            }
            DateSpec::Week(n) => Some((monday_of(today) + Duration::weeks(n), None)),
            DateSpec::Weekend(n) => Some((
                monday_of(today) + Duration::days(5) + Duration::weeks(n),
                None,
            )),
            DateSpec::Month { .. } | DateSpec::RelativeMonth(_) => {
                let w = self.date_alone(date, "")?;
                Some((self.local_of(w.start).date(), None))
            }
        }
    }

    /// The end of a date range: the same reading, moved forward if it would precede the start.
    fn day_on_or_after(&self, date: DateSpec, start: NaiveDate) -> Option<NaiveDate> {
        let (d, _) = self.day(date)?;
        if d >= start {
            return Some(d);
        }
        match date {
            DateSpec::MonthDay {
                month,
                day,
                year: None,
                ..
            } => (start.year()..start.year() + 8)
                .find_map(|y| NaiveDate::from_ymd_opt(y, month, day).filter(|d| *d >= start)),
            DateSpec::Weekday { .. } => {
                let mut d = d;
                while d < start {
                    d += Duration::days(7);
                }
                Some(d)
            }
            _ => None,
        }
    }

    fn time_of_day(
        &self,
        date: Option<DateSpec>,
        time: &TimeOfDay,
        part: Option<PartOfDay>,
        src: &str,
    ) -> Option<When> {
        let r = readings(time, part);
        let minute = time.minute;
        let grain = time.grain;
        match date {
            Some(date) => {
                let (day, alt_day) = self.day(date)?;
                let first = at(day, r.first, minute)?;
                let second = r.second.and_then(|h| at(day, h, minute));
                let (chosen, other) = match second {
                    // Today, a reading already past gives way to one still ahead.
                    Some(s)
                        if day == self.today && first < self.now_local && s >= self.now_local =>
                    {
                        (s, Some(first))
                    }
                    Some(s) => (first, Some(s)),
                    None => (first, None),
                };
                let mut w = self.instant(chosen, grain, src);
                let alternative =
                    other.or_else(|| alt_day.and_then(|d| at(d, chosen.hour(), chosen.minute())));
                w.alternative = alternative.map(|a| Box::new(self.instant(a, grain, src)));
                Some(w)
            }
            None => {
                let next = |hour: u32| -> Option<NaiveDateTime> {
                    let today = at(self.today, hour, minute)?;
                    if today >= self.now_local {
                        Some(today)
                    } else {
                        at(self.today.succ_opt()?, hour, minute)
                    }
                };
                let first = next(r.first)?;
                let second = r.second.and_then(next);
                let (chosen, other) = match second {
                    Some(s) if r.both_plausible && s < first => (s, Some(first)),
                    Some(s) => (first, Some(s)),
                    None => (first, None),
                };
                let mut w = self.instant(chosen, grain, src);
                w.alternative = other.map(|a| Box::new(self.instant(a, grain, src)));
                Some(w)
            }
        }
    }

    fn range(&self, a: &Moment, b: &Moment, lang: Lang, src: &str) -> Option<When> {
        let (Some(mut ta), Some(tb)) = (a.time, b.time) else {
            // Two dates: whole days, both included.
            let (start, _) = self.day(a.date?)?;
            let end = self.day_on_or_after(b.date?, start)?;
            return Some(self.interval(
                midnight(start),
                Some(midnight(end + Duration::days(1))),
                Grain::Day,
                src,
            ));
        };
        let date = a.date.or(b.date);
        let part = a.part.or(b.part);
        // "3-4pm", "9-11am": the end's half of the day carries to the start when it fits.
        if ta.ampm.is_none() && !ta.fixed && ta.hour <= 12 && part.is_none() {
            let end_hours = readings(&tb, part);
            if tb.ampm.is_some() || tb.fixed || tb.hour > 12 {
                let end_hour = end_hours.first;
                let same_half = if end_hour >= 12 { AmPm::Pm } else { AmPm::Am };
                let start_same = to_24(ta.hour, same_half);
                ta.ampm = Some(if start_same <= end_hour {
                    same_half
                } else if same_half == AmPm::Pm {
                    AmPm::Am
                } else {
                    AmPm::Pm
                });
            }
        }
        // The start takes its most plausible reading; the end is the first reading after it.
        let start_hour = readings(&ta, part).first;
        let rb = readings(&tb, part);
        let end_after = |day: NaiveDate| -> Option<NaiveDateTime> {
            let start = at(day, start_hour, ta.minute)?;
            let same_day = [Some(rb.first), rb.second]
                .into_iter()
                .flatten()
                .filter_map(|h| at(day, h, tb.minute))
                .filter(|e| *e > start)
                .min();
            same_day.or_else(|| at(day.succ_opt()?, rb.first, tb.minute))
        };
        // Without a date, the range is today's while it has not ended, else tomorrow's.
        let day = match date {
            Some(d) => self.day(d)?.0,
            None if end_after(self.today)? > self.now_local => self.today,
            None => self.today.succ_opt()?,
        };
        let start_local = at(day, start_hour, ta.minute)?;
        let end_local = end_after(day)?;
        // English ranges include the last named unit ("3-4pm" ends at 17:00), Spanish ones
        // end at the named time ("de 9 a 11" ends at 11:00), as in the public corpora.
        let end_local = match lang {
            Lang::En => {
                end_local
                    + if tb.grain == crate::model::Grain::Minute {
                        Duration::minutes(1)
                    } else {
                        Duration::hours(1)
                    }
            }
            Lang::Es => end_local,
        };
        let grain = finer(ta.grain, tb.grain);
        Some(self.interval(start_local, Some(end_local), grain, src))
    }

    fn relative(&self, r: Relative, src: &str) -> Option<When> {
        match r {
            Relative::Now => Some(self.instant_now(self.now, Grain::Minute, src)),
            Relative::In(span) => self.shifted(span, 1, src),
            Relative::Ago(span) => self.shifted(span, -1, src),
            Relative::Within(span) => {
                let target = self.shifted(span, 1, src)?;
                Some(When {
                    kind: WhenKind::Interval,
                    start: self.now,
                    end: Some(target.start),
                    grain: Grain::Minute,
                    ..target
                })
            }
            Relative::AfterSpan(span) => {
                let target = self.shifted(span, 1, src)?;
                Some(When {
                    kind: WhenKind::Interval,
                    end: None,
                    ..target
                })
            }
            Relative::NextUnits(n, unit) => {
                let (grain, current) = self.unit_start(unit)?;
                let start = self.advance(current, unit, 1)?;
                let end = self.advance(current, unit, i64::from(n) + 1)?;
                Some(self.interval(start, Some(end), grain, src))
            }
            Relative::LastUnits(n, unit) => {
                let (grain, current) = self.unit_start(unit)?;
                let start = self.advance(current, unit, -i64::from(n))?;
                Some(self.interval(start, Some(current), grain, src))
            }
        }
    }

    /// The start of the current unit containing now ("this hour", "this week").
    fn unit_start(&self, unit: DurationUnit) -> Option<(Grain, NaiveDateTime)> {
        let n = self.now_local;
        Some(match unit {
            DurationUnit::Minute => (Grain::Minute, at(n.date(), n.hour(), n.minute())?),
            DurationUnit::Hour => (Grain::Hour, at(n.date(), n.hour(), 0)?),
            DurationUnit::Day => (Grain::Day, midnight(n.date())),
            DurationUnit::Week => (Grain::Week, midnight(monday_of(n.date()))),
            DurationUnit::Month => (Grain::Month, midnight(first_of_month(n.date())?)),
            DurationUnit::Year => return None,
        })
    }

    fn advance(&self, from: NaiveDateTime, unit: DurationUnit, n: i64) -> Option<NaiveDateTime> {
        Some(match unit {
            DurationUnit::Minute => from + Duration::minutes(n),
            DurationUnit::Hour => from + Duration::hours(n),
            DurationUnit::Day => from + Duration::days(n),
            DurationUnit::Week => from + Duration::weeks(n),
            DurationUnit::Month => midnight(add_months(from.date(), n)?),
            DurationUnit::Year => midnight(add_months(from.date(), n.checked_mul(12)?)?),
        })
    }

    /// Now moved by a span, rounded to one grain finer than the span's unit, as Duckling
    /// does: "in 2 hours" keeps minutes, "in 3 days" keeps the hour, "in 2 weeks" the day.
    fn shifted(&self, span: Span, sign: i64, src: &str) -> Option<When> {
        let seconds = |per_unit: f64| -> Option<i64> {
            let s = (span.amount * per_unit).round();
            if s.is_finite() && s.abs() < 1e11 {
                Some(s as i64 * sign)
            } else {
                None
            }
        };
        match span.unit {
            DurationUnit::Minute => {
                let target = self.now + Duration::seconds(seconds(60.0)?);
                Some(self.instant_now(target, Grain::Minute, src))
            }
            DurationUnit::Hour => {
                let target = self.now + Duration::seconds(seconds(3600.0)?);
                let local = self.local_of(target);
                let truncated = at(local.date(), local.hour(), local.minute())?;
                // Absolute arithmetic already crossed any DST change; keep that instant.
                let mut w = self.instant(truncated, Grain::Minute, src);
                w.start = target - Duration::seconds(i64::from(target.second()));
                w.in_past = sign < 0;
                Some(w)
            }
            DurationUnit::Day => {
                let local = self.now_local + Duration::seconds(seconds(86_400.0)?);
                let truncated = at(local.date(), local.hour(), 0)?;
                let mut w = self.instant(truncated, Grain::Hour, src);
                w.in_past = sign < 0;
                Some(w)
            }
            DurationUnit::Week | DurationUnit::Month | DurationUnit::Year => {
                let whole = span.amount.round();
                if !whole.is_finite() || whole.abs() > 10_000.0 {
                    return None;
                }
                let n = whole as i64 * sign;
                let (date, grain) = match span.unit {
                    DurationUnit::Week => (self.today + Duration::weeks(n), Grain::Day),
                    DurationUnit::Month => (add_months(self.today, n)?, Grain::Day),
                    _ => (
                        first_of_month(add_months(self.today, n.checked_mul(12)?)?)?,
                        Grain::Month,
                    ),
                };
                let mut w = self.instant(midnight(date), grain, src);
                w.in_past = sign < 0;
                Some(w)
            }
        }
    }
}
