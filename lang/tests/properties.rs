//! Properties that hold for any input: no panic, well-formed output, nothing in a DST gap.

use chrono::{DateTime, Duration, LocalResult, TimeZone, Utc};
use lang::{Context, DateOrder, Lang, Understanding, WhenKind, understand};
use proptest::prelude::*;

const ZONES: [chrono_tz::Tz; 5] = [
    chrono_tz::Europe::Madrid,
    chrono_tz::America::New_York,
    chrono_tz::Etc::GMTPlus2,
    chrono_tz::America::Santiago,
    chrono_tz::Australia::Lord_Howe,
];

fn well_formed(u: &Understanding, tz: chrono_tz::Tz) -> Result<(), TestCaseError> {
    prop_assert!(!u.intents.is_empty());
    for i in &u.intents {
        prop_assert!((0.0..=1.0).contains(&i.confidence));
    }
    prop_assert!(
        u.intents
            .windows(2)
            .all(|w| w[0].confidence >= w[1].confidence)
    );
    for w in &u.when {
        if let Some(end) = w.end {
            prop_assert!(end >= w.start, "interval ends before it starts: {w:?}");
        }
        if w.kind == WhenKind::Instant {
            prop_assert!(w.end.is_none());
        }
        // The local wall time of every result exists in the zone.
        let local = w.start.with_timezone(&tz).naive_local();
        prop_assert!(
            !matches!(tz.from_local_datetime(&local), LocalResult::None),
            "{local} is in a gap"
        );
    }
    Ok(())
}

fn context(now: DateTime<Utc>, tz: chrono_tz::Tz) -> Context<'static> {
    Context {
        now,
        tz,
        default_lang: Lang::Es,
        lang_hint: None,
        date_order: DateOrder::DayFirst,
        services: &[],
        staff: &[],
        options: &[],
    }
}

fn phrase() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "mañana",
        "tomorrow",
        "a las",
        "at",
        "5",
        "10:30",
        "y media",
        "menos cuarto",
        "pm",
        "de la tarde",
        "por la mañana",
        "el",
        "lunes",
        "next",
        "friday",
        "between",
        "and",
        "entre",
        "y",
        "after",
        "antes de",
        "in",
        "2",
        "hours",
        "horas",
        "dentro de",
        "media hora",
        "15/01",
        "2/30",
        "31",
        "de",
        "enero",
        "feb",
        "this weekend",
        "tonight",
        "-",
        "to",
        "hasta",
        "cancel",
        "quiero",
        "cita",
        "👍",
        "no",
        "?",
        "2:30",
        "domingo",
        "sunday",
        "3am",
        "1:30",
        "0",
        "99",
        "25:61",
    ]);
    prop::collection::vec(pieces, 0..8).prop_map(|v| v.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn never_panics_on_arbitrary_unicode(text in "\\PC{0,200}", offset_minutes in 0i64..(60 * 24 * 800), zone in 0usize..5) {
        let tz = ZONES[zone];
        let now = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).single().unwrap_or_default() + Duration::minutes(offset_minutes);
        let u = understand(&text, &context(now, tz));
        well_formed(&u, tz)?;
    }

    #[test]
    fn grammar_soup_is_well_formed_around_dst(text in phrase(), offset_minutes in 0i64..(60 * 24 * 14), zone in 0usize..5, autumn in any::<bool>()) {
        let tz = ZONES[zone];
        // Two weeks around the European and American transitions.
        let base = if autumn { (2026, 10, 20) } else { (2026, 3, 3) };
        let now = Utc.with_ymd_and_hms(base.0, base.1, base.2, 0, 0, 0).single().unwrap_or_default() + Duration::minutes(offset_minutes);
        let u = understand(&text, &context(now, tz));
        well_formed(&u, tz)?;
    }
}
