//! The agent's error type.

use thiserror::Error;

/// Errors that stop the agent or one of its tasks. Problems with a single scan are not errors
/// of the agent: they become a rejection with a reason (see [`crate::ingest::Rejection`]).
#[derive(Debug, Error)]
pub enum AgentError {
    /// Configuration is missing or invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// The local store failed.
    #[error("store: {0}")]
    Store(#[from] sqlx::Error),
    /// The store's schema could not be brought up to date.
    #[error("store migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A model could not be loaded or run.
    #[error(transparent)]
    Model(#[from] baylens_models::ModelError),
}

impl AgentError {
    /// Wraps an I/O error with what we were doing.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}
