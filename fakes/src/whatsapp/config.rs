//! What a test or the sandbox can tune about the fake.

use std::time::Duration;

/// Everything the fake needs to know up front. `Default` is a strict, fault-free Meta.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// The only bearer token accepted; anything else answers code 190, HTTP 401.
    pub access_token: String,
    /// Key of `X-Hub-Signature-256` on every webhook the fake delivers.
    pub app_secret: String,
    /// Where webhooks go (the ingress `POST /webhook`); can also be set later.
    pub webhook_url: Option<String>,
    /// Phone numbers the fake knows; sends to other ids answer code 100 subcode 33.
    pub businesses: Vec<BusinessNumber>,
    pub limits: Limits,
    /// Customer-service window length; shorter values let tests watch it close.
    pub customer_service_window: Duration,
    pub outside_window: OutsideWindowMode,
    pub statuses: StatusWebhooks,
    pub faults: Faults,
    pub webhook_delivery: WebhookDelivery,
    /// Meta prepends the business's country code to a `to` without `+` and misdelivers;
    /// rejecting it (code 100) surfaces that client bug instead of hiding it.
    pub require_plus_in_to: bool,
    /// Seeds fault injection and status variation so a failing run can be replayed.
    pub seed: Option<u64>,
}

impl Default for FakeConfig {
    fn default() -> Self {
        Self {
            access_token: "fake-whatsapp-token".to_owned(),
            app_secret: "fake-app-secret".to_owned(),
            webhook_url: None,
            businesses: Vec::new(),
            limits: Limits::default(),
            customer_service_window: Duration::from_secs(24 * 60 * 60),
            outside_window: OutsideWindowMode::SyncError,
            statuses: StatusWebhooks::default(),
            faults: Faults::default(),
            webhook_delivery: WebhookDelivery::default(),
            require_plus_in_to: true,
            seed: None,
        }
    }
}

/// One business phone number as Meta knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct BusinessNumber {
    /// The id in `POST /<PHONE_NUMBER_ID>/messages` and `metadata.phone_number_id`.
    pub phone_number_id: String,
    /// `metadata.display_phone_number`, also `context.from` of customer replies.
    pub display_phone_number: String,
    /// `entry[].id` of every webhook for this number.
    pub waba_id: String,
    /// Approved templates; a template send is checked against these.
    pub templates: Vec<TemplateSpec>,
}

impl BusinessNumber {
    pub fn new(phone_number_id: &str, display_phone_number: &str) -> Self {
        Self {
            phone_number_id: phone_number_id.to_owned(),
            display_phone_number: display_phone_number.to_owned(),
            waba_id: format!("10{phone_number_id}"),
            templates: Vec::new(),
        }
    }

    pub fn with_template(mut self, template: TemplateSpec) -> Self {
        self.templates.push(template);
        self
    }
}

/// An approved template in one language.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateSpec {
    pub name: String,
    /// Language code exactly as sent in `template.language.code`, e.g. `en_US`, `es`.
    pub language: String,
    /// Number of `{{n}}` variables in the body; a different count answers 132000.
    pub body_parameters: usize,
    /// Number of quick-reply buttons; a button component with a higher index is rejected.
    pub quick_reply_buttons: usize,
}

impl TemplateSpec {
    pub fn new(name: &str, language: &str, body_parameters: usize) -> Self {
        Self {
            name: name.to_owned(),
            language: language.to_owned(),
            body_parameters,
            quick_reply_buttons: 0,
        }
    }

    pub fn with_quick_replies(mut self, count: usize) -> Self {
        self.quick_reply_buttons = count;
        self
    }
}

/// Meta's throughput and pair-rate limits (WIRE.md A5).
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Messages per second per business number before 130429; Meta's default is 80.
    pub throughput_per_second: u32,
    /// Messages a pair may send at once before 131056; Meta allows bursts of 45.
    pub pair_burst: u32,
    /// One pair message is earned back every interval; Meta's is 6 s.
    pub pair_interval: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            throughput_per_second: 80,
            pair_burst: 45,
            pair_interval: Duration::from_secs(6),
        }
    }
}

/// Where a free-form send outside the customer-service window fails: sources disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutsideWindowMode {
    /// HTTP 400 with code 131047 on the send itself.
    SyncError,
    /// HTTP 200 with a wamid, then a `failed` status webhook with code 131047.
    AcceptThenFailedStatus,
}

/// Which status webhook layout the fake emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusShape {
    /// `id`, `status`, `timestamp`, `recipient_id` only (Meta's v24+ example).
    Minimal,
    /// v24+ with PMP `pricing` on `sent` and `delivered`, no `conversation`.
    Pmp,
    /// Pre-v24: `conversation` and `pricing` on sent/delivered/read.
    Legacy,
}

/// The status webhooks the fake sends for each accepted message.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusWebhooks {
    /// Off means accepted messages produce no status webhooks at all.
    pub enabled: bool,
    pub sent_after: Duration,
    pub delivered_after: Duration,
    /// `None`: the customer never opens the chat, so no `read` status.
    pub read_after: Option<Duration>,
    /// Meta skips `delivered` when a message is read at once (sent → read).
    pub skip_delivered_probability: f64,
    /// Probability that an accepted message fails afterwards with `failure_code`.
    pub failure_probability: f64,
    pub failure_code: i64,
    pub shape: StatusShape,
    /// Meta aggregates updates into one POST of up to 1,000 ("batching cannot be
    /// guaranteed"). Non-zero: statuses for one business number that fall due within this
    /// window travel together in one delivery. Zero: every status is its own POST.
    pub batch_window: Duration,
}

impl Default for StatusWebhooks {
    fn default() -> Self {
        Self {
            enabled: true,
            sent_after: Duration::from_millis(20),
            delivered_after: Duration::from_millis(40),
            read_after: Some(Duration::from_millis(80)),
            skip_delivered_probability: 0.1,
            failure_probability: 0.0,
            failure_code: 131026,
            shape: StatusShape::Pmp,
            batch_window: Duration::ZERO,
        }
    }
}

/// Random failures of the send endpoint, drawn per request after the token check.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// HTTP 429 with code 4 (application request limit).
    pub too_many_calls: f64,
    /// HTTP 5xx, one of codes 131000, 133004, 2.
    pub server_error: f64,
    /// No answer for `hang_for`, longer than any sane client timeout.
    pub hang: f64,
    pub hang_for: Duration,
    /// A normal answer after `slow_by`.
    pub slow: f64,
    pub slow_by: Duration,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            too_many_calls: 0.0,
            server_error: 0.0,
            hang: 0.0,
            hang_for: Duration::from_secs(120),
            slow: 0.0,
            slow_by: Duration::from_millis(800),
        }
    }
}

/// One fault forced onto the next send request, for deterministic tests.
#[derive(Debug, Clone, PartialEq)]
pub enum InjectedFault {
    /// Answer with this Graph error code (its documented HTTP status and shape).
    GraphError(i64),
    /// An HTTP status with a body that is not Graph JSON, as a proxy in front of Meta would.
    BareStatus(u16),
    Hang(Duration),
    Slow(Duration),
}

/// How the fake delivers webhooks; Meta retries a non-200 for days, the fake briefly.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookDelivery {
    pub attempts: u32,
    pub retry_after: Duration,
    pub timeout: Duration,
}

impl Default for WebhookDelivery {
    fn default() -> Self {
        Self {
            attempts: 3,
            retry_after: Duration::from_millis(200),
            timeout: Duration::from_secs(5),
        }
    }
}
