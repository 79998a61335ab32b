//! A worker can die at any point of an event. Stopped exactly where a crash would stop it, and
//! then redelivered, an event still ends with the customer having heard one consistent story:
//! nothing of a decision that was never committed, everything of one that was, once.

use std::sync::atomic::{AtomicU32, Ordering};

use chrono::Utc;
use fakes::whatsapp::Outbound;
use serde_json::json;
use shared::envelope::{Envelope, EventKind, SCHEMA_VERSION};
use worker::processor::{CrashPoint, Processed};

use crate::fleet::{Fleet, SALON};

const BOOK: &str = "hi, I'd like to book a haircut please";

fn message(customer: &str, content: serde_json::Value) -> Envelope {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let wamid = format!(
        "wamid.crash.{customer}.{}",
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let mut payload = json!({
        "from": customer,
        "id": wamid,
        "timestamp": Utc::now().timestamp().to_string(),
    });
    if let (Some(payload), Some(content)) = (payload.as_object_mut(), content.as_object()) {
        payload.extend(content.clone());
    }
    Envelope {
        v: SCHEMA_VERSION,
        id: wamid,
        kind: EventKind::Message,
        tenant: SALON.to_owned(),
        customer: customer.to_owned(),
        wa_timestamp: Some(Utc::now().timestamp()),
        received_at: Utc::now(),
        profile_name: Some("Ana".into()),
        payload,
    }
}

fn text(customer: &str, body: &str) -> Envelope {
    message(customer, json!({"type": "text", "text": {"body": body}}))
}

fn list_tap(customer: &str, id: &str, title: &str) -> Envelope {
    message(
        customer,
        json!({"type": "interactive", "interactive": {
            "type": "list_reply", "list_reply": {"id": id, "title": title}}}),
    )
}

fn button_tap(customer: &str, id: &str) -> Envelope {
    message(
        customer,
        json!({"type": "interactive", "interactive": {
            "type": "button_reply", "button_reply": {"id": id, "title": id}}}),
    )
}

fn sent(fleet: &Fleet, customer: &str) -> Vec<Outbound> {
    fleet
        .whatsapp
        .outbox(SALON, customer)
        .into_iter()
        .map(|record| record.message)
        .collect()
}

/// The first time offered in the customer's latest list: (row id, title).
fn first_offer(fleet: &Fleet, customer: &str) -> (String, String) {
    sent(fleet, customer)
        .iter()
        .rev()
        .find_map(|message| match message {
            Outbound::List { sections, .. } => sections
                .first()
                .and_then(|section| section.rows.first())
                .map(|row| (row.id.clone(), row.title.clone())),
            _ => None,
        })
        .expect("a list of times")
}

fn asks_to_confirm(message: &Outbound) -> bool {
    matches!(message, Outbound::Buttons { buttons, .. } if buttons.iter().any(|b| b.id == "confirm"))
}

/// Customers who all asked for a haircut and were offered the same soonest time.
async fn offered_the_same_time(
    fleet: &Fleet,
    processor: &worker::processor::Processor,
    customers: &[&str],
) -> (String, String) {
    for customer in customers {
        fleet.whatsapp.open_window(SALON, customer);
        processor
            .process(&text(customer, BOOK))
            .await
            .expect("greeting");
    }
    let offer = first_offer(fleet, customers[0]);
    for customer in customers {
        assert_eq!(first_offer(fleet, customer), offer, "the same soonest time");
    }
    offer
}

async fn pick(processor: &worker::processor::Processor, customer: &str, offer: &(String, String)) {
    processor
        .process(&list_tap(customer, &offer.0, &offer.1))
        .await
        .expect("pick");
}

fn last(fleet: &Fleet, customer: &str) -> Outbound {
    sent(fleet, customer).pop().expect("a reply")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_that_was_never_committed_is_never_heard() {
    let fleet = Fleet::start("crash-uncommitted", 0).await;
    let processor = fleet.processor().await;
    let (ana, ben, cleo) = ("15550710001", "15550710002", "15550710003");
    let offer = offered_the_same_time(&fleet, &processor, &[ana, ben, cleo]).await;
    // Ben and Cleo hold that time with both stylists.
    pick(&processor, ben, &offer).await;
    pick(&processor, cleo, &offer).await;
    assert!(
        asks_to_confirm(&last(&fleet, cleo)),
        "{:?}",
        last(&fleet, cleo)
    );

    // Ana picks it too ("just taken"), and her worker dies before committing.
    let ana_picks = list_tap(ana, &offer.0, &offer.1);
    processor
        .process_until(&ana_picks, CrashPoint::BeforeCommit)
        .await
        .expect("ana's pick, cut off");
    assert_eq!(sent(&fleet, ana).len(), 1, "{:?}", sent(&fleet, ana));

    // Ben lets the time go before the redelivery comes. Deciding again, the pick gets it, and
    // Ana hears only that.
    processor
        .process(&button_tap(ben, "cancel_hold"))
        .await
        .expect("ben lets go");
    let redelivered = processor.process(&ana_picks).await.expect("redelivery");
    assert_eq!(redelivered, Processed::Done);
    let heard = sent(&fleet, ana);
    assert_eq!(heard.len(), 2, "{heard:?}");
    assert!(asks_to_confirm(&heard[1]), "{heard:?}");

    // What she heard is what the conversation holds: her confirmation books it.
    processor
        .process(&button_tap(ana, "confirm"))
        .await
        .expect("confirm");
    let heard = sent(&fleet, ana);
    assert_eq!(heard.len(), 3, "{heard:?}");
    assert!(
        matches!(&heard[2], Outbound::Text { body, .. } if body.contains("You're booked")),
        "{heard:?}"
    );
    fleet.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_finds_the_hold_its_dead_attempt_took_still_its_own() {
    let fleet = Fleet::start("crash-own-hold", 0).await;
    let processor = fleet.processor().await;
    let ana = "15550710041";
    let offer = offered_the_same_time(&fleet, &processor, &[ana]).await;
    let stylist = offer.0.rsplit(':').next().expect("slot:<unix>:<stylist>");
    let ana_picks = list_tap(ana, &offer.0, &offer.1);
    processor
        .process_until(&ana_picks, CrashPoint::BeforeCommit)
        .await
        .expect("ana's pick, cut off");
    // The held time is not someone else's: the replay holds the same stylist again.
    processor.process(&ana_picks).await.expect("redelivery");
    let prompt = last(&fleet, ana);
    assert!(asks_to_confirm(&prompt), "{prompt:?}");
    assert!(
        matches!(&prompt, Outbound::Buttons { body, .. } if body.to_lowercase().contains(stylist)),
        "{prompt:?}"
    );
    fleet.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_taken_by_an_attempt_that_was_never_committed_is_let_go() {
    let fleet = Fleet::start("crash-stray-hold", 0).await;
    let processor = fleet.processor().await;
    let (ana, ben, cleo) = ("15550710011", "15550710012", "15550710013");
    let offer = offered_the_same_time(&fleet, &processor, &[ana, ben, cleo]).await;
    pick(&processor, ben, &offer).await;
    // Ana's attempt takes the other stylist at that time, then dies before committing.
    let ana_picks = list_tap(ana, &offer.0, &offer.1);
    processor
        .process_until(&ana_picks, CrashPoint::BeforeCommit)
        .await
        .expect("ana's pick, cut off");
    // Ben lets go; the replay takes the stylist Ana asked for, not the one the dead attempt
    // held.
    processor
        .process(&button_tap(ben, "cancel_hold"))
        .await
        .expect("ben lets go");
    processor.process(&ana_picks).await.expect("redelivery");
    assert!(
        asks_to_confirm(&last(&fleet, ana)),
        "{:?}",
        last(&fleet, ana)
    );
    // The dead attempt's hold did not outlive the replay: Cleo gets the other stylist.
    pick(&processor, cleo, &offer).await;
    assert!(
        asks_to_confirm(&last(&fleet, cleo)),
        "the time is still blocked by a hold nobody knows: {:?}",
        last(&fleet, cleo)
    );
    fleet.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_committed_but_not_sent_go_out_once_with_the_redelivery() {
    let fleet = Fleet::start("crash-unsent", 0).await;
    let processor = fleet.processor().await;
    let customer = "15550710021";
    fleet.whatsapp.open_window(SALON, customer);
    let hello = text(customer, BOOK);
    processor
        .process_until(&hello, CrashPoint::BeforeDelivery)
        .await
        .expect("committed, then cut off");
    assert!(sent(&fleet, customer).is_empty());

    // The redelivery is a duplicate for the conversation, not for the customer: the reply goes
    // out now, not after the 15 s an interrupted send waits for its status webhooks.
    let redelivered = processor.process(&hello).await.expect("redelivery");
    assert_eq!(redelivered, Processed::Duplicate);
    assert_eq!(sent(&fleet, customer).len(), 1);
    assert!(matches!(sent(&fleet, customer)[0], Outbound::List { .. }));
    processor.process(&hello).await.expect("again");
    assert_eq!(sent(&fleet, customer).len(), 1, "sent once");
    fleet.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_refused_outside_the_window_reopens_it_with_a_template_once() {
    let fleet = Fleet::start("crash-refused", 0).await;
    let processor = fleet.processor().await;
    // No open window: WhatsApp refuses free-form replies to this customer with 131047.
    let customer = "15550710031";
    let hello = text(customer, BOOK);
    processor.process(&hello).await.expect("processed");
    let heard = sent(&fleet, customer);
    assert_eq!(heard.len(), 1, "{heard:?}");
    assert!(matches!(&heard[0], Outbound::Template { .. }), "{heard:?}");
    // A redelivery finds the refusal recorded and its follow-up done: nothing more is sent.
    let redelivered = processor.process(&hello).await.expect("redelivery");
    assert_eq!(redelivered, Processed::Duplicate);
    assert_eq!(sent(&fleet, customer).len(), 1);
    fleet.finish().await;
}
