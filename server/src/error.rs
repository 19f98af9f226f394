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
    /// A conflicting resource exists.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Too big.
    #[error("request body larger than {0} bytes")]
    TooLarge(usize),
    /// Wrong content type.
    #[error("unsupported media type: {0}")]
    UnsupportedMedia(String),
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
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMedia(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
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
        let mut response = (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}
