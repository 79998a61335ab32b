//! The same conversations on both calendar backends and in both languages.

use std::time::Duration;

use crate::chat::Chat;
use crate::fleet::{CLINIC, Fleet, SALON};

struct Phrases {
    book: &'static str,
    booked: &'static str,
    reschedule: &'static str,
    new_time: &'static str,
    moved: &'static str,
    cancel: &'static str,
    cancelled: &'static str,
    human: &'static str,
    handed_off: &'static str,
}

const EN: Phrases = Phrases {
    book: "hi, I'd like to book an appointment please",
    booked: "You're booked",
    reschedule: "can I move my appointment?",
    new_time: "any time next week",
    moved: "moved to",
    cancel: "I need to cancel my appointment",
    cancelled: "is cancelled",
    human: "I want to talk to a person",
    handed_off: "passing you to a person",
};

const ES: Phrases = Phrases {
    book: "hola, quiero pedir una cita",
    booked: "Cita confirmada",
    reschedule: "¿puedo cambiar mi cita?",
    new_time: "cualquier día de la semana que viene",
    moved: "tu cita ahora es",
    cancel: "quiero cancelar mi cita",
    cancelled: "está cancelada",
    human: "quiero hablar con una persona",
    handed_off: "Te paso con una persona",
};

async fn book_reschedule_cancel(business: &'static str, phrases: &Phrases, wa_id: &str) {
    let fleet = Fleet::start("flow", 1).await;
    let mut chat = Chat::new(&fleet, business, wa_id, "Sam");
    chat.book(phrases.book, phrases.booked).await;

    chat.say(phrases.reschedule).await;
    chat.reply().await;
    chat.say(phrases.new_time).await;
    chat.until_confirm().await;
    chat.tap("confirm").await;
    chat.expect_text(&[phrases.moved]).await;

    chat.say(phrases.cancel).await;
    let buttons = chat.expect_buttons().await;
    let yes = buttons
        .iter()
        .find(|id| id.starts_with("cancel_yes:"))
        .cloned()
        .unwrap_or_else(|| panic!("no cancel button in {buttons:?}:\n{}", chat.log.join("\n")));
    chat.tap(&yes).await;
    chat.expect_text(&[phrases.cancelled]).await;

    // Booked, moved (old one released), cancelled: nothing left in the calendar.
    assert_eq!(
        live_bookings(&fleet, business).await,
        0,
        "{}",
        chat.log.join("\n")
    );
    fleet.finish().await;
}

pub async fn live_bookings(fleet: &Fleet, business: &str) -> usize {
    let tenant = fleet.tenants.get(business).expect("tenant");
    if business == CLINIC {
        return fleet
            .calcom
            .bookings()
            .iter()
            .filter(|b| {
                format!("{:?}", b.status)
                    .to_lowercase()
                    .contains("accepted")
            })
            .count();
    }
    let redis = shared::redis::open(&"redis://127.0.0.1:6379".to_owned().into()).expect("redis");
    worker::calendar::BuiltinCalendar::new(redis, worker::keys::Keys::new(&fleet.namespace))
        .audit(tenant)
        .await
        .expect("audit")
        .len()
}

#[tokio::test]
async fn builtin_calendar_english_book_reschedule_cancel() {
    book_reschedule_cancel(SALON, &EN, "15550200001").await;
}

#[tokio::test]
async fn builtin_calendar_spanish_book_reschedule_cancel() {
    book_reschedule_cancel(SALON, &ES, "34600200002").await;
}

#[tokio::test]
async fn calcom_english_book_reschedule_cancel() {
    book_reschedule_cancel(CLINIC, &EN, "15550200003").await;
}

#[tokio::test]
async fn calcom_spanish_book_reschedule_cancel() {
    book_reschedule_cancel(CLINIC, &ES, "34600200004").await;
}

async fn handoff_then_release(business: &'static str, phrases: &Phrases, wa_id: &str) {
    let fleet = Fleet::start("handoff", 1).await;
    let mut chat = Chat::new(&fleet, business, wa_id, "Noa");
    chat.say(phrases.human).await;
    chat.expect_text(&[phrases.handed_off]).await;
    // The agent tooling receives the full context.
    let handoffs = fleet.take_handoffs(1).await;
    assert_eq!(handoffs[0]["customer"], wa_id);
    assert!(
        handoffs[0]["context"]["transcript"]
            .as_array()
            .is_some_and(|t| !t.is_empty())
    );
    // Where the tenant configures a webhook, the agent tool is told too, signed.
    if business == SALON {
        let requests = fleet.agent.requests();
        assert_eq!(requests.len(), 1, "one handoff webhook");
        let (signature, body) = &requests[0];
        let expected = {
            use hmac::Mac;
            let mut mac =
                hmac::Hmac::<sha2::Sha256>::new_from_slice(crate::fleet::HANDOFF_SECRET.as_bytes())
                    .expect("any key length");
            mac.update(body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        };
        assert_eq!(
            signature.as_deref(),
            Some(expected.as_str()),
            "signed with the tenant's secret"
        );
        let context: serde_json::Value = serde_json::from_slice(body).expect("JSON");
        assert_eq!(context["customer"], wa_id);
    }
    // The bot stays silent while a person has the conversation...
    chat.say(phrases.book).await;
    chat.expect_silence(Duration::from_secs(2)).await;
    // ...until the agent releases it.
    fleet.release(business, wa_id).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    chat.say(phrases.book).await;
    chat.until_confirm().await;
    fleet.finish().await;
}

#[tokio::test]
async fn handoff_silences_the_bot_until_released_english() {
    handoff_then_release(SALON, &EN, "15550300001").await;
}

#[tokio::test]
async fn handoff_silences_the_bot_until_released_spanish() {
    handoff_then_release(CLINIC, &ES, "34600300002").await;
}

#[tokio::test]
async fn handoff_on_the_salon_in_spanish_signs_its_webhook() {
    handoff_then_release(SALON, &ES, "34600300003").await;
}

#[tokio::test]
async fn a_redelivered_webhook_is_answered_once() {
    let fleet = Fleet::start("redelivery", 1).await;
    let wa_id = "15550400001";
    let delivery = serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "waba", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": SALON},
            "contacts": [{"profile": {"name": "Ray"}, "wa_id": wa_id}],
            "messages": [{"from": wa_id, "id": "wamid.redelivered.1", "timestamp": chrono::Utc::now().timestamp().to_string(),
                "type": "text", "text": {"body": "hi, I'd like to book an appointment please"}}]}}]}]
    });
    let body = serde_json::to_vec(&delivery).expect("json");
    // WhatsApp opens the customer-service window and delivers the message three times.
    fleet.whatsapp.open_window(SALON, wa_id);
    for _ in 0..3 {
        assert_eq!(fleet.post_webhook(&body).await, 200);
    }
    let first = fleet
        .whatsapp
        .next_message_to(SALON, wa_id, Duration::from_secs(20))
        .await
        .expect("a reply");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let outbox = fleet.whatsapp.outbox(SALON, wa_id);
    let replies: Vec<String> = outbox
        .iter()
        .map(|r| crate::chat::describe(&r.message))
        .collect();
    // One message in, one answer out: every reply appears once.
    let unique: std::collections::BTreeSet<&String> = replies.iter().collect();
    assert_eq!(
        unique.len(),
        replies.len(),
        "duplicate replies: {replies:?}"
    );
    assert!(replies.contains(&crate::chat::describe(&first.message)));
    fleet.finish().await;
}
