//! `shared::whatsapp` against the loopback fake of the WhatsApp Cloud API over real HTTP.

use std::num::NonZeroU32;
use std::time::Duration;

use fakes::whatsapp::{
    BusinessNumber, DeliveryState, FakeConfig, FakeWhatsApp, InjectedFault, Limits, Outbound,
    OutsideWindowMode, RunningFake, StatusWebhooks, TemplateSpec,
};
use secrecy::SecretString;
use shared::whatsapp::{
    ClientConfig, ErrorClass, GraphErrorEnvelope, Header, Interactive, ListRow, ListSection,
    MarkRead, MediaRef, OutboundMessage, PacingConfig, ReplyButton, RetryPolicy, SendError,
    SendResponse, Template, TransientCause, WhatsAppClient, classify,
};
use tokio::time::Instant;

const TOKEN: &str = "EAAG-secret-token-value";
const BUSINESS: &str = "106540352242922";
const ANA: &str = "+16505551234";
const ANA_ID: &str = "16505551234";
const LUIS: &str = "+34600000001";
const LUIS_ID: &str = "34600000001";
const WAIT: Duration = Duration::from_secs(5);

fn fixture_text(name: &str) -> String {
    let path = format!(
        "{}/../fixtures/whatsapp/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
}

// ----- wire types -----

#[test]
fn interactive_request_fixtures_round_trip_byte_for_byte() {
    for name in [
        "meta-docs-send-interactive-buttons.request",
        "meta-docs-send-interactive-list.request",
    ] {
        let text = fixture_text(name);
        let parsed: OutboundMessage = serde_json::from_str(&text).expect(name);
        let written = serde_json::to_string_pretty(&parsed).expect("serializes");
        assert_eq!(written, text.trim_end(), "{name}");
    }
}

#[test]
fn constructors_build_metas_documented_bodies() {
    let list = Interactive::list(
        "Which shipping option do you prefer?",
        "Shipping Options",
        vec![
            ListSection {
                title: "I want it ASAP!".into(),
                rows: vec![
                    ListRow::new(
                        "priority_express",
                        "Priority Mail Express",
                        Some("Next Day to 2 Days".into()),
                    ),
                    ListRow::new("priority_mail", "Priority Mail", Some("1–3 Days".into())),
                ],
            },
            ListSection {
                title: "I can wait a bit".into(),
                rows: vec![
                    ListRow::new(
                        "usps_ground_advantage",
                        "USPS Ground Advantage",
                        Some("2–5 Days".into()),
                    ),
                    ListRow::new("media_mail", "Media Mail", Some("2–8 Days".into())),
                ],
            },
        ],
    )
    .with_header_text("Choose Shipping Option")
    .with_footer("Lucky Shrub: Your gateway to succulents™");
    let written =
        serde_json::to_string_pretty(&OutboundMessage::interactive(ANA, list)).expect("json");
    assert_eq!(
        written,
        fixture_text("meta-docs-send-interactive-list.request").trim_end()
    );

    let mut buttons = Interactive::buttons(
        "Hi Pablo! Your gardening workshop is scheduled for 9am tomorrow. Use the buttons if you need to reschedule. Thank you!",
        vec![ReplyButton::new("change-button", "Change"), ReplyButton::new("cancel-button", "Cancel")],
    )
    .with_footer("Lucky Shrub: Your gateway to succulents!™");
    if let Interactive::Button { header, .. } = &mut buttons {
        *header = Some(Header::Image {
            image: MediaRef {
                id: Some("2762702990552401".into()),
                link: None,
            },
        });
    }
    let written =
        serde_json::to_string_pretty(&OutboundMessage::interactive(ANA, buttons)).expect("json");
    assert_eq!(
        written,
        fixture_text("meta-docs-send-interactive-buttons.request").trim_end()
    );

    let read = MarkRead::new(
        "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA",
        false,
    );
    assert_eq!(
        serde_json::to_string_pretty(&read).expect("json"),
        fixture_text("meta-docs-mark-as-read.request").trim_end()
    );
    let typing = serde_json::to_value(MarkRead::new("wamid.x", true)).expect("json");
    assert_eq!(
        typing["typing_indicator"],
        serde_json::json!({ "type": "text" })
    );
}

#[test]
fn text_and_template_bodies_follow_wire_md() {
    let text = serde_json::to_value(OutboundMessage::text(ANA, "Hola").in_reply_to("wamid.in"))
        .expect("json");
    assert_eq!(
        text,
        serde_json::json!({ "messaging_product": "whatsapp", "recipient_type": "individual", "to": ANA,
            "type": "text", "text": { "preview_url": false, "body": "Hola" },
            "context": { "message_id": "wamid.in" } })
    );
    let template = Template::new(
        "appointment_reminder",
        "en_US",
        vec!["Ana".into(), "Mon 10:00".into()],
        vec!["confirm:bk_123".into(), "cancel:bk_123".into()],
    );
    let body = serde_json::to_value(OutboundMessage::template(ANA, template)).expect("json");
    assert_eq!(
        body["template"],
        serde_json::json!({ "name": "appointment_reminder", "language": { "code": "en_US" },
          "components": [
            { "type": "body", "parameters": [{ "type": "text", "text": "Ana" }, { "type": "text", "text": "Mon 10:00" }] },
            { "type": "button", "sub_type": "quick_reply", "index": "0", "parameters": [{ "type": "payload", "payload": "confirm:bk_123" }] },
            { "type": "button", "sub_type": "quick_reply", "index": "1", "parameters": [{ "type": "payload", "payload": "cancel:bk_123" }] } ] })
    );
}

#[test]
fn response_and_error_fixtures_parse() {
    let sent: SendResponse = serde_json::from_str(&fixture_text("meta-docs-send-message.response"))
        .expect("send response");
    assert_eq!(
        sent.wamid(),
        Some("wamid.HBgLMTY0NjcwNDM1OTUVAgARGBI1RjQyNUE3NEYxMzAzMzQ5MkEA")
    );
    assert_eq!(sent.contacts[0].wa_id, ANA_ID);
    let error: GraphErrorEnvelope =
        serde_json::from_str(&fixture_text("graph-error-130429.response")).expect("error");
    assert_eq!(error.error.code, 130429);
    assert_eq!(error.error.error_subcode, Some(2494055));
    assert!(
        error
            .error
            .error_data
            .and_then(|data| data.details)
            .is_some()
    );
}

#[test]
fn error_codes_are_classified_by_what_the_caller_does_next() {
    let cases = [
        (130429, 400, ErrorClass::Retryable),
        (131056, 400, ErrorClass::Retryable),
        (4, 429, ErrorClass::Retryable),
        (4, 400, ErrorClass::Retryable),
        (80007, 400, ErrorClass::Retryable),
        (2, 503, ErrorClass::Retryable),
        (131000, 500, ErrorClass::Retryable),
        (131016, 500, ErrorClass::Retryable),
        (133004, 503, ErrorClass::Retryable),
        (131057, 500, ErrorClass::Retryable),
        (131047, 400, ErrorClass::OutsideWindow),
        (132000, 400, ErrorClass::Permanent),
        (132001, 404, ErrorClass::Permanent),
        (131026, 400, ErrorClass::Permanent),
        (100, 400, ErrorClass::Permanent),
        (131008, 400, ErrorClass::Permanent),
        (131009, 400, ErrorClass::Permanent),
        (190, 401, ErrorClass::Permanent),
        (0, 401, ErrorClass::Permanent),
        (131049, 400, ErrorClass::Permanent),
        (999_999, 500, ErrorClass::Retryable),
        (999_999, 400, ErrorClass::Permanent),
    ];
    for (code, status, expected) in cases {
        assert_eq!(
            classify(code, Some(status)),
            expected,
            "code {code}, HTTP {status}"
        );
    }
}

// ----- against the fake -----

fn business() -> BusinessNumber {
    BusinessNumber::new(BUSINESS, "15550783881")
        .with_template(TemplateSpec::new("appointment_reminder", "en_US", 2).with_quick_replies(2))
}

fn fake_config() -> FakeConfig {
    FakeConfig {
        access_token: TOKEN.into(),
        businesses: vec![business()],
        statuses: StatusWebhooks {
            enabled: false,
            ..StatusWebhooks::default()
        },
        ..FakeConfig::default()
    }
}

async fn start(config: FakeConfig) -> RunningFake {
    let fake = FakeWhatsApp::spawn(config).await.expect("fake starts");
    fake.open_window(BUSINESS, ANA_ID);
    fake.open_window(BUSINESS, LUIS_ID);
    fake
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        first_delay: Duration::from_millis(5),
        factor: 4.0,
        max_delay: Duration::from_millis(200),
        max_retries: 6,
        max_total_delay: Duration::from_secs(3),
    }
}

fn client_config(fake: &RunningFake) -> ClientConfig {
    ClientConfig {
        api_base: fake.graph_base_url(),
        request_timeout: Duration::from_secs(2),
        retry: fast_retries(),
        ..ClientConfig::new(SecretString::from(TOKEN))
    }
}

fn client(config: ClientConfig) -> WhatsAppClient {
    WhatsAppClient::new(config).expect("client builds")
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).expect("non-zero")
}

#[tokio::test]
async fn every_message_kind_is_accepted_by_the_fake() {
    let fake = start(fake_config()).await;
    let client = client(client_config(&fake));

    let text = client
        .send_text(BUSINESS, ANA, "Hola Ana, ¿mañana a las 10?")
        .await
        .expect("text");
    assert!(text.wamid.starts_with("wamid."));
    assert_eq!(text.wa_id.as_deref(), Some(ANA_ID));

    let buttons = Interactive::buttons(
        "Mon 10:00 is free. Book it?",
        vec![
            ReplyButton::new("book:slot-1", "Book"),
            ReplyButton::new("other", "Other times"),
        ],
    )
    .with_header_text("Dental clinic")
    .with_footer("Reply STOP to opt out");
    client
        .send_interactive(BUSINESS, ANA, buttons)
        .await
        .expect("buttons");

    let rows = (0..10)
        .map(|i| ListRow::new(format!("slot-{i}"), format!("Mon {}:00", 9 + i), None))
        .collect();
    let list = Interactive::list(
        "Free slots",
        "See slots",
        vec![ListSection {
            title: "Monday".into(),
            rows,
        }],
    );
    client
        .send_interactive(BUSINESS, ANA, list)
        .await
        .expect("list");

    let template = Template::new(
        "appointment_reminder",
        "en_US",
        vec!["Ana".into(), "Mon 10:00".into()],
        vec!["confirm:bk_1".into(), "cancel:bk_1".into()],
    );
    client
        .send_template(BUSINESS, LUIS, template)
        .await
        .expect("template");

    let sent = fake.outbox(BUSINESS, ANA_ID);
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[0].wamid, text.wamid);
    assert_eq!(
        sent[0].message,
        Outbound::Text {
            body: "Hola Ana, ¿mañana a las 10?".into(),
            preview_url: false
        }
    );
    assert!(
        matches!(&sent[1].message, Outbound::Buttons { buttons, .. } if buttons[0].id == "book:slot-1")
    );
    assert!(
        matches!(&sent[2].message, Outbound::List { sections, .. } if sections[0].rows.len() == 10)
    );
    let template = &fake.outbox(BUSINESS, LUIS_ID)[0];
    assert_eq!(
        template.message,
        Outbound::Template {
            name: "appointment_reminder".into(),
            language: "en_US".into(),
            body_parameters: vec!["Ana".into(), "Mon 10:00".into()],
            quick_reply_payloads: vec![(0, "confirm:bk_1".into()), (1, "cancel:bk_1".into())],
        }
    );
}

#[tokio::test]
async fn mark_read_and_typing_reach_the_fake() {
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/webhook", receiver.local_addr().expect("addr"));
    tokio::spawn(async move {
        let app = axum::Router::new().route("/webhook", axum::routing::post(|| async { "" }));
        axum::serve(receiver, app).await
    });
    let fake = start(FakeConfig {
        webhook_url: Some(url),
        ..fake_config()
    })
    .await;
    let customer = fakes::whatsapp::Customer::new(ANA_ID, "Ana");
    let inbound = fake
        .customer_text(BUSINESS, &customer, "hola")
        .await
        .expect("delivered");
    let client = client(client_config(&fake));
    client.mark_read(BUSINESS, &inbound).await.expect("read");
    client
        .show_typing(BUSINESS, &inbound)
        .await
        .expect("typing");
    let marks = fake.read_marks();
    assert_eq!(marks.len(), 2);
    assert!(!marks[0].typing_indicator && marks[1].typing_indicator);
    let unknown = client.mark_read(BUSINESS, "wamid.unknown").await;
    assert!(
        matches!(unknown, Err(SendError::Permanent(ref failure)) if failure.code == 100),
        "{unknown:?}"
    );
}

#[tokio::test]
async fn invalid_messages_surface_as_permanent_with_code_and_details() {
    let fake = start(fake_config()).await;
    let client = client(client_config(&fake));
    let four = (0..4)
        .map(|i| ReplyButton::new(format!("b{i}"), format!("B{i}")))
        .collect();
    let outcome = client
        .send_interactive(BUSINESS, ANA, Interactive::buttons("pick", four))
        .await;
    match outcome {
        Err(SendError::Permanent(failure)) => {
            assert_eq!((failure.code, failure.http_status), (131009, 400));
            assert!(
                failure
                    .details
                    .is_some_and(|details| details.contains("buttons"))
            );
        }
        other => panic!("expected permanent, got {other:?}"),
    }
    let long_title = vec![ReplyButton::new("a", "A title longer than twenty")];
    let outcome = client
        .send_interactive(BUSINESS, ANA, Interactive::buttons("pick", long_title))
        .await;
    assert_eq!(outcome.err().and_then(|error| error.code()), Some(131009));

    let missing = client
        .send_template(
            BUSINESS,
            ANA,
            Template::new("nope", "en_US", vec![], vec![]),
        )
        .await;
    assert!(
        matches!(missing, Err(SendError::Permanent(ref f)) if (f.code, f.http_status) == (132001, 404)),
        "{missing:?}"
    );
    let count = client
        .send_template(
            BUSINESS,
            ANA,
            Template::new("appointment_reminder", "en_US", vec!["Ana".into()], vec![]),
        )
        .await;
    assert!(
        matches!(count, Err(SendError::Permanent(ref f)) if f.code == 132000),
        "{count:?}"
    );
    let no_plus = client.send_text(BUSINESS, ANA_ID, "hi").await;
    assert!(
        matches!(no_plus, Err(SendError::Permanent(ref f)) if f.code == 100),
        "{no_plus:?}"
    );
    // Permanent errors are not retried.
    assert_eq!(fake.counters().rejected.values().sum::<u64>(), 5);
}

#[tokio::test]
async fn a_wrong_token_is_permanent_and_never_printed() {
    let fake = start(fake_config()).await;
    let wrong = "EAAG-wrong-token-value";
    let client = client(ClientConfig {
        access_token: SecretString::from(wrong),
        ..client_config(&fake)
    });
    let outcome = client.send_text(BUSINESS, ANA, "hi").await;
    let error = outcome.expect_err("rejected");
    assert_eq!(error.code(), Some(190));
    assert!(!error.is_transient());
    let printed = format!("{client:?} {error:?} {error} {:?}", client_config(&fake));
    assert!(!printed.contains(wrong), "{printed}");
    assert!(!printed.contains(TOKEN), "{printed}");
    assert!(printed.contains("REDACTED"), "{printed}");
}

#[tokio::test]
async fn outside_the_window_a_synchronous_131047_says_send_a_template() {
    let fake = start(fake_config()).await;
    fake.close_window(BUSINESS, ANA_ID);
    let client = client(client_config(&fake));
    let outcome = client.send_text(BUSINESS, ANA, "hello?").await;
    assert!(
        matches!(outcome, Err(SendError::OutsideWindow { details: Some(_) })),
        "{outcome:?}"
    );
    let template = Template::new(
        "appointment_reminder",
        "en_US",
        vec!["Ana".into(), "Mon".into()],
        vec![],
    );
    client
        .send_template(BUSINESS, ANA, template)
        .await
        .expect("a template is allowed");
    assert_eq!(
        fake.counters().rejected.get(&131047),
        Some(&1),
        "not retried"
    );
}

#[tokio::test]
async fn outside_the_window_an_asynchronous_131047_arrives_as_a_failed_status() {
    let fake = start(FakeConfig {
        outside_window: OutsideWindowMode::AcceptThenFailedStatus,
        statuses: StatusWebhooks {
            sent_after: Duration::from_millis(10),
            ..StatusWebhooks::default()
        },
        ..fake_config()
    })
    .await;
    fake.close_window(BUSINESS, ANA_ID);
    let client = client(client_config(&fake));
    let sent = client
        .send_text(BUSINESS, ANA, "hello?")
        .await
        .expect("accepted at first");
    let failed = fake
        .wait_for_status(&sent.wamid, DeliveryState::Failed, WAIT)
        .await
        .expect("failed status");
    let code = failed.error_code.expect("code");
    assert_eq!(code, 131047);
    // The worker classifies the webhook's error with the same table.
    assert_eq!(classify(code, None), ErrorClass::OutsideWindow);
}

#[tokio::test]
async fn throttling_and_server_error_storms_are_retried_to_success() {
    let fake = start(fake_config()).await;
    fake.inject([
        InjectedFault::GraphError(4),
        InjectedFault::GraphError(130429),
        InjectedFault::GraphError(131000),
        InjectedFault::GraphError(133004),
        InjectedFault::GraphError(2),
        InjectedFault::BareStatus(502),
    ]);
    let client = client(client_config(&fake));
    let sent = client
        .send_text(BUSINESS, ANA, "eventually")
        .await
        .expect("retried to success");
    let counters = fake.counters();
    assert_eq!(counters.accepted, 1);
    assert_eq!(
        counters.rejected.values().sum::<u64>() + counters.bare_http_errors,
        6
    );
    assert_eq!(fake.outbox(BUSINESS, ANA_ID)[0].wamid, sent.wamid);
}

#[tokio::test]
async fn retries_stop_after_the_policy_and_report_transient() {
    let fake = start(fake_config()).await;
    fake.inject(std::iter::repeat_n(InjectedFault::GraphError(131000), 10));
    let client = client(ClientConfig {
        retry: RetryPolicy {
            max_retries: 2,
            ..fast_retries()
        },
        ..client_config(&fake)
    });
    let outcome = client.send_text(BUSINESS, ANA, "never").await;
    match outcome {
        Err(SendError::Transient(TransientCause::Graph(failure))) => {
            assert_eq!(failure.code, 131000)
        }
        other => panic!("expected transient 131000, got {other:?}"),
    }
    assert_eq!(
        fake.counters().rejected.get(&131000),
        Some(&3),
        "first attempt and two retries"
    );
}

#[tokio::test]
async fn retry_delays_grow_by_the_configured_factor() {
    let fake = start(fake_config()).await;
    fake.inject(std::iter::repeat_n(InjectedFault::GraphError(131000), 3));
    let client = client(ClientConfig {
        retry: RetryPolicy {
            first_delay: Duration::from_millis(40),
            factor: 4.0,
            max_delay: Duration::from_secs(1),
            max_retries: 3,
            max_total_delay: Duration::from_secs(5),
        },
        ..client_config(&fake)
    });
    let started = Instant::now();
    client
        .send_text(BUSINESS, ANA, "x")
        .await
        .expect("third retry succeeds");
    // 40 + 160 + 640 ms at least; jitter only lengthens.
    assert!(
        started.elapsed() >= Duration::from_millis(840),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_pair_rate_error_retries_only_that_customers_send() {
    let fake = start(FakeConfig {
        limits: Limits {
            pair_burst: 1,
            pair_interval: Duration::from_millis(400),
            ..Limits::default()
        },
        ..fake_config()
    })
    .await;
    // Pacing looser than the fake's pair limit, so the fake's 131056 is what the client meets.
    let client = client(ClientConfig {
        pacing: PacingConfig {
            per_customer_burst: nonzero(10),
            ..PacingConfig::default()
        },
        retry: RetryPolicy {
            first_delay: Duration::from_millis(50),
            factor: 2.0,
            ..fast_retries()
        },
        ..client_config(&fake)
    });
    client
        .send_text(BUSINESS, ANA, "first")
        .await
        .expect("first");
    let started = Instant::now();
    let (second_to_ana, first_to_luis) =
        tokio::join!(client.send_text(BUSINESS, ANA, "second"), async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let sent = client.send_text(BUSINESS, LUIS, "hola Luis").await;
            (sent, started.elapsed())
        });
    second_to_ana.expect("retried until the pair allowance came back");
    let (to_luis, luis_after) = first_to_luis;
    to_luis.expect("other customers are unaffected");
    assert!(
        luis_after < Duration::from_millis(300),
        "Luis waited {luis_after:?}"
    );
    assert!(
        fake.counters()
            .rejected
            .get(&131056)
            .is_some_and(|n| *n >= 1)
    );
    assert_eq!(fake.outbox(BUSINESS, ANA_ID).len(), 2);
}

#[tokio::test]
async fn a_send_without_an_answer_is_not_repeated_because_meta_may_have_it() {
    let fake = start(fake_config()).await;
    // Meta takes longer than the client waits, but delivers the message all the same.
    fake.inject([InjectedFault::Slow(Duration::from_millis(600))]);
    let client = client(ClientConfig {
        request_timeout: Duration::from_millis(200),
        ..client_config(&fake)
    });
    let outcome = client.send_text(BUSINESS, ANA, "slow to confirm").await;
    assert!(
        matches!(&outcome, Err(SendError::Transient(cause)) if cause.may_have_arrived()),
        "{outcome:?}"
    );
    // A retry here would have sent it twice; the one attempt arrives once.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(fake.outbox(BUSINESS, ANA_ID).len(), 1);
}

#[tokio::test]
async fn a_read_receipt_without_an_answer_is_retried() {
    let fake = start(fake_config()).await;
    fake.inject([InjectedFault::Hang(Duration::from_secs(30))]);
    let client = client(ClientConfig {
        request_timeout: Duration::from_millis(200),
        ..client_config(&fake)
    });
    let started = Instant::now();
    // Repeating a read receipt is harmless: after the timeout the client asks again and gets
    // Meta's answer (here: no such message).
    let outcome = client.mark_read(BUSINESS, "wamid.unknown").await;
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(
        matches!(&outcome, Err(SendError::Permanent(_))),
        "{outcome:?}"
    );
    assert_eq!(fake.counters().hangs, 1);
}

#[tokio::test]
async fn unreachable_api_is_transient() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let client = client(ClientConfig {
        api_base: format!("http://{addr}/v25.0"),
        retry: RetryPolicy {
            max_retries: 1,
            ..fast_retries()
        },
        ..ClientConfig::new(SecretString::from(TOKEN))
    });
    let outcome = client.send_text(BUSINESS, ANA, "x").await;
    assert!(
        matches!(
            outcome,
            Err(SendError::Transient(TransientCause::Connection(_)))
        ),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn pacing_spaces_sends_to_one_customer_and_keeps_under_the_pair_limit() {
    let interval = Duration::from_millis(150);
    // The fake allows one more than the client bursts: request latency varies, so a
    // client exactly at the limit would sometimes look over it.
    let fake = start(FakeConfig {
        limits: Limits {
            pair_burst: 3,
            pair_interval: interval,
            ..Limits::default()
        },
        ..fake_config()
    })
    .await;
    let client = client(ClientConfig {
        pacing: PacingConfig {
            per_customer_interval: interval,
            per_customer_burst: nonzero(2),
            ..PacingConfig::default()
        },
        ..client_config(&fake)
    });
    let started = Instant::now();
    for i in 0..6 {
        client
            .send_text(BUSINESS, ANA, &format!("message {i}"))
            .await
            .expect("sent");
    }
    // Two at once, then one per interval: four intervals.
    assert!(started.elapsed() >= interval * 4, "{:?}", started.elapsed());
    assert_eq!(
        fake.counters().rejected.get(&131056),
        None,
        "the fake never saw the limit exceeded"
    );
    assert_eq!(fake.outbox(BUSINESS, ANA_ID).len(), 6);
}

#[tokio::test]
async fn pacing_that_would_wait_too_long_fails_fast_as_transient() {
    let fake = start(fake_config()).await;
    let client = client(ClientConfig {
        pacing: PacingConfig {
            per_customer_interval: Duration::from_secs(60),
            per_customer_burst: nonzero(1),
            max_wait: Duration::from_millis(100),
            ..PacingConfig::default()
        },
        ..client_config(&fake)
    });
    client
        .send_text(BUSINESS, ANA, "first")
        .await
        .expect("first");
    let started = Instant::now();
    let outcome = client.send_text(BUSINESS, ANA, "second").await;
    assert!(
        matches!(
            outcome,
            Err(SendError::Transient(
                TransientCause::PacingBudgetExceeded { .. }
            ))
        ),
        "{outcome:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(fake.outbox(BUSINESS, ANA_ID).len(), 1);
    client
        .send_text(BUSINESS, LUIS, "another customer")
        .await
        .expect("unaffected");
}

#[tokio::test]
async fn the_number_limit_paces_sends_across_customers() {
    let fake = start(FakeConfig {
        limits: Limits {
            throughput_per_second: 20,
            ..Limits::default()
        },
        ..fake_config()
    })
    .await;
    let client = client(ClientConfig {
        pacing: PacingConfig {
            per_business_per_second: nonzero(10),
            ..PacingConfig::default()
        },
        ..client_config(&fake)
    });
    let started = Instant::now();
    let sends = (0..20).map(|i| {
        let client = client.clone();
        let customer = format!("+3460000{i:04}");
        fake.open_window(BUSINESS, &customer[1..]);
        async move { client.send_text(BUSINESS, &customer, "x").await }
    });
    for outcome in futures::future::join_all(sends).await {
        outcome.expect("sent");
    }
    // Ten at once, ten more at ten per second.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(fake.counters().rejected.get(&130429), None);
}
