//! Operations: `/healthz` (process up), `/readyz` (database and image store reachable),
//! `/metrics` (Prometheus; admins, and the read-only `metrics` role for scrapers).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::fmt::Write;

use crate::AppState;
use crate::auth::{Principal, Role, request_token};
use crate::error::{ApiError, Result};

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the database answers and the image store can be listed. Anyone may ask, and
/// learns only which part is down; the errors themselves (hosts, users, SQL, buckets) go to
/// the log, and to a signed-in admin, who gets every check as JSON.
async fn readyz(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    let database = state.store.ping().await.map_err(|e| e.to_string());
    let images = {
        use object_store::ObjectStore as _;
        let probe = object_store::path::Path::from("readyz");
        state
            .store
            .images
            .list_with_delimiter(Some(&probe))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let checks = [("database", &database), ("images", &images)];
    for (part, outcome) in checks {
        if let Err(e) = outcome {
            tracing::error!("readiness check: {part}: {e}");
        }
    }
    let down: Vec<&str> = checks
        .iter()
        .filter(|(_, o)| o.is_err())
        .map(|(part, _)| *part)
        .collect();
    // An admin needs the database to be recognised: when it is down, the log has the details.
    let admin = match (
        &database,
        request_token(&headers, state.settings.secure_cookies),
    ) {
        (Ok(()), Some(token)) => state
            .store
            .user_by_session(&token)
            .await
            .ok()
            .flatten()
            .filter(|u| u.role == Role::Admin),
        _ => None,
    };
    if admin.is_some() {
        let detail: serde_json::Map<String, serde_json::Value> = checks
            .iter()
            .map(|(part, o)| {
                let v = match o {
                    Ok(()) => serde_json::json!({"ok": true}),
                    Err(e) => serde_json::json!({"ok": false, "error": e}),
                };
                (part.to_string(), v)
            })
            .collect();
        let status = if down.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        let body = serde_json::json!({"ready": down.is_empty(), "checks": detail});
        return Ok((status, Json(body)).into_response());
    }
    if down.is_empty() {
        Ok("ready\n".into_response())
    } else {
        Err(ApiError::Unavailable(format!(
            "{} unavailable",
            down.join(" and ")
        )))
    }
}

async fn metrics(State(state): State<AppState>, principal: Principal) -> Result<impl IntoResponse> {
    principal.user_with(&[Role::Admin, Role::Metrics])?;
    let mut out = String::new();
    state.metrics.render(&mut out);
    out.push_str("# HELP baylens_cases Cases by lane and status.\n# TYPE baylens_cases gauge\n");
    for (lane, status, n) in state.store.cases_by_lane().await? {
        let _ = writeln!(
            out,
            "baylens_cases{{lane=\"{lane}\",status=\"{status}\"}} {n}"
        );
    }
    crate::metrics::render_fleet(&mut out, &state.store.fleet().await?);
    out.push_str("# HELP baylens_event_subscribers Live queue pages connected.\n# TYPE baylens_event_subscribers gauge\n");
    let _ = writeln!(
        out,
        "baylens_event_subscribers {}",
        state.events.receiver_count()
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out))
}
