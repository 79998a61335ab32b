//! Sends interrupted by a crash are neither lost nor doubled: real Redis, the fake WhatsApp.

use std::time::Duration;

use fakes::whatsapp::{BusinessNumber, FakeConfig, FakeWhatsApp};
use secrecy::SecretString;
use shared::whatsapp::{ClientConfig, WhatsAppClient};
use worker::keys::Keys;
use worker::outbound::{Delivery, Outbox, Resolution, to_wire};

const BUSINESS: &str = "555000111";

async fn setup(
    tag: &str,
) -> (
    fakes::whatsapp::RunningFake,
    Outbox,
    Keys,
    shared::redis::Redis,
) {
    let fake = FakeWhatsApp::spawn(FakeConfig {
        businesses: vec![BusinessNumber {
            phone_number_id: BUSINESS.into(),
            display_phone_number: "15550001111".into(),
            waba_id: "waba".into(),
            templates: Vec::new(),
        }],
        ..FakeConfig::default()
    })
    .await
    .expect("fake");
    let mut config = ClientConfig::new(SecretString::from(FakeConfig::default().access_token));
    config.api_base = fake.graph_base_url();
    let client = WhatsAppClient::new(config).expect("client");
    let redis = shared::redis::open(&"redis://127.0.0.1:6379".to_owned().into()).expect("redis");
    let keys = Keys::new(&format!("test.outbox.{tag}.{}.", std::process::id()));
    (
        fake,
        Outbox::new(redis.clone(), keys.clone(), client),
        keys,
        redis,
    )
}

fn message() -> engine::OutboundMessage {
    engine::OutboundMessage::Text(
        engine::outbound::Text::new("Your booking is confirmed").expect("valid"),
    )
}

/// What a worker killed between claiming a send and hearing back leaves behind.
async fn crashed_claim(redis: &shared::redis::Redis, keys: &Keys, customer: &str, step: &str) {
    let wire = to_wire(customer, &message(), step);
    let mut connection = redis.connection();
    redis::cmd("HSET")
        .arg(keys.outbox(BUSINESS, customer))
        .arg(step)
        .arg(format!(
            "pending:{}",
            serde_json::to_string(&wire).expect("json")
        ))
        .query_async::<()>(&mut connection)
        .await
        .expect("HSET");
}

async fn cleanup(redis: &shared::redis::Redis, keys: &Keys, customer: &str) {
    let mut connection = redis.connection();
    let _: Result<(), _> = redis::cmd("DEL")
        .arg(keys.outbox(BUSINESS, customer))
        .query_async(&mut connection)
        .await;
}

#[tokio::test]
async fn a_send_that_never_reached_whatsapp_is_sent_once_by_the_later_check() {
    let (fake, outbox, keys, redis) = setup("lost").await;
    let customer = "15550900001";
    fake.open_window(BUSINESS, customer);
    crashed_claim(&redis, &keys, customer, "wamid.in:1").await;

    // The redelivered event finds the claim: it must not send blindly...
    let replay = outbox
        .send_once(BUSINESS, customer, "wamid.in:1", &message())
        .await
        .expect("replay");
    assert_eq!(replay, Delivery::Ambiguous);
    assert!(fake.outbox(BUSINESS, customer).is_empty());
    // ...and the later check, with no status seen, sends it exactly once.
    let resolved = outbox
        .resolve_ambiguous(BUSINESS, customer, "wamid.in:1")
        .await
        .expect("check");
    assert!(matches!(resolved, Resolution::Resent(_)), "{resolved:?}");
    let again = outbox
        .resolve_ambiguous(BUSINESS, customer, "wamid.in:1")
        .await
        .expect("check");
    assert!(matches!(again, Resolution::WasSent(_)), "{again:?}");
    let sent = fake.outbox(BUSINESS, customer);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body["biz_opaque_callback_data"], "wamid.in:1");
    cleanup(&redis, &keys, customer).await;
}

#[tokio::test]
async fn a_send_whose_status_arrived_is_never_repeated() {
    let (fake, outbox, keys, redis) = setup("sent").await;
    let customer = "15550900002";
    fake.open_window(BUSINESS, customer);
    crashed_claim(&redis, &keys, customer, "wamid.in:2").await;
    // WhatsApp's status webhook for the crashed attempt arrives, carrying its callback key.
    assert!(
        outbox
            .confirm_from_status(BUSINESS, customer, "wamid.in:2", "wamid.out.2")
            .await
            .expect("confirm")
    );
    let resolved = outbox
        .resolve_ambiguous(BUSINESS, customer, "wamid.in:2")
        .await
        .expect("check");
    assert_eq!(resolved, Resolution::WasSent("wamid.out.2".into()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        fake.outbox(BUSINESS, customer).is_empty(),
        "nothing sent twice"
    );
    // And an ordinary send is recorded, then never repeated by a replay.
    let first = outbox
        .send_once(BUSINESS, customer, "wamid.in:3", &message())
        .await
        .expect("send");
    assert!(matches!(first, Delivery::Sent(_)));
    let replay = outbox
        .send_once(BUSINESS, customer, "wamid.in:3", &message())
        .await
        .expect("replay");
    assert!(matches!(replay, Delivery::AlreadySent(_)));
    assert_eq!(fake.outbox(BUSINESS, customer).len(), 1);
    cleanup(&redis, &keys, customer).await;
}
