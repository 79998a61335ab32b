//! The built-in availability maths against a brute-force oracle that walks every minute.
//!
//! The oracle states the definition directly: a start is free when its wall-clock time is on
//! the tenant's grid (first occurrence if the clock repeats), every minute of the appointment
//! reads as inside the same opening period on the same local date, it respects lead time,
//! horizon and closed dates, and during every minute of appointment plus buffer the resource
//! has fewer overlapping busy intervals than its capacity.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use engine::availability::{AvailabilityView, BuiltinAvailability, Busy};
use engine::config::{
    CalendarBackend, HandoffTarget, OpenPeriod, PerLang, Resource, Service, Tenant,
};
use lang::{DateOrder, Lang};
use proptest::prelude::*;

// One knob per dimension the oracle varies; a builder would only hide them.
#[allow(clippy::too_many_arguments)]
fn tenant(
    tz: Tz,
    hours: [Vec<OpenPeriod>; 7],
    closed: BTreeSet<NaiveDate>,
    staff: Vec<Resource>,
    service_minutes: u32,
    buffer: u32,
    step: u32,
    lead: u32,
    horizon_days: u32,
) -> Tenant {
    let mut names = PerLang::default();
    names.insert(Lang::En, "Service".to_string());
    Tenant {
        phone_number_id: "1".into(),
        name: "Test".into(),
        time_zone: tz,
        default_language: Lang::En,
        languages: vec![Lang::En],
        date_order: DateOrder::DayFirst,
        services: vec![
            Service {
                id: "svc".into(),
                names: names.clone(),
                minutes: service_minutes,
                buffer_minutes: buffer,
                price: None,
                calcom_event_type_id: None,
            },
            Service {
                id: "other".into(),
                names,
                minutes: 30,
                buffer_minutes: 0,
                price: None,
                calcom_event_type_id: None,
            },
        ],
        hours,
        closed_dates: closed,
        staff,
        hold_minutes: 15,
        reminder_minutes: vec![1440, 60],
        min_lead_minutes: lead,
        horizon_days,
        slot_step_minutes: step,
        follow_up_minutes: None,
        no_show_check_minutes: None,
        templates: BTreeMap::new(),
        calendar: CalendarBackend::Builtin,
        handoff: HandoffTarget::default(),
    }
}

fn oracle(
    tenant: &Tenant,
    now: DateTime<Utc>,
    busy: &[Busy],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> BTreeSet<(String, i64)> {
    let tz = tenant.time_zone;
    let service = &tenant.services[0];
    let mut free = BTreeSet::new();
    let mut at = from;
    while at < to {
        let ok_window = at >= now + Duration::minutes(i64::from(tenant.min_lead_minutes))
            && at < now + Duration::days(i64::from(tenant.horizon_days));
        let local = at.with_timezone(&tz);
        let date = local.date_naive();
        let minute = local.hour() * 60 + local.minute();
        let period = tenant
            .opening(local.weekday())
            .iter()
            .find(|p| p.start_minute <= minute && minute < p.end_minute)
            .copied();
        let first_occurrence =
            tz.from_local_datetime(&local.naive_local()).earliest() == Some(local);
        if let Some(period) = period
            && ok_window
            && first_occurrence
            && !tenant.closed_dates.contains(&date)
            && (minute - period.start_minute).is_multiple_of(tenant.slot_step_minutes)
        {
            let inside = (0..service.minutes).all(|k| {
                let l = (at + Duration::minutes(i64::from(k))).with_timezone(&tz);
                let m = l.hour() * 60 + l.minute();
                l.date_naive() == date && m >= period.start_minute && m < period.end_minute
            });
            if inside {
                for resource in tenant.staff.iter().filter(|r| r.performs(&service.id)) {
                    let fits = (0..service.minutes + service.buffer_minutes).all(|k| {
                        let t = at + Duration::minutes(i64::from(k));
                        let overlapping = busy
                            .iter()
                            .filter(|b| b.resource == resource.id && b.start <= t && t < b.end)
                            .count();
                        overlapping < resource.capacity as usize
                    });
                    if fits {
                        free.insert((resource.id.clone(), at.timestamp()));
                    }
                }
            }
        }
        at += Duration::minutes(1);
    }
    free
}

/// Days on and around clock changes, where the maths is easiest to get wrong.
const AROUND: [(&str, i32, u32, u32); 6] = [
    ("America/New_York", 2026, 3, 7),
    ("America/New_York", 2026, 10, 31),
    ("Europe/Madrid", 2026, 3, 28),
    ("Europe/Madrid", 2026, 10, 24),
    ("Australia/Lord_Howe", 2026, 4, 4),
    ("UTC", 2026, 6, 1),
];

fn periods() -> impl Strategy<Value = Vec<OpenPeriod>> {
    // Up to two periods; starts in the small hours sometimes, to straddle clock changes.
    prop::collection::vec((0u32..22 * 4, 1u32..10 * 4), 0..=2).prop_map(|raw| {
        let mut periods: Vec<OpenPeriod> = Vec::new();
        let mut cursor = 0;
        for (offset, length) in raw {
            let start = cursor + offset * 15 % (24 * 60 - cursor).max(1);
            let end = (start + length * 15).min(24 * 60);
            if start < end && start >= cursor {
                periods.push(OpenPeriod {
                    start_minute: start,
                    end_minute: end,
                });
                cursor = end + 15;
            }
            if cursor >= 24 * 60 {
                break;
            }
        }
        periods
    })
}

prop_compose! {
    fn scenario()(
        around in 0usize..AROUND.len(),
        hours in prop::array::uniform7(periods()),
        closed_offsets in prop::collection::btree_set(0i64..4, 0..2),
        staff in prop::collection::vec((1u32..=3, any::<bool>()), 1..=3),
        service_minutes in prop::sample::select(vec![10u32, 25, 30, 45, 60, 90, 150]),
        buffer in prop::sample::select(vec![0u32, 5, 15]),
        step in prop::sample::select(vec![5u32, 10, 15, 20, 30, 60]),
        lead in prop::sample::select(vec![0u32, 30, 120]),
        horizon_days in 1u32..5,
        now_offset_minutes in 0i64..(2 * 24 * 60),
        busy in prop::collection::vec((0usize..3, 0i64..(4 * 24 * 60), 5i64..240), 0..40),
        range in (0i64..(3 * 24 * 60), 60i64..(3 * 24 * 60)),
    ) -> (Tenant, DateTime<Utc>, Vec<Busy>, DateTime<Utc>, DateTime<Utc>) {
        let (zone, year, month, day) = AROUND[around];
        let tz: Tz = zone.parse().expect("zone");
        let base = NaiveDate::from_ymd_opt(year, month, day).expect("date");
        let origin = base.and_hms_opt(0, 0, 0).expect("midnight").and_utc() - Duration::days(1);
        let closed = closed_offsets.into_iter().map(|d| base + Duration::days(d)).collect();
        let staff: Vec<Resource> = staff
            .into_iter()
            .enumerate()
            .map(|(index, (capacity, all))| Resource {
                id: format!("r{index}"),
                name: format!("R{index}"),
                capacity,
                services: if all || index == 0 { vec![] } else { vec!["other".into()] },
            })
            .collect();
        let busy = busy
            .into_iter()
            .map(|(resource, start, length)| Busy {
                resource: format!("r{resource}"),
                start: origin + Duration::minutes(start),
                end: origin + Duration::minutes(start + length),
            })
            .collect();
        let tenant = tenant(tz, hours, closed, staff, service_minutes, buffer, step, lead, horizon_days);
        let now = origin + Duration::minutes(now_offset_minutes);
        let from = origin + Duration::minutes(range.0);
        (tenant, now, busy, from, from + Duration::minutes(range.1))
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn matches_minute_by_minute_oracle((tenant, now, busy, from, to) in scenario()) {
        let view = BuiltinAvailability::new(&tenant, now, &busy);
        let fast: Vec<(String, i64)> = view
            .free_slots("svc", from, to)
            .into_iter()
            .map(|slot| {
                assert_eq!(slot.end - slot.start, Duration::minutes(i64::from(tenant.services[0].minutes)));
                (slot.resource, slot.start.timestamp())
            })
            .collect();
        let starts: Vec<i64> = fast.iter().map(|(_, start)| *start).collect();
        prop_assert!(starts.windows(2).all(|w| w[0] <= w[1]), "slots are in start order");
        let fast: BTreeSet<(String, i64)> = fast.into_iter().collect();
        let expected = oracle(&tenant, now, &busy, from, to);
        prop_assert_eq!(fast, expected);
    }
}

#[test]
fn spring_forward_skips_missing_times_and_keeps_real_durations() {
    let tz = chrono_tz::America::New_York;
    let mut hours: [Vec<OpenPeriod>; 7] = Default::default();
    // Sunday 00:00-05:00: the clock jumps from 02:00 to 03:00 on 2026-03-08.
    hours[6] = vec![OpenPeriod {
        start_minute: 0,
        end_minute: 300,
    }];
    let staff = vec![Resource {
        id: "r0".into(),
        name: "R".into(),
        capacity: 1,
        services: vec![],
    }];
    let tenant = tenant(tz, hours, BTreeSet::new(), staff, 60, 0, 60, 0, 3);
    let now = Utc
        .with_ymd_and_hms(2026, 3, 7, 12, 0, 0)
        .single()
        .expect("now");
    let view = BuiltinAvailability::new(&tenant, now, &[]);
    let starts: Vec<String> = view
        .free_slots("svc", now, now + Duration::days(2))
        .into_iter()
        .map(|slot| slot.start.with_timezone(&tz).format("%H:%M").to_string())
        .collect();
    // 02:00 does not exist; 04:00 would end at 05:00 exactly and fits.
    assert_eq!(starts, vec!["00:00", "01:00", "03:00", "04:00"]);
}

#[test]
fn fall_back_offers_a_repeated_time_once() {
    let tz = chrono_tz::America::New_York;
    let mut hours: [Vec<OpenPeriod>; 7] = Default::default();
    hours[6] = vec![OpenPeriod {
        start_minute: 0,
        end_minute: 180,
    }];
    let staff = vec![Resource {
        id: "r0".into(),
        name: "R".into(),
        capacity: 1,
        services: vec![],
    }];
    let tenant = tenant(tz, hours, BTreeSet::new(), staff, 30, 0, 60, 0, 3);
    let now = Utc
        .with_ymd_and_hms(2026, 10, 31, 12, 0, 0)
        .single()
        .expect("now");
    let view = BuiltinAvailability::new(&tenant, now, &[]);
    let slots = view.free_slots("svc", now, now + Duration::days(2));
    let local: Vec<String> = slots
        .iter()
        .map(|s| s.start.with_timezone(&tz).format("%H:%M %Z").to_string())
        .collect();
    assert_eq!(local, vec!["00:00 EDT", "01:00 EDT", "02:00 EST"]);
}
