//! Every failure the API can answer, each with a stable `code`. Internal
//! details are logged, never returned.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use backchannel_protocol::api::{ErrorBody, ErrorDetail};
use backchannel_protocol::{CryptoError, DecodeError};

use crate::store::StoreError;

/// An API error: HTTP status, stable code, message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code (docs/protocol.md, "Errors").
    pub code: &'static str,
    /// What went wrong and what to do.
    pub message: String,
    /// Seconds until a rate-limited request may be retried.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with the given status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// `429 rate_limited`: `what` (a bucket's kind, e.g. `posts/principal`)
    /// is used up for `retry_ms` more milliseconds.
    pub(crate) fn rate_limited(what: &str, retry_ms: i64) -> Self {
        let seconds = (retry_ms.max(0) as u64).div_ceil(1000).max(1);
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests ({what}): retry in {seconds} s"),
        );
        e.retry_after = Some(seconds);
        e
    }

    /// `507 storage_full`: the relay keeps its last free space for logins,
    /// fetches and acks.
    pub(crate) fn storage_full() -> Self {
        Self::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "storage_full",
            "the relay is low on disk and takes no new data; logging in, fetching and acknowledging still work (its operator must free space)",
        )
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub(crate) fn invalid_field(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_field", message)
    }

    pub(crate) fn limit(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "limit_exceeded", message)
    }

    pub(crate) fn not_a_member(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "not_a_member", message)
    }

    pub(crate) fn unknown_principal(handle: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "unknown_principal",
            format!("no principal {handle:?} is registered on this relay"),
        )
    }

    pub(crate) fn unknown_channel(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "unknown_channel",
            format!("no channel {id}: check the id"),
        )
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub(crate) fn internal(context: &str, detail: impl std::fmt::Display) -> Self {
        tracing::error!("{context}: {detail}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the relay failed to handle this request; its operator can find the cause in the relay's log",
        )
    }

    pub(crate) fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with `Content-Type: application/json`",
        )
    }

    pub(crate) fn from_json(rejection: JsonRejection) -> Self {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => Self::too_large(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::unsupported_media_type(),
            _ => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                rejection.body_text(),
            ),
        }
    }

    pub(crate) fn from_query(rejection: QueryRejection) -> Self {
        Self::bad_request(rejection.body_text())
    }

    pub(crate) fn too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is over the relay's limit (its setting body_max_bytes, 12 MiB unless its operator changed it)",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
                retry_after: self.retry_after,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, s.into());
        }
        response
    }
}

impl From<DecodeError> for ApiError {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::BadBase64 { .. } => {
                Self::new(StatusCode::BAD_REQUEST, "invalid_base64", e.to_string())
            }
            DecodeError::TooLong { .. } => Self::limit(e.to_string()),
            _ => Self::invalid_field(e.to_string()),
        }
    }
}

impl From<CryptoError> for ApiError {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::BadSignature { .. } => {
                Self::new(StatusCode::BAD_REQUEST, "bad_signature", e.to_string())
            }
            CryptoError::Payload(d) => d.into(),
            _ => Self::new(StatusCode::BAD_REQUEST, "bad_key", e.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::AckBeyondMailbox { .. } => Self::new(
                StatusCode::BAD_REQUEST,
                "ack_beyond_mailbox",
                format!("{e}: ack only cursors you have fetched"),
            ),
            StoreError::ChannelExists(_) => Self::new(
                StatusCode::CONFLICT,
                "channel_exists",
                format!("{e}: pick a new random id"),
            ),
            StoreError::Conflict { .. } => Self::new(
                StatusCode::CONFLICT,
                "envelope_conflict",
                format!("{e}; a message id is used once, with one set of bytes"),
            ),
            StoreError::HandleTaken(_) => Self::new(
                StatusCode::CONFLICT,
                "handle_taken",
                format!("{e}: choose another handle, or, if this is your handle on a new device, ask the relay's operator to release it (`backchannel relay release --handle ...`)"),
            ),
            StoreError::KeyTaken => Self::new(
                StatusCode::BAD_REQUEST,
                "bad_key",
                format!("{e}: every principal has keys of its own; generate new ones"),
            ),
            StoreError::ExchangeClosed(_) => {
                Self::new(StatusCode::CONFLICT, "exchange_closed", e.to_string())
            }
            StoreError::LimitExceeded(_) => Self::limit(e.to_string()),
            StoreError::Quota(_) => Self::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "quota_exceeded",
                e.to_string(),
            ),
            StoreError::Full => Self::storage_full(),
            StoreError::InviteInvalid => Self::new(
                StatusCode::FORBIDDEN,
                "invite_invalid",
                format!("{e}: ask the relay's operator for a new one (`backchannel relay invite`)"),
            ),
            StoreError::UnknownPrincipal(h) => Self::unknown_principal(h.as_str()),
            // `Relay::run` answers these with the window's own retry time.
            StoreError::RateLimited { bucket, .. } => {
                Self::rate_limited(bucket.split(':').next().unwrap_or(bucket), 1000)
            }
            StoreError::Backend(_) | StoreError::Corrupt(_) => Self::internal("storage", &e),
        }
    }
}
