//! The WhatsApp fake driven over real HTTP on loopback, checked against WIRE.md and the
//! fixtures in `fixtures/whatsapp`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

use fakes::whatsapp::{
    BusinessNumber, Customer, CustomerMessage, DeliveryState, FakeConfig, Faults, GraphFailure,
    InboundContext, InboundUpdate, InjectedFault, Limits, ListRow, Outbound, OutsideWindowMode,
    Place, RunningFake, StatusShape, StatusUpdate, StatusWebhooks, TemplateSpec, messages_payload,
    signature_header, status_payload,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;

const TOKEN: &str = "test-token";
const SECRET: &str = "test-app-secret";
const BUSINESS: &str = "106540352242922";
const CUSTOMER: &str = "16505551234";
const WAIT: Duration = Duration::from_secs(5);

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../fixtures/whatsapp/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// Every key path with the JSON type at its end; array items share one path.
fn shape(value: &Value) -> BTreeSet<String> {
    fn walk(value: &Value, path: String, out: &mut BTreeSet<String>) {
        let kind = match value {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(items) => {
                for item in items {
                    walk(item, format!("{path}[]"), out);
                }
                "array"
            }
            Value::Object(map) => {
                for (key, child) in map {
                    walk(child, format!("{path}.{key}"), out);
                }
                "object"
            }
        };
        out.insert(format!("{path}: {kind}"));
    }
    let mut out = BTreeSet::new();
    walk(value, String::new(), &mut out);
    out
}

fn assert_same_shape(built: &Value, expected: &Value, name: &str) {
    let built = shape(built);
    let expected = shape(expected);
    assert_eq!(
        built,
        expected,
        "{name}: only built {:?}, only fixture {:?}",
        built.difference(&expected).collect::<Vec<_>>(),
        expected.difference(&built).collect::<Vec<_>>()
    );
}

fn meta_business() -> BusinessNumber {
    BusinessNumber {
        phone_number_id: BUSINESS.to_owned(),
        display_phone_number: "15550783881".to_owned(),
        waba_id: "102290129340398".to_owned(),
        templates: vec![
            TemplateSpec::new("appointment_reminder", "en_US", 2).with_quick_replies(2),
            TemplateSpec::new("appointment_reminder", "es", 2).with_quick_replies(2),
        ],
    }
}

fn pywa_business() -> BusinessNumber {
    BusinessNumber {
        phone_number_id: "1122334455667".to_owned(),
        display_phone_number: "972123456789".to_owned(),
        waba_id: "1234567890987654321".to_owned(),
        templates: Vec::new(),
    }
}

fn pywa_customer() -> Customer {
    Customer::new("972987654321", "Test Name").with_user_id(
        "US.13491208655302741918",
        Some("US.ENT.11815799212886844830"),
    )
}

fn update(
    customer: Customer,
    message: CustomerMessage,
    context: Option<InboundContext>,
) -> InboundUpdate {
    InboundUpdate {
        customer,
        message,
        context,
        wamid: "wamid.xyzxyz".to_owned(),
        timestamp: 1697043223,
    }
}

#[test]
fn meta_docs_message_fixtures_are_reproduced_exactly() {
    let sheena = Customer::new(CUSTOMER, "Sheena Nelson");
    let pablo = Customer::new(CUSTOMER, "Pablo Morales");
    let cases = [
        (
            "meta-docs-text-message",
            InboundUpdate {
                customer: sheena.clone(),
                message: CustomerMessage::Text {
                    body: "Does it come in another color?".into(),
                },
                context: None,
                wamid: "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=".into(),
                timestamp: 1749416383,
            },
        ),
        (
            "meta-docs-interactive-button-reply",
            InboundUpdate {
                customer: pablo.clone(),
                message: CustomerMessage::ButtonReply {
                    id: "change-button".into(),
                    title: "Change".into(),
                },
                context: Some(InboundContext::ReplyTo(
                    "wamid.HBgLMTY0NjcwNDM1OTUVAgARGBJBM0Y4RUU0RUNFQkFDMjYzQUMA".into(),
                )),
                wamid: "wamid.HBgLMTY0NjcwNDM1OTUVAgASGBQzQThBREYwNzc2RDc2QjA1QTIwMgA=".into(),
                timestamp: 1714510003,
            },
        ),
        (
            "meta-docs-interactive-list-reply",
            InboundUpdate {
                customer: pablo,
                message: CustomerMessage::ListReply {
                    id: "priority_express".into(),
                    title: "Priority Mail Express".into(),
                    description: Some("Next Day to 2 Days".into()),
                },
                context: Some(InboundContext::ReplyTo(
                    "wamid.HBgLMTY0NjcwNDM1OTUVAgARGBIwMjg0RkMxOEMyMkNEQUFFRDgA".into(),
                )),
                wamid: "wamid.HBgLMTY0NjcwNDM1OTUVAgASGBQzQTZDMzFGRUFBQjlDMzIzMzlEQwA=".into(),
                timestamp: 1712595443,
            },
        ),
        (
            "meta-docs-unsupported-edit",
            InboundUpdate {
                customer: sheena,
                message: CustomerMessage::Unsupported {
                    kind: Some("edit".into()),
                },
                context: None,
                wamid: "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=".into(),
                timestamp: 1750090702,
            },
        ),
    ];
    for (name, update) in cases {
        assert_eq!(
            messages_payload(&meta_business(), &[update]),
            fixture(name),
            "{name}"
        );
    }
}

#[test]
fn message_builders_match_every_inbound_fixture_key_for_key() {
    let bsuid_echo = Customer {
        echo_user_id_on_messages: true,
        ..pywa_customer()
    };
    let reply = || Some(InboundContext::ReplyTo("wamid.xyzxyz==".into()));
    let place = Place {
        name: "Facebook HQ".into(),
        address: "1 Hacker Way, Menlo Park, CA 94025".into(),
        url: "https://maps.google.com/?cid=2000000000000000000".into(),
    };
    let image = |url: Option<&str>| CustomerMessage::Image {
        media_id: "65463453".into(),
        mime_type: "image/jpeg".into(),
        sha256: "4654+8g=".into(),
        caption: None,
        url: url.map(str::to_owned),
    };
    let cases = [
        (
            "pywa-text",
            CustomerMessage::Text {
                body: "Body Text".into(),
            },
            None,
            pywa_customer(),
        ),
        (
            "pywa-text-reply-with-context",
            CustomerMessage::Text {
                body: "replied text".into(),
            },
            reply(),
            pywa_customer(),
        ),
        (
            "pywa-interactive-button-reply",
            CustomerMessage::ButtonReply {
                id: "callback_data".into(),
                title: "title".into(),
            },
            reply(),
            pywa_customer(),
        ),
        (
            "pywa-interactive-list-reply",
            CustomerMessage::ListReply {
                id: "a".into(),
                title: "b".into(),
                description: None,
            },
            reply(),
            pywa_customer(),
        ),
        (
            "pywa-interactive-list-reply-with-description",
            CustomerMessage::ListReply {
                id: "a".into(),
                title: "b".into(),
                description: Some("c".into()),
            },
            reply(),
            pywa_customer(),
        ),
        (
            "pywa-template-quick-reply-button",
            CustomerMessage::TemplateButton {
                payload: "callback_data".into(),
                text: "title".into(),
            },
            reply(),
            pywa_customer(),
        ),
        (
            "pywa-template-quick-reply-button-no-context-bsuid",
            CustomerMessage::TemplateButton {
                payload: "callback_data".into(),
                text: "title".into(),
            },
            None,
            bsuid_echo,
        ),
        (
            "thirdparty-zaple-template-quick-reply-button",
            CustomerMessage::TemplateButton {
                payload: "approve_67_schedule".into(),
                text: "Approve".into(),
            },
            reply(),
            Customer::new("918866230663", "~smit"),
        ),
        (
            "pywa-location-current",
            CustomerMessage::Location {
                latitude: 12.25089,
                longitude: 43.90539,
                place: None,
            },
            Some(InboundContext::Forwarded),
            pywa_customer(),
        ),
        (
            "pywa-location-chosen-place",
            CustomerMessage::Location {
                latitude: 37.4611978,
                longitude: -122.2164385,
                place: Some(place),
            },
            Some(InboundContext::Forwarded),
            pywa_customer(),
        ),
        ("pywa-image", image(None), None, pywa_customer()),
        (
            "pywa-image-with-url",
            image(Some("https://lookaside.fbsbx.com/x")),
            None,
            pywa_customer(),
        ),
        (
            "pywa-reaction",
            CustomerMessage::Reaction {
                message_id: "wamid.yzxyzx=".into(),
                emoji: Some("😮".into()),
            },
            None,
            pywa_customer(),
        ),
        (
            "pywa-reaction-removed-empty-emoji",
            CustomerMessage::Reaction {
                message_id: "wamid.yzxyzx=".into(),
                emoji: Some(String::new()),
            },
            None,
            pywa_customer(),
        ),
        (
            "pywa-reaction-removed-no-emoji",
            CustomerMessage::Reaction {
                message_id: "wamid.yzxyzx=".into(),
                emoji: None,
            },
            None,
            pywa_customer(),
        ),
        (
            "pywa-unsupported",
            CustomerMessage::Unsupported { kind: None },
            None,
            pywa_customer(),
        ),
        (
            "pywa-unsupported-with-type",
            CustomerMessage::Unsupported {
                kind: Some("pool".into()),
            },
            None,
            pywa_customer(),
        ),
    ];
    for (name, message, context, customer) in cases {
        let built = messages_payload(&pywa_business(), &[update(customer, message, context)]);
        assert_same_shape(&built, &fixture(name), name);
    }
}

#[test]
fn bsuid_only_customers_have_no_wa_id_and_are_identified_by_user_id() {
    let customer = Customer::bsuid_only("US.13491208655302741918", "Ana");
    let built = messages_payload(
        &pywa_business(),
        &[update(
            customer.clone(),
            CustomerMessage::Text {
                body: "hola".into(),
            },
            None,
        )],
    );
    let value = &built["entry"][0]["changes"][0]["value"];
    assert!(value["contacts"][0].get("wa_id").is_none());
    assert_eq!(value["contacts"][0]["user_id"], "US.13491208655302741918");
    assert!(value["messages"][0].get("from").is_none());
    assert_eq!(
        value["messages"][0]["from_user_id"],
        "US.13491208655302741918"
    );
    assert_eq!(customer.key(), "US.13491208655302741918");
}

fn status(state: DeliveryState, failure: Option<GraphFailure>) -> StatusUpdate {
    StatusUpdate {
        wamid: "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=".into(),
        state,
        recipient_id: CUSTOMER.into(),
        timestamp: 1750030073,
        biz_opaque_callback_data: None,
        category: "marketing".into(),
        failure,
    }
}

#[test]
fn status_builders_match_the_status_fixtures() {
    let business = meta_business();
    assert_eq!(
        status_payload(
            &business,
            StatusShape::Minimal,
            &status(DeliveryState::Sent, None)
        ),
        fixture("meta-docs-status-v24-minimal")
    );
    let failed = StatusUpdate {
        wamid: "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0QUQ2MjA4NEYyRkExNjMyREUA".into(),
        timestamp: 1751142888,
        ..status(DeliveryState::Failed, Some(GraphFailure::for_code(131049)))
    };
    for shape in [StatusShape::Minimal, StatusShape::Pmp, StatusShape::Legacy] {
        assert_eq!(
            status_payload(&business, shape, &failed),
            fixture("meta-docs-status-failed-131049"),
            "{shape:?}"
        );
    }
    assert_same_shape(
        &status_payload(
            &business,
            StatusShape::Legacy,
            &status(DeliveryState::Sent, None),
        ),
        &fixture("meta-docs-status-sent-marketing"),
        "meta-docs-status-sent-marketing",
    );
    let with_callback = StatusUpdate {
        biz_opaque_callback_data: Some("{\"k\":1}".into()),
        category: "utility".into(),
        ..status(DeliveryState::Sent, None)
    };
    assert_same_shape(
        &status_payload(&business, StatusShape::Pmp, &with_callback),
        &fixture("thirdparty-zaple-status-sent-pmp-free-customer-service"),
        "thirdparty-zaple-status-sent-pmp-free-customer-service",
    );
    let pmp_read = status_payload(
        &business,
        StatusShape::Pmp,
        &status(DeliveryState::Read, None),
    );
    assert_same_shape(
        &pmp_read,
        &fixture("meta-docs-status-v24-minimal"),
        "v24 read",
    );
}

#[test]
fn signature_is_hmac_sha256_of_the_raw_body() {
    // RFC 4231 test case 2.
    assert_eq!(
        signature_header("Jefe", b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

// ----- over HTTP -----

type ReceiverState = (mpsc::UnboundedSender<(HeaderMap, Bytes)>, Arc<AtomicU16>);

/// The fleet's ingress, reduced to what the fake needs: it records what it is sent.
struct Receiver {
    url: String,
    deliveries: mpsc::UnboundedReceiver<(HeaderMap, Bytes)>,
    answer: Arc<AtomicU16>,
}

impl Receiver {
    async fn start() -> Self {
        let (sender, deliveries) = mpsc::unbounded_channel();
        let answer = Arc::new(AtomicU16::new(200));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let url = format!("http://{}/webhook", listener.local_addr().expect("addr"));
        let state = (sender, answer.clone());
        let app = axum::Router::new()
            .route(
                "/webhook",
                axum::routing::post(
                    |State((sender, answer)): State<ReceiverState>,
                     headers: HeaderMap,
                     body: Bytes| async move {
                        let _ = sender.send((headers, body));
                        StatusCode::from_u16(answer.load(Ordering::SeqCst))
                            .unwrap_or(StatusCode::OK)
                    },
                ),
            )
            .with_state(state);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            deliveries,
            answer,
        }
    }

    /// The next delivery, with its signature checked against the raw bytes.
    async fn next(&mut self) -> Value {
        let (headers, body) = tokio::time::timeout(WAIT, self.deliveries.recv())
            .await
            .expect("a webhook delivery in time")
            .expect("receiver open");
        let signature = headers
            .get("x-hub-signature-256")
            .and_then(|value| value.to_str().ok())
            .expect("signature header");
        assert_eq!(signature, signature_header(SECRET, &body));
        assert_eq!(
            headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/json")
        );
        serde_json::from_slice(&body).expect("webhook body is JSON")
    }

    async fn next_status(&mut self) -> (String, String) {
        let delivery = self.next().await;
        let status = &delivery["entry"][0]["changes"][0]["value"]["statuses"][0];
        (
            status["id"].as_str().unwrap_or_default().to_owned(),
            status["status"].as_str().unwrap_or_default().to_owned(),
        )
    }
}

fn quiet_statuses() -> StatusWebhooks {
    StatusWebhooks {
        enabled: false,
        ..StatusWebhooks::default()
    }
}

fn config() -> FakeConfig {
    FakeConfig {
        access_token: TOKEN.into(),
        app_secret: SECRET.into(),
        businesses: vec![meta_business()],
        statuses: quiet_statuses(),
        seed: Some(7),
        ..FakeConfig::default()
    }
}

async fn start(config: FakeConfig) -> RunningFake {
    fakes::whatsapp::FakeWhatsApp::spawn(config)
        .await
        .expect("fake starts")
}

struct Answer {
    status: u16,
    body: Value,
}

async fn post_raw(fake: &RunningFake, token: Option<&str>, body: String) -> Answer {
    let mut request = reqwest::Client::new()
        .post(format!("{}/{BUSINESS}/messages", fake.graph_base_url()))
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("fake answers");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    Answer { status, body }
}

async fn post(fake: &RunningFake, body: Value) -> Answer {
    post_raw(fake, Some(TOKEN), body.to_string()).await
}

fn text_to(to: &str, body: &str) -> Value {
    json!({ "messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
            "type": "text", "text": { "preview_url": false, "body": body } })
}

fn code(answer: &Answer) -> i64 {
    answer.body["error"]["code"].as_i64().unwrap_or_default()
}

#[tokio::test]
async fn a_text_inside_the_window_is_accepted_in_metas_success_shape_and_recorded() {
    let fake = start(config()).await;
    fake.open_window(BUSINESS, CUSTOMER);
    let answer = post(&fake, text_to("+16505551234", "Hola Ana")).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_same_shape(
        &answer.body,
        &fixture("meta-docs-send-message.response"),
        "send response",
    );
    assert_eq!(answer.body["contacts"][0]["input"], "+16505551234");
    assert_eq!(answer.body["contacts"][0]["wa_id"], CUSTOMER);
    let wamid = answer.body["messages"][0]["id"]
        .as_str()
        .expect("wamid")
        .to_owned();
    assert!(wamid.starts_with("wamid."));

    let record = fake
        .next_message_to(BUSINESS, CUSTOMER, WAIT)
        .await
        .expect("recorded");
    assert_eq!(record.wamid, wamid);
    assert_eq!(
        record.message,
        Outbound::Text {
            body: "Hola Ana".into(),
            preview_url: false
        }
    );
    assert_eq!(record.body["to"], "+16505551234");
    assert!(
        fake.next_message_to(BUSINESS, CUSTOMER, Duration::from_millis(50))
            .await
            .is_none()
    );
    assert_eq!(fake.counters().accepted, 1);
}

#[tokio::test]
async fn next_message_to_waits_for_a_message_sent_later() {
    let fake = start(config()).await;
    fake.open_window(BUSINESS, CUSTOMER);
    let waiter = {
        let fake = fake.fake().clone();
        tokio::spawn(async move { fake.next_message_to(BUSINESS, CUSTOMER, WAIT).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut feed = fake.subscribe();
    assert_eq!(
        post(&fake, text_to("+16505551234", "later")).await.status,
        200
    );
    let record = waiter.await.expect("join").expect("message arrives");
    assert_eq!(record.message.body_text(), "later");
    assert_eq!(feed.recv().await.expect("feed").wamid, record.wamid);
}

#[tokio::test]
async fn auth_and_malformed_requests_get_graph_errors_not_panics() {
    let fake = start(config()).await;
    for token in [None, Some("wrong")] {
        let answer = post_raw(&fake, token, text_to("+16505551234", "x").to_string()).await;
        assert_eq!(answer.status, 401);
        assert_eq!(code(&answer), 190);
        assert_eq!(answer.body["error"]["type"], "OAuthException");
        assert!(answer.body["error"]["fbtrace_id"].is_string());
    }
    for garbage in ["{not json", "[]", "\"text\"", ""] {
        let answer = post_raw(&fake, Some(TOKEN), garbage.into()).await;
        assert_eq!(answer.status, 400, "{garbage}");
        assert_eq!(code(&answer), 100, "{garbage}");
    }
    let unknown_number = reqwest::Client::new()
        .post(format!("{}/999/messages", fake.graph_base_url()))
        .bearer_auth(TOKEN)
        .json(&text_to("+16505551234", "x"))
        .send()
        .await
        .expect("answer");
    assert_eq!(unknown_number.status(), 400);
    let body: Value = unknown_number.json().await.expect("json");
    assert_eq!(body["error"]["code"], 100);
    assert_eq!(body["error"]["error_subcode"], 33);
    let bad_path = reqwest::Client::new()
        .post(format!("http://{}/v25.0/{BUSINESS}/nothing", fake.addr()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answer");
    assert_eq!(bad_path.status(), 400);
}

fn buttons(buttons: Value) -> Value {
    json!({ "messaging_product": "whatsapp", "to": "+16505551234", "type": "interactive",
            "interactive": { "type": "button", "body": { "text": "Pick one" },
                             "action": { "buttons": buttons } } })
}

fn button(id: &str, title: &str) -> Value {
    json!({ "type": "reply", "reply": { "id": id, "title": title } })
}

fn list(sections: Value) -> Value {
    json!({ "messaging_product": "whatsapp", "to": "+16505551234", "type": "interactive",
            "interactive": { "type": "list", "body": { "text": "Free slots" },
                             "action": { "button": "See slots", "sections": sections } } })
}

fn rows(count: usize) -> Value {
    Value::Array(
        (0..count)
            .map(|i| json!({ "id": format!("slot-{i}"), "title": format!("{i}:00") }))
            .collect(),
    )
}

#[tokio::test]
async fn every_documented_limit_is_enforced_at_its_boundary() {
    let fake = start(FakeConfig {
        limits: Limits {
            pair_burst: 1000,
            ..Limits::default()
        },
        ..config()
    })
    .await;
    fake.open_window(BUSINESS, CUSTOMER);
    let long = |n: usize| "é".repeat(n);
    let mut with_header = list(json!([{ "title": "Mon", "rows": rows(1) }]));
    with_header["interactive"]["header"] = json!({ "type": "text", "text": long(61) });
    let mut with_footer = buttons(json!([button("a", "A")]));
    with_footer["interactive"]["footer"] = json!({ "text": long(61) });
    let mut long_description = list(json!([{ "title": "Mon", "rows": rows(1) }]));
    long_description["interactive"]["action"]["sections"][0]["rows"][0]["description"] =
        json!(long(73));
    let mut long_list_button = list(json!([{ "title": "Mon", "rows": rows(1) }]));
    long_list_button["interactive"]["action"]["button"] = json!(long(21));
    let mut long_list_body = list(json!([{ "title": "Mon", "rows": rows(1) }]));
    long_list_body["interactive"]["body"]["text"] = json!(long(4097));
    let mut ok_list_body = list(json!([{ "title": "Mon", "rows": rows(1) }]));
    ok_list_body["interactive"]["body"]["text"] = json!(long(4096));
    let mut no_product = text_to("+16505551234", "x");
    no_product
        .as_object_mut()
        .map(|body| body.remove("messaging_product"));
    let eleven_sections: Vec<Value> = (0..11)
        .map(|i| json!({ "title": format!("S{i}"), "rows": rows(1) }))
        .collect();

    let cases: Vec<(&str, Value, i64)> = vec![
        ("text at 4096", text_to("+16505551234", &long(4096)), 0),
        ("text at 4097", text_to("+16505551234", &long(4097)), 131009),
        ("empty text", text_to("+16505551234", " "), 131009),
        ("to without +", text_to("16505551234", "x"), 100),
        ("to with letters", text_to("+1650555abcd", "x"), 100),
        ("to too short", text_to("+123", "x"), 100),
        ("no messaging_product", no_product, 131008),
        (
            "three buttons",
            buttons(json!([
                button("a", "A"),
                button("b", "B"),
                button("c", "C")
            ])),
            0,
        ),
        (
            "four buttons",
            buttons(json!([
                button("a", "A"),
                button("b", "B"),
                button("c", "C"),
                button("d", "D")
            ])),
            131009,
        ),
        ("no buttons", buttons(json!([])), 131009),
        (
            "button title at 20",
            buttons(json!([button("a", &long(20))])),
            0,
        ),
        (
            "button title at 21",
            buttons(json!([button("a", &long(21))])),
            131009,
        ),
        (
            "empty button title",
            buttons(json!([button("a", "")])),
            131009,
        ),
        (
            "button id at 256",
            buttons(json!([button(&"x".repeat(256), "A")])),
            0,
        ),
        (
            "button id at 257",
            buttons(json!([button(&"x".repeat(257), "A")])),
            131009,
        ),
        (
            "duplicate button ids",
            buttons(json!([button("a", "A"), button("a", "B")])),
            131009,
        ),
        (
            "duplicate button titles",
            buttons(json!([button("a", "A"), button("b", "A")])),
            131009,
        ),
        ("button footer at 61", with_footer, 131009),
        (
            "ten rows over two sections",
            list(
                json!([{ "title": "Mon", "rows": rows(5) }, { "title": "Tue", "rows": [
            {"id":"t0","title":"a"},{"id":"t1","title":"b"},{"id":"t2","title":"c"},{"id":"t3","title":"d"},{"id":"t4","title":"e"}] }]),
            ),
            0,
        ),
        (
            "eleven rows",
            list(json!([{ "title": "Mon", "rows": rows(11) }])),
            131009,
        ),
        ("no sections", list(json!([])), 131009),
        (
            "eleven sections",
            list(Value::Array(eleven_sections)),
            131009,
        ),
        (
            "section title at 25",
            list(json!([{ "title": long(25), "rows": rows(1) }])),
            131009,
        ),
        (
            "row title at 25",
            list(json!([{ "title": "Mon", "rows": [{ "id": "a", "title": long(25) }] }])),
            131009,
        ),
        (
            "row id at 201",
            list(json!([{ "title": "Mon", "rows": [{ "id": "x".repeat(201), "title": "a" }] }])),
            131009,
        ),
        (
            "duplicate row ids",
            list(
                json!([{ "title": "Mon", "rows": [{ "id": "a", "title": "a" }, { "id": "a", "title": "b" }] }]),
            ),
            131009,
        ),
        ("row description at 73", long_description, 131009),
        ("list button at 21", long_list_button, 131009),
        ("list body at 4097", long_list_body, 131009),
        ("list body at 4096", ok_list_body, 0),
        ("list header at 61", with_header, 131009),
        (
            "missing list body",
            json!({ "messaging_product": "whatsapp", "to": "+16505551234", "type": "interactive",
            "interactive": { "type": "list", "action": { "button": "b", "sections": [{ "title": "s", "rows": rows(1) }] } } }),
            131008,
        ),
    ];
    for (name, body, expected) in cases {
        let answer = post(&fake, body).await;
        if expected == 0 {
            assert_eq!(answer.status, 200, "{name}: {}", answer.body);
        } else {
            assert_eq!(answer.status, 400, "{name}: {}", answer.body);
            assert_eq!(code(&answer), expected, "{name}: {}", answer.body);
            assert!(
                answer.body["error"]["error_data"]["details"].is_string(),
                "{name}"
            );
        }
    }
}

#[tokio::test]
async fn metas_documented_interactive_requests_are_accepted_and_parsed() {
    let fake = start(config()).await;
    fake.open_window(BUSINESS, CUSTOMER);
    for name in [
        "meta-docs-send-interactive-buttons.request",
        "meta-docs-send-interactive-list.request",
    ] {
        let answer = post(&fake, fixture(name)).await;
        assert_eq!(answer.status, 200, "{name}: {}", answer.body);
    }
    let sent = fake.outbox(BUSINESS, CUSTOMER);
    assert!(matches!(&sent[0].message, Outbound::Buttons { buttons, .. } if buttons.len() == 2));
    match &sent[1].message {
        Outbound::List {
            sections, button, ..
        } => {
            assert_eq!(button, "Shipping Options");
            assert_eq!(
                sections[1].rows[0],
                ListRow {
                    id: "usps_ground_advantage".into(),
                    title: "USPS Ground Advantage".into(),
                    description: Some("2–5 Days".into()),
                }
            );
        }
        other => panic!("expected a list, got {other:?}"),
    }
}

fn template(name: &str, language: &str, parameters: &[&str], index: Value) -> Value {
    let parameters: Vec<Value> = parameters
        .iter()
        .map(|text| json!({ "type": "text", "text": text }))
        .collect();
    json!({ "messaging_product": "whatsapp", "recipient_type": "individual", "to": "+16505551234",
            "type": "template", "template": { "name": name, "language": { "code": language },
              "components": [
                { "type": "body", "parameters": parameters },
                { "type": "button", "sub_type": "quick_reply", "index": index,
                  "parameters": [{ "type": "payload", "payload": "confirm:bk_1" }] } ] } })
}

#[tokio::test]
async fn templates_are_checked_against_the_numbers_approved_templates() {
    let fake = start(config()).await;
    // No window is open: templates are the one thing allowed.
    let ok = post(
        &fake,
        template(
            "appointment_reminder",
            "en_US",
            &["Ana", "Mon 10:00"],
            json!("1"),
        ),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let integer_index = post(
        &fake,
        template(
            "appointment_reminder",
            "es",
            &["Ana", "lun 10:00"],
            json!(0),
        ),
    )
    .await;
    assert_eq!(integer_index.status, 200, "{}", integer_index.body);
    let record = &fake.outbox(BUSINESS, CUSTOMER)[0];
    assert_eq!(
        record.message,
        Outbound::Template {
            name: "appointment_reminder".into(),
            language: "en_US".into(),
            body_parameters: vec!["Ana".into(), "Mon 10:00".into()],
            quick_reply_payloads: vec![(1, "confirm:bk_1".into())],
        }
    );

    let missing = post(
        &fake,
        template("no_such_template", "en_US", &["Ana", "x"], json!("0")),
    )
    .await;
    assert_eq!((missing.status, code(&missing)), (404, 132001));
    let wrong_language = post(
        &fake,
        template("appointment_reminder", "fr", &["Ana", "x"], json!("0")),
    )
    .await;
    assert_eq!(
        (wrong_language.status, code(&wrong_language)),
        (404, 132001)
    );
    let too_few = post(
        &fake,
        template("appointment_reminder", "en_US", &["Ana"], json!("0")),
    )
    .await;
    assert_eq!((too_few.status, code(&too_few)), (400, 132000));
    assert_eq!(
        too_few.body["error"]["message"],
        "(#132000) Number of parameters does not match the expected number of params"
    );
    let no_such_button = post(
        &fake,
        template("appointment_reminder", "en_US", &["Ana", "x"], json!("2")),
    )
    .await;
    assert_eq!(
        (no_such_button.status, code(&no_such_button)),
        (400, 131009)
    );
    let counters = fake.counters();
    assert_eq!(counters.accepted, 2);
    assert_eq!(counters.rejected.get(&132001), Some(&2));
    assert_eq!(counters.rejected.get(&132000), Some(&1));
}

#[tokio::test]
async fn free_form_outside_the_window_fails_synchronously_by_default() {
    let fake = start(config()).await;
    let answer = post(&fake, text_to("+16505551234", "hello?")).await;
    assert_eq!((answer.status, code(&answer)), (400, 131047));
    assert_eq!(
        answer.body["error"]["message"],
        "(#131047) Re-engagement message"
    );
    fake.open_window(BUSINESS, CUSTOMER);
    assert_eq!(
        post(&fake, text_to("+16505551234", "hello")).await.status,
        200
    );
    fake.close_window(BUSINESS, CUSTOMER);
    let closed = post(&fake, text_to("+16505551234", "hello again")).await;
    assert_eq!(code(&closed), 131047);
}

#[tokio::test]
async fn the_window_closes_by_itself_after_its_configured_length() {
    let fake = start(FakeConfig {
        customer_service_window: Duration::from_millis(200),
        ..config()
    })
    .await;
    fake.open_window(BUSINESS, CUSTOMER);
    assert!(fake.window_open(BUSINESS, CUSTOMER));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!fake.window_open(BUSINESS, CUSTOMER));
    assert_eq!(
        code(&post(&fake, text_to("+16505551234", "late")).await),
        131047
    );
}

#[tokio::test]
async fn free_form_outside_the_window_can_fail_as_a_status_webhook_instead() {
    let mut receiver = Receiver::start().await;
    let fake = start(FakeConfig {
        outside_window: OutsideWindowMode::AcceptThenFailedStatus,
        webhook_url: Some(receiver.url.clone()),
        statuses: StatusWebhooks {
            sent_after: Duration::from_millis(10),
            ..StatusWebhooks::default()
        },
        ..config()
    })
    .await;
    let answer = post(&fake, text_to("+16505551234", "hello?")).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let wamid = answer.body["messages"][0]["id"]
        .as_str()
        .expect("wamid")
        .to_owned();
    let delivery = receiver.next().await;
    let status = &delivery["entry"][0]["changes"][0]["value"]["statuses"][0];
    assert_eq!(status["id"], wamid.as_str());
    assert_eq!(status["status"], "failed");
    assert_eq!(status["errors"][0]["code"], 131047);
    assert!(status.get("pricing").is_none());
    let record = fake
        .wait_for_status(&wamid, DeliveryState::Failed, WAIT)
        .await
        .expect("recorded");
    assert_eq!(record.error_code, Some(131047));
    assert!(record.acknowledged);
    // A failed message gets no further statuses.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), receiver.deliveries.recv())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn accepted_messages_are_followed_by_sent_delivered_read_webhooks() {
    let mut receiver = Receiver::start().await;
    let fake = start(FakeConfig {
        webhook_url: Some(receiver.url.clone()),
        statuses: StatusWebhooks {
            skip_delivered_probability: 0.0,
            sent_after: Duration::from_millis(10),
            delivered_after: Duration::from_millis(30),
            read_after: Some(Duration::from_millis(50)),
            ..StatusWebhooks::default()
        },
        ..config()
    })
    .await;
    fake.open_window(BUSINESS, CUSTOMER);
    let mut body = text_to("+16505551234", "see you");
    body["biz_opaque_callback_data"] = json!("event-1:step-2");
    let answer = post(&fake, body).await;
    let wamid = answer.body["messages"][0]["id"]
        .as_str()
        .expect("wamid")
        .to_owned();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let delivery = receiver.next().await;
        let value = &delivery["entry"][0]["changes"][0]["value"];
        assert_eq!(value["metadata"]["phone_number_id"], BUSINESS);
        let status = &value["statuses"][0];
        assert_eq!(status["id"], wamid.as_str());
        assert_eq!(status["recipient_id"], CUSTOMER);
        assert_eq!(status["biz_opaque_callback_data"], "event-1:step-2");
        assert!(
            status.get("conversation").is_none(),
            "v24+ has no conversation"
        );
        seen.push(status["status"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(seen, ["sent", "delivered", "read"]);
    assert!(
        fake.wait_for_status(&wamid, DeliveryState::Read, WAIT)
            .await
            .is_some()
    );
}

#[tokio::test]
async fn statuses_due_within_the_batch_window_share_one_delivery() {
    let mut receiver = Receiver::start().await;
    let fake = start(FakeConfig {
        webhook_url: Some(receiver.url.clone()),
        statuses: StatusWebhooks {
            skip_delivered_probability: 0.0,
            sent_after: Duration::from_millis(5),
            delivered_after: Duration::from_millis(10),
            read_after: None,
            batch_window: Duration::from_millis(200),
            ..StatusWebhooks::default()
        },
        ..config()
    })
    .await;
    fake.open_window(BUSINESS, CUSTOMER);
    let mut wamids = Vec::new();
    for text in ["one", "two"] {
        let answer = post(&fake, text_to("+16505551234", text)).await;
        wamids.push(
            answer.body["messages"][0]["id"]
                .as_str()
                .expect("wamid")
                .to_owned(),
        );
    }
    let delivery = receiver.next().await;
    let value = &delivery["entry"][0]["changes"][0]["value"];
    assert_eq!(value["metadata"]["phone_number_id"], BUSINESS);
    let statuses: Vec<(String, String)> = value["statuses"]
        .as_array()
        .expect("statuses array")
        .iter()
        .map(|status| {
            (
                status["id"].as_str().unwrap_or_default().to_owned(),
                status["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(statuses.len(), 4, "{statuses:?}");
    for wamid in &wamids {
        let states: Vec<&str> = statuses
            .iter()
            .filter(|(id, _)| id == wamid)
            .map(|(_, state)| state.as_str())
            .collect();
        assert_eq!(states, ["sent", "delivered"]);
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(300), receiver.deliveries.recv())
            .await
            .is_err(),
        "every status travelled in the one batch"
    );
    let record = fake
        .wait_for_status(&wamids[1], DeliveryState::Delivered, WAIT)
        .await
        .expect("recorded");
    assert!(record.acknowledged);
}

#[tokio::test]
async fn read_can_follow_sent_directly() {
    let mut receiver = Receiver::start().await;
    let fake = start(FakeConfig {
        webhook_url: Some(receiver.url.clone()),
        statuses: StatusWebhooks {
            skip_delivered_probability: 1.0,
            sent_after: Duration::from_millis(10),
            read_after: Some(Duration::from_millis(30)),
            shape: StatusShape::Legacy,
            ..StatusWebhooks::default()
        },
        ..config()
    })
    .await;
    fake.open_window(BUSINESS, CUSTOMER);
    let wamid = post(&fake, text_to("+16505551234", "x")).await.body["messages"][0]["id"].clone();
    let first = receiver.next_status().await;
    let second = receiver.next_status().await;
    assert_eq!(
        first,
        (
            wamid.as_str().unwrap_or_default().to_owned(),
            "sent".to_owned()
        )
    );
    assert_eq!(second.1, "read");
}

#[tokio::test]
async fn unreachable_recipients_fail_after_acceptance_with_131026() {
    let mut receiver = Receiver::start().await;
    let fake = start(FakeConfig {
        webhook_url: Some(receiver.url.clone()),
        statuses: StatusWebhooks {
            sent_after: Duration::from_millis(10),
            ..StatusWebhooks::default()
        },
        ..config()
    })
    .await;
    fake.set_unreachable(CUSTOMER);
    let answer = post(
        &fake,
        template("appointment_reminder", "en_US", &["a", "b"], json!("0")),
    )
    .await;
    assert_eq!(answer.status, 200);
    let delivery = receiver.next().await;
    assert_eq!(
        delivery["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"][0]["code"],
        131026
    );
}

#[tokio::test]
async fn customers_write_through_signed_webhooks_that_open_the_window() {
    let mut receiver = Receiver::start().await;
    let fake = start(FakeConfig {
        webhook_url: Some(receiver.url.clone()),
        ..config()
    })
    .await;
    let ana = Customer::new(CUSTOMER, "Ana");
    let wamid = fake
        .customer_text(BUSINESS, &ana, "¿tenéis hueco mañana?")
        .await
        .expect("delivered");
    let delivery = receiver.next().await;
    let value = &delivery["entry"][0]["changes"][0]["value"];
    assert_eq!(delivery["entry"][0]["id"], "102290129340398");
    assert_eq!(value["messages"][0]["id"], wamid.as_str());
    assert_eq!(
        value["messages"][0]["text"]["body"],
        "¿tenéis hueco mañana?"
    );
    assert_eq!(value["contacts"][0]["profile"]["name"], "Ana");
    assert_same_shape(
        &delivery,
        &fixture("meta-docs-text-message"),
        "delivered text",
    );
    assert!(fake.window_open(BUSINESS, CUSTOMER));

    // The business replies with buttons; the customer taps one.
    let answer = post(
        &fake,
        buttons(json!([
            button("slot-1", "Mon 10:00"),
            button("slot-2", "Mon 11:00")
        ])),
    )
    .await;
    let buttons_wamid = answer.body["messages"][0]["id"]
        .as_str()
        .expect("wamid")
        .to_owned();
    fake.customer_button_reply(BUSINESS, &ana, "slot-1", "Mon 10:00", &buttons_wamid)
        .await
        .expect("tap");
    let tap = receiver.next().await;
    let message = &tap["entry"][0]["changes"][0]["value"]["messages"][0];
    assert_eq!(message["context"]["id"], buttons_wamid.as_str());
    assert_eq!(message["context"]["from"], "15550783881");
    assert_eq!(message["interactive"]["button_reply"]["id"], "slot-1");

    let row = ListRow {
        id: "slot-3".into(),
        title: "Tue 9:00".into(),
        description: None,
    };
    fake.customer_list_reply(BUSINESS, &ana, &row, &buttons_wamid)
        .await
        .expect("list");
    assert_eq!(
        receiver.next().await["entry"][0]["changes"][0]["value"]["messages"][0]["interactive"]["list_reply"]
            ["id"],
        "slot-3"
    );
    fake.customer_template_button(BUSINESS, &ana, "confirm:bk_1", "Confirm", None)
        .await
        .expect("button");
    let tapped = receiver.next().await;
    assert_eq!(
        tapped["entry"][0]["changes"][0]["value"]["messages"][0]["button"]["payload"],
        "confirm:bk_1"
    );
    fake.customer_location(BUSINESS, &ana, 40.4, -3.7, None)
        .await
        .expect("location");
    assert_eq!(
        receiver.next().await["entry"][0]["changes"][0]["value"]["messages"][0]["location"]["latitude"],
        40.4
    );
    fake.customer_image(BUSINESS, &ana, Some("my car"))
        .await
        .expect("image");
    assert_eq!(
        receiver.next().await["entry"][0]["changes"][0]["value"]["messages"][0]["type"],
        "image"
    );
    fake.customer_reaction(BUSINESS, &ana, &buttons_wamid, Some("👍"))
        .await
        .expect("reaction");
    assert_eq!(
        receiver.next().await["entry"][0]["changes"][0]["value"]["messages"][0]["reaction"]["emoji"],
        "👍"
    );
    fake.customer_unsupported(BUSINESS, &ana, Some("poll_creation"))
        .await
        .expect("unsupported");
    assert_eq!(
        receiver.next().await["entry"][0]["changes"][0]["value"]["messages"][0]["errors"][0]["code"],
        131051
    );
    assert_eq!(fake.counters().webhooks_acknowledged, 8);
}

#[tokio::test]
async fn several_updates_can_arrive_in_one_delivery() {
    let mut receiver = Receiver::start().await;
    let fake = start(FakeConfig {
        webhook_url: Some(receiver.url.clone()),
        ..config()
    })
    .await;
    let batch = vec![
        (
            Customer::new("34600000001", "Ana"),
            CustomerMessage::Text { body: "uno".into() },
            None,
        ),
        (
            Customer::new("34600000002", "Luis"),
            CustomerMessage::Text { body: "dos".into() },
            None,
        ),
        (
            Customer::bsuid_only("ES.1234", "Eva"),
            CustomerMessage::Text {
                body: "tres".into(),
            },
            None,
        ),
    ];
    let wamids = fake
        .customer_batch(BUSINESS, batch)
        .await
        .expect("delivered");
    assert_eq!(wamids.len(), 3);
    let delivery = receiver.next().await;
    let changes = delivery["entry"][0]["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 3);
    for (change, wamid) in changes.iter().zip(&wamids) {
        assert_eq!(change["value"]["messages"][0]["id"], wamid.as_str());
    }
    assert!(changes[2]["value"]["contacts"][0].get("wa_id").is_none());
    assert!(fake.window_open(BUSINESS, "ES.1234"));
    assert!(fake.window_open(BUSINESS, "34600000002"));
}

#[tokio::test]
async fn a_failing_webhook_endpoint_is_retried_then_reported() {
    let receiver = Receiver::start().await;
    receiver.answer.store(503, Ordering::SeqCst);
    let fake = start(FakeConfig {
        webhook_url: Some(receiver.url.clone()),
        webhook_delivery: fakes::whatsapp::WebhookDelivery {
            attempts: 3,
            retry_after: Duration::from_millis(10),
            timeout: Duration::from_secs(2),
        },
        ..config()
    })
    .await;
    let outcome = fake
        .customer_text(BUSINESS, &Customer::new(CUSTOMER, "Ana"), "hi")
        .await;
    assert!(
        matches!(
            outcome,
            Err(fakes::whatsapp::DeliveryError::Rejected {
                status: 503,
                attempts: 3
            })
        ),
        "{outcome:?}"
    );
    assert_eq!(fake.counters().webhooks_failed, 1);
    // The customer did write, so the window is open even though nobody heard them.
    assert!(fake.window_open(BUSINESS, CUSTOMER));
}

#[tokio::test]
async fn mark_as_read_and_typing_indicator_answer_success() {
    let receiver = Receiver::start().await;
    let fake = start(FakeConfig {
        webhook_url: Some(receiver.url.clone()),
        ..config()
    })
    .await;
    let inbound = fake
        .customer_text(BUSINESS, &Customer::new(CUSTOMER, "Ana"), "hi")
        .await
        .expect("delivered");
    let mut read = fixture("meta-docs-mark-as-read.request");
    read["message_id"] = json!(inbound);
    let answer = post(&fake, read.clone()).await;
    assert_eq!(
        (answer.status, answer.body.clone()),
        (200, fixture("meta-docs-mark-as-read.response"))
    );
    read["typing_indicator"] = json!({ "type": "text" });
    assert_eq!(post(&fake, read).await.body, json!({ "success": true }));
    let unknown = post(
        &fake,
        json!({ "messaging_product": "whatsapp", "status": "read", "message_id": "wamid.nope" }),
    )
    .await;
    assert_eq!((unknown.status, code(&unknown)), (400, 100));
    let marks = fake.read_marks();
    assert_eq!(marks.len(), 2);
    assert!(marks[1].typing_indicator);
    let counters = fake.counters();
    assert_eq!((counters.read_marks, counters.typing_indicators), (2, 1));
}

#[tokio::test]
async fn throughput_per_number_is_limited_with_130429() {
    let fake = start(FakeConfig {
        limits: Limits {
            throughput_per_second: 5,
            ..Limits::default()
        },
        ..config()
    })
    .await;
    let mut answers = Vec::new();
    for i in 0..6 {
        let customer = format!("3460000000{i}");
        fake.open_window(BUSINESS, &customer);
        answers.push(post(&fake, text_to(&format!("+{customer}"), "x")).await);
    }
    assert!(answers[..5].iter().all(|answer| answer.status == 200));
    let limited = &answers[5];
    assert_eq!((limited.status, code(limited)), (400, 130429));
    assert_same_shape(
        &limited.body,
        &fixture("graph-error-130429.response"),
        "130429",
    );
    assert_eq!(limited.body["error"]["message"], "(#130429) Rate limit hit");
    tokio::time::sleep(Duration::from_millis(250)).await;
    fake.open_window(BUSINESS, "34600000009");
    assert_eq!(
        post(&fake, text_to("+34600000009", "x")).await.status,
        200,
        "refilled after a while"
    );
}

#[tokio::test]
async fn pair_rate_is_limited_per_customer_with_131056() {
    let fake = start(FakeConfig {
        limits: Limits {
            pair_burst: 3,
            pair_interval: Duration::from_millis(300),
            ..Limits::default()
        },
        ..config()
    })
    .await;
    fake.open_window(BUSINESS, CUSTOMER);
    fake.open_window(BUSINESS, "34600000001");
    for _ in 0..3 {
        assert_eq!(post(&fake, text_to("+16505551234", "x")).await.status, 200);
    }
    let limited = post(&fake, text_to("+16505551234", "x")).await;
    assert_eq!((limited.status, code(&limited)), (400, 131056));
    assert_eq!(
        post(&fake, text_to("+34600000001", "other customer"))
            .await
            .status,
        200
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        post(&fake, text_to("+16505551234", "earned back"))
            .await
            .status,
        200
    );
    assert_eq!(fake.counters().rejected.get(&131056), Some(&1));
    assert_eq!(fake.outbox(BUSINESS, CUSTOMER).len(), 4);
}

#[tokio::test]
async fn injected_faults_use_graphs_statuses_and_shapes() {
    let fake = start(config()).await;
    fake.open_window(BUSINESS, CUSTOMER);
    fake.inject([
        InjectedFault::GraphError(4),
        InjectedFault::GraphError(131000),
        InjectedFault::GraphError(133004),
        InjectedFault::GraphError(2),
        InjectedFault::BareStatus(502),
    ]);
    let mut seen = Vec::new();
    for _ in 0..5 {
        let answer = post(&fake, text_to("+16505551234", "x")).await;
        seen.push((answer.status, code(&answer)));
    }
    assert_eq!(
        seen,
        [(429, 4), (500, 131000), (503, 133004), (503, 2), (502, 0)]
    );
    assert_eq!(post(&fake, text_to("+16505551234", "x")).await.status, 200);
    assert_eq!(fake.counters().accepted, 1);
}

#[tokio::test]
async fn hangs_outlast_a_client_timeout_and_slow_answers_still_succeed() {
    let fake = start(config()).await;
    fake.open_window(BUSINESS, CUSTOMER);
    fake.inject([
        InjectedFault::Hang(Duration::from_secs(30)),
        InjectedFault::Slow(Duration::from_millis(300)),
    ]);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .expect("client");
    let url = format!("{}/{BUSINESS}/messages", fake.graph_base_url());
    let hung = client
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&text_to("+16505551234", "x"))
        .send()
        .await;
    assert!(hung.is_err_and(|error| error.is_timeout()));
    let started = tokio::time::Instant::now();
    let slow = reqwest::Client::new()
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&text_to("+16505551234", "x"))
        .send()
        .await
        .expect("answer");
    assert_eq!(slow.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(fake.counters().hangs, 1);
}

#[tokio::test]
async fn random_fault_rates_apply_to_every_request() {
    let fake = start(FakeConfig {
        faults: Faults {
            too_many_calls: 1.0,
            ..Faults::default()
        },
        ..config()
    })
    .await;
    fake.open_window(BUSINESS, CUSTOMER);
    for _ in 0..3 {
        assert_eq!(code(&post(&fake, text_to("+16505551234", "x")).await), 4);
    }
    fake.set_faults(Faults {
        server_error: 1.0,
        ..Faults::default()
    });
    let answer = post(&fake, text_to("+16505551234", "x")).await;
    assert!(answer.status >= 500, "{}", answer.body);
    assert!([131000, 133004, 2].contains(&code(&answer)));
    fake.set_faults(Faults::default());
    assert_eq!(post(&fake, text_to("+16505551234", "x")).await.status, 200);
}

#[tokio::test]
async fn shutdown_ends_hanging_requests() {
    let fake = start(config()).await;
    fake.open_window(BUSINESS, CUSTOMER);
    fake.inject([InjectedFault::Hang(Duration::from_secs(60))]);
    let url = format!("{}/{BUSINESS}/messages", fake.graph_base_url());
    let hanging = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .bearer_auth(TOKEN)
            .json(&text_to("+16505551234", "x"))
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    tokio::time::timeout(Duration::from_secs(5), fake.shutdown())
        .await
        .expect("shutdown does not wait for the hang")
        .expect("server ends cleanly");
    let _ = hanging.await;
}
