//! Prints accuracy per family and language on the project's phrase tables (`lang/eval/`),
//! so regressions show as numbers. `--failures` lists every miss.
//!
//! cargo run --release -p lang --example eval [-- --failures]

#[path = "../eval/harness.rs"]
mod harness;

fn main() {
    let show_failures = std::env::args().any(|a| a == "--failures");
    let report = harness::full_report();
    println!("{:<24} {:>8} {:>10}", "family/lang", "cases", "accuracy");
    for (key, tally) in &report {
        let label = if key.starts_with("unrelated") {
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
        if key.starts_with("unrelated") {
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
