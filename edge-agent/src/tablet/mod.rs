//! The officers' tablet page and the AR overlay stream, served by the agent itself so they work
//! when the bay is cut off from the server.
//!
//! | route | what |
//! |---|---|
//! | `GET /healthz` | liveness (no auth) |
//! | `GET /`, `GET /overlay-stream.schema.json` | the page and the stream's JSON schema (static; no bay data) |
//! | `POST /api/v1/session` | `{"code": "…"}`: an officer's access code → session cookie |
//! | `DELETE /api/v1/session` | sign out |
//! | `POST /api/v1/session/activity` | the page reports an officer's touch or key press (see [`sessions`]) |
//! | `GET /api/v1/bay` | the latest scan, findings, declaration, container code read, camera health |
//! | `GET /api/v1/scans/{scan_id}/layers/{layer}` | a layer PNG of the latest scan |
//! | `GET /api/v1/live.jpg`, `GET /api/v1/live.mjpg` | the live view with the overlay warped in |
//! | `GET /api/v1/overlay/stream` | WebSocket: per frame, the homography and the overlay primitives in scan coordinates (`baylens.overlay-stream/1`) |
//! | `POST /api/v1/scans/{scan_id}/annotations` | seal, examination result, note, photo: stored at the bay, then sent to the server |
//!
//! Every `/api/v1` route needs a session cookie (from an access code) or `Authorization: Bearer
//! <access code>` (for AR headsets). Access codes are random (`edge-agent officer-code`); the
//! config holds only their sha256 and the officer's user name on the server, to whom the server
//! attributes what the officer records.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::annotations::{Annotation, AnnotationStore};
use crate::bay::BayState;

mod live;
mod sessions;

pub use live::stream_message;
use sessions::Sessions;

/// The page.
const PAGE: &str = include_str!("../../assets/tablet.html");
/// The overlay stream's JSON schema.
pub const STREAM_SCHEMA: &str = include_str!("../../assets/overlay-stream.schema.json");
/// The contract name of overlay stream messages.
pub const STREAM_CONTRACT: &str = "baylens.overlay-stream/1";
/// Largest annotation (photo included), bytes.
pub const MAX_ANNOTATION_BYTES: usize = 12 * 1024 * 1024;

/// The `[tablet]` section of the agent's config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TabletConfig {
    /// Address to listen on, e.g. `0.0.0.0:8091` (the bay's Wi-Fi).
    pub listen: SocketAddr,
    /// The officers who may use it.
    pub officers: Vec<Officer>,
    /// How long a tablet session lasts at most, hours.
    #[serde(default = "default_session_hours")]
    pub session_hours: u64,
    /// Minutes without an officer's action after which a tablet session ends (a shared tablet
    /// does not keep the last officer signed in).
    #[serde(default = "default_idle_minutes")]
    pub idle_minutes: u64,
    /// Serve the page over HTTPS with this PEM certificate chain (needs `tls_key`); the
    /// session cookie is then `Secure` and named `__Host-baylens_tablet`.
    #[serde(default)]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of `tls_cert`.
    #[serde(default)]
    pub tls_key: Option<std::path::PathBuf>,
}

fn default_idle_minutes() -> u64 {
    15
}

fn default_session_hours() -> u64 {
    12
}

/// An officer and the hash of their access code.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Officer {
    /// The officer's user name on the server (an officer of this bay there).
    pub username: String,
    /// sha256 (hex) of the access code; `edge-agent officer-code` makes one.
    pub code_sha256: String,
}

impl TabletConfig {
    /// Checks the officers' hashes.
    pub fn validate(&self) -> Result<(), String> {
        if self.officers.is_empty() {
            return Err("tablet.officers is empty: nobody could sign in".into());
        }
        for o in &self.officers {
            if o.code_sha256.len() != 64 || !o.code_sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!(
                    "tablet.officers: the code_sha256 of {:?} is not a sha256 in hex",
                    o.username
                ));
            }
            if o.username.trim().is_empty() {
                return Err("tablet.officers: a user name is empty".into());
            }
        }
        if self.session_hours == 0 || self.idle_minutes == 0 {
            return Err("tablet.session_hours and tablet.idle_minutes must be positive".into());
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err("tablet.tls_cert and tablet.tls_key go together".into());
        }
        Ok(())
    }

    /// The TLS configuration of the page, when it serves HTTPS.
    pub fn tls(&self) -> Result<Option<Arc<baylens_tls::rustls::ServerConfig>>, String> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => baylens_tls::server::server_config(cert, key)
                .map(Some)
                .map_err(|e| format!("tablet TLS: {e}")),
            _ => Ok(None),
        }
    }

    /// The session cookie's name: with the `__Host-` prefix over HTTPS, so that nothing but
    /// this origin, over TLS, can set it.
    fn cookie_name(&self) -> &'static str {
        if self.tls_cert.is_some() {
            "__Host-baylens_tablet"
        } else {
            "baylens_tablet"
        }
    }

    /// The session cookie's attributes.
    fn cookie_attributes(&self) -> &'static str {
        if self.tls_cert.is_some() {
            "HttpOnly; SameSite=Strict; Path=/; Secure"
        } else {
            "HttpOnly; SameSite=Strict; Path=/"
        }
    }
}

/// A new access code and its hash.
pub fn new_code() -> (String, String) {
    let bytes: [u8; 16] = rand::random();
    let code = format!("blo_{}", hex::encode(bytes));
    let hash = hex::encode(Sha256::digest(code.as_bytes()));
    (code, hash)
}

pub(crate) fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.trim().as_bytes()))
}

/// Compares two hex digests without an early exit.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| {
            acc | (x.to_ascii_lowercase() ^ y.to_ascii_lowercase())
        }) == 0
}

/// What the handlers share.
#[derive(Clone)]
pub struct TabletState {
    /// The bay.
    pub bay: Arc<BayState>,
    /// Where annotations wait for the server.
    pub annotations: AnnotationStore,
    /// Config.
    pub config: Arc<TabletConfig>,
    /// Signed-in officers.
    sessions: Arc<Sessions>,
    /// Whether the agent was built with camera support.
    pub camera_built: bool,
}

impl std::fmt::Debug for TabletState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TabletState").finish_non_exhaustive()
    }
}

impl TabletState {
    /// New state with no sessions.
    pub fn new(bay: Arc<BayState>, annotations: AnnotationStore, config: TabletConfig) -> Self {
        Self {
            bay,
            annotations,
            sessions: Arc::new(Sessions::new(
                Duration::from_secs(config.session_hours * 3600),
                Duration::from_secs(config.idle_minutes * 60),
            )),
            config: Arc::new(config),
            camera_built: cfg!(feature = "camera"),
        }
    }

    fn officer_for_code(&self, code: &str) -> Option<String> {
        let hash = sha256_hex(code);
        let mut found = None;
        for o in &self.config.officers {
            if same(&o.code_sha256, &hash) && found.is_none() {
                found = Some(o.username.clone());
            }
        }
        found
    }

    /// The officer a request comes from: its session cookie or its bearer access code.
    /// `activity`: the request is an officer's action (it keeps the session from going idle).
    fn officer_of(&self, headers: &HeaderMap, activity: bool) -> Result<String, ApiError> {
        if let Some(code) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        {
            return self
                .officer_for_code(code)
                .ok_or_else(|| ApiError(StatusCode::UNAUTHORIZED, "unknown access code".into()));
        }
        let token = session_token(headers, self.config.cookie_name()).ok_or_else(|| {
            ApiError(
                StatusCode::UNAUTHORIZED,
                "sign in with your access code first".into(),
            )
        })?;
        self.sessions.officer(token, activity).ok_or_else(|| {
            ApiError(
                StatusCode::UNAUTHORIZED,
                "session ended; sign in again".into(),
            )
        })
    }

    /// The officer of a request that only looks (polling does not keep a session alive).
    fn officer(&self, headers: &HeaderMap) -> Result<String, ApiError> {
        self.officer_of(headers, false)
    }

    /// Whether the credentials of `headers` still hold, for a stream that outlives its
    /// request: a session cookie ends with sign-out or the idle timeout (watching is not
    /// activity); a headset's access code holds while the config names it.
    fn still_signed_in(&self, headers: &HeaderMap) -> impl Fn() -> bool + Send + Sync + 'static {
        let state = self.clone();
        let headers = headers.clone();
        move || state.officer_of(&headers, false).is_ok()
    }
}

/// The session token in a request's cookie called `name`.
fn session_token<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(name)?.strip_prefix('='))
}

/// An error answer: status and `{"error": …}`.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

/// The routes.
pub fn router(state: TabletState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/", get(|| async { Html(PAGE) }))
        .route(
            "/overlay-stream.schema.json",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "application/schema+json")],
                    STREAM_SCHEMA,
                )
            }),
        )
        .route("/api/v1/session", post(sign_in).delete(sign_out))
        .route("/api/v1/session/activity", post(activity))
        .route("/api/v1/bay", get(bay))
        .route("/api/v1/scans/{scan_id}/layers/{layer}", get(layer))
        .route("/api/v1/live.jpg", get(live::live_jpg))
        .route("/api/v1/live.mjpg", get(live::live_mjpg))
        .route("/api/v1/overlay/stream", get(live::stream))
        .route(
            "/api/v1/scans/{scan_id}/annotations",
            post(annotate).layer(DefaultBodyLimit::max(MAX_ANNOTATION_BYTES)),
        )
        .with_state(state)
}

/// Serves until `shutdown` resolves, over TLS when `tls` is given.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<Arc<baylens_tls::rustls::ServerConfig>>,
    state: TabletState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    baylens_tls::server::serve(listener, tls, router(state), shutdown).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    code: String,
}

async fn sign_in(State(s): State<TabletState>, body: Bytes) -> Result<Response, ApiError> {
    let req: SignIn = serde_json::from_slice(&body).map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("expected {{\"code\": \"…\"}}: {e}"),
        )
    })?;
    let Some(officer) = s.officer_for_code(&req.code) else {
        tracing::warn!("tablet sign-in with an unknown access code");
        return Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "unknown access code".into(),
        ));
    };
    let token = s.sessions.open(&officer);
    let hours = s.config.session_hours;
    let cookie = format!(
        "{}={token}; {}; Max-Age={}",
        s.config.cookie_name(),
        s.config.cookie_attributes(),
        hours * 3600
    );
    let mut r = Json(json!({"officer": officer})).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

/// Signs the tablet out: the session ends and the cookie is cleared.
async fn sign_out(State(s): State<TabletState>, headers: HeaderMap) -> Response {
    if let Some(token) = session_token(&headers, s.config.cookie_name()) {
        s.sessions.close(token);
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    let cleared = format!(
        "{}=; {}; Max-Age=0",
        s.config.cookie_name(),
        s.config.cookie_attributes()
    );
    if let Ok(v) = HeaderValue::from_str(&cleared) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// The page reports an officer's touch or key press: the session stays alive.
async fn activity(
    State(s): State<TabletState>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    s.officer_of(&headers, true)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Findings in plain words, most serious first.
fn findings(report: &baylens_protocol::ScanReport) -> Vec<Value> {
    let mut f: Vec<&baylens_protocol::Finding> = report.findings.iter().collect();
    f.sort_by(|a, b| b.score.total_cmp(&a.score));
    f.iter()
        .map(|f| {
            json!({
                "kind": f.kind,
                "score": f.score,
                "message": f.message,
                "region": f.region,
            })
        })
        .collect()
}

fn layer_names(l: &crate::bay::LatestScan) -> Vec<&'static str> {
    ["scan", "material", "expected", "heat", "findings"]
        .into_iter()
        .filter(|n| l.layers.contains_key(*n))
        .collect()
}

async fn bay(State(s): State<TabletState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let officer = s.officer(&headers)?;
    let latest = s.bay.latest();
    let frame = s.bay.frame();
    let queued = s.annotations.pending().await.unwrap_or(-1);
    Ok(Json(json!({
        "officer": officer,
        "camera": if s.camera_built { json!(s.bay.camera()) } else { json!({"state": "off", "error": "this agent was built without camera support"}) },
        "live": frame.as_ref().map(|f| json!({
            "seq": f.seq, "width": f.width, "height": f.height,
            "registered": f.corners.is_some(), "overlay": f.homography.is_some(),
            "process_ms": f.process_ms,
        })),
        "code": s.bay.code(),
        "annotations_waiting": queued,
        "scan": latest.as_ref().map(|l| json!({
            "scan_id": l.report.scan_id,
            "captured_at": l.report.captured_at,
            "container_code": l.report.container_code,
            "risk": l.report.risk,
            "lane": l.report.lane,
            "findings": findings(&l.report),
            "layers": layer_names(l),
            "declaration": l.declaration.as_ref().map(|d| json!({
                "reference": d.reference,
                "declarant": d.declarant.name,
                "gross_mass_kg": d.gross_mass_kg,
                "items": d.items.iter().map(|i| json!({
                    "hs_code": i.hs_code, "description": i.description,
                    "packages": i.packages, "gross_mass_kg": i.gross_mass_kg,
                })).collect::<Vec<_>>(),
            })),
        })),
    })))
}

async fn layer(
    State(s): State<TabletState>,
    headers: HeaderMap,
    Path((scan_id, layer)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    s.officer(&headers)?;
    let latest = s
        .bay
        .latest()
        .filter(|l| l.report.scan_id.as_str() == scan_id)
        .ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                format!("scan {scan_id} is not the bay's latest scan"),
            )
        })?;
    let name = layer.strip_suffix(".png").unwrap_or(&layer);
    let png = latest.layers.get(name).ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            format!("scan {scan_id} has no layer {name:?}"),
        )
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        png.clone(),
    )
        .into_response())
}

async fn annotate(
    State(s): State<TabletState>,
    headers: HeaderMap,
    Path(scan_id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let officer = s.officer_of(&headers, true)?;
    let annotation = Annotation::from_tablet(&officer, &scan_id, &body)
        .map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    let known = s
        .bay
        .latest()
        .is_some_and(|l| l.report.scan_id.as_str() == scan_id)
        || s.annotations.scan_known(&scan_id).await.unwrap_or(false);
    if !known {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("scan {scan_id} was not taken at this bay"),
        ));
    }
    let id = annotation.annotation_id.clone();
    s.annotations.add(&annotation).await.map_err(|e| {
        ApiError(
            StatusCode::INSUFFICIENT_STORAGE,
            format!("could not store the annotation: {e}"),
        )
    })?;
    s.annotations.wake();
    tracing::info!(%scan_id, officer, annotation_id = %id, "annotation recorded at the tablet");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"annotation_id": id, "status": "stored at the bay; it goes to the server when the server can be reached"})),
    )
        .into_response())
}
