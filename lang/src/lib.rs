#![forbid(unsafe_code)]
//! Language understanding for booking conversations, as a pure function.
//!
//! `understand(text, &context)` reads one customer message and returns what it understood:
//! the language, ranked intents, resolved date/time expressions, a choice among the options
//! last shown, and service/staff mentions. No network, no clock, no randomness: `now` and the
//! business time zone come in through [`Context`], so every result is reproducible.
//!
//! Modules, in the order a message goes through them:
//! - `tokens`: normalisation (case, accents, repeated letters) and tokenisation;
//! - `numbers`: numbers and ordinals as digits or words;
//! - `detect`: English or Spanish, per message;
//! - `time`: the date/time grammar and its resolution in the business time zone;
//! - `choice`: picks among shown options, service and staff mentions;
//! - `intents`: ranked intents from phrase evidence and the signals above.

mod choice;
mod detect;
mod intents;
mod model;
mod numbers;
mod time;
mod tokens;

pub use model::*;

/// Reads one message in its context.
///
/// Never panics, whatever the input; an empty or meaningless message yields
/// [`IntentName::Other`] and no date/time.
pub fn understand(text: &str, ctx: &Context<'_>) -> Understanding {
    let tokens = tokens::tokenize(text);
    let lang = detect::detect(text, &tokens, ctx);

    let found = time::find(&tokens, lang, ctx);
    let mut whens: Vec<(When, usize, usize)> = found
        .iter()
        .filter_map(|f| {
            time::resolve(f, &tokens, text, lang, ctx).map(|w| (w, f.first_token, f.end_token))
        })
        .collect();

    let picked = choice::pick(&tokens, &whens, ctx);
    if let Some((first, end)) = picked.and_then(|p| p.tokens) {
        // "la 2" picked an option; it was not "the 2nd of the month".
        whens.retain(|(_, f, e)| *e <= first || *f >= end);
    }

    let service = choice::match_name(&tokens, ctx.services);
    let staff = choice::match_name(&tokens, ctx.staff);

    let content_words = tokens
        .iter()
        .filter(|t| t.is_word() || t.is_number())
        .count()
        .max(1);
    let time_words: usize = whens
        .iter()
        .map(|(_, f, e)| {
            tokens
                .get(*f..*e)
                .map(|ts| ts.iter().filter(|t| t.is_word() || t.is_number()).count())
                .unwrap_or(0)
        })
        .sum();
    let signals = intents::Signals {
        // Only a time still to come is evidence of a booking ("hace un día" is not).
        has_time: whens.iter().any(|(w, _, _)| !w.in_past),
        time_coverage: time_words as f32 / content_words as f32,
        has_service: service.is_some(),
        has_choice: picked.is_some(),
    };
    let intents = intents::classify(&tokens, &signals);

    Understanding {
        lang,
        intents,
        when: whens.into_iter().map(|(w, _, _)| w).collect(),
        choice: picked.map(|p| p.choice),
        service,
        staff,
    }
}
