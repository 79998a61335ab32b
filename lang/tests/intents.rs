//! Intents, language detection, choices among shown options, service and staff mentions.

mod common;

use chrono::{DateTime, Utc};
use lang::{Context, DateOrder, IntentName, Lang, ShownOption, understand};

fn now() -> DateTime<Utc> {
    common::instant("2026-03-10T10:00:00+01:00")
}

fn ctx<'a>(services: &'a [String], staff: &'a [String], options: &'a [ShownOption]) -> Context<'a> {
    Context {
        now: now(),
        tz: chrono_tz::Europe::Madrid,
        default_lang: Lang::Es,
        lang_hint: None,
        date_order: DateOrder::DayFirst,
        services,
        staff,
        options,
    }
}

fn top(text: &str) -> IntentName {
    understand(text, &ctx(&[], &[], &[])).top_intent()
}

fn check_intents(cases: &[(&str, IntentName)]) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(text, expected)| {
            let got = top(text);
            (got != *expected).then(|| {
                format!(
                    "{text:?}: expected {}, got {}",
                    expected.as_str(),
                    got.as_str()
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn intents_from_the_brief() {
    use IntentName::*;
    check_intents(&[
        ("¿tenéis algo el jueves por la tarde?", AskAvailability),
        ("can u do tmrw after 4", Book),
        ("cancela lo de mañana", Cancel),
        ("I need a human", Human),
        ("STOP", OptOut),
        ("BAJA", OptOut),
        ("no me escribáis más", OptOut),
        ("START", OptIn),
        ("ALTA", OptIn),
        ("👍", Confirm),
        ("vale", Confirm),
        ("sí", Confirm),
        ("ok", Confirm),
        ("no", Decline),
        ("hola", Greeting),
        ("thanks!", Thanks),
    ]);
}

#[test]
fn intents_in_english() {
    use IntentName::*;
    check_intents(&[
        ("i want to book a haircut", Book),
        ("can i make an appointment for friday", Book),
        ("tomorrow at 5?", Book),
        ("reschedule please", Reschedule),
        ("can we move it to thursday instead", Reschedule),
        ("cancel my appointment", Cancel),
        ("cancle", Cancel),
        ("i cant make it tomorrow", Cancel),
        ("yes please", Confirm),
        ("YESSS", Confirm),
        ("sounds good", Confirm),
        ("nope", Decline),
        ("no thanks", Decline),
        ("any openings on saturday?", AskAvailability),
        ("what times do you have free tomorrow", AskAvailability),
        ("when is my appointment", MyBooking),
        ("can i talk to a real person", Human),
        ("unsubscribe", OptOut),
        ("hey", Greeting),
        ("good morning", Greeting),
        ("thank you so much", Thanks),
        ("lol", Other),
        ("what's the weather tomorrow", Other),
        ("set an alarm for 7am", Other),
        ("cancel my spotify subscription", Other),
    ]);
}

#[test]
fn intents_in_spanish() {
    use IntentName::*;
    check_intents(&[
        ("quiero pedir cita", Book),
        ("me das hora para el viernes?", Book),
        ("mañana a las 5", Book),
        ("quiero cambiar la cita", Reschedule),
        ("se puede aplazar al lunes?", Reschedule),
        ("quiero cancelar", Cancel),
        ("anula la cita porfa", Cancel),
        ("no puedo ir mañana", Cancel),
        ("siii", Confirm),
        ("perfecto", Confirm),
        ("de acuerdo", Confirm),
        ("no me viene bien", Decline),
        ("ninguna", Decline),
        ("hay hueco el sábado?", AskAvailability),
        ("cuándo es mi cita?", MyBooking),
        ("quiero hablar con una persona", Human),
        ("darme de baja", OptOut),
        ("buenos días", Greeting),
        ("muchas gracias", Thanks),
        ("jajaja", Other),
        ("pon música", Other),
        ("despiértame a las 7", Other),
    ]);
}

#[test]
fn intents_carry_confidences_in_order() {
    let u = understand("quiero cancelar mi cita de mañana", &ctx(&[], &[], &[]));
    assert!(!u.intents.is_empty());
    assert!(
        u.intents
            .windows(2)
            .all(|w| w[0].confidence >= w[1].confidence)
    );
    assert!(
        u.intents
            .iter()
            .all(|i| (0.0..=1.0).contains(&i.confidence))
    );
    assert_eq!(u.top_intent(), IntentName::Cancel);
}

#[test]
fn language_per_message() {
    let c = ctx(&[], &[], &[]);
    assert_eq!(understand("can u do tmrw after 4", &c).lang, Lang::En);
    assert_eq!(understand("¿tenéis algo el jueves?", &c).lang, Lang::Es);
    assert_eq!(understand("ok mañana at 5", &c).lang, Lang::Es);
    assert_eq!(understand("I need a human", &c).lang, Lang::En);
    // No signal: the business default decides.
    assert_eq!(understand("10:30", &c).lang, Lang::Es);
    let english_default = Context {
        default_lang: Lang::En,
        ..c.clone()
    };
    assert_eq!(understand("10:30", &english_default).lang, Lang::En);
    let hinted = Context {
        lang_hint: Some(Lang::En),
        ..c
    };
    assert_eq!(understand("👍", &hinted).lang, Lang::En);
}

fn slot(id: &str, start: &str, title: &str) -> ShownOption {
    ShownOption {
        id: id.to_string(),
        start: Some(common::instant(start)),
        title: title.to_string(),
    }
}

fn shown() -> Vec<ShownOption> {
    vec![
        slot("a", "2026-03-11T09:00:00+01:00", "Mié 11 mar 09:00"),
        slot("b", "2026-03-11T17:00:00+01:00", "Mié 11 mar 17:00"),
        slot("c", "2026-03-12T10:30:00+01:00", "Jue 12 mar 10:30"),
    ]
}

#[test]
fn choices_among_shown_options() {
    let options = shown();
    let pick = |text: &str| {
        understand(text, &ctx(&[], &[], &options))
            .choice
            .map(|c| c.index)
    };
    assert_eq!(pick("the second one"), Some(1));
    assert_eq!(pick("la 2"), Some(1));
    assert_eq!(pick("3"), Some(2));
    assert_eq!(pick("la primera"), Some(0));
    assert_eq!(pick("option 3"), Some(2));
    assert_eq!(pick("el de las 5"), Some(1));
    assert_eq!(pick("the 10:30 one"), Some(2));
    assert_eq!(pick("the earlier one"), Some(0));
    assert_eq!(pick("la más tarde"), Some(2));
    assert_eq!(pick("la última"), Some(2));
    assert_eq!(pick("Jue 12 mar 10:30"), Some(2));
    assert_eq!(pick("el del jueves"), Some(2));
    assert_eq!(pick("7"), None);
    assert_eq!(pick("a las 8"), None);
    // "la 2" picks an option; it is not also read as the 2nd of the month.
    let u = understand("la 2", &ctx(&[], &[], &options));
    assert!(u.when.is_empty());
    assert_eq!(understand("la 2", &ctx(&[], &[], &[])).choice, None);
}

#[test]
fn services_and_staff_are_matched_tolerantly() {
    let services = vec![
        "Corte de pelo".to_string(),
        "Manicura".to_string(),
        "Tinte y mechas".to_string(),
    ];
    let staff = vec!["Laura".to_string(), "José Luis".to_string()];
    let read = |text: &str| {
        let u = understand(text, &ctx(&services, &staff, &[]));
        (u.service, u.staff)
    };
    assert_eq!(
        read("quiero un corte de pelo con Laura"),
        (Some(0), Some(0))
    );
    assert_eq!(read("MANICURA mañana"), (Some(1), None));
    assert_eq!(read("manicure tomorrow"), (Some(1), None));
    assert_eq!(read("tinte y mechas con jose luis"), (Some(2), Some(1)));
    assert_eq!(read("con laurra a las 5"), (None, Some(0)));
    assert_eq!(read("hola"), (None, None));
}

/// Frames: a verb class, what it applies to, and whether it is negated.
#[test]
fn negation_and_verb_frames() {
    use IntentName::*;
    check_intents(&[
        ("no quiero cancelar", Decline),
        ("don't cancel it", Other),
        ("I don't need an appointment anymore", Cancel),
        ("ya no necesito la cita", Cancel),
        ("i won't be coming on thursday", Cancel),
        ("no asistiré el lunes", Cancel),
        ("scrap my booking", Cancel),
        ("bórrame la cita", Cancel),
        ("take me off your list", OptOut),
        ("quitadme de la lista", OptOut),
        ("no quiero cancelar, quiero cambiarla al lunes", Reschedule),
        ("can we switch my appointment to the morning", Reschedule),
        ("quiero modificar la reserva", Reschedule),
        ("stop texting me", OptOut),
        ("send me the reminders again", OptIn),
        ("that's not correct", Decline),
        ("do you have parking", Other),
        ("what time do you close", Other),
        ("a table for 6 people tonight", Book),
        ("what time did i book", MyBooking),
        ("could I have an appointment on monday", Book),
        ("para pasado mañana por la tarde", Book),
    ]);
}
