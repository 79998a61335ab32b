//! The guarantees under pressure: no double booking, no lost or duplicated message, when many
//! customers race, when a worker is killed, when WhatsApp throttles, when Cal.com's own page
//! takes the slot, when Cal.com stops answering, and when workers join or leave.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{Datelike, Utc};
use fakes::whatsapp::Outbound;

use crate::chat::{Chat, describe};
use crate::fleet::{CLINIC, Fleet, FleetOptions, SALON};

const RACE_TENANT: &str = "900000000000001";

/// One resource, one 30-minute service, open only tomorrow (UTC) from 10:00 to 12:30: exactly
/// five bookable slots within the horizon.
fn five_slot_tenant() -> String {
    five_slot_tenant_holding(5)
}

fn five_slot_tenant_holding(hold_minutes: u32) -> String {
    let tomorrow = (Utc::now() + chrono::Duration::days(1)).weekday();
    let day =
        ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][tomorrow.num_days_from_monday() as usize];
    format!(
        r#"
[[tenant]]
phone_number_id = "{RACE_TENANT}"
name = "Five Slot Studio"
time_zone = "Etc/UTC"
default_language = "en"
languages = ["en"]
hold_minutes = {hold_minutes}
reminder_minutes = [1440, 60]
min_lead_minutes = 0
horizon_days = 3
slot_step_minutes = 30
calendar = {{ backend = "builtin" }}

[tenant.hours]
{day} = {{ open = "10:00", close = "12:30" }}

[[tenant.services]]
id = "session"
names = {{ en = "Session" }}
minutes = 30

[[tenant.staff]]
id = "solo"
name = "Sol"
services = ["session"]

[tenant.templates.reminder]
en = {{ name = "appointment_reminder", language_code = "en_US", params = 3, buttons = ["confirm", "reschedule", "cancel"] }}
[tenant.templates.hold_expired]
en = {{ name = "hold_expired", language_code = "en_US", params = 2 }}
[tenant.templates.follow_up]
en = {{ name = "visit_follow_up", language_code = "en_US", params = 2 }}
[tenant.templates.reopen]
en = {{ name = "conversation_update", language_code = "en_US", params = 1 }}
"#
    )
}

#[derive(Debug, PartialEq)]
enum Ending {
    Booked,
    /// Told there was nothing (text or handoff) after being offered alternatives.
    NoLuck,
}

/// A customer who wants tomorrow at 10, takes whatever is offered, and confirms at once.
async fn racing_customer(
    fleet: &Fleet,
    business: &'static str,
    wa_id: String,
) -> (Ending, Vec<String>) {
    let mut chat = Chat::new(fleet, business, &wa_id, "Racer");
    chat.say("can I book a session tomorrow at 10am?").await;
    for _ in 0..12 {
        let Some(record) = fleet
            .whatsapp
            .next_message_to(business, &wa_id, Duration::from_secs(30))
            .await
        else {
            panic!("customer {wa_id} got no reply:\n{}", chat.log.join("\n"));
        };
        chat.log.push(describe(&record.message));
        match record.message {
            Outbound::Buttons { buttons, .. } if buttons.iter().any(|b| b.id == "confirm") => {
                chat.tap("confirm").await;
            }
            Outbound::List { sections, .. } => {
                let row = sections.iter().flat_map(|s| s.rows.iter()).next().cloned();
                match row {
                    Some(row) => chat.pick(&row).await,
                    None => return (Ending::NoLuck, chat.log),
                }
            }
            Outbound::Text { body, .. } if body.contains("You're booked") => {
                return (Ending::Booked, chat.log);
            }
            Outbound::Text { body, .. }
                if body.contains("passing you to a person")
                    || body.contains("no free")
                    || body.contains("No free") =>
            {
                return (Ending::NoLuck, chat.log);
            }
            _ => {}
        }
    }
    (Ending::NoLuck, chat.log)
}

/// Every (event, step) the bot sent carries its idempotency key as callback data: a key seen
/// twice is a duplicated message.
fn duplicated_sends(fleet: &Fleet, business: &str, customers: &[String]) -> Vec<String> {
    let mut duplicates = Vec::new();
    for customer in customers {
        let mut seen = BTreeSet::new();
        for record in fleet.whatsapp.outbox(business, customer) {
            let key = record.body["biz_opaque_callback_data"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if !seen.insert(key.clone()) {
                duplicates.push(format!("{customer}: {key}"));
            }
        }
    }
    duplicates
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_customers_race_for_five_slots_across_three_worker_processes() {
    let mut fleet = Fleet::start_with(
        "race",
        0,
        FleetOptions {
            tenants_toml: Some(five_slot_tenant()),
            whatsapp_throughput: Some(10_000),
        },
    )
    .await;
    for _ in 0..3 {
        fleet.start_worker_process();
    }
    fleet.wait_until_consuming().await;

    let customers: Vec<String> = (0..200).map(|n| format!("1555070{n:04}")).collect();
    let fleet_ref = &fleet;
    let endings = futures::future::join_all(
        customers
            .iter()
            .map(|wa_id| racing_customer(fleet_ref, RACE_TENANT, wa_id.clone())),
    )
    .await;

    let booked = endings.iter().filter(|(e, _)| *e == Ending::Booked).count();
    let tenant = fleet.tenants.get(RACE_TENANT).expect("tenant");
    let redis = shared::redis::open(&"redis://127.0.0.1:6379".to_owned().into()).expect("redis");
    let audit =
        worker::calendar::BuiltinCalendar::new(redis, worker::keys::Keys::new(&fleet.namespace))
            .audit(tenant)
            .await
            .expect("audit");
    let starts: BTreeSet<i64> = audit.iter().map(|(_, _, start, _)| *start).collect();
    assert_eq!(
        audit.len(),
        5,
        "exactly the five slots are booked: {audit:?}"
    );
    assert_eq!(starts.len(), 5, "no slot booked twice");
    assert_eq!(
        booked, 5,
        "exactly five customers were told they are booked"
    );
    // Everyone else was answered with alternatives, not silence.
    for (ending, log) in &endings {
        if *ending == Ending::NoLuck {
            assert!(
                log.iter().any(|line| line.contains("rows)")) || log.len() >= 2,
                "{log:?}"
            );
        }
    }
    assert_eq!(
        duplicated_sends(&fleet, RACE_TENANT, &customers),
        Vec::<String>::new()
    );
    fleet.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_of_a_worker_mid_stream_loses_and_duplicates_nothing() {
    let mut fleet = Fleet::start_with(
        "kill9",
        0,
        FleetOptions {
            whatsapp_throughput: Some(10_000),
            ..FleetOptions::default()
        },
    )
    .await;
    for _ in 0..3 {
        fleet.start_worker_process();
    }
    fleet.wait_until_consuming().await;

    let customers: Vec<String> = (0..40).map(|n| format!("1555080{n:04}")).collect();
    let conversations = {
        let fleet_ref = &fleet;
        futures::future::join_all(customers.iter().enumerate().map(|(n, wa_id)| async move {
            let mut chat = Chat::new(fleet_ref, SALON, wa_id, "Kim");
            chat.row_choice = n;
            // A reply cut off by the kill comes after the partition moves (membership expiry)
            // or after the ambiguous-send check (15 s).
            chat.patience = Duration::from_secs(60);
            chat.book("hi, I'd like to book a haircut please", "You're booked")
                .await;
            chat.log
        }))
    };
    let killer = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        // The kill must land mid-stream: some customers are not booked yet.
        let booked_before = customers
            .iter()
            .filter(|c| {
                fleet.whatsapp.outbox(SALON, c).iter().any(|r| {
                    matches!(&r.message, Outbound::Text { body, .. } if body.contains("You're booked"))
                })
            })
            .count();
        assert!(
            booked_before < customers.len(),
            "the kill came after the stream ended"
        );
        // Can't borrow mutably while conversations run: kill by pid.
        let pid = fleet.processes[1].id();
        let killed = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(killed.success());
    };
    let (logs, ()) = tokio::join!(conversations, killer);
    assert_eq!(logs.len(), 40);

    // Every customer was told "booked" exactly once; nothing was sent twice.
    for customer in &customers {
        let confirmations = fleet
            .whatsapp
            .outbox(SALON, customer)
            .iter()
            .filter(|r| matches!(&r.message, Outbound::Text { body, .. } if body.contains("You're booked")))
            .count();
        assert_eq!(confirmations, 1, "{customer} confirmations");
    }
    assert_eq!(
        duplicated_sends(&fleet, SALON, &customers),
        Vec::<String>::new()
    );

    // One booking per customer, none overlapping on a resource.
    let tenant = fleet.tenants.get(SALON).expect("salon");
    let redis = shared::redis::open(&"redis://127.0.0.1:6379".to_owned().into()).expect("redis");
    let audit =
        worker::calendar::BuiltinCalendar::new(redis, worker::keys::Keys::new(&fleet.namespace))
            .audit(tenant)
            .await
            .expect("audit");
    assert_eq!(audit.len(), 40, "one booking per customer");
    let mut per_resource: BTreeMap<&str, Vec<(i64, i64)>> = BTreeMap::new();
    for (_, resource, start, end) in &audit {
        per_resource
            .entry(resource)
            .or_default()
            .push((*start, *end));
    }
    for (resource, mut spans) in per_resource {
        spans.sort_unstable();
        for pair in spans.windows(2) {
            assert!(
                pair[0].1 <= pair[1].0,
                "double booking on {resource}: {pair:?}"
            );
        }
    }
    fleet.kill_worker_process(1);
    fleet.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_whatsapp_429s_delays_but_never_duplicates() {
    let fleet = Fleet::start("storm429", 1).await;
    fleet.whatsapp.set_faults(fakes::whatsapp::Faults {
        too_many_calls: 0.4,
        ..fakes::whatsapp::Faults::default()
    });
    let customers: Vec<String> = (0..6).map(|n| format!("1555090{n:04}")).collect();
    let fleet_ref = &fleet;
    futures::future::join_all(customers.iter().enumerate().map(|(n, wa_id)| async move {
        let mut chat = Chat::new(fleet_ref, SALON, wa_id, "Lee");
        chat.row_choice = n;
        // Meta's advice is to back off 1 s, 4 s, 16 s…: one unlucky send can take ~21 s.
        chat.patience = Duration::from_secs(90);
        chat.book("hi, I'd like to book a blow-dry please", "You're booked")
            .await;
    }))
    .await;
    assert_eq!(
        duplicated_sends(&fleet, SALON, &customers),
        Vec::<String>::new()
    );
    let counters = fleet.whatsapp.counters();
    let throttled: u64 = counters.rejected.values().sum::<u64>() + counters.bare_http_errors;
    assert!(throttled > 0, "the storm happened: {counters:?}");
    fleet.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_taken_on_calcoms_own_page_gets_alternatives_in_the_same_reply() {
    let fleet = Fleet::start("calcom-race", 1).await;
    let mut chat = Chat::new(&fleet, crate::fleet::CLINIC, "34600500001", "Eva");
    chat.say("hola, quiero pedir una cita").await;
    chat.until_confirm().await;
    // The held time is booked on Cal.com's own web page meanwhile.
    assert!(fleet.calcom.bookings().is_empty(), "nothing booked yet");
    let slot = fleet.held_calcom_slot(&chat.wa_id).await;
    fleet
        .calcom
        .book_from_outside(fakes::calcom::OutsideBooking::new(slot.0, slot.1))
        .expect("outside booking");
    chat.tap("confirm").await;
    // The very next message offers alternatives (a list), with no silence in between.
    match chat.reply().await {
        Outbound::List { sections, .. } => {
            assert!(sections.iter().map(|s| s.rows.len()).sum::<usize>() > 0);
        }
        other => panic!("expected alternatives, got {}", describe(&other)),
    }
    assert!(fleet.calcom.double_bookings().is_empty());
    fleet.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calcom_outage_hands_the_customer_to_a_person_and_holds_up_no_one_else() {
    let fleet = Fleet::start("calcom-down", 1).await;
    fleet.calcom.set_faults(fakes::calcom::Faults {
        server_error_rate: 1.0,
        ..fakes::calcom::Faults::default()
    });
    let mut lucia = Chat::new(&fleet, CLINIC, "34600500002", "Lucía");
    let asked = std::time::Instant::now();
    lucia.say("hola, quiero pedir cita para fisioterapia").await;
    lucia.expect_text(&["no puedo consultar la agenda"]).await;
    let answered_in = asked.elapsed();
    let handoffs = fleet.take_handoffs(1).await;
    assert_eq!(handoffs[0]["customer"], lucia.wa_id);
    assert_eq!(handoffs[0]["reason"]["reason"], "calendar_unreachable");
    let refused = fleet.calcom.requests();
    assert!(
        !refused.is_empty() && refused.iter().all(|r| r.status >= 500),
        "the outage was real: {refused:?}"
    );

    // The next clinic customer is handed off at once: calls pause after a spent budget.
    let mut marta = Chat::new(&fleet, CLINIC, "34600500003", "Marta");
    let marta_asked = std::time::Instant::now();
    marta.say("buenas, quiero una cita de fisioterapia").await;
    marta.expect_text(&["no puedo consultar la agenda"]).await;
    let marta_answered_in = marta_asked.elapsed();
    fleet.take_handoffs(1).await;

    // With a person in charge, Lucía's next message costs no calendar call. A salon customer
    // in her partition, served by the built-in calendar, is answered after it, in order.
    lucia.say("quiero hablar con una persona").await;
    let partition = |tenant: &str, wa_id: &str| {
        shared::partition::partition_of(
            &shared::envelope::conversation_key(tenant, wa_id),
            fleet.partitions,
        )
    };
    let neighbour = (0..1000)
        .map(|n| format!("1555070{n:04}"))
        .find(|wa_id| partition(SALON, wa_id) == partition(CLINIC, &lucia.wa_id))
        .expect("a customer in the same partition");
    let mut sam = Chat::new(&fleet, SALON, &neighbour, "Sam");
    let neighbour_asked = std::time::Instant::now();
    sam.say("hi, I'd like to book a haircut").await;
    sam.reply().await;
    let neighbour_answered_in = neighbour_asked.elapsed();
    lucia.expect_silence(Duration::from_millis(200)).await;
    assert_eq!(
        fleet.calcom.requests().len(),
        refused.len(),
        "a paused client or a handed-off conversation still called Cal.com"
    );
    eprintln!(
        "Cal.com down: handed off in {answered_in:?} after {} refused calls, the next \
         customer in {marta_answered_in:?} with none; a customer in the partition \
         answered in {neighbour_answered_in:?}",
        refused.len()
    );
    fleet.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_rebalance_when_a_worker_joins_and_when_one_leaves() {
    let mut fleet = Fleet::start("rebalance", 3).await;
    // 4 partitions over 3 workers: loads 2/1/1.
    wait_for_balance(&fleet, 3).await;
    fleet.start_worker().await;
    let started = std::time::Instant::now();
    wait_for_balance(&fleet, 4).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "joined within {:?}",
        started.elapsed()
    );
    assert_leases_follow_consumers(&fleet).await;
    fleet.stop_worker(0).await;
    let started = std::time::Instant::now();
    wait_for_balance(&fleet, 3).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "left within {:?}",
        started.elapsed()
    );
    // Still answering.
    let mut chat = Chat::new(&fleet, SALON, "15550600001", "Mo");
    chat.say("hi, I'd like to book a haircut please").await;
    chat.until_confirm().await;
    assert_leases_follow_consumers(&fleet).await;
    fleet.finish().await;
}

fn lease_reader(fleet: &Fleet) -> worker::lease::Leases {
    let redis = shared::redis::open(&"redis://127.0.0.1:6379".to_owned().into()).expect("redis");
    worker::lease::Leases::new(
        redis,
        &worker::keys::Keys::new(&fleet.namespace),
        "e2e-observer",
        Duration::from_secs(60),
    )
}

/// Every partition's lease is held by the worker the broker delivers that partition to.
async fn assert_leases_follow_consumers(fleet: &Fleet) {
    let leases = lease_reader(fleet);
    let owners = active_consumers(&fleet.namespace).await;
    assert_eq!(owners.len(), usize::from(fleet.partitions), "{owners:?}");
    for (queue, worker) in owners {
        let partition: u16 = queue
            .rsplit_once(".p")
            .and_then(|(_, n)| n.parse().ok())
            .expect("partition queue name");
        let holder = leases.holder(partition).await.expect("lease holder");
        assert_eq!(holder.as_deref(), Some(worker.as_str()), "lease of {queue}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_waits_until_its_previous_owner_has_finished_with_it() {
    let mut fleet = Fleet::start("leasewait", 0).await;
    let partition_of = |wa_id: &str| {
        shared::partition::partition_of(
            &shared::envelope::conversation_key(SALON, wa_id),
            fleet.partitions,
        )
    };
    let waiting_customer = "15550700001";
    let waiting_partition = partition_of(waiting_customer);
    let other_customer = (2..100)
        .map(|n| format!("155507{n:05}"))
        .find(|wa_id| partition_of(wa_id) != waiting_partition)
        .expect("a customer in another partition");
    // A previous owner is still finishing that partition: it holds the lease.
    let previous_owner = worker::lease::Leases::new(
        shared::redis::open(&"redis://127.0.0.1:6379".to_owned().into()).expect("redis"),
        &worker::keys::Keys::new(&fleet.namespace),
        "previous-owner",
        Duration::from_secs(60),
    );
    assert!(
        previous_owner
            .try_acquire(waiting_partition)
            .await
            .expect("lease")
    );
    fleet.start_worker().await;

    let mut other = Chat::new(&fleet, SALON, &other_customer, "Ana");
    other.say("hi, I'd like to book a haircut please").await;
    other.reply().await;
    let mut waiting = Chat::new(&fleet, SALON, waiting_customer, "Bo");
    waiting.say("hi, I'd like to book a haircut please").await;
    waiting.expect_silence(Duration::from_secs(2)).await;
    assert_eq!(
        fleet.partition_consumers().await[usize::from(waiting_partition)],
        0,
        "subscribed while the previous owner held the lease"
    );

    previous_owner
        .release(waiting_partition)
        .await
        .expect("release");
    waiting.reply().await;
    assert_eq!(
        lease_reader(&fleet)
            .holder(waiting_partition)
            .await
            .expect("holder")
            .as_deref(),
        Some("e2e-worker-0")
    );
    fleet.finish().await;
}

/// Active consumer (worker id) per partition queue, from the broker's point of view.
async fn active_consumers(namespace: &str) -> BTreeMap<String, String> {
    let output = tokio::process::Command::new("rabbitmqctl")
        .args([
            "list_consumers",
            "--silent",
            "queue_name",
            "consumer_tag",
            "active",
        ])
        .output()
        .await
        .expect("rabbitmqctl");
    let text = String::from_utf8_lossy(&output.stdout);
    let mut owners = BTreeMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let [queue, tag, "true"] = fields[..]
            && queue.starts_with(&format!("{namespace}conv.p"))
            && let Some((worker, _)) = tag.rsplit_once(':')
        {
            owners.insert(queue.to_owned(), worker.to_owned());
        }
    }
    owners
}

async fn wait_for_balance(fleet: &Fleet, workers: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let owners = active_consumers(&fleet.namespace).await;
        let mut loads: BTreeMap<&str, usize> = BTreeMap::new();
        for owner in owners.values() {
            *loads.entry(owner.as_str()).or_default() += 1;
        }
        let balanced = owners.len() == usize::from(fleet.partitions)
            && loads.len() == workers.min(usize::from(fleet.partitions))
            && loads.values().max().copied().unwrap_or(0)
                - loads.values().min().copied().unwrap_or(0)
                <= 1;
        if balanced {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "partitions not balanced over {workers} workers: {owners:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_hold_is_told_to_the_customer_and_frees_the_slot() {
    let fleet = Fleet::start_with(
        "hold-expiry",
        1,
        FleetOptions {
            tenants_toml: Some(five_slot_tenant_holding(1)),
            ..FleetOptions::default()
        },
    )
    .await;
    let mut quiet = Chat::new(&fleet, RACE_TENANT, "15550700001", "Quinn");
    quiet.say("can I book a session tomorrow at 10am?").await;
    quiet.until_confirm().await;
    // Quinn goes silent. A minute later the scheduler fires the hold-expiry timer and the
    // worker tells Quinn, offering times again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(100);
    let mut told = None;
    while told.is_none() && tokio::time::Instant::now() < deadline {
        if let Some(record) = fleet
            .whatsapp
            .next_message_to(RACE_TENANT, "15550700001", Duration::from_secs(10))
            .await
        {
            quiet.log.push(describe(&record.message));
            if let Outbound::Text { body, .. } | Outbound::List { body, .. } = record.message
                && body.contains("ran out")
            {
                told = Some(body);
            }
        }
    }
    let told =
        told.unwrap_or_else(|| panic!("the customer was never told:\n{}", quiet.log.join("\n")));
    assert!(told.contains("10:00"), "{told}");
    // The slot is free again: someone else can hold exactly that time.
    let mut next = Chat::new(&fleet, RACE_TENANT, "15550700002", "Rae");
    next.say("can I book a session tomorrow at 10am?").await;
    next.until_confirm().await;
    let confirm = fleet
        .whatsapp
        .outbox(RACE_TENANT, "15550700002")
        .into_iter()
        .rev()
        .find_map(|r| match r.message {
            Outbound::Buttons { body, .. } => Some(body),
            _ => None,
        })
        .expect("confirmation");
    assert!(confirm.contains("10:00"), "{confirm}");
    fleet.finish().await;
}
