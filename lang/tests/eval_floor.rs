//! Accuracy on the evaluation tables must not fall below these floors; the example
//! `cargo run --release -p lang --example eval` prints the current figures.

#[path = "../eval/harness.rs"]
mod harness;

const FLOOR: f64 = 0.9;

#[test]
fn every_family_stays_above_its_floor() {
    let report = harness::full_report();
    let below: Vec<String> = report
        .iter()
        .filter(|(_, t)| t.accuracy() < FLOOR)
        .map(|(k, t)| {
            format!(
                "{k}: {:.1}% ({} misses)\n  {}",
                100.0 * t.accuracy(),
                t.failures.len(),
                t.failures.join("\n  ")
            )
        })
        .collect();
    assert!(
        below.is_empty(),
        "families below {FLOOR}:\n{}",
        below.join("\n")
    );
    // Unrelated messages read as booking intents: under 5%.
    for (key, tally) in report.iter().filter(|(k, _)| k.starts_with("unrelated")) {
        assert!(1.0 - tally.accuracy() < 0.05, "{key}: {:?}", tally.failures);
    }
}
