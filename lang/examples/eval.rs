//! Prints accuracy per family and language on the project's phrase tables (`lang/eval/`),
//! so regressions show as numbers. `--failures` lists every miss.
//!
//! cargo run --release -p lang --example eval [-- --failures | --latency | --heldout]
//!
//! `--heldout` reports on the held-out tables instead (phrasing not tuned against).

#[path = "../eval/harness.rs"]
mod harness;

/// Per-call latency over typical messages: p50 and p99 of single `understand` calls.
fn latency() {
    use std::time::Instant;
    let services = vec!["Corte de pelo".to_string(), "Manicura".to_string()];
    let staff = vec!["Laura".to_string()];
    let ctx = lang::Context {
        now: chrono::DateTime::parse_from_rfc3339("2026-03-10T10:00:00+01:00")
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_default(),
        tz: chrono_tz::Europe::Madrid,
        default_lang: lang::Lang::Es,
        lang_hint: None,
        date_order: lang::DateOrder::DayFirst,
        services: &services,
        staff: &staff,
        options: &[],
    };
    let messages: Vec<&str> = harness::INTENTS
        .lines()
        .filter_map(|l| l.split('\t').nth(2))
        .collect();
    let mut samples = Vec::new();
    for round in 0..30 {
        for m in &messages {
            let start = Instant::now();
            let u = lang::understand(m, &ctx);
            let elapsed = start.elapsed();
            std::hint::black_box(u);
            if round > 0 {
                samples.push(elapsed.as_nanos());
            }
        }
    }
    samples.sort_unstable();
    let pct = |p: f64| {
        samples
            .get(((samples.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    println!(
        "latency over {} calls: p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs",
        samples.len(),
        pct(0.5),
        pct(0.9),
        pct(0.99)
    );
}

fn main() {
    if std::env::args().any(|a| a == "--latency") {
        latency();
        return;
    }
    let show_failures = std::env::args().any(|a| a == "--failures");
    let report = if std::env::args().any(|a| a == "--heldout") {
        harness::heldout_report()
    } else {
        harness::full_report()
    };
    println!("{:<24} {:>8} {:>10}", "family/lang", "cases", "accuracy");
    for (key, tally) in &report {
        let label = if key.contains("unrelated") {
            format!("{key} (not booking)")
        } else {
            key.clone()
        };
        println!(
            "{:<24} {:>8} {:>9.1}%",
            label,
            tally.total,
            100.0 * tally.accuracy()
        );
    }
    for (key, tally) in &report {
        if key.contains("unrelated") {
            println!(
                "false-positive rate {key}: {:.1}%",
                100.0 * (1.0 - tally.accuracy())
            );
        }
    }
    if show_failures {
        for (key, tally) in &report {
            for failure in &tally.failures {
                println!("MISS {key}: {failure}");
            }
        }
    }
}
