//! `sim demo`: a handful of customers in both languages, their transcripts and a summary.

use std::time::Duration;

use lang::Lang;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::task::JoinSet;

use crate::conversation::{self, Outcome, Pace};
use crate::persona::{Ending, demo_cast};
use crate::report::{Latencies, endings, errors_by_kind, ms};
use crate::sandbox::Sandbox;
use crate::transcript;
use crate::world::Backend;

/// The result of a demo, for the caller to print or a test to inspect.
pub struct DemoRun {
    pub outcomes: Vec<Outcome>,
}

/// Runs the demo cast at once (each customer in their own conversation) and prints every
/// transcript as soon as its conversation ends. `only` limits the cast to names listed.
pub async fn run(
    sandbox: &Sandbox,
    hold: Duration,
    only: &[String],
    think: Duration,
    print: bool,
) -> DemoRun {
    let mut cast = demo_cast(hold);
    if !only.is_empty() {
        cast.retain(|(persona, _)| {
            only.iter()
                .any(|name| name.eq_ignore_ascii_case(&persona.name))
        });
    }
    let pace = Pace {
        reply_timeout: Duration::from_secs(20),
        quiet: Duration::from_millis(400),
        think,
        sent: None,
    };
    let mut running = JoinSet::new();
    for (index, (persona, business_lang)) in cast.into_iter().enumerate() {
        let Some(business) = sandbox
            .world
            .businesses
            .iter()
            .find(|b| b.lang == business_lang)
            .cloned()
        else {
            continue;
        };
        let wa_id = match business_lang {
            Lang::En => format!("1555010{:04}", index + 1),
            Lang::Es => format!("3460010{:04}", index + 1),
        };
        let fake = sandbox.fake().clone();
        let router = sandbox.router.clone();
        let pace = pace.clone();
        running.spawn(async move {
            let mut rng = StdRng::seed_from_u64(index as u64);
            let outcome = conversation::run(
                &fake,
                &router,
                &business.phone_number_id,
                &wa_id,
                persona,
                pace,
                &mut rng,
            )
            .await;
            (outcome, business)
        });
    }
    let mut outcomes = Vec::new();
    while let Some(joined) = running.join_next().await {
        let Ok((outcome, business)) = joined else {
            continue;
        };
        if print {
            let backend = match business.backend {
                Backend::Builtin => "built-in calendar",
                Backend::Calcom => "Cal.com",
            };
            println!(
                "── {} ({}) → {} [{backend}] — {} — {}",
                outcome.persona.name,
                outcome.customer,
                business.name,
                outcome.persona.about,
                outcome.ending.label()
            );
            print!(
                "{}",
                transcript::render(&outcome.lines, &outcome.persona.name)
            );
            if let Some(failure) = &outcome.failure {
                println!("   ✗ {}", failure.kind());
            }
            println!();
        }
        outcomes.push(outcome);
    }
    if print {
        print!("{}", summary(&outcomes));
    }
    DemoRun { outcomes }
}

/// Conversations, how they ended, and reply latency.
pub fn summary(outcomes: &[Outcome]) -> String {
    let mut latencies = Latencies::default();
    for outcome in outcomes {
        latencies.extend(outcome.latencies.iter().copied());
    }
    let endings = endings(outcomes);
    let count = |ending: Ending| endings.get(&ending).copied().unwrap_or(0);
    let errors = errors_by_kind(outcomes);
    let mut out = format!(
        "== summary ==\nconversations: {}   bookings: {}   handoffs: {}   opted out: {}   left: {}   failed: {}\n",
        outcomes.len(),
        count(Ending::Booked),
        count(Ending::HandedOff),
        count(Ending::OptedOut),
        count(Ending::LeftWithoutBooking),
        count(Ending::Failed),
    );
    out.push_str(&format!(
        "inbound-to-first-reply latency over {} messages: p50 {}   p95 {}\n",
        latencies.len(),
        ms(latencies.percentile(50.0)),
        ms(latencies.percentile(95.0)),
    ));
    if errors.is_empty() {
        out.push_str("every conversation ended as its customer meant it to\n");
    } else {
        for (kind, count) in errors {
            out.push_str(&format!("  {count} × {kind}\n"));
        }
    }
    out
}
