//! Normalisation and tokenisation.
//!
//! WhatsApp text arrives in every shape: all caps, missing or extra accents, "holaaaa",
//! "10am", "15/01", emoji. Everything downstream compares normalised tokens, so this is the
//! one place that knows about case, accents and repeated letters.

use unicode_normalization::UnicodeNormalization;

/// Messages longer than this are cut: a booking message is a few lines, and the cap keeps
/// the cost of a pathological input bounded.
const MAX_TOKENS: usize = 400;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Word,
    Number,
    Punct,
    /// Emoji and other symbols; `text` holds the character itself.
    Symbol,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub kind: Kind,
    /// Lowercase, accent-free, with runs of three or more equal letters collapsed to one.
    pub text: String,
    /// `text` with every run of equal letters collapsed, so "noo", "yess" and "tommorow"
    /// can be compared against lexicon entries squeezed the same way.
    pub squeezed: String,
    /// Numeric value for `Kind::Number` (saturating); 0 otherwise.
    pub value: u32,
    /// Number of digits for `Kind::Number`, to tell "0930" and years from hours.
    pub digits: usize,
    /// Byte range in the original text, for echoing the source of an expression.
    pub start: usize,
    pub end: usize,
    /// Whether whitespace separates this token from the previous one ("10am" vs "10 am").
    pub spaced: bool,
}

impl Token {
    pub fn is_word(&self) -> bool {
        self.kind == Kind::Word
    }
    pub fn is_number(&self) -> bool {
        self.kind == Kind::Number
    }
    pub fn is_punct(&self, c: char) -> bool {
        self.kind == Kind::Punct && self.text.starts_with(c)
    }
}

/// Letters compared through `squeeze`: "tomorrow" and "tommorow" both become "tomorow".
pub(crate) fn squeeze(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last = None;
    for c in s.chars() {
        if Some(c) != last {
            out.push(c);
        }
        last = Some(c);
    }
    out
}

/// Lowercases and strips diacritics from one character, appending the result.
fn push_folded(c: char, out: &mut String) {
    if c.is_ascii() {
        out.push(c.to_ascii_lowercase());
        return;
    }
    match c {
        // Ordinal indicators ("1º", "1ª") read as the letter they stand for.
        'º' => out.push('o'),
        'ª' => out.push('a'),
        _ => {
            for lower in c.to_lowercase() {
                for d in lower.nfd() {
                    if !is_combining_mark(d) {
                        out.push(d);
                    }
                }
            }
        }
    }
}

fn is_combining_mark(c: char) -> bool {
    matches!(c as u32, 0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F)
}

/// Collapses runs of three or more equal characters ("holaaa" -> "hola"); runs of two are
/// kept because they are real spelling ("llamar", "good").
fn collapse_long_runs(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mut j = i;
        while j < chars.len() && chars[j] == c {
            j += 1;
        }
        let run = j - i;
        if run >= 3 {
            out.push(c);
        } else {
            for _ in 0..run {
                out.push(c);
            }
        }
        i = j;
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Letter,
    Digit,
    Space,
    Apostrophe,
    Punct,
    Symbol,
}

fn classify(c: char) -> Class {
    if c.is_ascii_digit() {
        Class::Digit
    } else if c.is_alphabetic() {
        Class::Letter
    } else if c.is_whitespace() || c == '\u{200d}' || c == '\u{fe0f}' || c == '_' {
        Class::Space
    } else if c == '\'' || c == '’' || c == '`' || c == '´' {
        Class::Apostrophe
    } else if c.is_ascii_punctuation()
        || matches!(c, '¿' | '¡' | '–' | '—' | '…' | '«' | '»' | '“' | '”')
    {
        Class::Punct
    } else if c.is_control() || is_mark_like(c) {
        Class::Space
    } else {
        Class::Symbol
    }
}

/// Skin-tone modifiers and combining marks on their own carry no meaning here.
fn is_mark_like(c: char) -> bool {
    is_combining_mark(c) || matches!(c as u32, 0x1F3FB..=0x1F3FF)
}

/// Splits a message into tokens. Letters and digits never share a token, so "10am",
/// "15th" and "2moro" become two glued tokens; an apostrophe inside a word is dropped
/// ("don't" -> "dont", "o'clock" -> "oclock").
pub(crate) fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens: Vec<Token> = Vec::new();
    let mut chars = text.char_indices().peekable();
    let mut spaced = true;
    while let Some((start, c)) = chars.next() {
        if tokens.len() >= MAX_TOKENS {
            break;
        }
        match classify(c) {
            Class::Space => spaced = true,
            Class::Apostrophe => {
                // Inside a word the apostrophe is elided: the next letters continue the word.
                let prev_is_word = tokens
                    .last()
                    .is_some_and(|t| t.kind == Kind::Word && t.end == start);
                let next_is_letter = chars
                    .peek()
                    .is_some_and(|&(_, n)| classify(n) == Class::Letter);
                if prev_is_word && next_is_letter {
                    let mut extra = String::new();
                    let mut end = start + c.len_utf8();
                    while let Some(&(i, n)) = chars.peek() {
                        if classify(n) != Class::Letter {
                            break;
                        }
                        push_folded(n, &mut extra);
                        end = i + n.len_utf8();
                        chars.next();
                    }
                    if let Some(last) = tokens.last_mut() {
                        let joined = format!("{}{}", last.text, collapse_long_runs(&extra));
                        last.text = collapse_long_runs(&joined);
                        last.squeezed = squeeze(&last.text);
                        last.end = end;
                    }
                } else {
                    spaced = true;
                }
            }
            Class::Letter => {
                let mut folded = String::new();
                push_folded(c, &mut folded);
                let mut end = start + c.len_utf8();
                while let Some(&(i, n)) = chars.peek() {
                    if classify(n) != Class::Letter {
                        break;
                    }
                    push_folded(n, &mut folded);
                    end = i + n.len_utf8();
                    chars.next();
                }
                let text = collapse_long_runs(&folded);
                let squeezed = squeeze(&text);
                tokens.push(Token {
                    kind: Kind::Word,
                    text,
                    squeezed,
                    value: 0,
                    digits: 0,
                    start,
                    end,
                    spaced,
                });
                spaced = false;
            }
            Class::Digit => {
                let mut digits = String::new();
                digits.push(c);
                let mut end = start + 1;
                while let Some(&(i, n)) = chars.peek() {
                    if !n.is_ascii_digit() {
                        break;
                    }
                    digits.push(n);
                    end = i + 1;
                    chars.next();
                }
                let value = digits.bytes().fold(0u32, |acc, b| {
                    acc.saturating_mul(10).saturating_add(u32::from(b - b'0'))
                });
                let count = digits.len();
                tokens.push(Token {
                    kind: Kind::Number,
                    squeezed: digits.clone(),
                    text: digits,
                    value,
                    digits: count,
                    start,
                    end,
                    spaced,
                });
                spaced = false;
            }
            Class::Punct | Class::Symbol => {
                let kind = if classify(c) == Class::Punct {
                    Kind::Punct
                } else {
                    Kind::Symbol
                };
                let text = c.to_string();
                tokens.push(Token {
                    kind,
                    squeezed: text.clone(),
                    text,
                    value: 0,
                    digits: 0,
                    start,
                    end: start + c.len_utf8(),
                    spaced,
                });
                spaced = false;
            }
        }
    }
    tokens
}

/// Optimal-string-alignment distance (Levenshtein plus adjacent transpositions), with an
/// early exit once `limit` is exceeded. Typos are compared on short words, so the quadratic
/// table stays tiny.
pub(crate) fn edit_distance(a: &str, b: &str, limit: usize) -> usize {
    // Lexicon words are short; fixed buffers keep this allocation-free on the hot path.
    const MAX: usize = 32;
    let mut a_buf = ['\0'; MAX];
    let mut b_buf = ['\0'; MAX];
    let (mut n, mut m) = (0, 0);
    for c in a.chars() {
        if n == MAX {
            return limit + 1;
        }
        a_buf[n] = c;
        n += 1;
    }
    for c in b.chars() {
        if m == MAX {
            return limit + 1;
        }
        b_buf[m] = c;
        m += 1;
    }
    if n.abs_diff(m) > limit {
        return limit + 1;
    }
    let (a, b) = (&a_buf[..n], &b_buf[..m]);
    // Three rolling rows: two back for transpositions, previous, current.
    let mut before = [0usize; MAX + 1];
    let mut previous = [0usize; MAX + 1];
    let mut current = [0usize; MAX + 1];
    for (j, cell) in previous.iter_mut().enumerate().take(m + 1) {
        *cell = j;
    }
    for i in 1..=n {
        current[0] = i;
        let mut row_min = i;
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            current[j] = best;
            row_min = row_min.min(best);
        }
        if row_min > limit {
            return limit + 1;
        }
        before = previous;
        previous = current;
    }
    previous[m]
}

/// Compares an already squeezed word with a key squeezed on the fly, without allocating.
fn squeezed_eq(squeezed: &str, key: &str) -> bool {
    let mut key_chars = key.chars().peekable();
    let mut word_chars = squeezed.chars();
    loop {
        match (word_chars.next(), key_chars.next()) {
            (None, None) => return true,
            (Some(w), Some(k)) if w == k => {
                while key_chars.peek() == Some(&k) {
                    key_chars.next();
                }
            }
            _ => return false,
        }
    }
}

/// How many typos a word of this length may carry and still count as a lexicon entry.
/// Short words get none: "mar" must not match "mas".
pub(crate) fn typo_budget(len: usize) -> usize {
    match len {
        0..=4 => 0,
        5..=7 => 1,
        _ => 2,
    }
}

/// True when `word` (a normalised token) is `key`, allowing doubled letters and, for
/// longer words, small typos.
pub(crate) fn fuzzy_eq(word: &Token, key: &str) -> bool {
    if word.text == key || squeezed_eq(&word.squeezed, key) {
        return true;
    }
    let budget = typo_budget(key.len());
    budget > 0
        && word.text.len() >= 4
        && word.text.len().abs_diff(key.len()) <= budget
        && edit_distance(&word.text, key, budget) <= budget
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &str) -> Vec<String> {
        tokenize(s).into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn splits_letters_from_digits_and_folds_case_and_accents() {
        assert_eq!(
            texts("MAÑANA a las 10am"),
            ["manana", "a", "las", "10", "am"]
        );
        assert_eq!(texts("¿Tenéis algo?"), ["¿", "teneis", "algo", "?"]);
        assert_eq!(texts("15/01"), ["15", "/", "01"]);
    }

    #[test]
    fn elides_apostrophes_inside_words() {
        assert_eq!(texts("don't 3 o'clock"), ["dont", "3", "oclock"]);
    }

    #[test]
    fn collapses_long_letter_runs_only() {
        assert_eq!(texts("holaaaa siiii llamar"), ["hola", "si", "llamar"]);
    }

    #[test]
    fn keeps_emoji_as_symbols() {
        let t = tokenize("ok 👍🏽");
        assert_eq!(t.len(), 2);
        assert_eq!(t[1].kind, Kind::Symbol);
        assert_eq!(t[1].text, "👍");
    }

    #[test]
    fn records_glue_between_tokens() {
        let t = tokenize("10am 10 am");
        assert!(!t[1].spaced);
        assert!(t[3].spaced);
    }

    #[test]
    fn edit_distance_counts_transpositions_as_one() {
        assert_eq!(edit_distance("cancle", "cancel", 2), 1);
        assert_eq!(edit_distance("wensday", "wednesday", 2), 2);
        assert!(edit_distance("hola", "adios", 1) > 1);
    }
}
