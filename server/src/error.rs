//! The one API error type. 5xx causes are logged, never sent to the client.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use thiserror::Error;

/// Result with [`ApiError`].
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// Everything a handler can fail with.
#[derive(Debug, Error)]
pub enum ApiError {
    /// A path or query parameter could not be read.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// No or unknown credentials.
    #[error("authentication required")]
    Unauthorized,
    /// Authenticated, but not allowed.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// No such thing.
    #[error("not found")]
    NotFound,
    /// The request body is not acceptable.
    #[error("{0}")]
    Unprocessable(String),
    /// A document broke several rules; each is listed.
    #[error("{} problem(s): {}", .0.len(), .0.join("; "))]
    Invalid(Vec<String>),
    /// A conflicting resource exists.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Too big.
    #[error("request body larger than {0} bytes")]
    TooLarge(usize),
    /// Wrong content type.
    #[error("unsupported media type: {0}")]
    UnsupportedMedia(String),
    /// The request took longer than this many seconds.
    #[error("request not completed within {0} s")]
    Timeout(u64),
    /// Too many attempts; retry after this many seconds.
    #[error("too many attempts; try again in {0} s")]
    TooManyRequests(u64),
    /// The database or another dependency is not reachable.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Database failure.
    #[error("database")]
    Database(#[from] sqlx::Error),
    /// Anything else on our side.
    #[error("internal")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status for this error.
    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Unprocessable(_) | Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMedia(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Database(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        if status.is_server_error() {
            match &self {
                Self::Database(e) => tracing::error!("database error: {e}"),
                Self::Internal(e) => tracing::error!("internal error: {e}"),
                _ => {}
            }
        }
        let body = match &self {
            Self::Invalid(problems) => {
                serde_json::json!({ "error": self.to_string(), "problems": problems })
            }
            _ => serde_json::json!({ "error": self.to_string() }),
        };
        let mut response = (status, Json(body)).into_response();
        if let Self::TooManyRequests(secs) = &self {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(*secs),
            );
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}
