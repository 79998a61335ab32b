//! Choices among the options last shown, and mentions of the tenant's services and staff.
//!
//! "the second one", "la 2", "3", "el de las 5", "the earlier one" pick an option; a tap on a
//! button arrives as its title, which matches exactly. Service and staff names are matched
//! word by word, tolerant of case, accents, plurals and small typos.

use chrono::{Timelike, Utc};

use crate::model::{Choice, Context, Grain, ShownOption, When};
use crate::numbers::{number_at, ordinal_word};
use crate::tokens::{Kind, Token, edit_distance, tokenize, typo_budget};

/// A choice and the tokens that expressed it, so a date read from the same words ("el 2")
/// can be dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Picked {
    pub choice: Choice,
    pub tokens: Option<(usize, usize)>,
}

fn words_of(tokens: &[Token]) -> Vec<&str> {
    tokens
        .iter()
        .filter(|t| t.kind == Kind::Word || t.kind == Kind::Number)
        .map(|t| t.text.as_str())
        .collect()
}

fn content_tokens(tokens: &[Token]) -> usize {
    tokens
        .iter()
        .filter(|t| t.kind == Kind::Word || t.kind == Kind::Number)
        .count()
}

pub(crate) fn pick(
    tokens: &[Token],
    whens: &[(When, usize, usize)],
    ctx: &Context<'_>,
) -> Option<Picked> {
    let options = ctx.options;
    if options.is_empty() {
        return None;
    }
    let whole = |index: usize| {
        Some(Picked {
            choice: Choice { index },
            tokens: None,
        })
    };
    if let Some(index) = by_title(tokens, options) {
        return whole(index);
    }
    if let Some(p) = by_position(tokens, options.len()) {
        return Some(p);
    }
    if let Some(index) = by_order_words(tokens, options) {
        return whole(index);
    }
    by_time(whens, options, ctx).and_then(whole)
}

/// A button tap or a copied row title.
fn by_title(tokens: &[Token], options: &[ShownOption]) -> Option<usize> {
    let message = words_of(tokens).join(" ");
    if message.is_empty() {
        return None;
    }
    let mut contained = None;
    let mut contained_count = 0;
    for (index, option) in options.iter().enumerate() {
        let title_tokens = tokenize(&option.title);
        let title = words_of(&title_tokens).join(" ");
        if title.is_empty() {
            continue;
        }
        if title == message {
            return Some(index);
        }
        if title.len() >= 6 && message.contains(&title) {
            contained = Some(index);
            contained_count += 1;
        }
    }
    if contained_count == 1 {
        contained
    } else {
        None
    }
}

fn is_choice_noun(w: &str) -> bool {
    matches!(
        w,
        "one"
            | "option"
            | "opcion"
            | "opc"
            | "uno"
            | "una"
            | "choice"
            | "number"
            | "numero"
            | "num"
            | "no"
            | "n"
    )
}

/// "the second one", "la 2", "option 3", "#2", or a message that is only a number.
fn by_position(tokens: &[Token], count: usize) -> Option<Picked> {
    let within = |n: u32| (1..=count as u32).contains(&n);
    let picked = |n: u32, first: usize, end: usize| Picked {
        choice: Choice {
            index: n as usize - 1,
        },
        tokens: Some((first, end)),
    };
    let content = content_tokens(tokens);
    for (i, t) in tokens.iter().enumerate() {
        let prev = i
            .checked_sub(1)
            .and_then(|p| tokens.get(p))
            .map(|t| t.text.as_str())
            .unwrap_or("");
        let next = tokens.get(i + 1).map(|t| t.text.as_str()).unwrap_or("");
        if t.is_word() {
            // Ordinals: "second", "segunda", "the last one".
            let ordinal = ordinal_word(&t.text).or_else(|| {
                matches!(t.text.as_str(), "last" | "ultimo" | "ultima" | "ultim")
                    .then_some(count as u32)
            });
            if let Some(n) = ordinal {
                // "y cuarto", "first of march", "primera hora" are not choices.
                let blocked = matches!(prev, "y" | "menos" | "and")
                    || matches!(
                        next,
                        "of" | "de" | "hora" | "thing" | "week" | "semana" | "time" | "vez"
                    )
                    || (t.text == "last"
                        && matches!(next, "week" | "month" | "night" | "time" | "year"));
                let introduced = matches!(prev, "the" | "el" | "la" | "lo" | "option" | "opcion")
                    || is_choice_noun(next);
                if within(n) && !blocked && (introduced || content <= 2) {
                    return Some(picked(n, i, i + 1));
                }
            }
            // "option 2", "la 2", "number two".
            if (is_choice_noun(&t.text) || matches!(t.text.as_str(), "la" | "el"))
                && let Some(m) = number_at(tokens, i + 1)
                && within(m.value)
                && !tokens
                    .get(m.next)
                    .is_some_and(|n| n.is_punct(':') || n.is_punct('/') || n.is_word() && !n.spaced)
            {
                let after = tokens.get(m.next).map(|t| t.text.as_str()).unwrap_or("");
                let is_date_or_time = matches!(
                    after,
                    "de" | "of" | "a" | "at" | "h" | "am" | "pm" | "y" | "por"
                );
                if !is_date_or_time {
                    return Some(picked(m.value, i, m.next));
                }
            }
        }
        if t.text == "#"
            && let Some(m) = number_at(tokens, i + 1)
            && within(m.value)
        {
            return Some(picked(m.value, i, m.next));
        }
    }
    // The whole message is a number: "2", "2.", "dos", "the 2".
    if content == 1
        && let Some(i) = tokens
            .iter()
            .position(|t| t.kind == Kind::Word || t.kind == Kind::Number)
        && let Some(m) = number_at(tokens, i)
        && within(m.value)
    {
        return Some(picked(m.value, i, m.next));
    }
    None
}

/// "the earlier one", "la más tarde", "el de antes".
fn by_order_words(tokens: &[Token], options: &[ShownOption]) -> Option<usize> {
    let words = words_of(tokens);
    let has = |w: &str| words.contains(&w);
    let has_pair = |a: &str, b: &str| words.windows(2).any(|p| p[0] == a && p[1] == b);
    let earliest = has("earlier")
        || has("earliest")
        || has("sooner")
        || has("soonest")
        || has_pair("mas", "temprano")
        || has_pair("de", "antes")
        || has("primera") && has("hora");
    let latest = has("latest")
        || (has("later") && (has("one") || has("the")))
        || has_pair("mas", "tarde")
        || has_pair("de", "despues");
    if earliest == latest {
        return None;
    }
    let dated: Vec<(usize, chrono::DateTime<Utc>)> = options
        .iter()
        .enumerate()
        .filter_map(|(i, o)| o.start.map(|s| (i, s)))
        .collect();
    if dated.is_empty() {
        return None;
    }
    let chosen = if earliest {
        dated.iter().min_by_key(|(_, s)| *s)
    } else {
        dated.iter().max_by_key(|(_, s)| *s)
    };
    chosen.map(|(i, _)| *i)
}

/// "el de las 5", "the 10:30 one", "the one on Friday": a time or day that names exactly one
/// shown option.
fn by_time(
    whens: &[(When, usize, usize)],
    options: &[ShownOption],
    ctx: &Context<'_>,
) -> Option<usize> {
    for (when, _, _) in whens {
        let mut readings = vec![when];
        if let Some(alt) = &when.alternative {
            readings.push(alt);
        }
        let unique = |pred: &dyn Fn(&ShownOption) -> bool| {
            let mut hits = options.iter().enumerate().filter(|(_, o)| pred(o));
            match (hits.next(), hits.next()) {
                (Some((i, _)), None) => Some(i),
                _ => None,
            }
        };
        if let Some(i) = unique(&|o| {
            o.start
                .is_some_and(|s| readings.iter().any(|r| r.start == s))
        }) {
            return Some(i);
        }
        let local = |t: chrono::DateTime<Utc>| t.with_timezone(&ctx.tz).naive_local();
        match when.grain {
            Grain::Minute | Grain::Hour => {
                let matches = |o: &ShownOption| {
                    o.start.is_some_and(|s| {
                        let s = local(s);
                        readings.iter().any(|r| {
                            let r = local(r.start);
                            r.hour() == s.hour() && r.minute() == s.minute()
                        })
                    })
                };
                if let Some(i) = unique(&matches) {
                    return Some(i);
                }
            }
            Grain::Day => {
                let matches = |o: &ShownOption| {
                    o.start
                        .is_some_and(|s| local(s).date() == local(when.start).date())
                };
                if let Some(i) = unique(&matches) {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

const NAME_STOPWORDS: &[&str] = &[
    "de", "del", "la", "el", "los", "las", "the", "and", "y", "con", "with", "a", "of", "en",
    "for", "para", "&", "+",
];

fn word_matches_name(message_word: &str, name_word: &str) -> bool {
    if message_word == name_word {
        return true;
    }
    // Plurals: "uñas" for "uña", "cuts" for "cut".
    if let Some(stem) = message_word
        .strip_suffix("es")
        .or_else(|| message_word.strip_suffix('s'))
        && stem == name_word
    {
        return true;
    }
    let len = name_word.chars().count();
    let budget = typo_budget(len).min(1 + usize::from(len >= 9));
    budget > 0
        && message_word.chars().count() >= 4
        && edit_distance(message_word, name_word, budget) <= budget
}

/// Index of the tenant name (service or staff) the message mentions, if any.
pub(crate) fn match_name(tokens: &[Token], names: &[String]) -> Option<usize> {
    let message: Vec<&str> = tokens
        .iter()
        .filter(|t| t.is_word())
        .map(|t| t.text.as_str())
        .collect();
    if message.is_empty() {
        return None;
    }
    let mut best: Option<(usize, f32, usize)> = None;
    for (index, name) in names.iter().enumerate() {
        let name_tokens = tokenize(name);
        let significant: Vec<&str> = name_tokens
            .iter()
            .filter(|t| t.is_word() && !NAME_STOPWORDS.contains(&t.text.as_str()))
            .map(|t| t.text.as_str())
            .collect();
        if significant.is_empty() {
            continue;
        }
        let matched = significant
            .iter()
            .filter(|nw| message.iter().any(|mw| word_matches_name(mw, nw)))
            .count();
        let share = matched as f32 / significant.len() as f32;
        let enough = if significant.len() <= 2 {
            matched == significant.len()
        } else {
            share >= 0.66
        };
        if enough && best.is_none_or(|(_, s, m)| share > s || (share == s && matched > m)) {
            best = Some((index, share, matched));
        }
    }
    best.map(|(i, _, _)| i)
}
