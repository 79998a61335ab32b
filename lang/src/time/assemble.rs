//! Folding atoms into expressions.
//!
//! Atoms separated only by filler words ("at", "on", "de", "por", commas) belong to one
//! group. Inside a group, neighbouring date, time and part-of-day atoms fold into one
//! [`Moment`]; connectors then shape moments into ranges and open bounds. A date or part of
//! day standing next to a range applies to both of its ends ("Thursday from 9:30 to 11").

use super::grammar::{Atom, Placed};
use super::{Connector, DateSpec, Found, PartOfDay, Relative, TimeOfDay};
use crate::tokens::Token;

/// A point or span named by date, time of day and part of day, any of which may be absent.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Moment {
    pub date: Option<DateSpec>,
    pub time: Option<TimeOfDay>,
    pub part: Option<PartOfDay>,
    /// The part of day was introduced by an article ("por la tarde"), not a lone word.
    pub part_marked: bool,
}

impl Moment {
    fn is_empty_of_time(&self) -> bool {
        self.time.is_none()
    }

    /// A moment that stands on its own as a date/time expression.
    fn is_meaningful(&self) -> bool {
        if self.date.is_some() {
            return true;
        }
        match self.time {
            Some(t) => !t.bare || self.part.is_some(),
            None => self.part.is_some() && self.part_marked,
        }
    }

    fn absorb(&mut self, atom: &Atom) -> bool {
        match *atom {
            Atom::Date(d) => match self.date {
                None => {
                    self.date = Some(d);
                    true
                }
                Some(existing) => match merge_dates(existing, d) {
                    Some(merged) => {
                        self.date = Some(merged);
                        true
                    }
                    None => false,
                },
            },
            Atom::Time(t) if self.time.is_none() => {
                self.time = Some(t);
                true
            }
            Atom::Part { part, marked } if self.part.is_none() => {
                self.part = Some(part);
                self.part_marked = marked || self.date.is_some() || self.time.is_some();
                true
            }
            Atom::DatePart(d, p) if self.date.is_none() && self.part.is_none() => {
                self.date = Some(d);
                self.part = Some(p);
                self.part_marked = true;
                true
            }
            _ => false,
        }
    }
}

/// "Monday, Feb 18" and "jue 15": a weekday narrows which year or month a date falls in.
fn merge_dates(a: DateSpec, b: DateSpec) -> Option<DateSpec> {
    let weekday_of = |d: DateSpec| match d {
        DateSpec::Weekday { weekday, .. } => Some(weekday),
        _ => None,
    };
    let with_weekday = |d: DateSpec, w| match d {
        DateSpec::MonthDay {
            month,
            day,
            year,
            weekday: None,
        } => Some(DateSpec::MonthDay {
            month,
            day,
            year,
            weekday: Some(w),
        }),
        DateSpec::DayOfMonth { day, weekday: None } => Some(DateSpec::DayOfMonth {
            day,
            weekday: Some(w),
        }),
        _ => None,
    };
    if let Some(w) = weekday_of(a) {
        return with_weekday(b, w);
    }
    if let Some(w) = weekday_of(b) {
        return with_weekday(a, w);
    }
    // "the 15th of next month" style combinations are rare; "Month" + day of month is not.
    match (a, b) {
        (DateSpec::Month { month, year }, DateSpec::DayOfMonth { day, weekday })
        | (DateSpec::DayOfMonth { day, weekday }, DateSpec::Month { month, year }) => {
            Some(DateSpec::MonthDay {
                month,
                day,
                year,
                weekday,
            })
        }
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Expr {
    Moment(Moment),
    /// Both ends named; the end is inclusive as written ("between 3 and 5").
    Range(Moment, Moment),
    After(Moment),
    Before(Moment),
    Relative(Relative),
    DateRange(DateSpec, DateSpec),
}

#[derive(Debug, Clone, Copy)]
enum Item {
    Moment(Moment),
    Connector(Connector),
    Relative(Relative),
    DateRange(DateSpec, DateSpec),
}

#[derive(Debug, Clone, Copy)]
struct Spanned<T> {
    value: T,
    first: usize,
    end: usize,
}

fn is_filler(token: &Token) -> bool {
    if token.is_punct(',') || token.is_punct('.') {
        return true;
    }
    token.is_word()
        && matches!(
            token.text.as_str(),
            "at" | "on"
                | "the"
                | "a"
                | "el"
                | "la"
                | "las"
                | "los"
                | "lo"
                | "de"
                | "del"
                | "por"
                | "in"
                | "en"
                | "for"
                | "para"
                | "around"
                | "about"
                | "approx"
                | "approximately"
                | "aprox"
                | "sobre"
                | "hacia"
                | "any"
                | "anytime"
                | "time"
                | "cualquier"
                | "hora"
                | "ish"
                | "maybe"
                | "quizas"
                | "tipo"
                | "then"
                | "o"
                | "or"
                | "like"
                | "mejor"
                | "better"
        )
}

/// Builds expressions from atoms. Groups are maximal runs of atoms separated only by
/// filler tokens.
pub(crate) fn expressions(tokens: &[Token], atoms: &[Placed]) -> Vec<Found> {
    let mut found = Vec::new();
    let mut group: Vec<&Placed> = Vec::new();
    for placed in atoms {
        if let Some(last) = group.last() {
            let gap_is_filler = tokens
                .get(last.end..placed.first)
                .is_some_and(|gap| gap.iter().all(is_filler));
            if !gap_is_filler {
                assemble_group(tokens, &group, &mut found);
                group.clear();
            }
        }
        group.push(placed);
    }
    assemble_group(tokens, &group, &mut found);
    found
}

fn assemble_group(tokens: &[Token], group: &[&Placed], out: &mut Vec<Found>) {
    if group.is_empty() {
        return;
    }
    // Fold neighbouring date/time/part atoms into moments.
    let mut items: Vec<Spanned<Item>> = Vec::new();
    for placed in group {
        let item = match placed.atom {
            Atom::Connector(c) => Item::Connector(c),
            Atom::Relative(r) => Item::Relative(r),
            Atom::DateRange(a, b) => Item::DateRange(a, b),
            ref other => {
                if let Some(Spanned {
                    value: Item::Moment(m),
                    end,
                    ..
                }) = items.last_mut()
                    && m.absorb(other)
                {
                    *end = placed.end;
                    continue;
                }
                let mut m = Moment::default();
                if !m.absorb(other) {
                    continue;
                }
                Item::Moment(m)
            }
        };
        items.push(Spanned {
            value: item,
            first: placed.first,
            end: placed.end,
        });
    }

    // Shape connectors and moments into expressions.
    let mut exprs: Vec<Spanned<Expr>> = Vec::new();
    let moment_at = |k: usize| match items.get(k) {
        Some(Spanned {
            value: Item::Moment(m),
            ..
        }) => Some(*m),
        _ => None,
    };
    let connector_at = |k: usize| match items.get(k) {
        Some(Spanned {
            value: Item::Connector(c),
            ..
        }) => Some(*c),
        _ => None,
    };
    let span = |a: usize, b: usize| (items[a].first, items[b].end);
    let mut k = 0;
    while k < items.len() {
        let push = |exprs: &mut Vec<Spanned<Expr>>, value: Expr, (first, end): (usize, usize)| {
            exprs.push(Spanned { value, first, end });
        };
        match items[k].value {
            Item::Connector(c) => {
                let closes = |c2: Option<Connector>, opener: Connector| match opener {
                    Connector::Between => matches!(
                        c2,
                        Some(
                            Connector::And | Connector::To | Connector::WeakTo | Connector::Target
                        )
                    ),
                    _ => matches!(
                        c2,
                        Some(Connector::To | Connector::WeakTo | Connector::Target)
                    ),
                };
                if matches!(
                    c,
                    Connector::Between | Connector::From | Connector::WeakFrom
                ) && let (Some(a), Some(b)) = (moment_at(k + 1), moment_at(k + 3))
                    && closes(connector_at(k + 2), c)
                {
                    push(&mut exprs, Expr::Range(a, b), span(k, k + 3));
                    k += 4;
                    continue;
                }
                match (c, moment_at(k + 1)) {
                    (Connector::From | Connector::After, Some(a)) => {
                        push(&mut exprs, Expr::After(a), span(k, k + 1));
                        k += 2;
                    }
                    (Connector::Before | Connector::To, Some(a))
                        if a.time.is_some() || a.date.is_some() =>
                    {
                        push(&mut exprs, Expr::Before(a), span(k, k + 1));
                        k += 2;
                    }
                    // "move it to Friday at 11", "push it to 4pm": where to, not until when.
                    (Connector::Target, Some(mut b)) => {
                        let (first, end) = span(k + 1, k + 1);
                        if let Some(t) = b.time.as_mut()
                            && t.bare
                            && ends_clause(tokens, end)
                        {
                            // "move it to 3": the hour the booking goes to.
                            t.bare = false;
                        }
                        let previous = exprs
                            .last_mut()
                            .filter(|e| k > 0 && e.end == items[k - 1].end);
                        match previous {
                            Some(Spanned {
                                value: Expr::Moment(a),
                                end: prev_end,
                                ..
                            }) if merge_moments(a, &b).is_some() => {
                                if let Some(merged) = merge_moments(a, &b) {
                                    *a = merged;
                                    *prev_end = end;
                                }
                            }
                            _ => push(&mut exprs, Expr::Moment(b), (first, end)),
                        }
                        k += 2;
                    }
                    (Connector::After, None) => {
                        if let Some(Spanned {
                            value: Item::Relative(Relative::In(s)),
                            ..
                        }) = items.get(k + 1)
                        {
                            push(
                                &mut exprs,
                                Expr::Relative(Relative::AfterSpan(*s)),
                                span(k, k + 1),
                            );
                            k += 2;
                        } else {
                            k += 1;
                        }
                    }
                    _ => k += 1,
                }
            }
            Item::Moment(a) => {
                if matches!(
                    connector_at(k + 1),
                    Some(Connector::To | Connector::WeakTo | Connector::Target)
                ) && let Some(b) = moment_at(k + 2)
                    && ranges_pair(&a, &b)
                {
                    push(&mut exprs, Expr::Range(a, b), span(k, k + 2));
                    k += 3;
                    continue;
                }
                push(&mut exprs, Expr::Moment(a), span(k, k));
                k += 1;
            }
            Item::Relative(r) => {
                push(&mut exprs, Expr::Relative(r), span(k, k));
                k += 1;
            }
            Item::DateRange(a, b) => {
                push(&mut exprs, Expr::DateRange(a, b), span(k, k));
                k += 1;
            }
        }
    }

    // A date or part of day next to a range or bound applies to it.
    let mut k = 0;
    while k < exprs.len() {
        let is_context = |e: &Expr| matches!(e, Expr::Moment(m) if m.is_empty_of_time() && (m.date.is_some() || m.part.is_some()));
        let takes_context =
            |e: &Expr| matches!(e, Expr::Range(..) | Expr::After(_) | Expr::Before(_));
        let neighbour = if is_context(&exprs[k].value) {
            if k + 1 < exprs.len() && takes_context(&exprs[k + 1].value) {
                Some(k + 1)
            } else if k > 0 && takes_context(&exprs[k - 1].value) {
                Some(k - 1)
            } else {
                None
            }
        } else {
            None
        };
        if let (Some(target), Expr::Moment(context)) = (neighbour, exprs[k].value) {
            let first = exprs[k].first.min(exprs[target].first);
            let end = exprs[k].end.max(exprs[target].end);
            let applied = apply_context(exprs[target].value, &context);
            if let Some(applied) = applied {
                exprs[target] = Spanned {
                    value: applied,
                    first,
                    end,
                };
                exprs.remove(k);
                continue;
            }
        }
        k += 1;
    }

    for e in exprs {
        let keep = match &e.value {
            Expr::Moment(m) => m.is_meaningful(),
            Expr::Range(a, b) => {
                (a.time.is_some() && b.time.is_some())
                    || (a.date.is_some()
                        && b.date.is_some()
                        && a.time.is_none()
                        && b.time.is_none())
            }
            Expr::After(m) | Expr::Before(m) => m.date.is_some() || m.time.is_some(),
            _ => true,
        };
        if keep {
            out.push(Found {
                expr: e.value,
                first_token: e.first,
                end_token: e.end,
            });
        }
    }
}

/// Whether the expression ending before token `end` closes its clause: the message ends,
/// punctuation follows, or a word that cannot be a counted noun ("to 3 instead").
fn ends_clause(tokens: &[Token], end: usize) -> bool {
    match tokens.get(end) {
        None => true,
        Some(t) if !t.is_word() => !t.is_number(),
        Some(t) => matches!(
            t.text.as_str(),
            "instead" | "please" | "pls" | "plz" | "then" | "thanks" | "thx" | "if" | "and"
        ),
    }
}

/// Two moments naming different parts of one point: "tomorrow" and "at 5".
fn merge_moments(a: &Moment, b: &Moment) -> Option<Moment> {
    if (a.date.is_some() && b.date.is_some())
        || (a.time.is_some() && b.time.is_some())
        || (a.part.is_some() && b.part.is_some())
    {
        return None;
    }
    Some(Moment {
        date: a.date.or(b.date),
        time: a.time.or(b.time),
        part: a.part.or(b.part),
        part_marked: a.part_marked || b.part_marked,
    })
}

/// A moment followed by "to"/"-" and another moment forms a range only if both are times
/// or both are dates; "mañana a las 5" must not pair "mañana" with "las 5".
fn ranges_pair(a: &Moment, b: &Moment) -> bool {
    (a.time.is_some() && b.time.is_some())
        || (a.time.is_none() && b.time.is_none() && a.date.is_some() && b.date.is_some())
}

fn apply_context(target: Expr, context: &Moment) -> Option<Expr> {
    let fill = |m: Moment| -> Option<Moment> {
        let mut m = m;
        if let Some(d) = context.date {
            if m.date.is_some() {
                return None;
            }
            m.date = Some(d);
        }
        if let Some(p) = context.part
            && m.part.is_none()
        {
            m.part = Some(p);
            m.part_marked = true;
        }
        Some(m)
    };
    Some(match target {
        Expr::Range(a, b) => {
            a.time?;
            Expr::Range(fill(a)?, fill(b).unwrap_or(b))
        }
        Expr::After(m) => Expr::After(fill(m)?),
        Expr::Before(m) => Expr::Before(fill(m)?),
        other => other,
    })
}
