//! The `check` helper shared by the table-driven tests.

#![allow(dead_code)]

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use lang::{Context, DateOrder, Lang, ShownOption, Understanding, When, WhenKind, understand};

/// Duckling's reference time: Tuesday 2013-02-12 04:30 at UTC-2.
pub const DUCKLING_NOW: &str = "2013-02-12T04:30:00-02:00";
pub const DUCKLING_TZ: &str = "Etc/GMT+2";

pub fn instant(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test reference time is valid RFC 3339")
        .with_timezone(&Utc)
}

pub fn zone(tz: &str) -> Tz {
    tz.parse().expect("test time zone exists")
}

pub fn run(now: &str, tz: &str, text: &str, lang: Lang) -> Understanding {
    run_with(now, tz, text, lang, DateOrder::MonthFirst, &[])
}

pub fn run_with(
    now: &str,
    tz: &str,
    text: &str,
    lang: Lang,
    order: DateOrder,
    options: &[ShownOption],
) -> Understanding {
    let ctx = Context {
        now: instant(now),
        tz: zone(tz),
        default_lang: lang,
        lang_hint: Some(lang),
        date_order: order,
        services: &[],
        staff: &[],
        options,
    };
    understand(text, &ctx)
}

/// A resolution in local time: `I 2013-02-13T17:00 hour`, `V <start> <end|-> <grain>`.
pub fn notation(w: &When, tz: Tz) -> String {
    let local = |t: DateTime<Utc>| t.with_timezone(&tz).format("%Y-%m-%dT%H:%M").to_string();
    let grain = serde_json::to_value(w.grain)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    match w.kind {
        WhenKind::Instant => format!("I {} {grain}", local(w.start)),
        WhenKind::Interval => {
            format!(
                "V {} {} {grain}",
                local(w.start),
                w.end.map(local).unwrap_or_else(|| "-".to_string())
            )
        }
    }
}

/// Asserts the first date/time read from `text` (or "nothing").
pub fn check(now: &str, tz: &str, text: &str, expected: &str) {
    let lang = if text.chars().any(|c| "ñáéíóú¿¡".contains(c)) {
        Lang::Es
    } else {
        Lang::En
    };
    check_in(lang, now, tz, text, expected);
}

pub fn check_in(lang: Lang, now: &str, tz: &str, text: &str, expected: &str) {
    let u = run(now, tz, text, lang);
    let got = u
        .when
        .first()
        .map(|w| notation(w, zone(tz)))
        .unwrap_or_else(|| "nothing".to_string());
    assert_eq!(got, expected, "reading {text:?} at {now} in {tz}");
}

/// Runs a table against Duckling's reference time, reporting every mismatch at once.
pub fn check_table(lang: Lang, cases: &[(&str, &str)]) {
    check_table_at(lang, DUCKLING_NOW, DUCKLING_TZ, cases);
}

pub fn check_table_at(lang: Lang, now: &str, tz: &str, cases: &[(&str, &str)]) {
    let mut failures = Vec::new();
    for (text, expected) in cases {
        let u = run(now, tz, text, lang);
        let got = u
            .when
            .first()
            .map(|w| notation(w, zone(tz)))
            .unwrap_or_else(|| "nothing".to_string());
        if got != *expected {
            failures.push(format!("{text:?}: expected {expected}, got {got}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
