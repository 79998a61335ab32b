//! Committed replies are sent once, and sends interrupted by a crash are neither lost nor
//! doubled: real Redis, the fake WhatsApp.

use std::time::Duration;

use fakes::whatsapp::InjectedFault;
use fakes::whatsapp::{BusinessNumber, FakeConfig, FakeWhatsApp};
use secrecy::SecretString;
use shared::whatsapp::{ClientConfig, RetryPolicy, WhatsAppClient};
use worker::keys::Keys;
use worker::outbound::{Delivery, Outbox, Reply, Resolution, to_wire};

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
    config.request_timeout = Duration::from_millis(500);
    config.retry = RetryPolicy {
        first_delay: Duration::from_millis(10),
        factor: 2.0,
        max_delay: Duration::from_millis(40),
        max_retries: 2,
        max_total_delay: Duration::from_secs(1),
    };
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

/// What a state commit leaves for `reply`: its record queued in the outbox.
async fn committed(redis: &shared::redis::Redis, keys: &Keys, customer: &str, reply: &Reply) {
    let (field, value) = reply.queued_record();
    let mut connection = redis.connection();
    redis::cmd("HSET")
        .arg(keys.outbox(BUSINESS, customer))
        .arg(field)
        .arg(value)
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
        .deliver(BUSINESS, customer, "wamid.in:1")
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
    // And an ordinary committed reply is sent, then never repeated by a replay.
    let reply = Reply::new("wamid.in", 3, customer, &message());
    committed(&redis, &keys, customer, &reply).await;
    let first = outbox
        .deliver(BUSINESS, customer, &reply.key)
        .await
        .expect("send");
    assert!(matches!(first, Delivery::Sent(_)));
    let replay = outbox
        .deliver(BUSINESS, customer, &reply.key)
        .await
        .expect("replay");
    assert!(matches!(replay, Delivery::AlreadySent(_)));
    assert_eq!(fake.outbox(BUSINESS, customer).len(), 1);
    cleanup(&redis, &keys, customer).await;
}

#[tokio::test]
async fn a_reply_that_failed_transiently_goes_back_to_the_queue_and_is_sent_by_the_retry() {
    let (fake, outbox, keys, redis) = setup("transient").await;
    let customer = "15550900003";
    fake.open_window(BUSINESS, customer);
    let reply = Reply::new("wamid.in", 1, customer, &message());
    committed(&redis, &keys, customer, &reply).await;
    // Every attempt the client makes (one and two retries) is refused as an overloaded Meta
    // does.
    fake.inject(std::iter::repeat_n(InjectedFault::GraphError(131_000), 3));
    let failed = outbox.deliver(BUSINESS, customer, &reply.key).await;
    assert!(failed.is_err(), "{failed:?}");
    assert!(fake.outbox(BUSINESS, customer).is_empty());
    // Nothing went out, so nothing is ambiguous: a later check must not send it...
    let check = outbox
        .resolve_ambiguous(BUSINESS, customer, &reply.key)
        .await
        .expect("check");
    assert_eq!(check, Resolution::Unknown);
    assert!(fake.outbox(BUSINESS, customer).is_empty());
    // ...the event's retry does, once.
    let retried = outbox
        .deliver(BUSINESS, customer, &reply.key)
        .await
        .expect("retry");
    assert!(matches!(retried, Delivery::Sent(_)), "{retried:?}");
    assert_eq!(fake.outbox(BUSINESS, customer).len(), 1);
    cleanup(&redis, &keys, customer).await;
}

#[tokio::test]
async fn a_reply_whose_send_got_no_answer_is_settled_by_its_status_not_sent_again() {
    let (fake, outbox, keys, redis) = setup("unanswered").await;
    let customer = "15550900006";
    fake.open_window(BUSINESS, customer);
    let reply = Reply::new("wamid.in", 1, customer, &message());
    committed(&redis, &keys, customer, &reply).await;
    // Meta answers after the client gave up, and delivers the message anyway.
    fake.inject([InjectedFault::Slow(Duration::from_millis(900))]);
    let delivered = outbox
        .deliver(BUSINESS, customer, &reply.key)
        .await
        .expect("deliver");
    assert_eq!(delivered, Delivery::Ambiguous);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let sent = fake.outbox(BUSINESS, customer);
    assert_eq!(sent.len(), 1);
    // Its status webhook names it; the later check then finds it sent and sends nothing.
    assert!(
        outbox
            .confirm_from_status(BUSINESS, customer, &reply.key, &sent[0].wamid)
            .await
            .expect("confirm")
    );
    let check = outbox
        .resolve_ambiguous(BUSINESS, customer, &reply.key)
        .await
        .expect("check");
    assert_eq!(check, Resolution::WasSent(sent[0].wamid.clone()));
    assert_eq!(fake.outbox(BUSINESS, customer).len(), 1);
    cleanup(&redis, &keys, customer).await;
}

#[tokio::test]
async fn a_refused_reply_is_remembered_as_refused_and_never_sent() {
    let (fake, outbox, keys, redis) = setup("refused").await;
    let customer = "15550900004";
    fake.open_window(BUSINESS, customer);
    let reply = Reply::new("wamid.in", 1, customer, &message());
    committed(&redis, &keys, customer, &reply).await;
    // 131026: the recipient cannot receive this message; retrying cannot help.
    fake.inject([InjectedFault::GraphError(131_026)]);
    let refused = outbox
        .deliver(BUSINESS, customer, &reply.key)
        .await
        .expect("deliver");
    assert_eq!(refused, Delivery::Refused { code: 131_026 });
    // A redelivered event hears the same refusal, and nothing is sent.
    let again = outbox
        .deliver(BUSINESS, customer, &reply.key)
        .await
        .expect("deliver");
    assert_eq!(again, Delivery::Refused { code: 131_026 });
    assert!(fake.outbox(BUSINESS, customer).is_empty());
    cleanup(&redis, &keys, customer).await;
}

#[tokio::test]
async fn an_events_recorded_steps_come_back_in_step_order_without_its_follow_ups() {
    let (_fake, outbox, keys, redis) = setup("steps").await;
    let customer = "15550900005";
    for step in [10, 2, 1] {
        committed(
            &redis,
            &keys,
            customer,
            &Reply::new("wamid.in", step, customer, &message()),
        )
        .await;
    }
    // A refusal's follow-up event extends the key; another event merely shares a prefix.
    for other in ["wamid.in:1:refused", "wamid.in2"] {
        committed(
            &redis,
            &keys,
            customer,
            &Reply::new(other, 1, customer, &message()),
        )
        .await;
    }
    let steps = outbox
        .recorded_steps(BUSINESS, customer, "wamid.in")
        .await
        .expect("steps");
    assert_eq!(
        steps,
        vec![
            (1, "wamid.in:1".to_owned()),
            (2, "wamid.in:2".to_owned()),
            (10, "wamid.in:10".to_owned()),
        ]
    );
    cleanup(&redis, &keys, customer).await;
}
