//! Outbound request bodies and the answers of `POST /<PHONE_NUMBER_ID>/messages`
//! (WIRE.md A4, A5). Field order follows Meta's examples so serialized bodies read the same.

use serde::{Deserialize, Serialize};

/// The only value Meta accepts in `messaging_product`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum MessagingProduct {
    #[default]
    #[serde(rename = "whatsapp")]
    WhatsApp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecipientType {
    #[default]
    Individual,
}

/// A message to one customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboundMessage {
    pub messaging_product: MessagingProduct,
    pub recipient_type: RecipientType,
    /// `+` and country code; without `+` Meta prepends the business's country code.
    pub to: String,
    #[serde(flatten)]
    pub content: Content,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<ReplyContext>,
    /// Echoed back in this message's status webhooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub biz_opaque_callback_data: Option<String>,
}

impl OutboundMessage {
    pub fn new(to: impl Into<String>, content: Content) -> Self {
        Self {
            messaging_product: MessagingProduct::WhatsApp,
            recipient_type: RecipientType::Individual,
            to: to.into(),
            content,
            context: None,
            biz_opaque_callback_data: None,
        }
    }

    pub fn text(to: impl Into<String>, body: impl Into<String>) -> Self {
        Self::new(
            to,
            Content::Text {
                text: Text {
                    preview_url: false,
                    body: body.into(),
                },
            },
        )
    }

    pub fn interactive(to: impl Into<String>, interactive: Interactive) -> Self {
        Self::new(to, Content::Interactive { interactive })
    }

    pub fn template(to: impl Into<String>, template: Template) -> Self {
        Self::new(to, Content::Template { template })
    }

    /// Shows the message as a reply to `wamid` in the customer's chat.
    pub fn in_reply_to(mut self, wamid: impl Into<String>) -> Self {
        self.context = Some(ReplyContext {
            message_id: wamid.into(),
        });
        self
    }

    pub fn with_callback_data(mut self, data: impl Into<String>) -> Self {
        self.biz_opaque_callback_data = Some(data.into());
        self
    }

    /// Free-form messages need an open customer-service window; templates do not.
    pub fn is_free_form(&self) -> bool {
        !matches!(self.content, Content::Template { .. })
    }
}

/// `"type": "<kind>", "<kind>": {...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Content {
    Text { text: Text },
    Interactive { interactive: Interactive },
    Template { template: Template },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Text {
    #[serde(default)]
    pub preview_url: bool,
    /// At most 4096 characters.
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplyContext {
    pub message_id: String,
}

/// Reply buttons or a list; the customer's tap comes back with the id chosen here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Interactive {
    Button {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<Header>,
        /// At most 1024 characters.
        body: BodyText,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        footer: Option<FooterText>,
        action: ButtonAction,
    },
    List {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<Header>,
        /// At most 4096 characters.
        body: BodyText,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        footer: Option<FooterText>,
        action: ListAction,
    },
}

impl Interactive {
    /// 1..=3 buttons, each `(id ≤ 256, title 1..=20)`, ids and titles unique.
    pub fn buttons(body: impl Into<String>, buttons: Vec<ReplyButton>) -> Self {
        Self::Button {
            header: None,
            body: BodyText { text: body.into() },
            footer: None,
            action: ButtonAction {
                buttons: buttons.into_iter().map(ButtonEntry::reply).collect(),
            },
        }
    }

    /// `button` ≤ 20, 1..=10 sections, 1..=10 rows in total.
    pub fn list(
        body: impl Into<String>,
        button: impl Into<String>,
        sections: Vec<ListSection>,
    ) -> Self {
        Self::List {
            header: None,
            body: BodyText { text: body.into() },
            footer: None,
            action: ListAction {
                button: button.into(),
                sections,
            },
        }
    }

    pub fn with_header_text(mut self, text: impl Into<String>) -> Self {
        let new_header = Some(Header::Text { text: text.into() });
        match &mut self {
            Self::Button { header, .. } | Self::List { header, .. } => *header = new_header,
        }
        self
    }

    /// At most 60 characters.
    pub fn with_footer(mut self, text: impl Into<String>) -> Self {
        let new_footer = Some(FooterText { text: text.into() });
        match &mut self {
            Self::Button { footer, .. } | Self::List { footer, .. } => *footer = new_footer,
        }
        self
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Header {
    /// At most 60 characters.
    Text {
        text: String,
    },
    /// Reply-button messages only.
    Image {
        image: MediaRef,
    },
    Video {
        video: MediaRef,
    },
    Document {
        document: MediaRef,
    },
}

/// An uploaded media id or a public link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BodyText {
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FooterText {
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ButtonAction {
    pub buttons: Vec<ButtonEntry>,
}

/// `{"type": "reply", "reply": {...}}`: Meta's only button type for these messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ButtonEntry {
    Reply { reply: ReplyButton },
}

impl ButtonEntry {
    pub fn reply(reply: ReplyButton) -> Self {
        Self::Reply { reply }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplyButton {
    pub id: String,
    pub title: String,
}

impl ReplyButton {
    pub fn new(id: impl Into<String>, title: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            title: title.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListAction {
    /// The label of the button that opens the list; at most 20 characters.
    pub button: String,
    pub sections: Vec<ListSection>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListSection {
    /// At most 24 characters.
    pub title: String,
    pub rows: Vec<ListRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListRow {
    /// At most 200 characters, unique in the message.
    pub id: String,
    /// At most 24 characters.
    pub title: String,
    /// At most 72 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl ListRow {
    pub fn new(
        id: impl Into<String>,
        title: impl Into<String>,
        description: Option<String>,
    ) -> Self {
        Self {
            id: id.into(),
            title: title.into(),
            description,
        }
    }
}

/// An approved template: the only message allowed outside the customer-service window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Template {
    pub name: String,
    pub language: Language,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<TemplateComponent>,
}

impl Template {
    /// `body_parameters` fill `{{1}}`, `{{2}}`, … in order and must match the approved
    /// count (else 132000); `quick_reply_payloads[i]` is what a tap on button `i` returns.
    pub fn new(
        name: impl Into<String>,
        language_code: impl Into<String>,
        body_parameters: Vec<String>,
        quick_reply_payloads: Vec<String>,
    ) -> Self {
        let mut components = Vec::new();
        if !body_parameters.is_empty() {
            components.push(TemplateComponent::Body {
                parameters: body_parameters
                    .into_iter()
                    .map(|text| TextParameter::Text {
                        text,
                        parameter_name: None,
                    })
                    .collect(),
            });
        }
        for (index, payload) in quick_reply_payloads.into_iter().enumerate() {
            components.push(TemplateComponent::Button {
                sub_type: ButtonSubType::QuickReply,
                index: index.to_string(),
                parameters: vec![ButtonParameter::Payload { payload }],
            });
        }
        Self {
            name: name.into(),
            language: Language {
                code: language_code.into(),
            },
            components,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Language {
    /// Exactly as approved, e.g. `en_US`, `es`.
    pub code: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum TemplateComponent {
    Body {
        parameters: Vec<TextParameter>,
    },
    Button {
        sub_type: ButtonSubType,
        /// Button position; Meta's examples send it as a string.
        index: String,
        parameters: Vec<ButtonParameter>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum TextParameter {
    Text {
        text: String,
        /// For templates with named variables.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parameter_name: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ButtonSubType {
    QuickReply,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ButtonParameter {
    Payload { payload: String },
}

/// Mark an inbound message (and the ones before it) read, optionally showing "typing…".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarkRead {
    pub messaging_product: MessagingProduct,
    pub status: ReadStatus,
    pub message_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typing_indicator: Option<TypingIndicator>,
}

impl MarkRead {
    pub fn new(message_id: impl Into<String>, typing: bool) -> Self {
        Self {
            messaging_product: MessagingProduct::WhatsApp,
            status: ReadStatus::Read,
            message_id: message_id.into(),
            typing_indicator: typing.then_some(TypingIndicator {
                kind: TypingKind::Text,
            }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadStatus {
    Read,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TypingIndicator {
    #[serde(rename = "type")]
    pub kind: TypingKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TypingKind {
    Text,
}

/// HTTP 200 of a send: accepted, not delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendResponse {
    pub messaging_product: MessagingProduct,
    #[serde(default)]
    pub contacts: Vec<SendContact>,
    pub messages: Vec<SentMessage>,
}

impl SendResponse {
    pub fn wamid(&self) -> Option<&str> {
        self.messages.first().map(|message| message.id.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendContact {
    pub input: String,
    pub wa_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentMessage {
    pub id: String,
    /// Only for templates under template pacing; values not fully documented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_status: Option<String>,
}

/// HTTP 200 of a mark-as-read or typing indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuccessResponse {
    pub success: bool,
}

/// `{"error": {...}}` of any failed Graph call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphErrorEnvelope {
    pub error: GraphError,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphError {
    /// `(#<code>) <title>`; Meta asks integrators to branch on `code` and details instead.
    #[serde(default)]
    pub message: String,
    #[serde(rename = "type", default)]
    pub error_type: Option<String>,
    pub code: i64,
    /// Deprecated since v16 but still sent for some codes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_subcode: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_data: Option<GraphErrorData>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_transient: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fbtrace_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphErrorData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messaging_product: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}
