//! The BayLens central server: takes advance declarations, receives reports from every bay's
//! edge agent, keeps them as cases ranked by risk, and gives supervisors a review queue with
//! decisions, an audit trail and release-time figures.
//!
//! # Layout
//! - [`store`]: SQLite or PostgreSQL through one set of queries (migrations in `migrations/`),
//!   images through `object_store`; the hash-chained audit log.
//! - [`auth`]: tokens, password hashes, roles, CSRF and the [`auth::Principal`] extractor.
//! - [`risk`]: pre-arrival and case risk.
//! - [`routes`]: one module per resource, each with its own `router()`.
//! - [`metrics`]: Prometheus counters and latency histograms.
//! - [`error`]: [`error::ApiError`], the one error type of every handler; [`extract`]: path and
//!   query extractors that fail with it.
//!
//! [`app`] builds the router (tested without a socket); [`run`] serves it on a listener the
//! caller binds, until the caller's shutdown future resolves. [`ROUTES`] lists every endpoint;
//! the OpenAPI document and the role-matrix test are both checked against it.

pub mod auth;
pub mod bundle;
pub mod dataset;
pub mod error;
pub mod extract;
pub mod interop;
pub mod metrics;
pub mod outcomes;
pub mod risk;
pub mod routes;
pub mod store;
pub mod track_record;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, header};
use tokio::net::TcpListener;
use tokio::sync::broadcast;

use crate::store::{CaseSummary, Store};

/// Largest report body accepted.
pub const MAX_REPORT_BYTES: usize = 1024 * 1024;
/// Largest preview image accepted.
pub const MAX_PREVIEW_BYTES: usize = 16 * 1024 * 1024;
/// Largest declaration (or declaration import) body accepted.
pub const MAX_DECLARATION_BYTES: usize = 2 * 1024 * 1024;
/// Longest an upload (preview or layer, up to 16 MiB over a weak bay link) may take.
pub const UPLOAD_TIMEOUT: Duration = Duration::from_secs(600);
/// Longest any other request may take, body included, before it is answered 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest body of any other request.
pub const MAX_SMALL_BODY_BYTES: usize = 64 * 1024;

/// Every endpoint, as `(method, path)`; `tests/openapi.rs` checks the OpenAPI document against
/// it, and `tests/rbac.rs` checks every one of them for every role.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/openapi.json"),
    ("POST", "/api/v1/session"),
    ("DELETE", "/api/v1/session"),
    ("POST", "/api/v1/reports"),
    ("PUT", "/api/v1/scans/{scan_id}/preview"),
    ("PUT", "/api/v1/scans/{scan_id}/layers/{layer}"),
    ("POST", "/api/v1/scans/{scan_id}/annotations"),
    ("POST", "/api/v1/scans/{scan_id}/camera-code"),
    ("POST", "/api/v1/agents/heartbeat"),
    ("GET", "/api/v1/agents"),
    ("POST", "/api/v1/agents"),
    ("DELETE", "/api/v1/agents/{name}"),
    ("GET", "/api/v1/fleet"),
    ("GET", "/api/v1/declarations/sync"),
    ("GET", "/api/v1/models/{model}/release"),
    ("GET", "/api/v1/models/{model}/{sha256}"),
    ("GET", "/api/v1/declarations"),
    ("POST", "/api/v1/declarations"),
    ("POST", "/api/v1/declarations/import"),
    ("GET", "/api/v1/declarations/{reference}"),
    ("GET", "/api/v1/cases"),
    ("GET", "/api/v1/cases/{id}"),
    ("GET", "/api/v1/cases/{id}/preview"),
    ("GET", "/api/v1/cases/{id}/layers/{layer}"),
    ("POST", "/api/v1/cases/{id}/decisions"),
    ("POST", "/api/v1/cases/{id}/examinations"),
    ("POST", "/api/v1/cases/{id}/notes"),
    ("POST", "/api/v1/cases/{id}/assignment"),
    ("POST", "/api/v1/cases/{id}/shares"),
    ("GET", "/api/v1/events"),
    ("GET", "/api/v1/users"),
    ("POST", "/api/v1/users"),
    ("PUT", "/api/v1/users/{username}/role"),
    ("PUT", "/api/v1/users/{username}/disabled"),
    ("PUT", "/api/v1/users/{username}/password"),
    ("PUT", "/api/v1/session/password"),
    ("GET", "/api/v1/tokens"),
    ("DELETE", "/api/v1/tokens/{token_id}"),
    ("GET", "/api/v1/audit"),
    ("GET", "/api/v1/audit/verify"),
    ("GET", "/api/v1/release-times"),
    ("GET", "/api/v1/cases/{id}/bundle"),
    ("GET", "/api/v1/bundle-key"),
    ("POST", "/api/v1/bundles"),
    ("GET", "/api/v1/imports"),
    ("GET", "/api/v1/imports/{id}"),
    ("GET", "/api/v1/imports/{id}/files/{path}"),
    ("GET", "/api/v1/outcomes"),
    ("GET", "/api/v1/agents/raw-wanted"),
    ("POST", "/api/v1/agents/raw-missing"),
    ("PUT", "/api/v1/scans/{scan_id}/raw"),
    ("GET", "/api/v1/dataset-exports"),
    ("POST", "/api/v1/dataset-exports"),
    ("GET", "/api/v1/dataset-exports/{id}"),
    ("GET", "/api/v1/dataset-exports/{id}/download"),
    ("GET", "/api/v1/cases/{id}/tdr"),
];

/// Settings that differ between a demo on a laptop and production.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Mark cookies `Secure` (HTTPS only). Off only in demo mode, which runs on plain HTTP.
    pub secure_cookies: bool,
    /// Login attempts per user name allowed within [`Settings::login_window`] (a success
    /// clears them).
    pub login_attempts: u32,
    /// Failed login attempts per source address allowed within the window (behind a reverse
    /// proxy every login comes from its address: raise this there).
    pub login_attempts_per_address: u32,
    /// The window of the login rate limit.
    pub login_window: Duration,
    /// Password checks (argon2, tens of milliseconds of CPU each) that may run at once; a login
    /// that cannot get a turn within a few seconds is answered 503.
    pub concurrent_password_checks: usize,
    /// The administration's key for signed case bundles (`server keys generate`); without it
    /// the bundle endpoints answer 503.
    pub bundle_signer: Option<Arc<bundle::BundleSigner>>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            secure_cookies: true,
            login_attempts: 5,
            login_attempts_per_address: 30,
            login_window: Duration::from_secs(300),
            concurrent_password_checks: std::thread::available_parallelism()
                .map_or(2, std::num::NonZeroUsize::get),
            bundle_signer: None,
        }
    }
}

/// Shared state of every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The store.
    pub store: Store,
    /// Settings.
    pub settings: Arc<Settings>,
    /// New cases, for the live queue.
    pub events: broadcast::Sender<CaseSummary>,
    /// Prometheus metrics.
    pub metrics: Arc<metrics::Metrics>,
    /// Turns for password checks ([`Settings::concurrent_password_checks`]).
    pub password_checks: Arc<tokio::sync::Semaphore>,
    /// MQTT events for bay equipment (`--mqtt-host`): new cases and decisions.
    pub mqtt: Option<baylens_mqtt::Publisher>,
}

impl AppState {
    /// State with production settings.
    pub fn new(store: Store) -> Self {
        Self::with_settings(store, Settings::default())
    }

    /// State with the given settings. On PostgreSQL this starts the task that hears of new
    /// cases from every replica, so it must be called inside a Tokio runtime.
    pub fn with_settings(store: Store, settings: Settings) -> Self {
        let events = broadcast::channel(256).0;
        store.forward_announcements(events.clone());
        let checks = settings.concurrent_password_checks.max(1);
        Self {
            store,
            settings: Arc::new(settings),
            events,
            metrics: Arc::default(),
            password_checks: Arc::new(tokio::sync::Semaphore::new(checks)),
            mqtt: None,
        }
    }
}

async fn security_headers(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    if state.settings.secure_cookies {
        // Production runs behind TLS: browsers must not fall back to plain HTTP.
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; \
             frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// `router` with every request cut off after `limit` (408), so a client that sends its body
/// slowly, or not at all, cannot hold a handler for ever. Timeouts before the headers are
/// complete belong to the TLS reverse proxy in front of the server.
pub fn with_timeout(router: Router<AppState>, limit: Duration) -> Router<AppState> {
    router.layer(
        tower::ServiceBuilder::new()
            .layer(axum::error_handling::HandleErrorLayer::new(
                move |_: tower::BoxError| async move { error::ApiError::Timeout(limit.as_secs()) },
            ))
            .layer(tower::timeout::TimeoutLayer::new(limit)),
    )
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(routes::health::router())
        // Large bodies over weak bay links: images, annotations with photos, camera frames,
        // model files.
        .merge(with_timeout(
            Router::new()
                .merge(routes::evidence::uploads())
                .merge(routes::agents::annotations())
                .merge(routes::camera_codes::router())
                .merge(routes::bundles::uploads())
                .merge(routes::datasets::uploads())
                .merge(routes::models::router()),
            UPLOAD_TIMEOUT,
        ))
        .merge(with_timeout(
            Router::new()
                .merge(routes::agents::router())
                .merge(routes::declarations::router())
                .merge(routes::cases::router())
                .merge(routes::bundles::router())
                .merge(routes::outcomes::router())
                .merge(routes::datasets::router())
                .merge(routes::tdr::router())
                .merge(routes::admin::router())
                .merge(routes::accounts::router())
                .merge(routes::pages::router()),
            REQUEST_TIMEOUT,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security_headers,
        ))
        .with_state(state)
}

/// Serves the application on `listener` until `shutdown` resolves; in-flight requests finish.
/// Over TLS when `tls` is given (`--tls-cert/--tls-key`); handlers see the peer's address
/// either way (it feeds the per-address login limit).
pub async fn run(
    listener: TcpListener,
    tls: Option<Arc<baylens_tls::rustls::ServerConfig>>,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    baylens_tls::server::serve(listener, tls, app(state), shutdown).await
}
