//! The sandbox end to end against real Redis and RabbitMQ: customers' webhooks go through
//! ingress, RabbitMQ and a worker, replies come back through the fake WhatsApp, bookings land
//! in the built-in calendar (Redis) and in the fake Cal.com.

use std::time::Duration;

use sim::fleet::{Services, WorkerMode, preflight};
use sim::load::{LoadOptions, audit_calendars};
use sim::persona::Ending;
use sim::sandbox::{Sandbox, SandboxOptions};
use sim::transcript::{Said, Speaker};
use sim::world::World;

fn services() -> Services {
    let env = shared::config::Env::from_process();
    Services::new(
        &env.string_or("AMQP_URL", shared::config::DEFAULT_AMQP_URL),
        &env.string_or("REDIS_URL", shared::config::DEFAULT_REDIS_URL),
    )
}

async fn sandbox(world: World, workers: usize) -> Sandbox {
    let services = services();
    if let Err(error) = preflight(&services).await {
        panic!("these tests need Redis and RabbitMQ: {error}");
    }
    Sandbox::start(SandboxOptions {
        services,
        world,
        workers,
        worker_mode: WorkerMode::InProcess,
        partitions: 4,
        status_webhooks: true,
        // Batched like Meta's, so ingress splits multi-status deliveries end to end.
        status_batch: std::time::Duration::from_millis(20),
        generous_calcom: true,
        log_filter: "warn".into(),
        prefetch: 32,
    })
    .await
    .expect("sandbox starts")
}

fn bot_texts(outcome: &sim::conversation::Outcome) -> Vec<String> {
    outcome
        .lines
        .iter()
        .filter(|line| line.speaker == Speaker::Bot)
        .filter_map(|line| match &line.message {
            Said::Bot(message) => Some(message.body_text()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_books_in_english_on_the_builtin_calendar_and_in_spanish_on_calcom() {
    let sandbox = sandbox(World::demo(1), 1).await;
    let run = sim::demo::run(
        &sandbox,
        Duration::from_secs(60),
        &["Ana".to_owned(), "Lucía".to_owned()],
        Duration::ZERO,
        false,
    )
    .await;
    let (bookings, doubles) = audit_calendars(&sandbox).await;
    let calcom_bookings = sandbox.calcom.fake().bookings();
    let run_started = run
        .outcomes
        .iter()
        .map(|outcome| outcome.started)
        .min()
        .expect("conversations ran");
    let audit = sim::report::audit_messages(&run.outcomes, run_started, |business, customer| {
        sandbox.fake().outbox(business, customer)
    });
    let problems = sandbox.stop().await;
    assert!(problems.is_empty(), "{problems:?}");

    assert_eq!(run.outcomes.len(), 2);
    for outcome in &run.outcomes {
        let texts = bot_texts(outcome);
        assert_eq!(
            outcome.failure, None,
            "{}: {texts:#?}",
            outcome.persona.name
        );
        assert_eq!(outcome.ending, Ending::Booked, "{texts:#?}");
        assert_eq!(outcome.messages_sent, 2, "a request and a confirm tap");
        assert_eq!(outcome.latencies.len(), 2, "both messages answered");
        let expected: &[&str] = match outcome.persona.name.as_str() {
            "Ana" => &[
                "Hi Ana! This is Sunny Side Salon.",
                "Confirm Haircut, ",
                ", 17:00 with Maria?",
                "You're booked: Haircut, ",
            ],
            "Lucía" => &[
                "¡Hola, Lucía! Te escribe Clínica Fisio Sol.",
                "¿Confirmas Fisioterapia, ",
                ", 17:00",
                "Cita confirmada: Fisioterapia, ",
            ],
            other => panic!("unexpected customer {other}"),
        };
        let all = texts.join("\n");
        for fragment in expected {
            assert!(all.contains(fragment), "missing {fragment:?} in:\n{all}");
        }
    }
    assert_eq!(bookings, 2, "one booking in Redis, one in Cal.com");
    assert_eq!(calcom_bookings.len(), 1);
    assert_eq!(calcom_bookings[0].attendee.name, "Lucía");
    assert_eq!(doubles, 0);
    assert!(audit.clean(), "{audit:?}");
    assert_eq!(audit.customer_messages, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_load_run_passes_its_audit_with_two_workers() {
    // Few businesses and a narrow spread of times, so customers compete for slots.
    let sandbox = sandbox(World::load(2, 0, 15), 2).await;
    let options = LoadOptions {
        customers: 60,
        rate: 30.0,
        duration: Duration::from_secs(2),
        reply_timeout: Duration::from_secs(15),
        seed: 11,
        progress: false,
    };
    let (report, outcomes) = sim::load::run(&sandbox, &options).await;
    let problems = sandbox.stop().await;
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(report.arrived, 60, "{report}");
    assert_eq!(outcomes.len(), 60);
    assert_eq!(report.double_bookings, 0, "{report}");
    assert!(report.audit_passed(), "{report}");
    assert!(report.errors.is_empty(), "{report}");
    assert!(report.confirmed_to_customers > 40, "{report}");
    assert!(report.p99.is_some());
}
