//! Simulated customers: small scripts of what a person means to do, made reactive by
//! [`next_act`], which looks at what the bot actually sent (its buttons, its list rows) and
//! decides the next tap or message. No I/O here, so every reaction is unit-tested against
//! recorded bot messages.

use std::time::Duration;

use fakes::whatsapp::{ListRow, Outbound, ReplyButton};
use lang::Lang;
use rand::Rng;
use rand::seq::IndexedRandom;

/// Which row of a list a customer picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    First,
    Last,
    Random,
}

/// What the customer waits for after acting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Buttons or a list: something to react to. Texts before it (a greeting) are kept.
    Offer,
    /// Any message, then a short quiet period so that trailing messages count for this step.
    Reply,
}

/// One intention of a customer.
#[derive(Debug, Clone, PartialEq)]
pub enum Beat {
    /// Type one of these (picked at random: people phrase things differently).
    Say(Vec<String>, Expect),
    /// Take what the bot offers until booked: pick a row from a list, confirm a hold.
    Book(Pick),
    /// Pick a row of the last list; skipped when the bot already proposed a single time.
    PickRow(Pick),
    /// Tap the button with this id on the last message.
    Tap(&'static str, Expect),
    /// Say nothing and wait for the bot to write on its own (a hold running out).
    AwaitBot(Duration),
}

/// How a conversation ended, for the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ending {
    Booked,
    HandedOff,
    OptedOut,
    /// The customer left without booking (let the hold go).
    LeftWithoutBooking,
    /// The conversation could not go on: a missing or unexpected reply.
    Failed,
}

impl Ending {
    pub fn label(self) -> &'static str {
        match self {
            Ending::Booked => "booked",
            Ending::HandedOff => "handed off",
            Ending::OptedOut => "opted out",
            Ending::LeftWithoutBooking => "left without booking",
            Ending::Failed => "failed",
        }
    }
}

/// A simulated customer.
#[derive(Debug, Clone, PartialEq)]
pub struct Persona {
    /// WhatsApp profile name; the bot greets by it.
    pub name: String,
    pub lang: Lang,
    /// A line for the transcript header.
    pub about: String,
    pub beats: Vec<Beat>,
    /// What this customer means to achieve; a different ending is reported as unexpected.
    pub goal: Ending,
}

/// A customer's next message.
#[derive(Debug, Clone, PartialEq)]
pub enum Act {
    Text(String),
    Button(ReplyButton),
    Row(ListRow),
    /// Nothing to send; wait this long for an unsolicited bot message.
    Wait(Duration),
}

/// What the customer does next within a beat.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    Do(Act, Expect),
    /// The beat is over; go on with the next one.
    BeatDone,
    /// The bot's last message gives nothing this beat can act on.
    Stuck(String),
}

/// Book beats give up after this many acts: a bot that keeps re-offering is a failure.
const MAX_BOOK_ACTS: usize = 6;

/// The next act for `beat`, given the bot's last message and how many acts this beat made.
/// `booked_seen` says whether the bot already confirmed a booking in this beat.
pub fn next_act(
    beat: &Beat,
    last: Option<&Outbound>,
    acts_in_beat: usize,
    rng: &mut impl Rng,
) -> Next {
    match beat {
        Beat::Say(variants, expect) => {
            if acts_in_beat > 0 {
                return Next::BeatDone;
            }
            match variants.choose(rng) {
                Some(text) => Next::Do(Act::Text(text.clone()), *expect),
                None => Next::BeatDone,
            }
        }
        Beat::AwaitBot(timeout) => {
            if acts_in_beat > 0 {
                Next::BeatDone
            } else {
                Next::Do(Act::Wait(*timeout), Expect::Offer)
            }
        }
        Beat::Tap(id, expect) => {
            if acts_in_beat > 0 {
                return Next::BeatDone;
            }
            match last.and_then(|message| button(message, id)) {
                Some(button) => Next::Do(Act::Button(button), *expect),
                // The hold went to someone else and the bot already lists other times:
                // the tap's point is moot, the next beat deals with the list.
                None if matches!(last, Some(Outbound::List { .. })) => Next::BeatDone,
                None => Next::Stuck(format!("no \"{id}\" button to tap")),
            }
        }
        Beat::PickRow(pick) => {
            if acts_in_beat > 0 {
                return Next::BeatDone;
            }
            match last {
                Some(Outbound::List { .. }) => match last.and_then(|m| row(m, *pick, rng)) {
                    Some(row) => Next::Do(Act::Row(row), Expect::Offer),
                    None => Next::Stuck("the list has no rows".into()),
                },
                // A single proposal is already what a pick would lead to.
                Some(Outbound::Buttons { .. }) => Next::BeatDone,
                _ => Next::Stuck("no list to pick from".into()),
            }
        }
        Beat::Book(pick) => {
            let offering = matches!(last, Some(Outbound::Buttons { .. } | Outbound::List { .. }));
            // After a confirm the reply is text: booked or not, the beat is over, even when
            // the confirm was the last act the customer's patience allowed.
            if acts_in_beat > 0 && last.is_some() && !offering {
                return Next::BeatDone;
            }
            if acts_in_beat >= MAX_BOOK_ACTS {
                return Next::Stuck("the bot kept offering without booking".into());
            }
            match last {
                Some(message @ Outbound::Buttons { .. }) => match button(message, "confirm") {
                    Some(confirm) => Next::Do(Act::Button(confirm), Expect::Reply),
                    None => Next::Stuck("buttons without \"confirm\"".into()),
                },
                Some(message @ Outbound::List { .. }) => match row(message, *pick, rng) {
                    Some(row) => Next::Do(Act::Row(row), Expect::Offer),
                    None => Next::Stuck("the list has no rows".into()),
                },
                _ => Next::Stuck("nothing offered to book".into()),
            }
        }
    }
}

fn button(message: &Outbound, id: &str) -> Option<ReplyButton> {
    match message {
        Outbound::Buttons { buttons, .. } => buttons.iter().find(|b| b.id == id).cloned(),
        _ => None,
    }
}

fn row(message: &Outbound, pick: Pick, rng: &mut impl Rng) -> Option<ListRow> {
    let Outbound::List { sections, .. } = message else {
        return None;
    };
    let rows: Vec<&ListRow> = sections.iter().flat_map(|s| s.rows.iter()).collect();
    let chosen = match pick {
        Pick::First => rows.first(),
        Pick::Last => rows.last(),
        Pick::Random => rows.choose(rng),
    };
    chosen.map(|row| (*row).clone())
}

/// Reads the ending off what the bot said, using the engine's own sentences.
pub fn ending_of(bot_texts: &[String], lang_hint: Lang) -> Option<Ending> {
    let markers = |lang: Lang| {
        let texts = engine::texts::Texts::new(lang);
        [
            (prefix(&texts.booked("\u{0}")), Ending::Booked),
            (prefix(&texts.handoff_notice("\u{0}")), Ending::HandedOff),
            (texts.opted_out(), Ending::OptedOut),
            (texts.hold_released(), Ending::LeftWithoutBooking),
        ]
    };
    let other = match lang_hint {
        Lang::En => Lang::Es,
        Lang::Es => Lang::En,
    };
    let mut all = markers(lang_hint).to_vec();
    all.extend(markers(other));
    bot_texts.iter().rev().find_map(|text| {
        all.iter()
            .find(|(marker, _)| !marker.is_empty() && text.contains(marker.as_str()))
            .map(|(_, ending)| *ending)
    })
}

/// The fixed start of a sentence built around a placeholder.
fn prefix(sentence: &str) -> String {
    sentence
        .split('\u{0}')
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn say(variants: &[&str], expect: Expect) -> Beat {
    Beat::Say(variants.iter().map(|s| (*s).to_owned()).collect(), expect)
}

/// The demo cast: a handful of people in both languages, each showing one behaviour.
/// `hold` is the business's hold length, so the silent customer waits just past it.
pub fn demo_cast(hold: Duration) -> Vec<(Persona, Lang)> {
    let silence = hold + Duration::from_secs(30);
    vec![
        (
            Persona {
                name: "Ana".into(),
                lang: Lang::En,
                about: "books a haircut, with typos".into(),
                beats: vec![
                    say(
                        &["hii, can i get a haircutt tomorow at 5pm?"],
                        Expect::Offer,
                    ),
                    Beat::Book(Pick::First),
                ],
                goal: Ending::Booked,
            },
            Lang::En,
        ),
        (
            Persona {
                name: "Ben".into(),
                lang: Lang::En,
                about: "picks a time from the list, changes his mind, picks another".into(),
                beats: vec![
                    say(
                        &[
                            "Do you have anything for a haircut the day after tomorrow in the afternoon?",
                        ],
                        Expect::Offer,
                    ),
                    Beat::PickRow(Pick::First),
                    Beat::Tap("other", Expect::Offer),
                    Beat::Book(Pick::Last),
                ],
                goal: Ending::Booked,
            },
            Lang::En,
        ),
        (
            Persona {
                name: "Dave".into(),
                lang: Lang::En,
                about: "wants a person".into(),
                beats: vec![say(
                    &["hi, can I talk to a real person please?"],
                    Expect::Reply,
                )],
                goal: Ending::HandedOff,
            },
            Lang::En,
        ),
        (
            Persona {
                name: "Chloe".into(),
                lang: Lang::En,
                about: "goes silent until the hold expires, then picks again".into(),
                beats: vec![
                    say(&["haircut tomorrow at 11am please"], Expect::Offer),
                    Beat::AwaitBot(silence),
                    Beat::Book(Pick::First),
                ],
                goal: Ending::Booked,
            },
            Lang::En,
        ),
        (
            Persona {
                name: "Lucía".into(),
                lang: Lang::Es,
                about: "reserva fisio para mañana a las 5".into(),
                beats: vec![
                    say(
                        &["hola! quiero cita de fisio mañana a las 5"],
                        Expect::Offer,
                    ),
                    Beat::Book(Pick::First),
                ],
                goal: Ending::Booked,
            },
            Lang::Es,
        ),
        (
            Persona {
                name: "Carmen".into(),
                lang: Lang::Es,
                about: "escribe con faltas y elige de la lista".into(),
                beats: vec![
                    say(
                        &["buenas, tenéis hueco pasado mañana por la tarde?"],
                        Expect::Offer,
                    ),
                    Beat::Book(Pick::Random),
                ],
                goal: Ending::Booked,
            },
            Lang::Es,
        ),
        (
            Persona {
                name: "Mateo".into(),
                lang: Lang::Es,
                about: "cambia de idea, suelta la hora y escribe STOP".into(),
                beats: vec![
                    say(&["kiero una cita mañna a las 6 de la tarde"], Expect::Offer),
                    Beat::PickRow(Pick::First),
                    Beat::Tap("cancel_hold", Expect::Reply),
                    say(&["STOP"], Expect::Reply),
                ],
                goal: Ending::OptedOut,
            },
            Lang::Es,
        ),
    ]
}

/// A load-test customer: asks for a random day and time, takes what is offered, and
/// sometimes changes their mind once or asks for a person.
pub fn load_customer(index: u64, lang: Lang, rng: &mut impl Rng) -> Persona {
    let hour = rng.random_range(8..=20);
    let minute = [0, 15, 30, 45][rng.random_range(0..4)];
    let day_offset = rng.random_range(1..=20);
    let roll: f64 = rng.random();
    let (en_day, es_day) = match day_offset {
        1 => ("tomorrow".to_owned(), "mañana".to_owned()),
        2 => (
            "the day after tomorrow".to_owned(),
            "pasado mañana".to_owned(),
        ),
        n => (format!("in {n} days"), format!("dentro de {n} días")),
    };
    let request = match lang {
        Lang::En => format!("hi, can I book a haircut {en_day} at {hour}:{minute:02}?"),
        Lang::Es => format!("hola, quiero cita de fisio {es_day} a las {hour}:{minute:02}"),
    };
    let name = format!("Customer {index}");
    let (beats, goal) = if roll < 0.05 {
        let ask = match lang {
            Lang::En => "can I speak to a person?",
            Lang::Es => "quiero hablar con una persona",
        };
        (vec![say(&[ask], Expect::Reply)], Ending::HandedOff)
    } else if roll < 0.15 {
        (
            vec![
                Beat::Say(vec![request], Expect::Offer),
                Beat::PickRow(Pick::Random),
                Beat::Tap("other", Expect::Offer),
                Beat::Book(Pick::Random),
            ],
            Ending::Booked,
        )
    } else {
        (
            vec![
                Beat::Say(vec![request], Expect::Offer),
                Beat::Book(Pick::Random),
            ],
            Ending::Booked,
        )
    };
    Persona {
        name,
        lang,
        about: "load".into(),
        beats,
        goal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fakes::whatsapp::ListSection;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    fn confirm_buttons() -> Outbound {
        Outbound::Buttons {
            header: None,
            body: "Confirm Haircut, Thu 15 Jan, 17:00 with Maria?".into(),
            footer: Some("Held for you for 1 min".into()),
            buttons: vec![
                ReplyButton {
                    id: "confirm".into(),
                    title: "Confirm".into(),
                },
                ReplyButton {
                    id: "other".into(),
                    title: "Other time".into(),
                },
                ReplyButton {
                    id: "cancel_hold".into(),
                    title: "Cancel".into(),
                },
            ],
        }
    }

    fn times_list() -> Outbound {
        let row = |id: &str, title: &str| ListRow {
            id: id.into(),
            title: title.into(),
            description: Some("Haircut · 30 min · Maria".into()),
        };
        Outbound::List {
            header: None,
            body: "Free times for Haircut:".into(),
            footer: None,
            button: "See times".into(),
            sections: vec![
                ListSection {
                    title: "Thu 15 Jan".into(),
                    rows: vec![
                        row("slot:1768496400:maria", "12:00"),
                        row("slot:1768497300:maria", "12:15"),
                    ],
                },
                ListSection {
                    title: "Fri 16 Jan".into(),
                    rows: vec![row("slot:1768575600:james", "10:00")],
                },
            ],
        }
    }

    fn text(body: &str) -> Outbound {
        Outbound::Text {
            body: body.into(),
            preview_url: false,
        }
    }

    #[test]
    fn book_confirms_a_proposed_time() {
        let next = next_act(
            &Beat::Book(Pick::First),
            Some(&confirm_buttons()),
            0,
            &mut rng(),
        );
        assert_eq!(
            next,
            Next::Do(
                Act::Button(ReplyButton {
                    id: "confirm".into(),
                    title: "Confirm".into()
                }),
                Expect::Reply
            )
        );
    }

    #[test]
    fn book_picks_from_the_list_the_bot_sent() {
        let first = next_act(&Beat::Book(Pick::First), Some(&times_list()), 0, &mut rng());
        let last = next_act(&Beat::Book(Pick::Last), Some(&times_list()), 0, &mut rng());
        match (first, last) {
            (Next::Do(Act::Row(first), Expect::Offer), Next::Do(Act::Row(last), Expect::Offer)) => {
                assert_eq!(first.id, "slot:1768496400:maria");
                assert_eq!(last.id, "slot:1768575600:james");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn book_ends_on_the_text_after_a_confirm_and_gives_up_on_endless_offers() {
        let booked = text("You're booked: Haircut, Thu 15 Jan, 17:00 with Maria. See you then!");
        assert_eq!(
            next_act(&Beat::Book(Pick::First), Some(&booked), 2, &mut rng()),
            Next::BeatDone
        );
        // Slots taken under the customer's fingers five times, then booked on the sixth act:
        // booked, not given up.
        assert_eq!(
            next_act(
                &Beat::Book(Pick::First),
                Some(&booked),
                MAX_BOOK_ACTS,
                &mut rng()
            ),
            Next::BeatDone
        );
        assert!(matches!(
            next_act(&Beat::Book(Pick::First), Some(&booked), 0, &mut rng()),
            Next::Stuck(_)
        ));
        assert!(matches!(
            next_act(
                &Beat::Book(Pick::First),
                Some(&times_list()),
                MAX_BOOK_ACTS,
                &mut rng()
            ),
            Next::Stuck(_)
        ));
    }

    #[test]
    fn pick_row_is_skipped_when_a_single_time_was_proposed() {
        assert_eq!(
            next_act(
                &Beat::PickRow(Pick::Random),
                Some(&confirm_buttons()),
                0,
                &mut rng()
            ),
            Next::BeatDone
        );
        assert!(matches!(
            next_act(
                &Beat::PickRow(Pick::Random),
                Some(&text("hello")),
                0,
                &mut rng()
            ),
            Next::Stuck(_)
        ));
    }

    #[test]
    fn tap_needs_the_button_on_the_last_message() {
        assert!(matches!(
            next_act(
                &Beat::Tap("other", Expect::Offer),
                Some(&confirm_buttons()),
                0,
                &mut rng()
            ),
            Next::Do(Act::Button(b), Expect::Offer) if b.id == "other"
        ));
        assert_eq!(
            next_act(
                &Beat::Tap("other", Expect::Offer),
                Some(&times_list()),
                0,
                &mut rng()
            ),
            Next::BeatDone,
            "a list instead of a proposal already offers other times"
        );
        assert!(matches!(
            next_act(
                &Beat::Tap("other", Expect::Offer),
                Some(&text("Sorry, I didn't understand.")),
                0,
                &mut rng()
            ),
            Next::Stuck(_)
        ));
    }

    #[test]
    fn endings_are_read_from_the_engine_sentences_in_either_language() {
        let en = engine::texts::Texts::new(Lang::En);
        let es = engine::texts::Texts::new(Lang::Es);
        let check = |texts: Vec<String>, expected: Option<Ending>| {
            assert_eq!(ending_of(&texts, Lang::En), expected, "{texts:?}");
        };
        check(
            vec![en.booked("Haircut, Thu 15 Jan, 17:00")],
            Some(Ending::Booked),
        );
        check(
            vec![es.booked("Fisio, jue 15 ene, 17:00")],
            Some(Ending::Booked),
        );
        check(vec![es.handoff_notice("Clínica")], Some(Ending::HandedOff));
        check(
            vec![en.hold_released(), es.opted_out()],
            Some(Ending::OptedOut),
        );
        check(vec![en.not_understood()], None);
    }

    #[test]
    fn load_customers_speak_their_business_language() {
        let mut rng = rng();
        for index in 0..50 {
            let persona = load_customer(index, Lang::Es, &mut rng);
            let Some(Beat::Say(variants, _)) = persona.beats.first() else {
                panic!("starts by writing");
            };
            assert!(
                variants[0].starts_with("hola") || variants[0].starts_with("quiero"),
                "{variants:?}"
            );
        }
    }
}
