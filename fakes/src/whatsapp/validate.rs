//! Checks a `POST /<PHONE_NUMBER_ID>/messages` body against Meta's documented rules
//! (WIRE.md A4) and parses it into what the fake records.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::config::BusinessNumber;
use super::graph_error::GraphFailure;

/// An accepted outbound message, parsed for tests and the sandbox to inspect.
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    Text {
        body: String,
        preview_url: bool,
    },
    Buttons {
        header: Option<Header>,
        body: String,
        footer: Option<String>,
        buttons: Vec<ReplyButton>,
    },
    List {
        header: Option<String>,
        body: String,
        footer: Option<String>,
        button: String,
        sections: Vec<ListSection>,
    },
    Template {
        name: String,
        language: String,
        body_parameters: Vec<String>,
        /// `(button index, payload)` of each quick-reply button component.
        quick_reply_payloads: Vec<(usize, String)>,
    },
}

impl Outbound {
    /// Free-form messages need an open customer-service window; templates do not.
    pub fn is_free_form(&self) -> bool {
        !matches!(self, Self::Template { .. })
    }

    /// The text a person would read first, for logs of the sandbox.
    pub fn body_text(&self) -> String {
        match self {
            Self::Text { body, .. } | Self::Buttons { body, .. } | Self::List { body, .. } => {
                body.clone()
            }
            Self::Template {
                name,
                body_parameters,
                ..
            } => format!("[template {name}] {}", body_parameters.join(" | ")),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Header {
    Text(String),
    /// `image`, `video` or `document`, with its media id or link.
    Media {
        kind: String,
        reference: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReplyButton {
    pub id: String,
    pub title: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListSection {
    pub title: String,
    pub rows: Vec<ListRow>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListRow {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
}

/// What a valid request to the messages endpoint asks for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Request {
    Send(SendRequest),
    MarkRead {
        message_id: String,
        typing_indicator: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SendRequest {
    /// `to` exactly as sent, echoed in `contacts[].input`.
    pub to: String,
    /// `to` without `+`: the recipient's wa_id.
    pub wa_id: String,
    pub message: Outbound,
    pub biz_opaque_callback_data: Option<String>,
}

type Checked<T> = Result<T, GraphFailure>;

pub(crate) fn parse_request(
    raw: &[u8],
    business: &BusinessNumber,
    require_plus_in_to: bool,
) -> Checked<Request> {
    let value: Value = serde_json::from_slice(raw).map_err(|error| {
        GraphFailure::invalid_parameter(format!("Request body is not valid JSON: {error}"))
    })?;
    let body = value
        .as_object()
        .ok_or_else(|| GraphFailure::invalid_parameter("Request body must be a JSON object"))?;
    match body.get("messaging_product") {
        Some(Value::String(product)) if product == "whatsapp" => {}
        Some(_) => {
            return Err(GraphFailure::invalid_parameter(
                "The parameter messaging_product must be whatsapp",
            ));
        }
        None => {
            return Err(GraphFailure::required_parameter_missing(
                "The parameter messaging_product is required.",
            ));
        }
    }
    if body.contains_key("status") {
        return parse_mark_read(body);
    }
    parse_send(body, business, require_plus_in_to).map(Request::Send)
}

fn parse_mark_read(body: &Map<String, Value>) -> Checked<Request> {
    if optional_str(body, "status", "status")? != Some("read") {
        return Err(GraphFailure::invalid_parameter("status must be read"));
    }
    let message_id = required_str(body, "message_id", "message_id")?;
    let typing_indicator = match body.get("typing_indicator") {
        None => false,
        Some(Value::Object(indicator)) => {
            if required_str(indicator, "type", "typing_indicator.type")? != "text" {
                return Err(GraphFailure::parameter_value_not_valid(
                    "typing_indicator.type must be text",
                ));
            }
            true
        }
        Some(_) => {
            return Err(GraphFailure::invalid_parameter(
                "typing_indicator must be an object",
            ));
        }
    };
    Ok(Request::MarkRead {
        message_id: non_empty(message_id, "message_id")?.to_owned(),
        typing_indicator,
    })
}

fn parse_send(
    body: &Map<String, Value>,
    business: &BusinessNumber,
    require_plus_in_to: bool,
) -> Checked<SendRequest> {
    if let Some(kind) = optional_str(body, "recipient_type", "recipient_type")?
        && kind != "individual"
    {
        return Err(GraphFailure::invalid_parameter(format!(
            "recipient_type {kind} is not supported; only individual"
        )));
    }
    let to = required_str(body, "to", "to")?;
    let wa_id = check_to(to, require_plus_in_to)?;
    let kind = required_str(body, "type", "type")?;
    let message = match kind {
        "text" => parse_text(required_object(body, "text", "text")?)?,
        "interactive" => parse_interactive(required_object(body, "interactive", "interactive")?)?,
        "template" => parse_template(required_object(body, "template", "template")?, business)?,
        other => {
            return Err(GraphFailure::invalid_parameter(format!(
                "Message type {other} is not supported by this endpoint"
            )));
        }
    };
    if let Some(context) = body.get("context") {
        let context = context
            .as_object()
            .ok_or_else(|| GraphFailure::invalid_parameter("context must be an object"))?;
        non_empty(
            required_str(context, "message_id", "context.message_id")?,
            "context.message_id",
        )?;
    }
    let biz_opaque_callback_data =
        optional_str(body, "biz_opaque_callback_data", "biz_opaque_callback_data")?
            .map(str::to_owned);
    if let Some(data) = &biz_opaque_callback_data {
        max_chars(data, 512, "biz_opaque_callback_data")?;
    }
    Ok(SendRequest {
        to: to.to_owned(),
        wa_id,
        message,
        biz_opaque_callback_data,
    })
}

/// E.164: optional `+`, then 7 to 15 digits, nothing else.
fn check_to(to: &str, require_plus: bool) -> Checked<String> {
    let digits = match to.strip_prefix('+') {
        Some(rest) => rest,
        None if require_plus => {
            return Err(GraphFailure::invalid_parameter(format!(
                "Invalid 'to' parameter {to:?}: include '+' and the country code"
            )));
        }
        None => to,
    };
    let valid = (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if valid {
        Ok(digits.to_owned())
    } else {
        Err(GraphFailure::invalid_parameter(format!(
            "Invalid 'to' parameter {to:?}: expected a phone number in international format"
        )))
    }
}

fn parse_text(text: &Map<String, Value>) -> Checked<Outbound> {
    let body = non_empty(required_str(text, "body", "text.body")?, "text.body")?;
    max_chars(body, 4096, "text.body")?;
    let preview_url = match text.get("preview_url") {
        None => false,
        Some(Value::Bool(flag)) => *flag,
        Some(_) => {
            return Err(GraphFailure::invalid_parameter(
                "text.preview_url must be a boolean",
            ));
        }
    };
    Ok(Outbound::Text {
        body: body.to_owned(),
        preview_url,
    })
}

fn parse_interactive(interactive: &Map<String, Value>) -> Checked<Outbound> {
    let kind = required_str(interactive, "type", "interactive.type")?;
    let body_max = match kind {
        "button" => 1024,
        "list" => 4096,
        other => {
            return Err(GraphFailure::parameter_value_not_valid(format!(
                "interactive.type {other} is not supported"
            )));
        }
    };
    let body_object = required_object(interactive, "body", "interactive.body")?;
    let body = non_empty(
        required_str(body_object, "text", "interactive.body.text")?,
        "interactive.body.text",
    )?;
    max_chars(body, body_max, "interactive.body.text")?;
    let footer = match interactive.get("footer") {
        None => None,
        Some(_) => {
            let footer = required_object(interactive, "footer", "interactive.footer")?;
            let text = required_str(footer, "text", "interactive.footer.text")?;
            max_chars(text, 60, "interactive.footer.text")?;
            Some(text.to_owned())
        }
    };
    let header = match interactive.get("header") {
        None => None,
        Some(_) => Some(parse_header(
            required_object(interactive, "header", "interactive.header")?,
            kind == "list",
        )?),
    };
    let action = required_object(interactive, "action", "interactive.action")?;
    if kind == "button" {
        return Ok(Outbound::Buttons {
            header,
            body: body.to_owned(),
            footer,
            buttons: parse_buttons(action)?,
        });
    }
    let header = match header {
        None => None,
        Some(Header::Text(text)) => Some(text),
        Some(Header::Media { .. }) => {
            return Err(GraphFailure::parameter_value_not_valid(
                "List messages only support a text header",
            ));
        }
    };
    let button = non_empty(
        required_str(action, "button", "interactive.action.button")?,
        "interactive.action.button",
    )?;
    max_chars(button, 20, "interactive.action.button")?;
    Ok(Outbound::List {
        header,
        body: body.to_owned(),
        footer,
        button: button.to_owned(),
        sections: parse_sections(action)?,
    })
}

fn parse_header(header: &Map<String, Value>, text_only: bool) -> Checked<Header> {
    let kind = required_str(header, "type", "interactive.header.type")?;
    match kind {
        "text" => {
            let text = non_empty(
                required_str(header, "text", "interactive.header.text")?,
                "interactive.header.text",
            )?;
            max_chars(text, 60, "interactive.header.text")?;
            Ok(Header::Text(text.to_owned()))
        }
        "image" | "video" | "document" if !text_only => {
            let media = required_object(header, kind, "interactive.header media")?;
            let reference = optional_str(media, "id", "media id")?
                .or(optional_str(media, "link", "media link")?)
                .ok_or_else(|| {
                    GraphFailure::required_parameter_missing(format!(
                        "interactive.header.{kind} needs an id or a link"
                    ))
                })?;
            Ok(Header::Media {
                kind: kind.to_owned(),
                reference: reference.to_owned(),
            })
        }
        other => Err(GraphFailure::parameter_value_not_valid(format!(
            "interactive.header.type {other} is not valid here"
        ))),
    }
}

fn parse_buttons(action: &Map<String, Value>) -> Checked<Vec<ReplyButton>> {
    let buttons = required_array(action, "buttons", "interactive.action.buttons")?;
    if buttons.is_empty() || buttons.len() > 3 {
        return Err(GraphFailure::parameter_value_not_valid(format!(
            "Invalid buttons count. Min allowed buttons: 1, Max allowed buttons: 3, found {}",
            buttons.len()
        )));
    }
    let mut ids = HashSet::new();
    let mut titles = HashSet::new();
    let mut parsed = Vec::with_capacity(buttons.len());
    for button in buttons {
        let button = button
            .as_object()
            .ok_or_else(|| GraphFailure::invalid_parameter("each button must be an object"))?;
        if required_str(button, "type", "button.type")? != "reply" {
            return Err(GraphFailure::parameter_value_not_valid(
                "button.type must be reply",
            ));
        }
        let reply = required_object(button, "reply", "button.reply")?;
        let id = non_empty(
            required_str(reply, "id", "button.reply.id")?,
            "button.reply.id",
        )?;
        max_chars(id, 256, "button.reply.id")?;
        let title = required_str(reply, "title", "button.reply.title")?;
        if title.trim().is_empty() || title.chars().count() > 20 {
            return Err(GraphFailure::parameter_value_not_valid(format!(
                "Button title length invalid. Min length: 1, Max length: 20, found {:?}",
                title
            )));
        }
        if !ids.insert(id) {
            return Err(GraphFailure::parameter_value_not_valid(format!(
                "Duplicate button id {id:?}"
            )));
        }
        if !titles.insert(title) {
            return Err(GraphFailure::parameter_value_not_valid(format!(
                "Duplicate button title {title:?}"
            )));
        }
        parsed.push(ReplyButton {
            id: id.to_owned(),
            title: title.to_owned(),
        });
    }
    Ok(parsed)
}

fn parse_sections(action: &Map<String, Value>) -> Checked<Vec<ListSection>> {
    let sections = required_array(action, "sections", "interactive.action.sections")?;
    if sections.is_empty() || sections.len() > 10 {
        return Err(GraphFailure::parameter_value_not_valid(format!(
            "Invalid sections count. Min: 1, Max: 10, found {}",
            sections.len()
        )));
    }
    let mut row_ids = HashSet::new();
    let mut parsed = Vec::with_capacity(sections.len());
    let mut total_rows = 0;
    for section in sections {
        let section = section
            .as_object()
            .ok_or_else(|| GraphFailure::invalid_parameter("each section must be an object"))?;
        let title = non_empty(
            required_str(section, "title", "section.title")?,
            "section.title",
        )?;
        max_chars(title, 24, "section.title")?;
        let rows = required_array(section, "rows", "section.rows")?;
        if rows.is_empty() {
            return Err(GraphFailure::parameter_value_not_valid(
                "Each section needs at least one row",
            ));
        }
        total_rows += rows.len();
        let mut parsed_rows = Vec::with_capacity(rows.len());
        for row in rows {
            let row = row
                .as_object()
                .ok_or_else(|| GraphFailure::invalid_parameter("each row must be an object"))?;
            let id = non_empty(required_str(row, "id", "row.id")?, "row.id")?;
            max_chars(id, 200, "row.id")?;
            let row_title = non_empty(required_str(row, "title", "row.title")?, "row.title")?;
            max_chars(row_title, 24, "row.title")?;
            let description = optional_str(row, "description", "row.description")?;
            if let Some(description) = description {
                max_chars(description, 72, "row.description")?;
            }
            if !row_ids.insert(id) {
                return Err(GraphFailure::parameter_value_not_valid(format!(
                    "Row ids must be unique; {id:?} repeats"
                )));
            }
            parsed_rows.push(ListRow {
                id: id.to_owned(),
                title: row_title.to_owned(),
                description: description.map(str::to_owned),
            });
        }
        parsed.push(ListSection {
            title: title.to_owned(),
            rows: parsed_rows,
        });
    }
    if total_rows > 10 {
        return Err(GraphFailure::parameter_value_not_valid(format!(
            "Invalid rows count. Max allowed rows across sections: 10, found {total_rows}"
        )));
    }
    Ok(parsed)
}

fn parse_template(template: &Map<String, Value>, business: &BusinessNumber) -> Checked<Outbound> {
    let name = non_empty(
        required_str(template, "name", "template.name")?,
        "template.name",
    )?;
    let language = required_object(template, "language", "template.language")?;
    let code = non_empty(
        required_str(language, "code", "template.language.code")?,
        "template.language.code",
    )?;
    let spec = business
        .templates
        .iter()
        .find(|spec| spec.name == name && spec.language == code)
        .ok_or_else(|| GraphFailure::template_missing(name, code))?;
    let mut body_parameters = Vec::new();
    let mut quick_reply_payloads = Vec::new();
    let components = match template.get("components") {
        None => &Vec::new(),
        Some(Value::Array(components)) => components,
        Some(_) => {
            return Err(GraphFailure::invalid_parameter(
                "template.components must be an array",
            ));
        }
    };
    for component in components {
        let component = component
            .as_object()
            .ok_or_else(|| GraphFailure::invalid_parameter("each component must be an object"))?;
        match required_str(component, "type", "component.type")? {
            "body" => {
                for parameter in required_array(component, "parameters", "body.parameters")? {
                    let parameter = parameter.as_object().ok_or_else(|| {
                        GraphFailure::invalid_parameter("each parameter must be an object")
                    })?;
                    if required_str(parameter, "type", "parameter.type")? != "text" {
                        return Err(GraphFailure::parameter_value_not_valid(
                            "Only text body parameters are supported",
                        ));
                    }
                    let text = required_str(parameter, "text", "parameter.text")?;
                    if text.trim().is_empty() {
                        return Err(GraphFailure::parameter_value_not_valid(
                            "Body parameter text must not be empty",
                        ));
                    }
                    body_parameters.push(text.to_owned());
                }
            }
            "button" => {
                if required_str(component, "sub_type", "button.sub_type")? != "quick_reply" {
                    return Err(GraphFailure::parameter_value_not_valid(
                        "Only quick_reply button components are supported",
                    ));
                }
                // Meta documents the index as a string; integers are seen in the wild too.
                let index = match component.get("index") {
                    Some(Value::String(text)) => text.parse::<usize>().ok(),
                    Some(Value::Number(number)) => number.as_u64().map(|n| n as usize),
                    _ => None,
                }
                .ok_or_else(|| {
                    GraphFailure::required_parameter_missing("button.index is required")
                })?;
                if index >= spec.quick_reply_buttons {
                    return Err(GraphFailure::parameter_value_not_valid(format!(
                        "Button at index {index} does not exist in template {name}"
                    )));
                }
                let parameters = required_array(component, "parameters", "button.parameters")?;
                let [parameter] = parameters.as_slice() else {
                    return Err(GraphFailure::parameter_value_not_valid(
                        "A quick_reply button takes exactly one payload parameter",
                    ));
                };
                let parameter = parameter.as_object().ok_or_else(|| {
                    GraphFailure::invalid_parameter("parameter must be an object")
                })?;
                if required_str(parameter, "type", "parameter.type")? != "payload" {
                    return Err(GraphFailure::parameter_value_not_valid(
                        "quick_reply parameter type must be payload",
                    ));
                }
                let payload = required_str(parameter, "payload", "parameter.payload")?;
                quick_reply_payloads.push((index, payload.to_owned()));
            }
            "header" => {}
            other => {
                return Err(GraphFailure::parameter_value_not_valid(format!(
                    "Unknown template component type {other}"
                )));
            }
        }
    }
    if body_parameters.len() != spec.body_parameters {
        return Err(GraphFailure::template_param_count(
            body_parameters.len(),
            spec.body_parameters,
        ));
    }
    Ok(Outbound::Template {
        name: name.to_owned(),
        language: code.to_owned(),
        body_parameters,
        quick_reply_payloads,
    })
}

fn required_str<'a>(map: &'a Map<String, Value>, key: &str, path: &str) -> Checked<&'a str> {
    match map.get(key) {
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(GraphFailure::invalid_parameter(format!(
            "{path} must be a string"
        ))),
        None => Err(GraphFailure::required_parameter_missing(format!(
            "The parameter {path} is required."
        ))),
    }
}

fn optional_str<'a>(
    map: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Checked<Option<&'a str>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(GraphFailure::invalid_parameter(format!(
            "{path} must be a string"
        ))),
    }
}

fn required_object<'a>(
    map: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Checked<&'a Map<String, Value>> {
    match map.get(key) {
        Some(Value::Object(object)) => Ok(object),
        Some(_) => Err(GraphFailure::invalid_parameter(format!(
            "{path} must be an object"
        ))),
        None => Err(GraphFailure::required_parameter_missing(format!(
            "The parameter {path} is required."
        ))),
    }
}

fn required_array<'a>(
    map: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Checked<&'a Vec<Value>> {
    match map.get(key) {
        Some(Value::Array(array)) => Ok(array),
        Some(_) => Err(GraphFailure::invalid_parameter(format!(
            "{path} must be an array"
        ))),
        None => Err(GraphFailure::required_parameter_missing(format!(
            "The parameter {path} is required."
        ))),
    }
}

fn non_empty<'a>(text: &'a str, path: &str) -> Checked<&'a str> {
    if text.trim().is_empty() {
        Err(GraphFailure::parameter_value_not_valid(format!(
            "{path} must not be empty"
        )))
    } else {
        Ok(text)
    }
}

/// Meta counts characters, not bytes: "Lucky Shrub™" fits where its UTF-8 would not.
fn max_chars(text: &str, max: usize, path: &str) -> Checked<()> {
    let length = text.chars().count();
    if length > max {
        Err(GraphFailure::parameter_value_not_valid(format!(
            "{path} is too long: {length} characters, max {max}"
        )))
    } else {
        Ok(())
    }
}
