//! The one place errors become HTTP. Every error body has a human `message` and a stable
//! machine `code`; internal errors are logged here and never leaked to clients.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

/// Seconds a client should wait before resending after a 503.
pub const RETRY_AFTER_SECONDS: u64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        extra: Map<String, Value>,
    },
    #[error("{message}")]
    Unavailable { code: &'static str, message: String },
    /// Refused at the HTTP boundary before a handler ran (method, path, size, media type):
    /// the status is the one HTTP defines for the refusal. Nothing was applied.
    #[error("{message}")]
    Refused {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    /// Too soon after, or during, the same expensive request; resend after `retry_after_s`.
    #[error("{message}")]
    RateLimited { message: String, retry_after_s: u64 },
    #[error("internal: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn invalid_field(field: &str, problem: impl std::fmt::Display) -> ApiError {
        ApiError::BadRequest {
            code: "INVALID_FIELD",
            message: format!("{field}: {problem}"),
        }
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::NotFound {
            code,
            message: message.into(),
        }
    }

    pub fn refused(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Refused {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Conflict {
            code,
            message: message.into(),
            extra: Map::new(),
        }
    }
}

impl From<raft::Error> for ApiError {
    fn from(error: raft::Error) -> ApiError {
        use raft::Error as E;
        match error {
            E::NoLeader | E::NotLeader { .. } => ApiError::Unavailable {
                code: "NO_LEADER",
                message: "no leader is reachable; nothing was applied, resend".into(),
            },
            E::Overloaded => ApiError::Unavailable {
                code: "OVERLOADED",
                message: "too many requests in flight; nothing was applied, resend".into(),
            },
            E::OutcomeUnknown(why) => ApiError::Unavailable {
                code: "OUTCOME_UNKNOWN",
                message: format!(
                    "the outcome is unknown ({why}); resend with the same transactionId to learn it"
                ),
            },
            E::Refused(why) => ApiError::conflict("MEMBERSHIP_REFUSED", why),
            E::Storage(why) | E::Fatal(why) => ApiError::Internal(why),
        }
    }
}

impl From<storage::Error> for ApiError {
    fn from(error: storage::Error) -> ApiError {
        ApiError::Internal(error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut retry_after_s = None;
        let (status, code, message, extra) = match self {
            ApiError::BadRequest { code, message } => {
                (StatusCode::BAD_REQUEST, code, message, Map::new())
            }
            ApiError::NotFound { code, message } => {
                (StatusCode::NOT_FOUND, code, message, Map::new())
            }
            ApiError::Conflict {
                code,
                message,
                extra,
            } => (StatusCode::CONFLICT, code, message, extra),
            ApiError::Unavailable { code, message } => {
                (StatusCode::SERVICE_UNAVAILABLE, code, message, Map::new())
            }
            ApiError::Refused {
                status,
                code,
                message,
            } => (status, code, message, Map::new()),
            ApiError::RateLimited {
                message,
                retry_after_s: seconds,
            } => {
                retry_after_s = Some(seconds);
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    "RATE_LIMITED",
                    message,
                    Map::new(),
                )
            }
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL",
                    "internal error".to_owned(),
                    Map::new(),
                )
            }
        };
        let mut body = extra;
        body.insert("message".into(), json!(message));
        body.insert("code".into(), json!(code));
        let mut response = (status, Json(Value::Object(body))).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            retry_after_s = retry_after_s.or(Some(RETRY_AFTER_SECONDS));
        }
        if let Some(seconds) = retry_after_s {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
