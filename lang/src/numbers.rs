//! Numbers written as digits or words, in English and Spanish ("5", "cinco", "twenty-five",
//! "treinta y cinco"), and ordinals ("3rd", "tercera", "second").

use crate::tokens::Token;

/// A number read at some token position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NumberMatch {
    pub value: u32,
    /// Index of the first token after the number.
    pub next: usize,
    /// Written in words rather than digits; word numbers need stronger context to count as
    /// times ("one" is usually a pronoun).
    pub in_words: bool,
    /// Digit count when written in digits (0 for words).
    pub digits: usize,
}

fn unit_word(w: &str) -> Option<u32> {
    Some(match w {
        "zero" | "cero" => 0,
        "one" | "uno" | "un" | "una" => 1,
        "two" | "dos" => 2,
        "three" | "tres" => 3,
        "four" | "cuatro" => 4,
        "five" | "cinco" => 5,
        "six" | "seis" => 6,
        "seven" | "siete" => 7,
        "eight" | "ocho" => 8,
        "nine" | "nueve" => 9,
        _ => return None,
    })
}

fn teen_word(w: &str) -> Option<u32> {
    Some(match w {
        "ten" | "diez" => 10,
        "eleven" | "once" => 11,
        "twelve" | "doce" => 12,
        "thirteen" | "trece" => 13,
        "fourteen" | "catorce" => 14,
        "fifteen" | "quince" => 15,
        "sixteen" | "dieciseis" => 16,
        "seventeen" | "diecisiete" => 17,
        "eighteen" | "dieciocho" => 18,
        "nineteen" | "diecinueve" => 19,
        "veintiuno" | "veintiun" | "veintiuna" => 21,
        "veintidos" => 22,
        "veintitres" => 23,
        "veinticuatro" => 24,
        "veinticinco" => 25,
        "veintiseis" => 26,
        "veintisiete" => 27,
        "veintiocho" => 28,
        "veintinueve" => 29,
        _ => return None,
    })
}

fn tens_word(w: &str) -> Option<u32> {
    Some(match w {
        "twenty" | "veinte" => 20,
        "thirty" | "treinta" => 30,
        "forty" | "cuarenta" => 40,
        "fifty" | "cincuenta" => 50,
        "sixty" | "sesenta" => 60,
        _ => return None,
    })
}

/// Reads a number starting at `i`: digits, a single number word, or a compound
/// ("twenty five", "twenty-five", "treinta y cinco").
pub(crate) fn number_at(tokens: &[Token], i: usize) -> Option<NumberMatch> {
    let token = tokens.get(i)?;
    if token.is_number() {
        return Some(NumberMatch {
            value: token.value,
            next: i + 1,
            in_words: false,
            digits: token.digits,
        });
    }
    if !token.is_word() {
        return None;
    }
    let w = token.text.as_str();
    if let Some(v) = unit_word(w).or_else(|| teen_word(w)) {
        return Some(NumberMatch {
            value: v,
            next: i + 1,
            in_words: true,
            digits: 0,
        });
    }
    let tens = tens_word(w)?;
    // English compounds: "twenty five" or "twenty-five".
    let mut j = i + 1;
    if tokens.get(j).is_some_and(|t| t.is_punct('-') && !t.spaced) {
        j += 1;
    }
    if let Some(unit) = tokens
        .get(j)
        .filter(|t| t.is_word())
        .and_then(|t| unit_word(&t.text))
        && unit > 0
        && !matches!(tokens[j].text.as_str(), "un" | "una" | "uno")
    {
        return Some(NumberMatch {
            value: tens + unit,
            next: j + 1,
            in_words: true,
            digits: 0,
        });
    }
    // Spanish compounds: "treinta y cinco".
    if tokens.get(i + 1).is_some_and(|t| t.text == "y")
        && let Some(unit) = tokens
            .get(i + 2)
            .filter(|t| t.is_word())
            .and_then(|t| unit_word(&t.text))
        && unit > 0
    {
        return Some(NumberMatch {
            value: tens + unit,
            next: i + 3,
            in_words: true,
            digits: 0,
        });
    }
    Some(NumberMatch {
        value: tens,
        next: i + 1,
        in_words: true,
        digits: 0,
    })
}

/// Ordinal words ("third", "tercera", "1st" is handled by [`ordinal_at`]).
pub(crate) fn ordinal_word(w: &str) -> Option<u32> {
    Some(match w {
        "first" | "primero" | "primera" | "primer" => 1,
        "second" | "segundo" | "segunda" => 2,
        "third" | "tercero" | "tercera" | "tercer" => 3,
        "fourth" | "cuarto" | "cuarta" => 4,
        "fifth" | "quinto" | "quinta" => 5,
        "sixth" | "sexto" | "sexta" => 6,
        "seventh" | "septimo" | "septima" => 7,
        "eighth" | "octavo" | "octava" => 8,
        "ninth" | "noveno" | "novena" => 9,
        "tenth" | "decimo" | "decima" => 10,
        "eleventh" => 11,
        "twelfth" => 12,
        "thirteenth" => 13,
        "fourteenth" => 14,
        "fifteenth" => 15,
        "sixteenth" => 16,
        "seventeenth" => 17,
        "eighteenth" => 18,
        "nineteenth" => 19,
        "twentieth" => 20,
        "thirtieth" => 30,
        _ => return None,
    })
}

fn is_ordinal_suffix(w: &str) -> bool {
    matches!(w, "st" | "nd" | "rd" | "th" | "o" | "er" | "ero" | "era")
}

/// Reads an ordinal at `i`: "3rd", "1º", "twenty-first", "tercera".
pub(crate) fn ordinal_at(tokens: &[Token], i: usize) -> Option<NumberMatch> {
    let token = tokens.get(i)?;
    if token.is_number() {
        let suffix = tokens.get(i + 1).filter(|t| t.is_word() && !t.spaced)?;
        if is_ordinal_suffix(&suffix.text) {
            return Some(NumberMatch {
                value: token.value,
                next: i + 2,
                in_words: false,
                digits: token.digits,
            });
        }
        return None;
    }
    if !token.is_word() {
        return None;
    }
    if let Some(v) = ordinal_word(&token.text) {
        return Some(NumberMatch {
            value: v,
            next: i + 1,
            in_words: true,
            digits: 0,
        });
    }
    // "twenty-first", "thirty first".
    let tens = tens_word(&token.text)?;
    let mut j = i + 1;
    if tokens.get(j).is_some_and(|t| t.is_punct('-')) {
        j += 1;
    }
    let unit = tokens
        .get(j)
        .and_then(|t| ordinal_word(&t.text))
        .filter(|&u| u < 10)?;
    Some(NumberMatch {
        value: tens + unit,
        next: j + 1,
        in_words: true,
        digits: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::tokenize;

    fn read(s: &str) -> Option<u32> {
        let t = tokenize(s);
        number_at(&t, 0)
            .filter(|m| m.next == t.len())
            .map(|m| m.value)
    }

    #[test]
    fn reads_digits_and_words() {
        assert_eq!(read("17"), Some(17));
        assert_eq!(read("cinco"), Some(5));
        assert_eq!(read("twenty-five"), Some(25));
        assert_eq!(read("twenty five"), Some(25));
        assert_eq!(read("treinta y cinco"), Some(35));
        assert_eq!(read("veinticuatro"), Some(24));
        assert_eq!(read("perro"), None);
    }

    #[test]
    fn reads_ordinals() {
        let t = tokenize("3rd");
        assert_eq!(ordinal_at(&t, 0).map(|m| m.value), Some(3));
        let t = tokenize("twenty-first");
        assert_eq!(ordinal_at(&t, 0).map(|m| m.value), Some(21));
        let t = tokenize("tercera");
        assert_eq!(ordinal_at(&t, 0).map(|m| m.value), Some(3));
        let t = tokenize("3 rd");
        assert_eq!(ordinal_at(&t, 0), None);
    }
}
