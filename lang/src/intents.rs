//! Intent detection: weighted phrase evidence, combined with what the rest of the message
//! says (a date/time expression, a service name, a choice among shown options).
//!
//! Phrases are short word patterns matched on normalised tokens; a trailing `*` marks a
//! stem ("cancel*" covers cancel, cancelar, cancelación, cancelled). Tokens are first mapped
//! onto the closest lexicon word so that typos ("cancle", "resevar") still match. Every
//! intent is scored on every message: customers change their mind mid-flow.

use std::collections::HashMap;
use std::sync::LazyLock;

use crate::model::{Intent, IntentName};
use crate::tokens::{Kind, Token, edit_distance, squeeze, typo_budget};

type Phrases = &'static [(&'static str, f32)];

const BOOK: Phrases = &[
    ("book", 1.2),
    ("book*", 0.6),
    ("reserv*", 0.6),
    ("reserve", 0.6),
    ("reservar", 0.6),
    ("reservame", 0.6),
    ("reservarme", 0.6),
    ("reservo", 0.6),
    ("reservad", 0.6),
    // A booking named with a possessive or article is an existing one, not a new one.
    ("my booking", -1.2),
    ("my reservation", -0.6),
    ("the booking", -0.6),
    ("the reservation", -0.6),
    ("mi reserva", -0.6),
    ("la reserva", -0.6),
    ("tu reserva", -0.6),
    ("su reserva", -0.6),
    ("make an appointment", 1.2),
    ("make a booking", 1.2),
    ("schedule an", 1.0),
    ("schedule a", 1.0),
    ("schedule me", 1.0),
    ("set up an appointment", 1.2),
    ("appointment", 0.6),
    ("appt", 0.6),
    ("cita", 0.6),
    ("pedir cita", 1.0),
    ("pedir hora", 1.0),
    ("coger cita", 1.0),
    ("una cita", 0.4),
    ("turno", 0.6),
    ("hora para", 0.6),
    ("me das hora", 1.0),
    ("dame hora", 1.0),
    ("darme hora", 1.0),
    ("me dais hora", 1.0),
    ("agend*", 1.1),
    ("apunt*", 0.8),
    ("quiero", 0.3),
    ("quisiera", 0.4),
    ("me gustaria", 0.4),
    ("i want", 0.3),
    ("i wanna", 0.3),
    ("i would like", 0.4),
    ("id like", 0.4),
    ("can i come", 0.9),
    ("could i come", 0.9),
    ("can i get", 0.5),
    ("could i get", 0.5),
    ("can you fit me", 1.0),
    ("fit me in", 1.0),
    ("squeeze me in", 1.0),
    ("come in", 0.5),
    ("can you do", 0.6),
    ("can u do", 0.6),
    ("puedo ir", 0.8),
    ("puedo pasar", 0.8),
    ("podria ir", 0.8),
    ("me puedes dar", 0.5),
    ("me podeis dar", 0.5),
    ("need a", 0.3),
    ("necesito", 0.3),
    ("slot", 0.3),
    ("me apunto", 1.0),
    ("para manana", 0.2),
    ("for tomorrow", 0.2),
    ("haircut", 0.3),
    ("corte", 0.3),
    ("new appointment", 1.0),
    ("nueva cita", 1.0),
    ("otra cita", 0.8),
    ("another appointment", 0.8),
    ("a table", 0.6),
    ("una mesa", 0.6),
    // Asking to be fitted in.
    ("get me in", 1.0),
    ("put me down", 1.0),
    ("pencil me", 1.1),
    ("book me", 0.4),
    ("arrange", 0.6),
    ("concertar", 0.8),
    ("querria", 0.4),
    ("queria", 0.4),
    ("love to", 0.3),
    ("hoping to", 0.3),
    ("grab a", 0.4),
    ("see someone", 0.8),
    ("book it", -0.7),
    // Services customers name when asking for one.
    ("trim", 0.4),
    ("cut", 0.3),
    ("colour", 0.3),
    ("color", 0.3),
    ("consultation", 0.6),
    ("facial", 0.4),
    ("massage", 0.4),
    ("masaje", 0.4),
    ("manicure", 0.4),
    ("manicura", 0.4),
    ("pedicure", 0.4),
    ("pedicura", 0.4),
    ("cleaning", 0.3),
    ("limpieza", 0.3),
    ("spot", 0.4),
    ("hair done", 0.6),
    ("nails done", 0.6),
    ("unas", 0.3),
];

const RESCHEDULE: Phrases = &[
    ("reschedul*", 1.6),
    ("re schedule", 1.6),
    ("reprogram*", 1.6),
    ("reagend*", 1.6),
    ("rebook*", 1.4),
    ("move my", 1.2),
    ("move the", 0.8),
    ("move it", 1.2),
    ("move it to", 0.4),
    ("change my", 1.0),
    ("change the", 0.7),
    ("change it", 1.0),
    ("change the time", 0.6),
    ("change the date", 0.6),
    ("cambiar", 0.9),
    ("cambia", 0.9),
    ("cambiarla", 1.2),
    ("cambiarlo", 1.2),
    ("cambio", 0.6),
    ("cambiame", 1.2),
    ("mover", 0.9),
    ("muev*", 0.9),
    ("moverla", 1.2),
    ("pasar la cita", 1.2),
    ("pasarla", 1.0),
    ("aplaz*", 1.3),
    ("pospon*", 1.3),
    ("postpon*", 1.3),
    ("push back", 1.1),
    ("push it", 1.0),
    ("bring forward", 1.1),
    ("bring it forward", 1.1),
    ("adelantar", 1.1),
    ("adelantarla", 1.2),
    ("retrasar", 1.1),
    ("retrasarla", 1.2),
    ("atrasar", 1.0),
    ("another day", 0.8),
    ("another time", 0.8),
    ("different time", 0.9),
    ("different day", 0.9),
    ("otro dia", 0.8),
    ("otra hora", 0.8),
    ("otro momento", 0.7),
    ("en vez de", 0.7),
    ("en lugar de", 0.7),
    ("instead", 0.7),
    ("rather", 0.4),
    ("later instead", 0.4),
    ("make it later", 1.0),
    ("make it earlier", 1.0),
    ("an earlier", 0.6),
    ("a later", 0.6),
    ("can we do", 0.3),
    ("se puede cambiar", 0.6),
    ("pasar al", 0.9),
    ("pasarla al", 1.2),
    ("pasarlo al", 1.2),
    ("me la pasas", 1.0),
    ("me la puedes pasar", 1.2),
];

const CANCEL: Phrases = &[
    ("cancel*", 1.6),
    ("cancl*", 1.4),
    ("anul*", 1.4),
    ("call off", 1.2),
    ("call it off", 1.2),
    ("cant make it", 1.3),
    ("cannot make it", 1.3),
    ("wont make it", 1.3),
    ("can not make it", 1.3),
    ("wont be able to make", 1.2),
    ("wont be able to come", 1.2),
    ("not going to make it", 1.2),
    ("not coming", 1.0),
    ("cant come", 1.0),
    ("cant go", 0.9),
    ("no longer need", 1.0),
    ("dont need the appointment", 1.2),
    ("delete my", 0.9),
    ("no puedo ir", 1.1),
    ("no podre ir", 1.1),
    ("no voy a poder ir", 1.1),
    ("no voy a poder", 0.8),
    ("no voy a ir", 1.1),
    ("no ire", 1.0),
    ("no puedo asistir", 1.1),
    ("no podre asistir", 1.1),
    ("no puedo acudir", 1.1),
    ("no voy a poder acudir", 1.1),
    ("no puedo venir", 1.1),
    ("no podre venir", 1.1),
    ("no puedo al final", 1.0),
    ("no podre acudir", 1.1),
    ("no podre", 0.7),
    ("no voy a poder acudir", 1.1),
    ("surgio algo", 0.5),
    ("something came up", 0.5),
    ("borra*", 0.8),
    ("quita*", 0.5),
    ("elimina*", 0.8),
    ("desapunt*", 1.2),
    ("dar de baja la cita", 1.4),
    ("ya no", 0.4),
    ("forget it", 0.6),
    ("olvidalo", 0.5),
    ("dejalo", 0.4),
];

const CONFIRM: Phrases = &[
    ("yes", 1.2),
    ("yeah", 1.2),
    ("yea", 1.0),
    ("yep", 1.2),
    ("yup", 1.2),
    ("ya", 0.2),
    ("sure", 1.0),
    ("ok", 1.0),
    ("okay", 1.0),
    ("okey", 1.0),
    ("oki", 1.0),
    ("okis", 1.0),
    ("k", 0.8),
    ("kk", 0.9),
    ("vale", 1.2),
    ("va", 0.6),
    ("dale", 1.1),
    ("si", 1.2),
    ("sip", 1.1),
    ("claro", 1.0),
    ("perfect*", 1.0),
    ("great", 0.8),
    ("genial", 0.9),
    ("confirm*", 1.2),
    ("correct*", 0.9),
    ("de acuerdo", 1.1),
    ("deacuerdo", 1.1),
    ("sounds good", 1.2),
    ("sounds great", 1.2),
    ("sounds perfect", 1.2),
    ("that works", 1.2),
    ("works for me", 1.2),
    ("me va bien", 1.1),
    ("me viene bien", 1.1),
    ("me sirve", 1.0),
    ("me vale", 1.0),
    ("bien", 0.5),
    ("good", 0.6),
    ("fine", 0.7),
    ("alright", 0.9),
    ("all right", 0.9),
    ("of course", 1.0),
    ("absolutely", 1.0),
    ("definitely", 1.0),
    ("exact*", 0.9),
    ("eso es", 1.0),
    ("venga", 0.9),
    ("agreed", 1.0),
    ("agree", 1.0),
    ("affirmative", 1.2),
    ("asi es", 1.1),
    ("deal", 0.8),
    ("go ahead", 1.0),
    ("do it", 0.7),
    ("adelante", 0.9),
    ("hecho", 0.8),
    ("please do", 1.0),
    ("por supuesto", 1.1),
    ("listo", 0.8),
    ("guay", 0.8),
    ("cool", 0.7),
    ("nice", 0.5),
    ("awesome", 0.7),
    ("👍", 1.4),
    ("👌", 1.3),
    ("✅", 1.3),
    ("✔", 1.2),
    ("🆗", 1.3),
    ("👍🏻", 1.4),
    ("that one", 0.6),
    ("esa", 0.2),
    ("ese", 0.2),
    ("me quedo con", 0.9),
    ("i ll take", 0.9),
    ("ill take", 0.9),
    ("lets do", 0.8),
    ("book it", 0.8),
    ("reservala", 0.8),
];

const DECLINE: Phrases = &[
    ("no", 0.8),
    ("nope", 1.3),
    ("nop", 1.2),
    ("que va", 1.3),
    ("not for me", 1.3),
    ("nah", 1.2),
    ("no thanks", 1.4),
    ("no thank you", 1.4),
    ("no gracias", 1.4),
    ("not really", 1.1),
    ("neither", 1.0),
    ("none", 0.9),
    ("none of them", 1.2),
    ("ninguno", 1.1),
    ("ninguna", 1.1),
    ("ninguna me va", 1.3),
    ("tampoco", 1.0),
    ("mejor no", 1.2),
    ("no me va bien", 1.3),
    ("no me viene bien", 1.3),
    ("no me sirve", 1.2),
    ("no me va", 1.0),
    ("no me cuadra", 1.2),
    ("doesnt work", 1.2),
    ("does not work", 1.2),
    ("dont work", 1.0),
    ("not good", 0.9),
    ("no good", 0.9),
    ("👎", 1.4),
    ("negative", 0.8),
    ("wrong", 0.7),
    ("incorrect", 0.8),
    ("no es correcto", 1.1),
    ("not that", 0.8),
    ("esa no", 1.0),
    ("ese no", 1.0),
    ("not that one", 1.1),
    ("no way", 1.0),
    ("de ninguna manera", 1.0),
    ("dont want", 0.6),
    ("no quiero", 0.5),
];

const ASK_AVAILABILITY: Phrases = &[
    ("availab*", 1.3),
    ("disponib*", 1.3),
    ("free", 0.6),
    ("libre", 0.8),
    ("libres", 0.8),
    ("opening", 0.9),
    ("opening hours", -1.4),
    ("horario de apertura", -1.2),
    ("openings", 1.1),
    ("any slots", 1.2),
    ("slots", 0.8),
    ("hueco*", 1.2),
    ("sitio", 0.5),
    ("space", 0.4),
    ("room for", 0.5),
    ("do you have", 0.5),
    ("have anything", 0.9),
    ("got anything", 0.9),
    ("anything", 0.3),
    ("any time", 0.3),
    ("tienes algo", 1.1),
    ("teneis algo", 1.1),
    ("tiene algo", 1.1),
    ("tienen algo", 1.1),
    ("hay algo", 1.0),
    ("hay hueco", 1.2),
    ("hay sitio", 1.1),
    ("hay hora", 1.0),
    ("hay cita", 1.0),
    ("hay turno", 1.0),
    ("queda algo", 1.0),
    ("quedan", 0.5),
    ("tienes hora", 1.0),
    ("teneis hora", 1.0),
    ("tiene hora", 1.0),
    ("what times", 1.0),
    ("which times", 1.0),
    ("what time can", 0.8),
    ("what days", 0.8),
    ("que horas", 0.8),
    ("que dias", 0.8),
    ("que horarios", 0.9),
    ("horario*", 0.6),
    ("when can i", 0.9),
    ("when could i", 0.9),
    ("cuando puedo", 0.9),
    ("cuando podria", 0.9),
    ("cuando teneis", 1.0),
    ("cuando tienes", 1.0),
    ("cuando hay", 1.0),
    ("is there", 0.4),
    ("are there", 0.4),
    ("are you open", 0.7),
    ("r u open", 0.7),
    ("open on", 0.6),
    ("abris", 0.6),
    ("abierto", 0.5),
    ("abiertos", 0.5),
    ("earliest", 0.7),
    ("next available", 1.3),
    ("primera hora libre", 1.2),
    ("lo antes posible", 0.4),
    ("can you fit", 0.4),
];

const MY_BOOKING: Phrases = &[
    ("my appointment", 1.0),
    ("my appt", 1.0),
    ("my booking", 1.0),
    ("my reservation", 1.0),
    ("mi cita", 1.0),
    ("mi reserva", 1.0),
    ("mi turno", 1.0),
    ("when is my", 1.3),
    ("whens my", 1.3),
    ("what time is my", 1.3),
    ("what day is my", 1.3),
    ("do i have", 0.8),
    ("have i got", 0.8),
    ("am i booked", 1.3),
    ("did i book", 1.0),
    ("tengo cita", 1.0),
    ("tengo una cita", 1.0),
    ("tengo reserva", 1.0),
    ("tengo hora", 0.9),
    ("cuando es mi", 1.3),
    ("cuando tengo", 1.1),
    ("a que hora es mi", 1.3),
    ("a que hora tengo", 1.2),
    ("que dia tengo", 1.2),
    ("que dia es mi", 1.3),
    ("para cuando tengo", 1.2),
    ("check my", 0.9),
    ("details of my", 1.0),
    ("remind me when", 0.8),
    ("recuerdame cuando", 0.8),
    ("i have an appointment", 0.6),
    ("tengo una reserva", 1.0),
    ("estoy apuntad*", 1.0),
    ("is my", 0.4),
    ("still on", 0.6),
    ("sigue en pie", 1.0),
    ("sigue confirmad*", 1.0),
];

const HUMAN: Phrases = &[
    ("human", 1.6),
    ("humano", 1.6),
    ("humana", 1.6),
    ("person", 1.1),
    ("persona", 1.1),
    ("real person", 1.6),
    ("see someone", -0.6),
    ("persona real", 1.6),
    ("agent", 1.1),
    ("agente", 1.1),
    ("representative", 1.3),
    ("operator", 1.2),
    ("operador", 1.2),
    ("operadora", 1.2),
    ("someone", 0.6),
    ("somebody", 0.6),
    ("alguien", 0.6),
    ("talk to", 0.6),
    ("speak to", 0.6),
    ("speak with", 0.6),
    ("talk with", 0.6),
    ("hablar con", 0.7),
    ("call me", 0.9),
    ("give me a call", 0.9),
    ("llamame", 1.0),
    ("llamadme", 1.0),
    ("llameme", 1.0),
    ("me llamas", 0.9),
    ("me podeis llamar", 1.0),
    ("me puedes llamar", 1.0),
    ("manager", 0.9),
    ("encargad*", 0.9),
    ("responsable", 0.8),
    ("atencion al cliente", 1.2),
    ("customer service", 1.2),
    ("customer support", 1.2),
    ("not a bot", 1.3),
    ("are you a bot", 1.0),
    ("eres un bot", 1.0),
    ("robot", 0.7),
    ("bot", 0.5),
    ("maquina", 0.5),
    ("staff member", 0.8),
    ("the owner", 0.8),
    ("el dueno", 0.8),
    ("la duena", 0.8),
];

const OPT_OUT: Phrases = &[
    ("unsubscribe", 1.8),
    ("opt out", 1.8),
    ("optout", 1.8),
    ("darme de baja", 1.8),
    ("dadme de baja", 1.8),
    ("date de baja", 1.2),
    ("de baja", 1.2),
    ("no me escrib*", 1.8),
    ("no me mand*", 1.4),
    ("no me envi*", 1.4),
    ("dejad de escrib*", 1.8),
    ("deja de escrib*", 1.8),
    ("dejen de escrib*", 1.8),
    ("deja de mandar*", 1.6),
    ("dejad de mandar*", 1.6),
    ("dejen de mandar*", 1.6),
    ("deja de envi*", 1.6),
    ("dejad de envi*", 1.6),
    ("dejen de envi*", 1.6),
    ("no me envieis", 1.6),
    ("no mas mensajes", 1.8),
    ("no quiero recibir", 1.4),
    ("no quiero mas mensajes", 1.8),
    ("stop messaging", 1.8),
    ("stop texting", 1.8),
    ("stop sending", 1.8),
    ("stop writing", 1.8),
    ("stop contacting", 1.8),
    ("dont message me", 1.8),
    ("dont text me", 1.8),
    ("dont contact me", 1.6),
    ("do not message", 1.8),
    ("do not contact", 1.6),
    ("no more messages", 1.8),
    ("remove me", 1.4),
    ("take me off", 1.4),
    ("leave me alone", 1.3),
    ("no me molest*", 1.3),
    ("dejame en paz", 1.3),
    ("borrame", 1.0),
    ("spam", 0.7),
];

const OPT_IN: Phrases = &[
    ("subscribe", 1.4),
    ("opt in", 1.8),
    ("optin", 1.8),
    ("unstop", 1.8),
    ("darme de alta", 1.8),
    ("dadme de alta", 1.8),
    ("de alta", 1.0),
    ("volver a recibir", 1.4),
    ("quiero recibir mensajes", 1.4),
    ("resume messages", 1.6),
    ("start messaging", 1.2),
    ("reactivar", 1.0),
];

const GREETING: Phrases = &[
    ("hi", 1.2),
    ("hello", 1.2),
    ("helo", 1.1),
    ("hey", 1.1),
    ("hiya", 1.1),
    ("heya", 1.1),
    ("howdy", 1.1),
    ("yo", 0.5),
    ("good morning", 1.3),
    ("good afternoon", 1.3),
    ("good evening", 1.3),
    ("gm", 0.6),
    ("hola", 1.3),
    ("holi", 1.2),
    ("holis", 1.2),
    ("ola", 0.9),
    ("buenas", 1.2),
    ("buenos dias", 1.3),
    ("buen dia", 1.3),
    ("buenas tardes", 1.3),
    ("buenas noches", 1.1),
    ("que tal", 0.8),
    ("como estas", 0.8),
    ("how are you", 0.8),
    ("saludos", 1.0),
    ("greetings", 1.0),
    ("ey", 0.8),
    ("hey there", 1.3),
    ("hi there", 1.3),
    ("👋", 1.2),
];

const THANKS: Phrases = &[
    ("thanks", 1.4),
    ("thank you", 1.4),
    ("thank u", 1.4),
    ("thankyou", 1.4),
    ("thx", 1.3),
    ("thnx", 1.3),
    ("thks", 1.3),
    ("ty", 1.0),
    ("tysm", 1.3),
    ("cheers", 1.0),
    ("appreciate*", 1.1),
    ("gracias", 1.4),
    ("grax", 1.2),
    ("grcs", 1.2),
    ("graciass", 1.2),
    ("agradec*", 1.1),
    ("muchas gracias", 1.5),
    ("mil gracias", 1.5),
    ("🙏", 1.1),
    ("much appreciated", 1.4),
    ("muy amable", 1.1),
];

/// Words from other domains. A message about alarms, music or bank cards is not about an
/// appointment even if it says "cancel" or "tomorrow at 7", unless it also names one.
const OTHER_DOMAIN: &[&str] = &[
    "alarm",
    "alarms",
    "alarma",
    "despertador",
    "timer",
    "temporizador",
    "song",
    "songs",
    "cancion",
    "music",
    "musica",
    "playlist",
    "spotify",
    "weather",
    "clima",
    "forecast",
    "rain",
    "lluvia",
    "flight",
    "flights",
    "vuelo",
    "vuelos",
    "train",
    "tren",
    "uber",
    "taxi",
    "email",
    "emails",
    "correo",
    "card",
    "tarjeta",
    "transfer",
    "transferencia",
    "payment",
    "pago",
    "refund",
    "balance",
    "saldo",
    "account",
    "order",
    "pedido",
    "package",
    "paquete",
    "delivery",
    "lights",
    "light",
    "luces",
    "luz",
    "lamp",
    "volume",
    "volumen",
    "news",
    "noticias",
    "recipe",
    "receta",
    "joke",
    "chiste",
    "traffic",
    "trafico",
    "stock",
    "stocks",
    "podcast",
    "radio",
    "tv",
    "television",
    "netflix",
    "movie",
    "pelicula",
    "game",
    "partido",
    "football",
    "futbol",
    "remind",
    "reminder",
    "recordatorio",
    "wake",
    "despiertame",
    "subscription",
    "suscripcion",
    "loan",
    "prestamo",
    "mortgage",
    "hipoteca",
    "pin",
    "atm",
    "cajero",
    "exchange",
    "currency",
    "wifi",
    "password",
    "contrasena",
    "vacuum",
    "aspiradora",
    "thermostat",
    "calories",
    "translate",
    "traduce",
    "traducir",
    "spell",
    "define",
    "play",
    "pon",
    "reproduce",
    "shopping",
    "compra",
    "grocery",
    "tweet",
    "facebook",
    "instagram",
    "calculator",
    "math",
    "convert",
    "capital",
    "president",
    "cook",
    "cocinar",
    "hotel",
    "llover",
    "llueve",
    "lloviendo",
    "nieve",
    "nevar",
    "temperatura",
    "cumple",
    "cumpleanos",
    "birthday",
    "rental",
    "car",
    "coche",
    "insurance",
    "seguro",
    "bill",
    "factura",
    "invoice",
    "salary",
    "nomina",
    "bank",
    "banco",
    "iphone",
    "click",
    "crypto",
    "bitcoin",
];

/// Words that anchor a message to this business's bookings even among other vocabulary.
const BOOKING_ANCHORS: &[&str] = &[
    "appointment",
    "appt",
    "cita",
    "turno",
    "slot",
    "hueco",
    "session",
    "sesion",
    "visit",
    "visita",
    "haircut",
    "corte",
    "clase",
    "class",
    "consulta",
];

struct Lexicon {
    /// Every word used in a phrase or a frame (stems without the `*`), for exact lookup.
    exact: std::collections::HashSet<&'static str>,
    /// Squeezed form of each lexicon word to the word, for "yesss"/"graciass"-style input.
    squeezed: HashMap<String, &'static str>,
    /// Words long enough to be typo targets (six letters or more), by first letter.
    fuzzy_targets: HashMap<char, Vec<&'static str>>,
}

fn all_phrase_lists() -> [(IntentName, Phrases); 12] {
    [
        (IntentName::Book, BOOK),
        (IntentName::Reschedule, RESCHEDULE),
        (IntentName::Cancel, CANCEL),
        (IntentName::Confirm, CONFIRM),
        (IntentName::Decline, DECLINE),
        (IntentName::AskAvailability, ASK_AVAILABILITY),
        (IntentName::MyBooking, MY_BOOKING),
        (IntentName::Human, HUMAN),
        (IntentName::OptOut, OPT_OUT),
        (IntentName::OptIn, OPT_IN),
        (IntentName::Greeting, GREETING),
        (IntentName::Thanks, THANKS),
    ]
}

static LEXICON: LazyLock<Lexicon> = LazyLock::new(|| {
    let mut words: Vec<&'static str> = Vec::new();
    for (_, phrases) in all_phrase_lists() {
        for (phrase, _) in phrases {
            for w in phrase.split(' ') {
                let w = w.trim_end_matches('*');
                if !words.contains(&w) {
                    words.push(w);
                }
            }
        }
    }
    for class in [
        BOOKING_NOUNS,
        REMOVE_WORDS,
        CHANGE_WORDS,
        ATTEND_WORDS,
        WANT_WORDS,
        NEGATIONS,
        MESSAGE_NOUNS,
        CONTACT_NOUNS,
        FULLNESS,
        BOOKED_WORDS,
    ] {
        for w in class {
            if !words.contains(w) {
                words.push(w);
            }
        }
    }
    let squeezed = words.iter().map(|w| (squeeze(w), *w)).collect();
    let exact = words.iter().copied().collect();
    let mut fuzzy_targets: HashMap<char, Vec<&'static str>> = HashMap::new();
    for w in words.iter().filter(|w| w.len() >= 6) {
        if let Some(first) = w.chars().next() {
            fuzzy_targets.entry(first).or_default().push(w);
        }
    }
    Lexicon {
        exact,
        squeezed,
        fuzzy_targets,
    }
});

/// Maps a token onto the lexicon word it most likely stands for: exact, then with doubled
/// letters collapsed, then within a small edit distance (same first letter, since typos
/// rarely hit the first one).
fn canonical(token: &Token) -> String {
    let lex = &*LEXICON;
    let text = token.text.as_str();
    if lex.exact.contains(text) {
        return token.text.clone();
    }
    if let Some(w) = lex.squeezed.get(&token.squeezed) {
        return (*w).to_string();
    }
    let len = text.chars().count();
    let budget = typo_budget(len).min(1 + usize::from(len >= 9));
    if budget > 0 && len >= 6 {
        let targets = text
            .chars()
            .next()
            .and_then(|c| lex.fuzzy_targets.get(&c))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let mut best: Option<(usize, &str)> = None;
        for w in targets {
            if w.len().abs_diff(text.len()) > budget {
                continue;
            }
            let d = edit_distance(text, w, budget);
            if d <= budget && best.is_none_or(|(bd, _)| d < bd) {
                best = Some((d, w));
            }
        }
        if let Some((_, w)) = best {
            return w.to_string();
        }
    }
    token.text.clone()
}

fn word_matches(word: &str, key: &str) -> bool {
    match key.strip_suffix('*') {
        Some(stem) => {
            if word.starts_with(stem) {
                return true;
            }
            // Typos inside a stem: "cancle", "resevar".
            stem.len() >= 6
                && word.len() >= stem.len()
                && word.is_char_boundary(stem.len())
                && word.as_bytes().first() == stem.as_bytes().first()
                && edit_distance(&word[..stem.len()], stem, 1) <= 1
        }
        None => word == key,
    }
}

/// Whether the phrase occurs in the word sequence.
fn phrase_occurs(words: &[String], phrase: &str) -> bool {
    let mut keys: [&str; 8] = [""; 8];
    let mut count = 0;
    for k in phrase.split(' ') {
        if count == keys.len() {
            return false;
        }
        keys[count] = k;
        count += 1;
    }
    let keys = &keys[..count];
    if keys.is_empty() || keys.len() > words.len() {
        return false;
    }
    (0..=words.len() - keys.len()).any(|start| {
        keys.iter()
            .enumerate()
            .all(|(k, key)| word_matches(&words[start + k], key))
    })
}

struct Phrase {
    intent: IntentName,
    keys: Vec<&'static str>,
    weight: f32,
}

/// Phrases indexed by their first word, so a message is matched against the few phrases
/// that can start at each word instead of against all of them.
struct PhraseIndex {
    phrases: Vec<Phrase>,
    by_first_word: HashMap<&'static str, Vec<usize>>,
    /// Phrases whose first word is a stem ("cancel*"), checked at every position.
    by_first_stem: Vec<usize>,
}

static PHRASES: LazyLock<PhraseIndex> = LazyLock::new(|| {
    let mut index = PhraseIndex {
        phrases: Vec::new(),
        by_first_word: HashMap::new(),
        by_first_stem: Vec::new(),
    };
    for (intent, phrases) in all_phrase_lists() {
        for (text, weight) in phrases {
            let keys: Vec<&'static str> = text.split(' ').collect();
            let id = index.phrases.len();
            match keys.first() {
                Some(first) if first.ends_with('*') => index.by_first_stem.push(id),
                Some(first) => index.by_first_word.entry(*first).or_default().push(id),
                None => continue,
            }
            index.phrases.push(Phrase {
                intent,
                keys,
                weight: *weight,
            });
        }
    }
    index
});

/// Sum of the weights of the phrases found, per intent; each phrase counts once.
fn phrase_scores(words: &[String]) -> Vec<(IntentName, f32)> {
    let index = &*PHRASES;
    let mut found = vec![false; index.phrases.len()];
    let matches_at = |phrase: &Phrase, start: usize| {
        phrase.keys.len() <= words.len() - start
            && phrase
                .keys
                .iter()
                .enumerate()
                .all(|(k, key)| word_matches(&words[start + k], key))
    };
    for (start, word) in words.iter().enumerate() {
        let exact = index
            .by_first_word
            .get(word.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for &id in exact.iter().chain(index.by_first_stem.iter()) {
            if !found[id] && matches_at(&index.phrases[id], start) {
                found[id] = true;
            }
        }
    }
    let mut scores: Vec<(IntentName, f32)> = all_phrase_lists()
        .iter()
        .map(|(name, _)| (*name, 0.0))
        .collect();
    for (phrase, _) in index.phrases.iter().zip(&found).filter(|(_, f)| **f) {
        if let Some(entry) = scores.iter_mut().find(|(n, _)| *n == phrase.intent) {
            entry.1 += phrase.weight;
        }
    }
    scores
}

// ----- frames: word classes around a verb -------------------------------------------------
//
// Phrases catch fixed wordings; frames catch the grammar around them: a verb class, what it
// applies to (a booking, the customer's messages, the customer) and whether it is negated.
// "scrap my appointment", "bórrame la cita" and "drop my booking" are one frame (remove + a
// booking), as are "i won't be coming" and "no asistiré" (negation + attend).

/// Nouns naming a booking.
const BOOKING_NOUNS: &[&str] = &[
    "appointment",
    "appointments",
    "appt",
    "appts",
    "booking",
    "bookings",
    "reservation",
    "reservations",
    "slot",
    "slots",
    "session",
    "cita",
    "citas",
    "reserva",
    "reservas",
    "turno",
    "turnos",
    "sesion",
    "consulta",
    "visita",
];

/// Verbs that remove something (lemmas as prefixes, forms as whole words).
const REMOVE_STEMS: &[&str] = &["cancel", "anul", "borr", "elimin", "desconvoc", "suprim"];
const REMOVE_WORDS: &[&str] = &[
    "scrap", "drop", "remove", "delete", "erase", "quita", "quitar", "quitame", "quitadme",
    "quitala", "take",
];

/// Verbs that move or change something.
const CHANGE_STEMS: &[&str] = &[
    "reschedul",
    "reprogram",
    "reagend",
    "rebook",
    "rearrang",
    "postpon",
    "pospon",
    "aplaz",
    "cambi",
    "modific",
    "muev",
    "mover",
    "adelant",
    "retras",
    "atras",
];
const CHANGE_WORDS: &[&str] = &[
    "change", "changing", "move", "moving", "switch", "swap", "shift", "push", "amend", "modify",
    "pasar", "pasarla", "pasarlo", "pasamela",
];
/// Imperatives with clitics, kept out of the typo lexicon so that "pasado" stays itself.
const CHANGE_CLITICS: &[&str] = &["pasala", "pasalo", "pasame", "pasamelo"];

/// Verbs of turning up.
const ATTEND_WORDS: &[&str] = &[
    "come",
    "coming",
    "attend",
    "attending",
    "go",
    "going",
    "ir",
    "ire",
    "iremos",
    "venir",
    "vendre",
    "asistir",
    "asistire",
    "acudir",
    "acudire",
    "pasarme",
];

/// Wanting or needing.
const WANT_WORDS: &[&str] = &[
    "want",
    "need",
    "wanna",
    "quiero",
    "necesito",
    "queremos",
    "necesitamos",
    "quiere",
];

/// Negation words (contractions lose their apostrophe in tokenisation).
const NEGATIONS: &[&str] = &[
    "not", "dont", "doesnt", "didnt", "wont", "cant", "cannot", "never", "unable", "no", "nunca",
    "tampoco", "isnt", "aint", "wouldnt", "couldnt",
];

/// The customer's messages, as something to stop or resume.
const MESSAGE_NOUNS: &[&str] = &[
    "message",
    "messages",
    "msgs",
    "texts",
    "text",
    "reminders",
    "reminder",
    "notifications",
    "notification",
    "alerts",
    "sms",
    "messaging",
    "texting",
    "contacting",
    "mensajes",
    "mensaje",
    "recordatorios",
    "recordatorio",
    "notificaciones",
    "avisos",
    "whatsapps",
    "whatsapp",
];

/// Where a customer's contact details are kept.
const CONTACT_NOUNS: &[&str] = &["list", "lista", "number", "numero", "contacts", "contactos"];

/// Words for "again".
const AGAIN: &[&str] = &["again", "back", "otra", "nuevo", "volver", "vuelvo"];

/// Words that mean the booking is full or has space left.
const FULLNESS: &[&str] = &[
    "full",
    "fully",
    "completos",
    "completo",
    "llenos",
    "lleno",
    "left",
    "quedan",
    "queda",
];

/// Past or possessive booking words: "did i book", "reservé", "booked".
const BOOKED_WORDS: &[&str] = &["booked", "reserve", "reservado", "pedi", "reservamos"];

fn in_class(word: &str, words: &[&str], stems: &[&str]) -> bool {
    words.contains(&word) || stems.iter().any(|s| word.starts_with(s))
}

fn is_booking_noun(word: &str) -> bool {
    BOOKING_NOUNS.contains(&word)
}

fn is_negation(word: &str) -> bool {
    NEGATIONS.contains(&word)
}

/// Whether a negation stands within `window` words before position `i`, with no clause
/// break in between ("but", "pero").
fn negated_at(words: &[String], i: usize, window: usize) -> bool {
    let from = i.saturating_sub(window);
    let Some(before) = words.get(from..i) else {
        return false;
    };
    for w in before.iter().rev() {
        if matches!(w.as_str(), "but" | "pero" | "sino" | "although" | "aunque") {
            return false;
        }
        if is_negation(w) {
            return true;
        }
    }
    false
}

/// Evidence from frames, per intent, added to the phrase scores.
fn frame_scores(words: &[String], is_question: bool) -> Vec<(IntentName, f32)> {
    let mut out: Vec<(IntentName, f32)> = Vec::new();
    // Most messages carry no frame word at all: "yes", "hola", "mañana a las 5".
    static TRIGGERS: LazyLock<std::collections::HashSet<&'static str>> = LazyLock::new(|| {
        [
            BOOKING_NOUNS,
            REMOVE_WORDS,
            CHANGE_WORDS,
            CHANGE_CLITICS,
            ATTEND_WORDS,
            WANT_WORDS,
            NEGATIONS,
            MESSAGE_NOUNS,
            CONTACT_NOUNS,
            FULLNESS,
            BOOKED_WORDS,
            &[
                "make", "be", "bring", "opt", "book", "have", "got", "tengo", "tenemos",
            ],
        ]
        .iter()
        .flat_map(|c| c.iter().copied())
        .collect()
    });
    let triggered = words.iter().any(|w| {
        TRIGGERS.contains(w.as_str())
            || REMOVE_STEMS.iter().any(|s| w.starts_with(s))
            || CHANGE_STEMS.iter().any(|s| w.starts_with(s))
            || w.starts_with("escrib")
            || w.starts_with("suscrib")
            || w.starts_with("subscri")
    });
    if !triggered {
        return out;
    }
    // Questions without a question mark start with an auxiliary or a question word.
    let is_question = is_question
        || words.first().is_some_and(|w| {
            matches!(
                w.as_str(),
                "do" | "does"
                    | "did"
                    | "is"
                    | "are"
                    | "am"
                    | "have"
                    | "has"
                    | "can"
                    | "could"
                    | "when"
                    | "whens"
                    | "what"
                    | "whats"
                    | "which"
                    | "where"
                    | "how"
                    | "cuando"
                    | "que"
                    | "cual"
                    | "donde"
                    | "como"
                    | "tengo"
                    | "hay"
                    | "esta"
                    | "sigue"
            )
        });
    let has = |class: &[&str]| words.iter().any(|w| class.contains(&w.as_str()));
    let booking_noun = words.iter().any(|w| is_booking_noun(w));
    let possessive_booking = words.windows(2).any(|p| {
        matches!(p[0].as_str(), "my" | "mi" | "mis" | "our" | "nuestra") && is_booking_noun(&p[1])
    }) || words
        .windows(3)
        .any(|p| matches!(p[0].as_str(), "my" | "mi" | "mis") && is_booking_noun(&p[2]));
    let about_messages = has(MESSAGE_NOUNS) || words.iter().any(|w| w.starts_with("escrib"));
    let mut change_verb = false;
    let mut remove_verb = false;

    for (i, w) in words.iter().enumerate() {
        let w = w.as_str();
        let negated = negated_at(words, i, 3);
        let next = words.get(i + 1).map(String::as_str).unwrap_or("");
        // Remove + a booking: cancel; remove + me / my number / the list: opt out.
        let takes_off = w != "take" || words[i + 1..].iter().take(4).any(|o| o == "off");
        if in_class(w, REMOVE_WORDS, REMOVE_STEMS) && takes_off {
            let object_is_contact = words[i + 1..]
                .iter()
                .take(4)
                .any(|o| CONTACT_NOUNS.contains(&o.as_str()));
            if negated {
                // "no quiero cancelar", "don't cancel": not a cancellation.
                out.push((IntentName::Cancel, -1.4));
                out.push((IntentName::Decline, 0.4));
            } else if object_is_contact && !booking_noun {
                out.push((IntentName::OptOut, 1.6));
                out.push((IntentName::Cancel, -0.8));
            } else if booking_noun || w.starts_with("cancel") || w.starts_with("anul") {
                remove_verb = true;
                out.push((IntentName::Cancel, 0.9));
            }
        }
        // Change + a booking (or a pronoun standing for it): reschedule.
        let brings = w == "bring"
            && words[i + 1..]
                .iter()
                .take(4)
                .any(|o| matches!(o.as_str(), "forward" | "back" | "earlier" | "later"));
        if (in_class(w, CHANGE_WORDS, CHANGE_STEMS) || CHANGE_CLITICS.contains(&w) || brings)
            && !negated
        {
            let object = words[i + 1..].iter().take(5).any(|o| {
                is_booking_noun(o)
                    || matches!(
                        o.as_str(),
                        "it" | "me"
                            | "la"
                            | "lo"
                            | "time"
                            | "day"
                            | "date"
                            | "hora"
                            | "dia"
                            | "fecha"
                    )
            }) || w.ends_with("la")
                || w.ends_with("lo")
                || w.ends_with("melo")
                || w.ends_with("mela");
            if object || booking_noun {
                change_verb = true;
                out.push((IntentName::Reschedule, 0.9));
            }
        }
        // Negated attendance: "i won't be coming", "no asistiré", "not able to make it".
        let attends = ATTEND_WORDS.contains(&w)
            || (w == "make" && next == "it")
            || (w == "be" && next == "there");
        if attends && negated_at(words, i, 4) {
            out.push((IntentName::Cancel, 1.1));
        }
        // Not wanting or needing a booking any more: "I don't need the appointment anymore",
        // "ya no quiero la cita".
        if WANT_WORDS.contains(&w) && negated {
            let wants_booking = words[i + 1..].iter().take(4).any(|o| is_booking_noun(o));
            if wants_booking {
                out.push((IntentName::Cancel, 1.2));
                out.push((IntentName::Book, -1.0));
            } else if about_messages {
                out.push((IntentName::OptOut, 1.4));
            } else {
                out.push((IntentName::Decline, 0.5));
            }
        }
        // Negated agreement: "that's not right", "i don't think so", "no creo".
        if negated_at(words, i, 2)
            && matches!(
                w,
                "right"
                    | "correct"
                    | "think"
                    | "creo"
                    | "suit"
                    | "suits"
                    | "good"
                    | "fine"
                    | "ok"
                    | "okay"
                    | "bien"
                    | "correcto"
            )
        {
            out.push((IntentName::Decline, 0.9));
        }
    }

    // Stopping or resuming the messages themselves.
    if about_messages {
        let again = has(AGAIN);
        let stops = words.iter().enumerate().any(|(i, w)| {
            matches!(
                w.as_str(),
                "stop"
                    | "quit"
                    | "para"
                    | "parad"
                    | "paren"
                    | "dejad"
                    | "deja"
                    | "dejen"
                    | "basta"
                    | "more"
                    | "mas"
                    | "anymore"
            ) || ((w == "send"
                || w == "sending"
                || w.starts_with("mand")
                || w.starts_with("envi")
                || w.starts_with("escrib")
                || w.starts_with("recib"))
                && negated_at(words, i, 3))
        });
        let resumes = words.iter().any(|w| {
            matches!(
                w.as_str(),
                "start" | "get" | "receive" | "send" | "sending" | "turn" | "want" | "quiero"
            ) || w.starts_with("recib")
                || w.starts_with("activ")
                || w.starts_with("envi")
                || w.starts_with("mand")
        });
        if again && resumes && !words.iter().any(|w| is_negation(w)) {
            out.push((IntentName::OptIn, 1.5));
        } else if stops {
            out.push((IntentName::OptOut, 1.5));
        }
    }
    if words.iter().any(|w| w == "opt") {
        if words.iter().any(|w| w == "in") {
            out.push((IntentName::OptIn, 1.5));
        } else if words.iter().any(|w| w == "out") {
            out.push((IntentName::OptOut, 1.5));
        }
    }
    if words
        .iter()
        .any(|w| w.starts_with("suscrib") || w.starts_with("subscri"))
        && !words
            .iter()
            .any(|w| w.starts_with("unsub") || w.starts_with("cancel"))
    {
        out.push((IntentName::OptIn, 1.0));
    }

    // Asking about one's own booking: "show me my upcoming appointments", "¿tengo alguna
    // cita?", "what day did i book for", "¿está confirmada mi reserva?".
    if !change_verb && !remove_verb {
        // "do i have an appointment", "¿qué citas tengo?"; not "could i have an appointment",
        // which asks for one.
        let holds = words.iter().enumerate().any(|(i, w)| {
            let near = &words[i.saturating_sub(3)..(i + 4).min(words.len())];
            let requested = words[i.saturating_sub(2)..i].iter().any(|o| {
                matches!(
                    o.as_str(),
                    "can" | "could" | "may" | "would" | "to" | "puedo" | "podria" | "quiero"
                )
            });
            matches!(w.as_str(), "tengo" | "tenemos" | "have" | "got")
                && near.iter().any(|o| is_booking_noun(o))
                && !negated_at(words, i, 2)
                && !requested
        });
        let booked = |w: &str| BOOKED_WORDS.contains(&w);
        // "did i book", "have i booked", "i booked".
        let booked_past = words.windows(3).any(|p| {
            matches!(p[0].as_str(), "did" | "have" | "had")
                && matches!(p[1].as_str(), "i" | "we")
                && (p[2] == "book" || booked(&p[2]))
        }) || words.windows(2).any(|p| p[0] == "i" && booked(&p[1]))
            || words
                .iter()
                .any(|w| BOOKED_WORDS.contains(&w.as_str()) && is_question);
        if booked_past {
            out.push((IntentName::MyBooking, 1.2));
            out.push((IntentName::Book, -1.0));
        }
        if holds && (is_question || possessive_booking) {
            out.push((IntentName::MyBooking, 0.8));
        }
        if possessive_booking
            && (is_question
                || words.iter().any(|w| {
                    matches!(w.as_str(), "upcoming" | "show" | "pendientes" | "consultar")
                        || w.starts_with("confirmad")
                        || w.starts_with("confirmed")
                }))
        {
            out.push((IntentName::MyBooking, 0.6));
            out.push((IntentName::Confirm, -0.8));
        }
    }

    // Fullness: "are you fully booked", "¿estáis completos?", "any appointments left".
    if words.iter().any(|w| FULLNESS.contains(&w.as_str())) && (is_question || booking_noun) {
        out.push((IntentName::AskAvailability, 0.9));
        out.push((IntentName::MyBooking, -0.5));
    }
    out
}

/// What the rest of the understanding found, which shifts intent evidence.
pub(crate) struct Signals {
    /// A date/time expression was found.
    pub has_time: bool,
    /// Share of the message's words that belong to date/time expressions (0..=1).
    pub time_coverage: f32,
    /// A tenant service was mentioned.
    pub has_service: bool,
    /// The message picks one of the options last shown.
    pub has_choice: bool,
}

const WHOLE_MESSAGE_COMMANDS: &[(&str, IntentName)] = &[
    ("stop", IntentName::OptOut),
    ("stopall", IntentName::OptOut),
    ("baja", IntentName::OptOut),
    ("unsubscribe", IntentName::OptOut),
    ("cancelar suscripcion", IntentName::OptOut),
    ("end", IntentName::OptOut),
    ("quit", IntentName::OptOut),
    ("start", IntentName::OptIn),
    ("alta", IntentName::OptIn),
    ("subscribe", IntentName::OptIn),
    ("unstop", IntentName::OptIn),
    ("resume", IntentName::OptIn),
    ("morning", IntentName::Greeting),
    ("afternoon", IntentName::Greeting),
    ("evening", IntentName::Greeting),
];

const INTENT_THRESHOLD: f32 = 0.5;

pub(crate) fn classify(tokens: &[Token], signals: &Signals) -> Vec<Intent> {
    let words: Vec<String> = tokens
        .iter()
        .filter(|t| t.kind == Kind::Word || t.kind == Kind::Symbol)
        .map(|t| {
            if t.kind == Kind::Word {
                canonical(t)
            } else {
                t.text.clone()
            }
        })
        .collect();
    let word_count = tokens
        .iter()
        .filter(|t| t.kind == Kind::Word || t.kind == Kind::Number)
        .count();
    let is_question = tokens.iter().any(|t| t.is_punct('?') || t.is_punct('¿'));

    let mut scores: Vec<(IntentName, f32)> = phrase_scores(&words);
    for (name, delta) in frame_scores(&words, is_question) {
        if let Some(entry) = scores.iter_mut().find(|(n, _)| *n == name) {
            entry.1 += delta;
        }
    }
    let score = |scores: &[(IntentName, f32)], name: IntentName| {
        scores
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| *s)
            .unwrap_or(0.0)
    };
    let add = |scores: &mut Vec<(IntentName, f32)>, name: IntentName, delta: f32| {
        if let Some(entry) = scores.iter_mut().find(|(n, _)| *n == name) {
            entry.1 += delta;
        }
    };
    let scale = |scores: &mut Vec<(IntentName, f32)>, name: IntentName, factor: f32| {
        if let Some(entry) = scores.iter_mut().find(|(n, _)| *n == name) {
            entry.1 *= factor;
        }
    };

    // Consent keywords are commands when they are the whole message.
    let joined = words.join(" ");
    for (command, name) in WHOLE_MESSAGE_COMMANDS {
        if joined == *command {
            add(&mut scores, *name, 3.0);
        }
    }
    // "stop" inside a sentence opts out only together with messaging words.
    if words.first().is_some_and(|w| w == "stop")
        && word_count <= 3
        && score(&scores, IntentName::OptOut) == 0.0
    {
        add(&mut scores, IntentName::OptOut, 1.2);
    }

    let first = words.first().map(String::as_str).unwrap_or("");
    let specific = [
        IntentName::Cancel,
        IntentName::Reschedule,
        IntentName::OptOut,
        IntentName::Human,
        IntentName::MyBooking,
    ];
    let specific_max = specific
        .iter()
        .map(|n| score(&scores, *n))
        .fold(0.0f32, f32::max);

    // A leading "no" is a refusal in short replies; in longer ones it usually negates a verb
    // that other phrases already explain ("no puedo ir" is a cancellation).
    if matches!(first, "no" | "nope" | "nah") {
        if word_count <= 3 && specific_max < 1.0 {
            add(&mut scores, IntentName::Decline, 0.8);
        } else if specific_max >= 1.0 {
            scale(&mut scores, IntentName::Decline, 0.3);
        }
    } else if words.iter().any(|w| w == "no") && word_count > 3 {
        // A "no" in the middle of a sentence is negation, not a refusal.
        scale(&mut scores, IntentName::Decline, 0.5);
        // "no quiero confirmar", "not ok".
        scale(&mut scores, IntentName::Confirm, 0.5);
    }
    if matches!(first, "no" | "nope" | "nah") || words.iter().any(|w| w == "not" || w == "dont") {
        scale(&mut scores, IntentName::Confirm, 0.3);
    }

    // Agreement words are replies: strong alone, weak inside a long message.
    if word_count > 5 {
        scale(&mut scores, IntentName::Confirm, 0.5);
        scale(&mut scores, IntentName::Greeting, 0.7);
    }

    // Party size: "para dos personas", "for 4 people" is a booking detail, not a person
    // to talk to.
    let party = tokens.iter().enumerate().any(|(i, t)| {
        matches!(
            t.text.as_str(),
            "people" | "persons" | "personas" | "pax" | "guests" | "comensales"
        ) && i > 0
            && tokens.get(i - 1).is_some_and(|p| {
                p.is_number()
                    || matches!(
                        p.text.as_str(),
                        "two"
                            | "three"
                            | "four"
                            | "five"
                            | "six"
                            | "dos"
                            | "tres"
                            | "cuatro"
                            | "cinco"
                            | "seis"
                    )
            })
    });
    if party {
        scale(&mut scores, IntentName::Human, 0.0);
        add(&mut scores, IntentName::Book, 0.6);
    }
    // Questions about opening hours are information, not a request for a slot.
    let about_hours = words.iter().any(|w| {
        matches!(
            w.as_str(),
            "open"
                | "opening"
                | "close"
                | "closing"
                | "closed"
                | "abris"
                | "abren"
                | "abre"
                | "apertura"
                | "cierre"
        ) || w.starts_with("cerr")
            || w.starts_with("cierr")
    }) && [
        "what time",
        "a que hora",
        "hours",
        "horario",
        "hasta que hora",
        "until when",
    ]
    .iter()
    .any(|p| phrase_occurs(&words, p));
    if about_hours {
        for name in [IntentName::Book, IntentName::AskAvailability] {
            scale(&mut scores, name, 0.2);
        }
    }
    let weather = ["que tiempo", "tiempo hace", "tiempo hara", "tiempo va"]
        .iter()
        .any(|p| phrase_occurs(&words, p));
    let other_domain = weather || words.iter().any(|w| OTHER_DOMAIN.contains(&w.as_str()));
    let anchored = signals.has_service
        || words
            .iter()
            .any(|w| BOOKING_ANCHORS.iter().any(|a| w.starts_with(a)));
    let booking = [
        IntentName::Book,
        IntentName::Reschedule,
        IntentName::Cancel,
        IntentName::AskAvailability,
        IntentName::MyBooking,
    ];
    if other_domain && !anchored {
        for name in booking {
            scale(&mut scores, name, 0.15);
        }
    }

    if signals.has_service {
        add(&mut scores, IntentName::Book, 0.5);
    }
    // "free", "do you have" ask about slots only when a time or a booking is in view:
    // "do you have parking", "a free iphone" do not.
    let booking_noun = words.iter().any(|w| is_booking_noun(w));
    if !signals.has_time && !booking_noun && score(&scores, IntentName::AskAvailability) < 1.2 {
        scale(&mut scores, IntentName::AskAvailability, 0.5);
    }
    if signals.has_choice {
        add(&mut scores, IntentName::Confirm, 0.6);
    }
    if words
        .iter()
        .any(|w| matches!(w.as_str(), "mejor" | "better" | "rather" | "instead"))
        && signals.has_time
    {
        add(&mut scores, IntentName::Reschedule, 0.9);
    }
    // Price and place questions are information requests, not bookings.
    let asks_price = [
        "how much",
        "cuanto cuesta",
        "cuanto vale",
        "cuanto es",
        "price",
        "precio",
        "precios",
        "prices",
        "cost",
    ]
    .iter()
    .any(|p| phrase_occurs(&words, p));
    if asks_price {
        scale(&mut scores, IntentName::Book, 0.3);
    }
    // Changing or cancelling an existing booking mentions it ("mi cita"), which is neither
    // a question about it nor a new booking.
    let changing = score(&scores, IntentName::Reschedule).max(score(&scores, IntentName::Cancel));
    if changing >= 0.8 {
        scale(&mut scores, IntentName::MyBooking, 0.4);
        scale(&mut scores, IntentName::Book, 0.5);
    }
    // A reply that brings a new date or time is more than a yes.
    if signals.has_time && signals.time_coverage >= 0.25 {
        scale(&mut scores, IntentName::Confirm, 0.5);
    }

    // A date or time is booking evidence when nothing else explains the message: "mañana a
    // las 5", "tmrw after 4?". It goes to whichever booking intent the words already chose.
    let about_bookings = (!other_domain || anchored) && !about_hours;
    if signals.has_time && about_bookings {
        let ask = score(&scores, IntentName::AskAvailability);
        let directed = [
            IntentName::Reschedule,
            IntentName::Cancel,
            IntentName::MyBooking,
        ]
        .iter()
        .any(|n| score(&scores, *n) >= INTENT_THRESHOLD);
        let boost = 0.4 + 0.8 * signals.time_coverage.clamp(0.0, 1.0);
        if ask >= INTENT_THRESHOLD {
            add(&mut scores, IntentName::AskAvailability, 0.4);
        } else if directed {
            // The time says when to move or which booking to drop; it does not add a booking.
        } else if signals.time_coverage >= 0.6
            || score(&scores, IntentName::Book) > 0.0
            || is_question
        {
            add(&mut scores, IntentName::Book, boost);
            if is_question {
                add(&mut scores, IntentName::AskAvailability, 0.5 * boost);
            }
        }
    }

    scores.retain(|(_, s)| *s > 0.0);
    scores.sort_by(|a, b| b.1.total_cmp(&a.1));
    let confidence = |s: f32| (s / (s + 0.6)).clamp(0.0, 0.99);
    let top = scores.first().map(|(_, s)| *s).unwrap_or(0.0);
    let mut intents: Vec<Intent> = Vec::new();
    if top < INTENT_THRESHOLD {
        intents.push(Intent {
            name: IntentName::Other,
            confidence: (1.0 - confidence(top)).clamp(0.5, 0.99),
        });
    }
    for (name, s) in scores {
        if s >= INTENT_THRESHOLD * 0.5 {
            intents.push(Intent {
                name,
                confidence: (confidence(s) * 100.0).round() / 100.0,
            });
        }
    }
    if intents.is_empty() {
        intents.push(Intent {
            name: IntentName::Other,
            confidence: 0.9,
        });
    }
    intents
}
