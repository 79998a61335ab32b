//! Every customer-facing sentence, in English and Spanish.
//!
//! Kept in one place so a translation is reviewed side by side with its original, and so the
//! length limits of buttons and rows are checked against every language by the tests below.

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use lang::Lang;

const EN_WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const ES_WEEKDAYS: [&str; 7] = ["lun", "mar", "mié", "jue", "vie", "sáb", "dom"];
const EN_MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const ES_MONTHS: [&str; 12] = [
    "ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sept", "oct", "nov", "dic",
];

/// "Thu 15 Jan" / "jue 15 ene" in the given zone.
pub fn day(at: DateTime<Utc>, tz: Tz, lang: Lang) -> String {
    let local = at.with_timezone(&tz);
    let weekday = local.weekday().num_days_from_monday() as usize;
    let month = local.month0() as usize;
    match lang {
        Lang::En => format!(
            "{} {} {}",
            EN_WEEKDAYS[weekday],
            local.day(),
            EN_MONTHS[month]
        ),
        Lang::Es => format!(
            "{} {} {}",
            ES_WEEKDAYS[weekday],
            local.day(),
            ES_MONTHS[month]
        ),
    }
}

/// "17:00" in the given zone.
pub fn clock(at: DateTime<Utc>, tz: Tz) -> String {
    let local = at.with_timezone(&tz);
    format!("{:02}:{:02}", local.hour(), local.minute())
}

/// "Thu 15 Jan, 17:00" / "jue 15 ene, 17:00": the absolute date every proposal echoes.
pub fn when(at: DateTime<Utc>, tz: Tz, lang: Lang) -> String {
    format!("{}, {}", day(at, tz, lang), clock(at, tz))
}

/// Why the customer is being shown a list of times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListReason {
    /// They asked for a day or a range and these are its free times.
    Requested,
    /// They asked without a time: the soonest free times.
    Soonest,
    /// The exact time asked is booked.
    Taken,
    /// The business is closed then.
    Closed,
    /// Too close to now to prepare.
    TooSoon,
    /// Further ahead than bookings are taken.
    BeyondHorizon,
    /// The time has already passed.
    Past,
    /// Another customer took it a moment ago.
    JustTaken,
    /// The hold ran out.
    HoldExpired,
    /// They asked for another time.
    Other,
}

/// The texts of one language.
#[derive(Debug, Clone, Copy)]
pub struct Texts {
    /// The language every method answers in.
    pub lang: Lang,
}

impl Texts {
    pub fn new(lang: Lang) -> Self {
        Texts { lang }
    }

    fn pick(&self, en: &str, es: &str) -> String {
        match self.lang {
            Lang::En => en.to_string(),
            Lang::Es => es.to_string(),
        }
    }

    pub fn greeting(&self, name: Option<&str>, business: &str) -> String {
        match (self.lang, name) {
            (Lang::En, Some(name)) => format!("Hi {name}! This is {business}."),
            (Lang::En, None) => format!("Hi! This is {business}."),
            (Lang::Es, Some(name)) => format!("¡Hola, {name}! Te escribe {business}."),
            (Lang::Es, None) => format!("¡Hola! Te escribe {business}."),
        }
    }

    pub fn welcome_back(&self, name: Option<&str>, booking: &str) -> String {
        match (self.lang, name) {
            (Lang::En, Some(name)) => format!("Welcome back, {name}! Your booking: {booking}."),
            (Lang::En, None) => format!("Welcome back! Your booking: {booking}."),
            (Lang::Es, Some(name)) => format!("¡Hola de nuevo, {name}! Tu cita: {booking}."),
            (Lang::Es, None) => format!("¡Hola de nuevo! Tu cita: {booking}."),
        }
    }

    pub fn how_can_i_help(&self) -> String {
        self.pick(
            "Tell me a day and time and I'll check for you, e.g. \"tomorrow at 5\".",
            "Dime un día y una hora y lo miro, por ejemplo \"mañana a las 5\".",
        )
    }

    pub fn booking_line(&self, service: &str, when: &str, staff: Option<&str>) -> String {
        match (self.lang, staff) {
            (Lang::En, Some(staff)) => format!("{service}, {when} with {staff}"),
            (Lang::Es, Some(staff)) => format!("{service}, {when} con {staff}"),
            (_, None) => format!("{service}, {when}"),
        }
    }

    pub fn ask_service(&self) -> String {
        self.pick("Which service would you like?", "¿Qué servicio quieres?")
    }

    pub fn services_button(&self) -> String {
        self.pick("Services", "Servicios")
    }

    pub fn times_button(&self) -> String {
        self.pick("See times", "Ver horas")
    }

    pub fn list_body(&self, reason: ListReason, asked: Option<&str>, service: &str) -> String {
        let asked = asked.unwrap_or("");
        match (self.lang, reason) {
            (Lang::En, ListReason::Requested) => format!("Free times for {service}:"),
            (Lang::Es, ListReason::Requested) => format!("Horas libres para {service}:"),
            (Lang::En, ListReason::Soonest) => format!("The next free times for {service}:"),
            (Lang::Es, ListReason::Soonest) => format!("Las próximas horas libres para {service}:"),
            (Lang::En, ListReason::Taken) => {
                format!("{asked} is already booked. The nearest free times for {service}:")
            }
            (Lang::Es, ListReason::Taken) => {
                format!("{asked} ya está ocupado. Las horas libres más cercanas para {service}:")
            }
            (Lang::En, ListReason::Closed) => {
                format!("We're closed at {asked}. The nearest free times for {service}:")
            }
            (Lang::Es, ListReason::Closed) => format!(
                "A esa hora ({asked}) estamos cerrados. Las horas libres más cercanas para {service}:"
            ),
            (Lang::En, ListReason::TooSoon) => format!(
                "{asked} is too soon for us to prepare. The nearest free times for {service}:"
            ),
            (Lang::Es, ListReason::TooSoon) => format!(
                "{asked} es demasiado pronto. Las horas libres más cercanas para {service}:"
            ),
            (Lang::En, ListReason::BeyondHorizon) => format!(
                "We don't take bookings that far ahead ({asked}) yet. The latest free times for {service}:"
            ),
            (Lang::Es, ListReason::BeyondHorizon) => format!(
                "Aún no damos citas para tan adelante ({asked}). Las horas libres más cercanas para {service}:"
            ),
            (Lang::En, ListReason::Past) => {
                format!("{asked} has already passed. The next free times for {service}:")
            }
            (Lang::Es, ListReason::Past) => {
                format!("{asked} ya ha pasado. Las próximas horas libres para {service}:")
            }
            (Lang::En, ListReason::JustTaken) => {
                format!("Sorry, {asked} was just taken. The nearest free times for {service}:")
            }
            (Lang::Es, ListReason::JustTaken) => format!(
                "Lo siento, {asked} se acaba de ocupar. Las horas libres más cercanas para {service}:"
            ),
            (Lang::En, ListReason::HoldExpired) => format!(
                "I held {asked} for you but the time to confirm ran out, so I let it go. Pick a time for {service}:"
            ),
            (Lang::Es, ListReason::HoldExpired) => format!(
                "Te reservé {asked} pero se acabó el tiempo para confirmar y lo he liberado. Elige una hora para {service}:"
            ),
            (Lang::En, ListReason::Other) => format!("No problem. Other free times for {service}:"),
            (Lang::Es, ListReason::Other) => {
                format!("Sin problema. Otras horas libres para {service}:")
            }
        }
    }

    pub fn confirm_question(&self, line: &str, customer_local: Option<&str>) -> String {
        let local = match (self.lang, customer_local) {
            (_, None) => String::new(),
            (Lang::En, Some(local)) => format!(" (that's {local} your time)"),
            (Lang::Es, Some(local)) => format!(" (en tu hora: {local})"),
        };
        match self.lang {
            Lang::En => format!("Confirm {line}{local}?"),
            Lang::Es => format!("¿Confirmas {line}{local}?"),
        }
    }

    pub fn held_footer(&self, minutes: u32) -> String {
        match self.lang {
            Lang::En => format!("Held for you for {minutes} min"),
            Lang::Es => format!("Te lo guardo {minutes} min"),
        }
    }

    pub fn confirm_button(&self) -> String {
        self.pick("Confirm", "Confirmar")
    }

    pub fn other_time_button(&self) -> String {
        self.pick("Other time", "Otra hora")
    }

    pub fn cancel_button(&self) -> String {
        self.pick("Cancel", "Cancelar")
    }

    pub fn reschedule_button(&self) -> String {
        self.pick("Change time", "Cambiar hora")
    }

    pub fn yes_cancel_button(&self) -> String {
        self.pick("Yes, cancel", "Sí, cancelar")
    }

    pub fn keep_button(&self) -> String {
        self.pick("Keep it", "Mantener")
    }

    pub fn booked(&self, line: &str) -> String {
        match self.lang {
            Lang::En => format!("You're booked: {line}. See you then!"),
            Lang::Es => format!("Cita confirmada: {line}. ¡Te esperamos!"),
        }
    }

    pub fn rescheduled(&self, line: &str) -> String {
        match self.lang {
            Lang::En => format!("Done, your booking is moved to {line}."),
            Lang::Es => format!("Hecho, tu cita ahora es {line}."),
        }
    }

    pub fn reschedule_which_time(&self, line: &str) -> String {
        match self.lang {
            Lang::En => format!("Your booking is {line}. When would you like to move it to?"),
            Lang::Es => format!("Tu cita es {line}. ¿A qué día y hora quieres cambiarla?"),
        }
    }

    pub fn kept_old_booking(&self, line: &str) -> String {
        match self.lang {
            Lang::En => format!("OK, your booking stays as it was: {line}."),
            Lang::Es => format!("De acuerdo, tu cita sigue igual: {line}."),
        }
    }

    pub fn cancel_question(&self, line: &str) -> String {
        match self.lang {
            Lang::En => format!("Cancel your booking {line}?"),
            Lang::Es => format!("¿Cancelamos tu cita {line}?"),
        }
    }

    pub fn cancelled(&self, line: &str) -> String {
        match self.lang {
            Lang::En => format!("Your booking {line} is cancelled. Write any time to book again."),
            Lang::Es => {
                format!("Tu cita {line} está cancelada. Escríbenos cuando quieras para pedir otra.")
            }
        }
    }

    pub fn kept(&self, line: &str) -> String {
        match self.lang {
            Lang::En => format!("Great, your booking stays: {line}."),
            Lang::Es => format!("Perfecto, mantenemos tu cita: {line}."),
        }
    }

    pub fn hold_released(&self) -> String {
        self.pick(
            "OK, I've let that time go. Write whenever you want to book.",
            "De acuerdo, he liberado esa hora. Escríbeme cuando quieras reservar.",
        )
    }

    pub fn nothing_to_cancel(&self) -> String {
        self.pick(
            "You have no booking with us right now.",
            "Ahora mismo no tienes ninguna cita con nosotros.",
        )
    }

    pub fn your_booking(&self, line: &str) -> String {
        match self.lang {
            Lang::En => format!("Your booking: {line}."),
            Lang::Es => format!("Tu cita: {line}."),
        }
    }

    pub fn handoff_notice(&self, business: &str) -> String {
        match self.lang {
            Lang::En => format!(
                "I'm passing you to a person at {business}; they'll answer you here shortly."
            ),
            Lang::Es => {
                format!("Te paso con una persona de {business}; te responderá por aquí en breve.")
            }
        }
    }

    pub fn calendar_unreachable_notice(&self, business: &str) -> String {
        match self.lang {
            Lang::En => format!(
                "I can't reach our calendar right now, so I'm passing you to a person at \
                 {business}; they'll answer you here shortly."
            ),
            Lang::Es => format!(
                "Ahora mismo no puedo consultar la agenda, así que te paso con una persona de \
                 {business}; te responderá por aquí en breve."
            ),
        }
    }

    pub fn opted_out(&self) -> String {
        self.pick(
            "You won't receive more messages from us. Send START if you change your mind.",
            "No recibirás más mensajes nuestros. Envía START si cambias de opinión.",
        )
    }

    pub fn opted_in(&self) -> String {
        self.pick(
            "Welcome back! You'll receive our messages again.",
            "¡Bienvenido de nuevo! Volverás a recibir nuestros mensajes.",
        )
    }

    pub fn not_understood(&self) -> String {
        self.pick(
            "Sorry, I didn't understand. You can write a day and time (\"Friday at 10:30\"), \"my booking\", \"cancel\" or \"talk to a person\".",
            "Perdona, no te he entendido. Puedes escribir un día y una hora (\"el viernes a las 10:30\"), \"mi cita\", \"cancelar\" o \"hablar con una persona\".",
        )
    }

    pub fn media_not_read(&self) -> String {
        self.pick(
            "Sorry, I can only read text messages. Please write it for me.",
            "Perdona, solo puedo leer mensajes de texto. ¿Me lo escribes?",
        )
    }

    pub fn stale_option(&self) -> String {
        self.pick(
            "That option is no longer current.",
            "Esa opción ya no está vigente.",
        )
    }

    pub fn thanks_reply(&self) -> String {
        self.pick("You're welcome!", "¡De nada!")
    }

    pub fn reminder(&self, name: &str, line: &str) -> String {
        match self.lang {
            Lang::En => format!("Hi {name}, a reminder of your booking: {line}."),
            Lang::Es => format!("Hola, {name}: te recordamos tu cita: {line}."),
        }
    }

    pub fn attendance_confirmed(&self) -> String {
        self.pick(
            "Thanks for confirming, see you then!",
            "Gracias por confirmar, ¡te esperamos!",
        )
    }

    pub fn follow_up(&self, name: &str, service: &str) -> String {
        match self.lang {
            Lang::En => format!(
                "Hi {name}, thanks for coming in for your {service}. How was it? Write any time to book again."
            ),
            Lang::Es => format!(
                "Hola, {name}: gracias por venir a tu cita de {service}. ¿Qué tal fue? Escríbenos cuando quieras para otra cita."
            ),
        }
    }

    pub fn cancelled_by_business(&self, line: &str) -> String {
        match self.lang {
            Lang::En => format!(
                "Your booking {line} has been cancelled. Reply with a day and time if you'd like a new one."
            ),
            Lang::Es => format!(
                "Tu cita {line} ha sido cancelada. Respóndenos con un día y hora si quieres otra."
            ),
        }
    }

    pub fn moved_by_business(&self, line: &str) -> String {
        match self.lang {
            Lang::En => format!("Your booking has been moved to {line}."),
            Lang::Es => format!("Tu cita se ha cambiado a {line}."),
        }
    }

    /// Used as the name parameter of templates when the profile name is unknown.
    pub fn anonymous_name(&self) -> String {
        self.pick("there", "cliente")
    }

    pub fn minutes(&self, minutes: u32) -> String {
        format!("{minutes} min")
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn booking_lines_name_staff_only_when_there_is_a_person() {
        let en = Texts::new(Lang::En);
        assert_eq!(
            en.booking_line("Haircut", "Thu 15 Jan, 17:00", Some("Maria")),
            "Haircut, Thu 15 Jan, 17:00 with Maria"
        );
        assert_eq!(
            en.booking_line("Physio", "Thu 15 Jan, 17:00", None),
            "Physio, Thu 15 Jan, 17:00"
        );
        let es = Texts::new(Lang::Es);
        assert_eq!(
            es.booking_line("Fisio", "jue 15 ene, 10:00", None),
            "Fisio, jue 15 ene, 10:00"
        );
    }

    use super::*;
    use crate::outbound::{MAX_BUTTON_TITLE, MAX_LIST_BUTTON};
    use chrono::TimeZone;

    #[test]
    fn absolute_dates_in_both_languages() {
        let tz: Tz = "Europe/Madrid".parse().expect("zone");
        let at = Utc
            .with_ymd_and_hms(2026, 1, 15, 16, 0, 0)
            .single()
            .expect("time");
        assert_eq!(when(at, tz, Lang::En), "Thu 15 Jan, 17:00");
        assert_eq!(when(at, tz, Lang::Es), "jue 15 ene, 17:00");
    }

    #[test]
    fn button_labels_fit_whatsapp_limits_in_every_language() {
        for lang in [Lang::En, Lang::Es] {
            let texts = Texts::new(lang);
            for label in [
                texts.confirm_button(),
                texts.other_time_button(),
                texts.cancel_button(),
                texts.reschedule_button(),
                texts.yes_cancel_button(),
                texts.keep_button(),
            ] {
                assert!(label.chars().count() <= MAX_BUTTON_TITLE, "{label}");
            }
            for label in [texts.times_button(), texts.services_button()] {
                assert!(label.chars().count() <= MAX_LIST_BUTTON, "{label}");
            }
            assert!(texts.held_footer(120).chars().count() <= crate::outbound::MAX_HEADER_FOOTER);
        }
    }
}
