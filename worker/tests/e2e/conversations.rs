use fakes::whatsapp::{ListRow, Outbound};

use crate::fleet::{CLINIC, Fleet, SALON};

/// Reads replies until the bot asks to confirm (buttons with "confirm"), picking the first
/// offered time from any list on the way. Returns the confirm button's id.
async fn reach_confirmation(
    fleet: &Fleet,
    business: &str,
    customer: &fakes::whatsapp::Customer,
) -> String {
    let wa_id = customer.wa_id.clone().expect("wa_id");
    for _ in 0..6 {
        match fleet.next_reply(business, &wa_id).await {
            Outbound::Buttons { buttons, body, .. } => {
                if let Some(confirm) = buttons.iter().find(|b| b.id == "confirm") {
                    return confirm.id.clone();
                }
                panic!("unexpected buttons: {body} {buttons:?}");
            }
            Outbound::List { sections, .. } => {
                let row: ListRow = sections
                    .iter()
                    .flat_map(|s| s.rows.iter())
                    .find(|r| r.id.starts_with("slot:") || r.id.starts_with("service:"))
                    .cloned()
                    .expect("a row to pick");
                fleet
                    .whatsapp
                    .customer_list_reply(business, customer, &row, "wamid.list")
                    .await
                    .expect("list reply delivered");
            }
            Outbound::Text { .. } | Outbound::Template { .. } => {}
        }
    }
    panic!("the bot never asked to confirm");
}

async fn expect_text_containing(
    fleet: &Fleet,
    business: &str,
    wa_id: &str,
    needle: &str,
) -> String {
    for _ in 0..5 {
        if let Outbound::Text { body, .. } = fleet.next_reply(business, wa_id).await
            && body.contains(needle)
        {
            return body;
        }
    }
    panic!("no text containing {needle:?}");
}

#[tokio::test]
async fn english_customer_books_on_the_builtin_calendar() {
    let fleet = Fleet::start("en-book", 1).await;
    let ana = Fleet::customer("15550100001", "Ana");
    fleet
        .whatsapp
        .customer_text(SALON, &ana, "Hi! can I book a haircut please?")
        .await
        .expect("delivered to ingress");
    let confirm = reach_confirmation(&fleet, SALON, &ana).await;
    fleet
        .whatsapp
        .customer_button_reply(SALON, &ana, &confirm, "Confirm", "wamid.buttons")
        .await
        .expect("delivered");
    let confirmation = expect_text_containing(&fleet, SALON, "15550100001", "booked").await;
    assert!(confirmation.contains("Haircut"), "{confirmation}");

    // Exactly one booking in the built-in calendar, and the reminders are scheduled.
    let salon = fleet.tenants.get(SALON).expect("salon");
    let redis = shared::redis::open(&"redis://127.0.0.1:6379".to_owned().into()).expect("redis");
    let calendar = worker::calendar::BuiltinCalendar::new(
        redis.clone(),
        worker::keys::Keys::new(&fleet.namespace),
    );
    let mut audit = Vec::new();
    for _ in 0..20 {
        audit = calendar.audit(salon).await.expect("audit");
        if !audit.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(audit.len(), 1, "{audit:?}");
    // The confirmation is sent before the reminders are written: wait for them.
    let timers = shared::timers::TimerStore::new(redis, &fleet.namespace);
    let mut pending = 0;
    for _ in 0..50 {
        pending = timers.pending().await.expect("pending");
        if pending >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        pending >= 2,
        "reminder and follow-up scheduled, found {pending}"
    );
    fleet.finish().await;
}

#[tokio::test]
async fn spanish_customer_books_on_calcom() {
    let fleet = Fleet::start("es-book", 1).await;
    let lucia = Fleet::customer("34600100002", "Lucía");
    fleet
        .whatsapp
        .customer_text(CLINIC, &lucia, "hola, quiero pedir cita para fisioterapia")
        .await
        .expect("delivered to ingress");
    let confirm = reach_confirmation(&fleet, CLINIC, &lucia).await;
    fleet
        .whatsapp
        .customer_button_reply(CLINIC, &lucia, &confirm, "Confirmar", "wamid.buttons")
        .await
        .expect("delivered");
    let confirmation = expect_text_containing(&fleet, CLINIC, "34600100002", "ita").await;
    assert!(!confirmation.is_empty());
    let mut bookings = Vec::new();
    for _ in 0..20 {
        bookings = fleet.calcom.bookings();
        if !bookings.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(bookings.len(), 1, "one booking in Cal.com");
    assert!(fleet.calcom.double_bookings().is_empty());
    fleet.finish().await;
}
