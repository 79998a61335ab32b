//! Per-message language detection between English and Spanish.
//!
//! Function words and booking vocabulary vote; Spanish-only characters (ñ, ¿, ¡, accented
//! vowels) weigh more because they cannot be English. When the vote ties (a bare "ok" or
//! "10:30"), the conversation's language and then the business default decide.

use crate::model::{Context, Lang};
use crate::tokens::{Kind, Token};

fn spanish_weight(w: &str) -> f32 {
    match w {
        "el" | "los" | "las" | "del" | "que" | "por" | "para" | "con" | "una" | "es" | "mi"
        | "lo" | "le" | "se" | "te" | "pero" | "muy" | "mas" | "esta" | "este" | "eso" | "esa"
        | "ese" | "hay" | "tengo" | "tienes" | "teneis" | "tiene" | "quiero" | "puedo"
        | "puedes" | "podria" | "quisiera" | "gracias" | "hola" | "buenas" | "buenos" | "dias"
        | "manana" | "tarde" | "noche" | "hoy" | "ayer" | "semana" | "cita" | "hora" | "horas"
        | "vale" | "si" | "algo" | "cuando" | "donde" | "como" | "cual" | "bien" | "lunes"
        | "martes" | "miercoles" | "jueves" | "viernes" | "sabado" | "domingo" | "enero"
        | "febrero" | "marzo" | "abril" | "mayo" | "junio" | "julio" | "agosto" | "septiembre"
        | "octubre" | "noviembre" | "diciembre" | "mejor" | "cancelar" | "cancela" | "cambiar"
        | "reservar" | "reserva" | "pasado" | "proximo" | "proxima" | "entre" | "despues"
        | "antes" | "media" | "cuarto" | "menos" | "dentro" | "persona" | "humano" | "alguien"
        | "hablar" | "baja" | "alta" | "claro" | "perfecto" | "tambien" | "ahora" | "nada"
        | "nos" | "vemos" | "necesito" | "ninguno" | "ninguna" | "otro" | "otra" | "dia"
        | "mes" | "ano" | "uno" | "dos" | "tres" | "cuatro" | "cinco" | "seis" | "siete"
        | "ocho" | "nueve" | "diez" | "once" | "doce" | "porfa" | "favor" | "vez" | "pues"
        | "oye" | "estoy" | "soy" | "tenemos" | "podemos" | "quiere" | "sera" | "todo"
        | "nosotros" | "usted" | "ustedes" | "vosotros" | "gustaria" => 1.0,
        "de" | "la" | "en" | "y" | "a" | "no" | "me" | "un" => 0.5,
        _ => 0.0,
    }
}

fn english_weight(w: &str) -> f32 {
    match w {
        "the" | "to" | "i" | "you" | "u" | "is" | "are" | "at" | "on" | "for" | "my" | "and"
        | "of" | "it" | "can" | "do" | "have" | "what" | "when" | "where" | "how" | "tomorrow"
        | "today" | "tonight" | "morning" | "afternoon" | "evening" | "please" | "pls" | "plz"
        | "thanks" | "thank" | "hi" | "hello" | "hey" | "yes" | "yeah" | "book" | "appointment"
        | "next" | "this" | "that" | "with" | "be" | "will" | "would" | "like" | "want"
        | "need" | "time" | "day" | "week" | "monday" | "tuesday" | "wednesday" | "thursday"
        | "friday" | "saturday" | "sunday" | "january" | "february" | "march" | "april"
        | "june" | "july" | "august" | "september" | "october" | "november" | "december" | "pm"
        | "am" | "cancel" | "reschedule" | "get" | "any" | "after" | "before" | "between"
        | "there" | "anything" | "im" | "dont" | "cant" | "its" | "your" | "we" | "me" | "our"
        | "could" | "should" | "not" | "just" | "about" | "from" | "available" | "free"
        | "someone" | "person" | "human" | "talk" | "speak" | "stop" | "half" | "past"
        | "quarter" | "noon" | "one" | "two" | "three" | "four" | "five" | "six" | "seven"
        | "eight" | "nine" | "ten" | "eleven" | "twelve" | "sure" | "okay" | "tmrw" | "tmr"
        | "booking" | "slot" | "slots" | "earlier" | "later" | "instead" | "change" | "move"
        | "nope" | "good" | "great" | "sounds" | "works" | "an" | "was" | "were" | "did"
        | "does" | "which" | "who" | "why" | "if" | "or" | "but" | "in" | "so" | "ok" => 1.0,
        _ => 0.0,
    }
}

/// Detects the language of a message from its tokens and raw text.
pub(crate) fn detect(text: &str, tokens: &[Token], ctx: &Context<'_>) -> Lang {
    let mut es = 0.0f32;
    let mut en = 0.0f32;
    for c in text.chars() {
        match c {
            'ñ' | 'Ñ' | '¿' | '¡' => es += 2.0,
            'á' | 'é' | 'í' | 'ó' | 'ú' | 'Á' | 'É' | 'Í' | 'Ó' | 'Ú' => es += 1.0,
            _ => {}
        }
    }
    for t in tokens.iter().filter(|t| t.kind == Kind::Word) {
        es += spanish_weight(&t.text);
        // "ok" is international; count it only lightly for English.
        en += if t.text == "ok" {
            0.1
        } else {
            english_weight(&t.text)
        };
    }
    if (es - en).abs() < 0.25 {
        return ctx.lang_hint.unwrap_or(ctx.default_lang);
    }
    if es > en { Lang::Es } else { Lang::En }
}
