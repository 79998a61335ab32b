//! Latency of `understand` on typical messages.
//!
//! cargo bench -p lang --bench understand

use std::hint::black_box;

use chrono::{DateTime, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use lang::{Context, DateOrder, Lang, understand};

fn bench(c: &mut Criterion) {
    let now = DateTime::parse_from_rfc3339("2026-03-10T10:00:00+01:00")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default();
    let services = vec![
        "Corte de pelo".to_string(),
        "Manicura".to_string(),
        "Tinte".to_string(),
    ];
    let staff = vec!["Laura".to_string(), "Carlos".to_string()];
    let ctx = Context {
        now,
        tz: chrono_tz::Europe::Madrid,
        default_lang: Lang::Es,
        lang_hint: None,
        date_order: DateOrder::DayFirst,
        services: &services,
        staff: &staff,
        options: &[],
    };
    let messages = [
        "¿tenéis algo el jueves por la tarde?",
        "can u do tmrw after 4",
        "mejor el 15 a las 10 y media con Laura",
        "cancela lo de mañana",
        "hola quería pedir cita para un corte de pelo el viernes entre las 4 y las 6",
    ];
    for (i, m) in messages.iter().enumerate() {
        c.bench_function(&format!("understand/{i}"), |b| {
            b.iter(|| understand(black_box(m), black_box(&ctx)))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
