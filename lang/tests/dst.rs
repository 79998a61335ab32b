//! Daylight-saving transitions: no result in a gap, folds flagged, arithmetic in local time.

mod common;

use chrono::{DateTime, Utc};
use common::{check, run, zone};
use lang::Lang;

fn utc(s: &str) -> DateTime<Utc> {
    common::instant(s)
}

#[test]
fn madrid_spring_forward_gap_moves_forward() {
    // Sunday 2026-03-29: 02:00 jumps to 03:00.
    let now = "2026-03-27T12:00:00+01:00";
    check(
        now,
        "Europe/Madrid",
        "sunday at 2:30am",
        "I 2026-03-29T03:30 minute",
    );
    let u = run(now, "Europe/Madrid", "sunday at 2:30am", Lang::En);
    assert_eq!(u.when[0].start, utc("2026-03-29T01:30:00Z"));
    check(
        now,
        "Europe/Madrid",
        "sunday at 10",
        "I 2026-03-29T10:00 hour",
    );
    let u = run(now, "Europe/Madrid", "sunday at 10", Lang::En);
    assert_eq!(
        u.when[0].start,
        utc("2026-03-29T08:00:00Z"),
        "10:00 on Sunday is summer time"
    );
    check(
        now,
        "Europe/Madrid",
        "el domingo a las 2 y media de la madrugada",
        "I 2026-03-29T03:30 minute",
    );
    check(
        now,
        "Europe/Madrid",
        "this weekend",
        "V 2026-03-27T18:00 2026-03-30T00:00 hour",
    );
    check(now, "Europe/Madrid", "in 2 days", "I 2026-03-29T12:00 hour");
}

#[test]
fn madrid_fall_back_fold_is_flagged_and_earlier() {
    // Sunday 2026-10-25: 03:00 goes back to 02:00, so 02:30 happens twice.
    let now = "2026-10-23T12:00:00+02:00";
    let u = run(now, "Europe/Madrid", "sunday at 2:30am", Lang::En);
    let w = &u.when[0];
    assert!(w.ambiguous_fold);
    assert_eq!(
        w.start,
        utc("2026-10-25T00:30:00Z"),
        "the earlier, summer-time 02:30"
    );
    let u = run(now, "Europe/Madrid", "el domingo a las 12", Lang::Es);
    assert!(!u.when[0].ambiguous_fold);
    assert_eq!(
        u.when[0].start,
        utc("2026-10-25T11:00:00Z"),
        "noon on Sunday is winter time"
    );
}

#[test]
fn new_york_transitions() {
    let spring = "2026-03-06T12:00:00-05:00";
    check(
        spring,
        "America/New_York",
        "sunday at 2:30am",
        "I 2026-03-08T03:30 minute",
    );
    let u = run(spring, "America/New_York", "sunday at 9am", Lang::En);
    assert_eq!(u.when[0].start, utc("2026-03-08T13:00:00Z"));
    let fall = "2026-10-30T12:00:00-04:00";
    let u = run(fall, "America/New_York", "sunday at 1:30am", Lang::En);
    assert!(u.when[0].ambiguous_fold);
    assert_eq!(u.when[0].start, utc("2026-11-01T05:30:00Z"));
    let u = run(fall, "America/New_York", "sunday at 1:30pm", Lang::En);
    assert!(!u.when[0].ambiguous_fold);
    assert_eq!(u.when[0].start, utc("2026-11-01T18:30:00Z"));
}

#[test]
fn nothing_resolves_inside_a_gap() {
    let tz = zone("Europe/Madrid");
    for text in [
        "sunday at 2am",
        "sunday at 2:15",
        "domingo a las 2:45 de la madrugada",
        "sunday 02:59",
    ] {
        let u = run("2026-03-27T12:00:00+01:00", "Europe/Madrid", text, Lang::En);
        for w in &u.when {
            let local = w.start.with_timezone(&tz);
            assert!(
                local.naive_local()
                    >= chrono::NaiveDate::from_ymd_opt(2026, 3, 29)
                        .and_then(|d| d.and_hms_opt(3, 0, 0))
                        .unwrap_or_default()
                    || local.naive_local()
                        < chrono::NaiveDate::from_ymd_opt(2026, 3, 29)
                            .and_then(|d| d.and_hms_opt(2, 0, 0))
                            .unwrap_or_default(),
                "{text:?} resolved to {local}, inside the gap"
            );
        }
    }
}

#[test]
fn past_dates_are_flagged_not_moved() {
    let now = "2026-03-10T10:00:00+01:00";
    let u = run(now, "Europe/Madrid", "el 8 de marzo", Lang::Es);
    assert!(u.when[0].in_past, "two days ago is flagged");
    assert_eq!(u.when[0].start, utc("2026-03-07T23:00:00Z"));
    let u = run(now, "Europe/Madrid", "today at 8am", Lang::En);
    assert!(u.when[0].in_past);
    let u = run(now, "Europe/Madrid", "tomorrow at 8am", Lang::En);
    assert!(!u.when[0].in_past);
}

#[test]
fn ambiguous_hours_report_the_other_reading() {
    let u = run(
        "2026-03-10T10:00:00+01:00",
        "Europe/Madrid",
        "tomorrow at 5",
        Lang::En,
    );
    let w = &u.when[0];
    assert_eq!(w.start, utc("2026-03-11T16:00:00Z"), "17:00 local");
    let alt = w.alternative.as_ref().map(|a| a.start);
    assert_eq!(
        alt,
        Some(utc("2026-03-11T04:00:00Z")),
        "05:00 local is the other reading"
    );
    let u = run(
        "2026-03-10T10:00:00+01:00",
        "Europe/Madrid",
        "tomorrow at 5pm",
        Lang::En,
    );
    assert!(u.when[0].alternative.is_none());
}
