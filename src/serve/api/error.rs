//! The API's one error type: each variant maps to a status code, and the body is always
//! `{"error": "…"}`. Internal failures (database, encoding) are logged in full and shown to
//! the client only as "internal error".

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tracing::error;

use crate::serve::admission::Refusal;
use crate::serve::buffer::BufferError;
use crate::serve::metrics::DropReason;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// No valid bearer token: 401 with `WWW-Authenticate: Bearer`.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// A valid token without the scope: 403.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("request body larger than {0} bytes")]
    TooLarge(usize),
    /// A request body slower than `body_min_bytes` per `body_timeout`: 408.
    #[error("{0}")]
    BodyTimeout(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("driftd is busy; retry after {0} s")]
    Busy(u64),
    #[error("driftd is shutting down")]
    ShuttingDown,
    /// The database is out (the reason is an [`Outage`](crate::store::Outage), never database
    /// text): 503 with `Retry-After`.
    #[error("{0}; retry later")]
    DatabaseUnavailable(String),
    /// The memory budget is reached: 503 with `Retry-After`.
    #[error("{0}")]
    MemoryFull(String),
    /// The ingest buffer's stream is full: 429 with `Retry-After`.
    #[error("{0}")]
    BufferFull(String),
    /// The ingest buffer did not answer: 503 with `Retry-After`.
    #[error("{0}; retry later")]
    BufferUnavailable(String),
    /// Over what the ingest buffer carries in one message, even split: 413.
    #[error("{0}")]
    TooLargeForBuffer(String),
    /// Logged in full; the client sees only "internal error".
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::TooLarge(_) | ApiError::TooLargeForBuffer(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Busy(_) | ApiError::BufferFull(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::ShuttingDown
            | ApiError::DatabaseUnavailable(_)
            | ApiError::MemoryFull(_)
            | ApiError::BufferUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The reason an ingest request refused with this error is counted under; `None` for
    /// refusals counted where they happen (a full queue, a body too slow) or not ingest's.
    pub fn drop_reason(&self) -> Option<DropReason> {
        match self {
            ApiError::TooLarge(_) => Some(DropReason::too_large),
            ApiError::UnsupportedMediaType(_) => Some(DropReason::unsupported_media_type),
            ApiError::BadRequest(_) => Some(DropReason::invalid_request),
            _ => None,
        }
    }

    /// Seconds a client should wait before retrying, for the refusals that pass.
    fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::Busy(seconds) => Some(*seconds),
            ApiError::BufferFull(_) => Some(1),
            ApiError::ShuttingDown
            | ApiError::DatabaseUnavailable(_)
            | ApiError::MemoryFull(_)
            | ApiError::BufferUnavailable(_) => Some(5),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            error!(%detail, "Request failed");
        }
        let retry_after = self.retry_after();
        let challenge = match &self {
            ApiError::Unauthorized(_) => Some(r#"Bearer realm="driftd""#),
            ApiError::Forbidden(_) => Some(r#"Bearer realm="driftd", error="insufficient_scope""#),
            _ => None,
        };
        let mut response =
            (self.status(), Json(json!({ "error": self.to_string() }))).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(challenge) = challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

impl From<BufferError> for ApiError {
    fn from(e: BufferError) -> Self {
        match e {
            full @ BufferError::Full(_) => ApiError::BufferFull(full.to_string()),
            out @ BufferError::Unavailable(_) => ApiError::BufferUnavailable(out.to_string()),
            large @ BufferError::TooLarge { .. } => ApiError::TooLargeForBuffer(format!(
                "the batch's profile is {large}; send fewer records per request"
            )),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e.outage() {
            Some(outage) => {
                ApiError::DatabaseUnavailable(format!("database unavailable ({outage})"))
            }
            None => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Busy(seconds) => ApiError::Busy(seconds),
            Refusal::ShuttingDown => ApiError::ShuttingDown,
            held @ Refusal::DatabaseUnavailable(_) => {
                ApiError::DatabaseUnavailable(held.to_string())
            }
            limit @ Refusal::DatasetLimit(_) => ApiError::Unprocessable(limit.to_string()),
            full @ Refusal::MemoryFull { .. } => ApiError::MemoryFull(full.to_string()),
        }
    }
}
