//! Free slots for a month of a busy tenant: eight staff open seven days a week, ten bookings
//! each per day, 15-minute grid, in a zone with a clock change inside the month.

use std::collections::{BTreeMap, BTreeSet};
use std::hint::black_box;

use chrono::{Duration, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use engine::availability::{AvailabilityView, BuiltinAvailability, Busy};
use engine::config::{
    CalendarBackend, HandoffTarget, OpenPeriod, PerLang, Resource, Service, Tenant,
};
use lang::{DateOrder, Lang};

fn busy_tenant() -> Tenant {
    let mut names = PerLang::default();
    names.insert(Lang::En, "Haircut".to_string());
    let day = vec![
        OpenPeriod {
            start_minute: 8 * 60,
            end_minute: 13 * 60,
        },
        OpenPeriod {
            start_minute: 14 * 60,
            end_minute: 20 * 60,
        },
    ];
    Tenant {
        phone_number_id: "1".into(),
        name: "Busy".into(),
        time_zone: chrono_tz::Europe::Madrid,
        default_language: Lang::En,
        languages: vec![Lang::En],
        date_order: DateOrder::DayFirst,
        services: vec![Service {
            id: "haircut".into(),
            names,
            minutes: 45,
            buffer_minutes: 15,
            price: None,
            calcom_event_type_id: None,
        }],
        hours: std::array::from_fn(|_| day.clone()),
        closed_dates: BTreeSet::new(),
        staff: (0..8)
            .map(|i| Resource {
                id: format!("staff{i}"),
                name: format!("Staff {i}"),
                capacity: 1,
                services: vec![],
            })
            .collect(),
        hold_minutes: 15,
        reminder_minutes: vec![1440, 60],
        min_lead_minutes: 60,
        horizon_days: 60,
        slot_step_minutes: 15,
        follow_up_minutes: None,
        no_show_check_minutes: None,
        templates: BTreeMap::new(),
        calendar: CalendarBackend::Builtin,
        handoff: HandoffTarget::default(),
    }
}

fn bench(c: &mut Criterion) {
    let tenant = busy_tenant();
    // March 2026 contains Madrid's spring-forward.
    let now = Utc
        .with_ymd_and_hms(2026, 3, 1, 6, 0, 0)
        .single()
        .expect("valid instant");
    let mut busy = Vec::new();
    for day in 0..31 {
        for staff in 0..8 {
            for booking in 0..10 {
                // Deterministic spread: each stylist's bookings shifted differently per day.
                let minute = 8 * 60 + ((booking * 71 + staff * 37 + day * 13) % (11 * 60));
                let start = now + Duration::days(day) + Duration::minutes(minute - 6 * 60 + 60);
                busy.push(Busy {
                    resource: format!("staff{staff}"),
                    start,
                    end: start + Duration::minutes(60),
                });
            }
        }
    }
    let to = now + Duration::days(31);

    c.bench_function("free_slots month, 8 staff, 2480 bookings (prepared)", |b| {
        let view = BuiltinAvailability::new(&tenant, now, &busy);
        b.iter(|| black_box(view.free_slots("haircut", now, to)).len())
    });
    c.bench_function(
        "free_slots month, 8 staff, 2480 bookings (including index build)",
        |b| {
            b.iter(|| {
                let view = BuiltinAvailability::new(&tenant, now, black_box(&busy));
                black_box(view.free_slots("haircut", now, to)).len()
            })
        },
    );
    c.bench_function(
        "for_each_free month, 8 staff (no allocation per slot)",
        |b| {
            let view = BuiltinAvailability::new(&tenant, now, &busy);
            b.iter(|| {
                let mut count = 0usize;
                view.for_each_free("haircut", now, to, |_, _| count += 1);
                black_box(count)
            })
        },
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
