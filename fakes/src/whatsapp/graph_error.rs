//! Graph API error bodies, shaped as WIRE.md A5 documents them.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One synchronous Graph API failure: the HTTP status plus the `{"error": {..}}` body.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphFailure {
    pub http_status: u16,
    pub code: i64,
    /// The part after `(#code) ` in `message`; Meta puts the title only there.
    pub title: String,
    /// `error_data.details`, which Meta asks integrators to branch on together with `code`.
    pub details: Option<String>,
    /// `OAuthException` for most codes, `GraphMethodException` for unknown objects.
    pub error_type: &'static str,
    pub error_subcode: Option<i64>,
    /// Graph marks some platform errors (codes 1, 2, 4) as transient.
    pub is_transient: Option<bool>,
    /// Some errors (auth, unknown object) carry a message without the `(#code)` prefix.
    pub raw_message: Option<String>,
}

impl GraphFailure {
    fn whatsapp(http_status: u16, code: i64, title: &str, details: impl Into<String>) -> Self {
        Self {
            http_status,
            code,
            title: title.to_owned(),
            details: Some(details.into()),
            error_type: "OAuthException",
            error_subcode: None,
            is_transient: None,
            raw_message: None,
        }
    }

    pub fn invalid_token() -> Self {
        Self {
            http_status: 401,
            code: 190,
            title: "Invalid OAuth access token".to_owned(),
            details: None,
            error_type: "OAuthException",
            error_subcode: None,
            is_transient: None,
            raw_message: Some("Invalid OAuth access token - Cannot parse access token".to_owned()),
        }
    }

    pub fn unknown_object(id: &str) -> Self {
        Self {
            http_status: 400,
            code: 100,
            title: "Unsupported post request".to_owned(),
            details: None,
            error_type: "GraphMethodException",
            error_subcode: Some(33),
            is_transient: None,
            raw_message: Some(format!(
                "Unsupported post request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api"
            )),
        }
    }

    pub fn unknown_path(path: &str) -> Self {
        Self {
            http_status: 400,
            code: 2500,
            title: "Unknown path components".to_owned(),
            details: None,
            error_type: "OAuthException",
            error_subcode: None,
            is_transient: None,
            raw_message: Some(format!("Unknown path components: {path}")),
        }
    }

    pub fn invalid_parameter(details: impl Into<String>) -> Self {
        Self::whatsapp(400, 100, "Invalid parameter", details)
    }

    pub fn required_parameter_missing(details: impl Into<String>) -> Self {
        Self::whatsapp(400, 131008, "Required parameter is missing", details)
    }

    pub fn parameter_value_not_valid(details: impl Into<String>) -> Self {
        Self::whatsapp(400, 131009, "Parameter value is not valid", details)
    }

    pub fn template_missing(name: &str, language: &str) -> Self {
        Self::whatsapp(
            404,
            132001,
            "Template name does not exist in the translation",
            format!("template name ({name}) does not exist in {language}"),
        )
    }

    pub fn template_param_count(found: usize, expected: usize) -> Self {
        Self::whatsapp(
            400,
            132000,
            "Number of parameters does not match the expected number of params",
            format!(
                "body: number of localizable_params ({found}) does not match the expected number of params ({expected})"
            ),
        )
    }

    pub fn throughput_exceeded() -> Self {
        let mut failure = Self::whatsapp(
            400,
            130429,
            "Rate limit hit",
            "Message failed to send because there were too many messages sent from this phone number in a short period of time",
        );
        failure.error_subcode = Some(2494055);
        failure
    }

    pub fn pair_rate_exceeded() -> Self {
        Self::whatsapp(
            400,
            131056,
            "(Business Account, Consumer Account) pair rate limit hit",
            "Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time",
        )
    }

    pub fn outside_window() -> Self {
        Self::whatsapp(
            400,
            131047,
            "Re-engagement message",
            "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
        )
    }

    pub fn undeliverable() -> Self {
        Self::whatsapp(
            400,
            131026,
            "Message undeliverable",
            "Message Undeliverable.",
        )
    }

    pub fn too_many_calls() -> Self {
        Self {
            http_status: 429,
            code: 4,
            title: "Application request limit reached".to_owned(),
            details: None,
            error_type: "OAuthException",
            error_subcode: None,
            is_transient: Some(true),
            raw_message: None,
        }
    }

    pub fn something_went_wrong() -> Self {
        Self::whatsapp(500, 131000, "Something went wrong", "Something went wrong")
    }

    pub fn server_unavailable() -> Self {
        Self::whatsapp(
            503,
            133004,
            "Server temporarily unavailable",
            "Server is temporarily unavailable",
        )
    }

    pub fn service_unavailable() -> Self {
        Self {
            http_status: 503,
            code: 2,
            title: "Service temporarily unavailable".to_owned(),
            details: None,
            error_type: "OAuthException",
            error_subcode: None,
            is_transient: Some(true),
            raw_message: Some(
                "An unexpected error has occurred. Please retry your request later.".to_owned(),
            ),
        }
    }

    pub fn message(&self) -> String {
        self.raw_message
            .clone()
            .unwrap_or_else(|| format!("(#{}) {}", self.code, self.title))
    }

    /// The synchronous body: `{"error": {...}}`.
    pub fn body(&self) -> Value {
        let mut error = json!({
            "message": self.message(),
            "type": self.error_type,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            error["error_data"] = json!({ "messaging_product": "whatsapp", "details": details });
        }
        if let Some(subcode) = self.error_subcode {
            error["error_subcode"] = json!(subcode);
        }
        if let Some(transient) = self.is_transient {
            error["is_transient"] = json!(transient);
        }
        error["fbtrace_id"] = json!(fbtrace_id());
        json!({ "error": error })
    }

    /// The asynchronous shape used in `statuses[].errors[]` and `value.errors[]`.
    pub fn webhook_error(&self) -> Value {
        json!({
            "code": self.code,
            "title": self.title,
            "message": self.title,
            "error_data": { "details": self.details.clone().unwrap_or_else(|| self.title.clone()) },
            "href": "/documentation/business-messaging/whatsapp/support/error-codes",
        })
    }

    /// Builds the failure for a code given in configuration (fault injection, failed statuses).
    pub fn for_code(code: i64) -> Self {
        match code {
            4 => Self::too_many_calls(),
            2 => Self::service_unavailable(),
            100 => Self::invalid_parameter("Invalid parameter"),
            130429 => Self::throughput_exceeded(),
            131000 => Self::something_went_wrong(),
            131026 => Self::undeliverable(),
            131047 => Self::outside_window(),
            131049 => Self::whatsapp(
                400,
                131049,
                "This message was not delivered to maintain healthy ecosystem engagement.",
                "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.",
            ),
            131056 => Self::pair_rate_exceeded(),
            133004 => Self::server_unavailable(),
            190 => Self::invalid_token(),
            other => Self::whatsapp(400, other, "Error", format!("Error code {other}")),
        }
    }
}

impl IntoResponse for GraphFailure {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.http_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.body())).into_response()
    }
}

fn fbtrace_id() -> String {
    use rand::Rng;
    use rand::distr::Alphanumeric;
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(23)
        .map(char::from)
        .collect()
}
