//! The BayLens central server: receives reports from every bay's edge agent, keeps them as
//! cases, and shows supervisors a risk-ranked list across bays.
//!
//! # Layout
//! - [`store`]: SQLite store (migrations in `migrations/`), previews under `data_dir/images/`.
//! - [`auth`]: tokens, password hashes, roles and the [`auth::Principal`] extractor.
//! - [`routes`]: one module per resource, each with its own `router()`: `reports` (agent
//!   ingest), `cases` (JSON API), `pages` (server-rendered review UI), `health`.
//! - [`error`]: [`error::ApiError`], the one error type of every handler.
//!
//! [`app`] builds the router (tested without a socket); [`run`] serves it on a listener the
//! caller binds, until the caller's shutdown future resolves.

pub mod auth;
pub mod error;
pub mod routes;
pub mod store;

use std::future::Future;

use axum::Router;
use tokio::net::TcpListener;

use crate::store::Store;

/// Largest report body accepted.
pub const MAX_REPORT_BYTES: usize = 1024 * 1024;
/// Largest preview image accepted.
pub const MAX_PREVIEW_BYTES: usize = 16 * 1024 * 1024;

/// Shared state of every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The store.
    pub store: Store,
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(routes::health::router())
        .merge(routes::reports::router())
        .merge(routes::cases::router())
        .merge(routes::pages::router())
        .with_state(state)
}

/// Serves the application on `listener` until `shutdown` resolves; in-flight requests finish.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}
