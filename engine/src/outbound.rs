//! Messages the bot sends, valid by construction.
//!
//! Every limit WhatsApp enforces on interactive messages (WIRE.md A4) is checked by the
//! constructors here, so an over-long button title or an eleventh list row is a `Result::Err`
//! at the point where the message is built, never a 400 from Graph after the customer has been
//! left waiting. Fields are private for that reason; accessors expose them for mapping to the
//! wire body, and `Deserialize` re-runs the same checks.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Longest text body WhatsApp accepts in a text message.
pub const MAX_TEXT_BODY: usize = 4096;
/// Longest body of a reply-buttons message.
pub const MAX_BUTTONS_BODY: usize = 1024;
/// Longest body of a list message.
pub const MAX_LIST_BODY: usize = 4096;
/// Longest header or footer text of an interactive message.
pub const MAX_HEADER_FOOTER: usize = 60;
/// Most reply buttons in one message.
pub const MAX_BUTTONS: usize = 3;
/// Longest reply-button title.
pub const MAX_BUTTON_TITLE: usize = 20;
/// Longest reply-button id.
pub const MAX_BUTTON_ID: usize = 256;
/// Most rows in one list, across all sections.
pub const MAX_LIST_ROWS: usize = 10;
/// Most sections in one list.
pub const MAX_LIST_SECTIONS: usize = 10;
/// Longest list row title.
pub const MAX_ROW_TITLE: usize = 24;
/// Longest list row description.
pub const MAX_ROW_DESCRIPTION: usize = 72;
/// Longest list row id.
pub const MAX_ROW_ID: usize = 200;
/// Longest list section title.
pub const MAX_SECTION_TITLE: usize = 24;
/// Longest label of the button that opens a list.
pub const MAX_LIST_BUTTON: usize = 20;

/// Why a message could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MessageError {
    #[error("{what} must not be empty")]
    Empty { what: &'static str },
    #[error("{what} is {len} characters, the limit is {max}")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{what}: {count} given, the limit is {max}")]
    TooMany {
        what: &'static str,
        count: usize,
        max: usize,
    },
    #[error("{what} `{value}` appears twice")]
    Duplicate { what: &'static str, value: String },
}

fn check_text(what: &'static str, text: &str, max: usize) -> Result<(), MessageError> {
    if text.trim().is_empty() {
        return Err(MessageError::Empty { what });
    }
    // WhatsApp counts characters, not bytes: "Sáb 17 ene" must not be rejected for its accent.
    let len = text.chars().count();
    if len > max {
        return Err(MessageError::TooLong { what, len, max });
    }
    Ok(())
}

fn check_optional(
    what: &'static str,
    text: &Option<String>,
    max: usize,
) -> Result<(), MessageError> {
    match text {
        Some(text) => check_text(what, text, max),
        None => Ok(()),
    }
}

/// One message to one customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutboundMessage {
    Text(Text),
    ReplyButtons(ReplyButtons),
    List(List),
    Template(Template),
}

impl OutboundMessage {
    /// Whether WhatsApp accepts this message outside the 24-hour customer-service window.
    pub fn is_template(&self) -> bool {
        matches!(self, OutboundMessage::Template(_))
    }

    /// The customer-visible text of the message (body, or template name and parameters), for
    /// transcripts handed to a person and for tests.
    pub fn visible_text(&self) -> String {
        match self {
            OutboundMessage::Text(text) => text.body.clone(),
            OutboundMessage::ReplyButtons(buttons) => buttons.body.clone(),
            OutboundMessage::List(list) => list.body.clone(),
            OutboundMessage::Template(template) => {
                format!(
                    "[{}] {}",
                    template.name,
                    template.body_parameters.join(" | ")
                )
            }
        }
    }
}

/// A plain text message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Text {
    /// What the customer reads.
    body: String,
}

impl Text {
    pub fn new(body: impl Into<String>) -> Result<Self, MessageError> {
        let body = body.into();
        check_text("text body", &body, MAX_TEXT_BODY)?;
        Ok(Text { body })
    }

    pub fn body(&self) -> &str {
        &self.body
    }
}

/// A tappable reply button.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Button {
    /// Machine id echoed back on tap, so the tap is never guessed from its label.
    id: String,
    /// Label on the button.
    title: String,
}

impl Button {
    pub fn new(id: impl Into<String>, title: impl Into<String>) -> Result<Self, MessageError> {
        let (id, title) = (id.into(), title.into());
        check_text("button id", &id, MAX_BUTTON_ID)?;
        check_text("button title", &title, MAX_BUTTON_TITLE)?;
        Ok(Button { id, title })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn title(&self) -> &str {
        &self.title
    }
}

/// A message with up to three reply buttons.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplyButtons {
    /// The question the buttons answer.
    body: String,
    /// Optional small print under the body (for example the hold expiry).
    footer: Option<String>,
    /// One to three buttons with distinct ids and titles.
    buttons: Vec<Button>,
}

impl ReplyButtons {
    pub fn new(
        body: impl Into<String>,
        footer: Option<String>,
        buttons: Vec<Button>,
    ) -> Result<Self, MessageError> {
        let body = body.into();
        check_text("buttons body", &body, MAX_BUTTONS_BODY)?;
        check_optional("footer", &footer, MAX_HEADER_FOOTER)?;
        if buttons.is_empty() {
            return Err(MessageError::Empty { what: "buttons" });
        }
        if buttons.len() > MAX_BUTTONS {
            return Err(MessageError::TooMany {
                what: "buttons",
                count: buttons.len(),
                max: MAX_BUTTONS,
            });
        }
        for (index, button) in buttons.iter().enumerate() {
            for earlier in &buttons[..index] {
                if earlier.id == button.id {
                    return Err(MessageError::Duplicate {
                        what: "button id",
                        value: button.id.clone(),
                    });
                }
                if earlier.title == button.title {
                    return Err(MessageError::Duplicate {
                        what: "button title",
                        value: button.title.clone(),
                    });
                }
            }
        }
        Ok(ReplyButtons {
            body,
            footer,
            buttons,
        })
    }

    pub fn body(&self) -> &str {
        &self.body
    }

    pub fn footer(&self) -> Option<&str> {
        self.footer.as_deref()
    }

    pub fn buttons(&self) -> &[Button] {
        &self.buttons
    }
}

/// One selectable row of a list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Machine id echoed back on selection.
    id: String,
    /// Main label of the row.
    title: String,
    /// Second line under the title (service, staff, duration).
    description: Option<String>,
}

impl Row {
    pub fn new(
        id: impl Into<String>,
        title: impl Into<String>,
        description: Option<String>,
    ) -> Result<Self, MessageError> {
        let (id, title) = (id.into(), title.into());
        check_text("row id", &id, MAX_ROW_ID)?;
        check_text("row title", &title, MAX_ROW_TITLE)?;
        check_optional("row description", &description, MAX_ROW_DESCRIPTION)?;
        Ok(Row {
            id,
            title,
            description,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn title(&self) -> &str {
        &self.title
    }

    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }
}

/// A titled group of rows (one per day, for slot lists).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Section {
    /// Heading of the group.
    title: String,
    /// The rows of the group; at least one.
    rows: Vec<Row>,
}

impl Section {
    pub fn new(title: impl Into<String>, rows: Vec<Row>) -> Result<Self, MessageError> {
        let title = title.into();
        check_text("section title", &title, MAX_SECTION_TITLE)?;
        if rows.is_empty() {
            return Err(MessageError::Empty {
                what: "section rows",
            });
        }
        Ok(Section { title, rows })
    }

    pub fn title(&self) -> &str {
        &self.title
    }

    pub fn rows(&self) -> &[Row] {
        &self.rows
    }
}

/// An interactive list: a body and a button that opens up to ten rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct List {
    /// What the list is about.
    body: String,
    /// Label of the button that opens the list.
    button: String,
    /// One to ten sections holding one to ten rows in total, ids unique across the list.
    sections: Vec<Section>,
}

impl List {
    pub fn new(
        body: impl Into<String>,
        button: impl Into<String>,
        sections: Vec<Section>,
    ) -> Result<Self, MessageError> {
        let (body, button) = (body.into(), button.into());
        check_text("list body", &body, MAX_LIST_BODY)?;
        check_text("list button", &button, MAX_LIST_BUTTON)?;
        if sections.is_empty() {
            return Err(MessageError::Empty {
                what: "list sections",
            });
        }
        if sections.len() > MAX_LIST_SECTIONS {
            return Err(MessageError::TooMany {
                what: "list sections",
                count: sections.len(),
                max: MAX_LIST_SECTIONS,
            });
        }
        let rows: Vec<&Row> = sections.iter().flat_map(|section| &section.rows).collect();
        if rows.len() > MAX_LIST_ROWS {
            return Err(MessageError::TooMany {
                what: "list rows",
                count: rows.len(),
                max: MAX_LIST_ROWS,
            });
        }
        for (index, row) in rows.iter().enumerate() {
            if rows[..index].iter().any(|earlier| earlier.id == row.id) {
                return Err(MessageError::Duplicate {
                    what: "row id",
                    value: row.id.clone(),
                });
            }
        }
        Ok(List {
            body,
            button,
            sections,
        })
    }

    pub fn body(&self) -> &str {
        &self.body
    }

    pub fn button(&self) -> &str {
        &self.button
    }

    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    pub fn rows(&self) -> impl Iterator<Item = &Row> {
        self.sections.iter().flat_map(|section| section.rows.iter())
    }
}

/// An approved template, the only message allowed outside the 24-hour window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Template {
    /// Template name as approved in WhatsApp Manager.
    name: String,
    /// Language code of the approved translation ("en_US", "es_ES").
    language: String,
    /// Body parameters in order; their count matches the approved template.
    body_parameters: Vec<String>,
    /// Payloads of the quick-reply buttons by index, so a tap days later still names the booking.
    quick_reply_payloads: Vec<String>,
}

impl Template {
    /// `expected_parameters` is the count the approved template declares; a mismatch would be
    /// error 132000 at send time, so it is refused here.
    pub fn new(
        name: impl Into<String>,
        language: impl Into<String>,
        expected_parameters: usize,
        body_parameters: Vec<String>,
        quick_reply_payloads: Vec<String>,
    ) -> Result<Self, MessageError> {
        let (name, language) = (name.into(), language.into());
        check_text("template name", &name, 512)?;
        check_text("template language", &language, 16)?;
        if body_parameters.len() != expected_parameters {
            return Err(MessageError::TooMany {
                what: "template body parameters (must equal the approved count)",
                count: body_parameters.len(),
                max: expected_parameters,
            });
        }
        for parameter in &body_parameters {
            // Graph rejects empty parameters and ones with newlines or tabs (132012/132018).
            check_text("template parameter", parameter, 1024)?;
            if parameter.contains(['\n', '\t']) {
                return Err(MessageError::Empty {
                    what: "template parameter without newlines or tabs",
                });
            }
        }
        if quick_reply_payloads.len() > 10 {
            return Err(MessageError::TooMany {
                what: "quick-reply buttons",
                count: quick_reply_payloads.len(),
                max: 10,
            });
        }
        for payload in &quick_reply_payloads {
            check_text("quick-reply payload", payload, 256)?;
        }
        Ok(Template {
            name,
            language,
            body_parameters,
            quick_reply_payloads,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn language(&self) -> &str {
        &self.language
    }

    pub fn body_parameters(&self) -> &[String] {
        &self.body_parameters
    }

    pub fn quick_reply_payloads(&self) -> &[String] {
        &self.quick_reply_payloads
    }
}

// Deserialisation goes through the constructors so a stored or queued message that was edited
// by hand cannot smuggle an invalid message past the checks.

#[derive(Deserialize)]
struct TextWire {
    body: String,
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = TextWire::deserialize(deserializer)?;
        Text::new(wire.body).map_err(serde::de::Error::custom)
    }
}

#[derive(Deserialize)]
struct ButtonWire {
    id: String,
    title: String,
}

impl<'de> Deserialize<'de> for Button {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = ButtonWire::deserialize(deserializer)?;
        Button::new(wire.id, wire.title).map_err(serde::de::Error::custom)
    }
}

#[derive(Deserialize)]
struct ReplyButtonsWire {
    body: String,
    #[serde(default)]
    footer: Option<String>,
    buttons: Vec<Button>,
}

impl<'de> Deserialize<'de> for ReplyButtons {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = ReplyButtonsWire::deserialize(deserializer)?;
        ReplyButtons::new(wire.body, wire.footer, wire.buttons).map_err(serde::de::Error::custom)
    }
}

#[derive(Deserialize)]
struct RowWire {
    id: String,
    title: String,
    #[serde(default)]
    description: Option<String>,
}

impl<'de> Deserialize<'de> for Row {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = RowWire::deserialize(deserializer)?;
        Row::new(wire.id, wire.title, wire.description).map_err(serde::de::Error::custom)
    }
}

#[derive(Deserialize)]
struct SectionWire {
    title: String,
    rows: Vec<Row>,
}

impl<'de> Deserialize<'de> for Section {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = SectionWire::deserialize(deserializer)?;
        Section::new(wire.title, wire.rows).map_err(serde::de::Error::custom)
    }
}

#[derive(Deserialize)]
struct ListWire {
    body: String,
    button: String,
    sections: Vec<Section>,
}

impl<'de> Deserialize<'de> for List {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = ListWire::deserialize(deserializer)?;
        List::new(wire.body, wire.button, wire.sections).map_err(serde::de::Error::custom)
    }
}

#[derive(Deserialize)]
struct TemplateWire {
    name: String,
    language: String,
    body_parameters: Vec<String>,
    #[serde(default)]
    quick_reply_payloads: Vec<String>,
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = TemplateWire::deserialize(deserializer)?;
        let count = wire.body_parameters.len();
        Template::new(
            wire.name,
            wire.language,
            count,
            wire.body_parameters,
            wire.quick_reply_payloads,
        )
        .map_err(serde::de::Error::custom)
    }
}

/// Cuts `text` to at most `max` characters, ending with an ellipsis when it was cut. Used for
/// labels built from tenant data (service names) so a long name shortens instead of failing.
pub fn fit(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn button(id: &str, title: &str) -> Button {
        Button::new(id, title).expect("valid button")
    }

    #[test]
    fn button_limits() {
        assert!(Button::new("confirm", "Confirm").is_ok());
        assert!(matches!(
            Button::new("x", "a title that is far too long"),
            Err(MessageError::TooLong { max: 20, .. })
        ));
        assert!(Button::new("", "Confirm").is_err());
        assert!(Button::new("x".repeat(257), "Ok").is_err());
        // Twenty accented characters are twenty characters, not forty bytes.
        assert!(Button::new("x", "é".repeat(20)).is_ok());
    }

    #[test]
    fn reply_buttons_limits() {
        let three = vec![button("a", "A"), button("b", "B"), button("c", "C")];
        assert!(ReplyButtons::new("Pick", None, three.clone()).is_ok());
        let mut four = three.clone();
        four.push(button("d", "D"));
        assert!(matches!(
            ReplyButtons::new("Pick", None, four),
            Err(MessageError::TooMany { max: 3, .. })
        ));
        assert!(ReplyButtons::new("Pick", None, vec![]).is_err());
        assert!(matches!(
            ReplyButtons::new("Pick", None, vec![button("a", "A"), button("a", "B")]),
            Err(MessageError::Duplicate { .. })
        ));
        assert!(matches!(
            ReplyButtons::new("Pick", None, vec![button("a", "A"), button("b", "A")]),
            Err(MessageError::Duplicate { .. })
        ));
        assert!(ReplyButtons::new("x".repeat(1025), None, three.clone()).is_err());
        assert!(ReplyButtons::new("Pick", Some("f".repeat(61)), three).is_err());
    }

    #[test]
    fn list_limits() {
        let rows = |from: usize, count: usize| {
            (from..from + count)
                .map(|i| Row::new(format!("r{i}"), format!("Row {i}"), None).expect("row"))
                .collect::<Vec<_>>()
        };
        let ok = List::new(
            "Times",
            "See times",
            vec![
                Section::new("Mon", rows(0, 5)).expect("section"),
                Section::new("Tue", rows(5, 5)).expect("section"),
            ],
        );
        assert_eq!(ok.expect("ten rows is the limit").rows().count(), 10);
        let eleven = List::new(
            "Times",
            "See times",
            vec![
                Section::new("Mon", rows(0, 6)).expect("section"),
                Section::new("Tue", rows(6, 5)).expect("section"),
            ],
        );
        assert!(matches!(eleven, Err(MessageError::TooMany { max: 10, .. })));
        let duplicate = List::new(
            "Times",
            "See times",
            vec![
                Section::new("Mon", rows(0, 2)).expect("section"),
                Section::new("Tue", rows(1, 2)).expect("section"),
            ],
        );
        assert!(matches!(duplicate, Err(MessageError::Duplicate { .. })));
        assert!(Row::new("r", "x".repeat(25), None).is_err());
        assert!(Row::new("r", "x", Some("d".repeat(73))).is_err());
        assert!(Row::new("r", "x", Some("d".repeat(72))).is_ok());
        assert!(List::new("b", "x".repeat(21), vec![]).is_err());
    }

    #[test]
    fn template_parameter_count_is_enforced() {
        assert!(
            Template::new("reminder", "en_US", 2, vec!["a".into(), "b".into()], vec![]).is_ok()
        );
        assert!(
            Template::new("reminder", "en_US", 3, vec!["a".into(), "b".into()], vec![]).is_err()
        );
        assert!(Template::new("reminder", "en_US", 1, vec!["a\nb".into()], vec![]).is_err());
    }

    #[test]
    fn deserialisation_rechecks_limits() {
        let valid = r#"{"type":"reply_buttons","body":"Pick","buttons":[{"id":"a","title":"A"}]}"#;
        assert!(serde_json::from_str::<OutboundMessage>(valid).is_ok());
        let invalid = r#"{"type":"reply_buttons","body":"Pick","buttons":[
            {"id":"a","title":"A"},{"id":"b","title":"B"},{"id":"c","title":"C"},{"id":"d","title":"D"}]}"#;
        assert!(serde_json::from_str::<OutboundMessage>(invalid).is_err());
    }

    #[test]
    fn fit_shortens_with_ellipsis() {
        assert_eq!(fit("Haircut", 20), "Haircut");
        let long = fit("Balayage with toner and blow-dry", 20);
        assert_eq!(long.chars().count(), 20);
        assert!(long.ends_with('…'));
    }
}
