//! Operations: `/healthz` (process up), `/readyz` (database reachable), `/metrics`
//! (Prometheus; admin, or an admin's API token for the scraper).

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use std::fmt::Write;

use crate::AppState;
use crate::auth::{Principal, Role};
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

async fn readyz(State(state): State<AppState>) -> Result<&'static str> {
    state.store.ping().await.map_err(|e| {
        // Anyone may ask; the details (hosts, users, SQL) go to the log only.
        tracing::error!("readiness check: database: {e}");
        ApiError::Unavailable("database unavailable".into())
    })?;
    Ok("ready\n")
}

async fn metrics(State(state): State<AppState>, principal: Principal) -> Result<impl IntoResponse> {
    principal.user_with(&[Role::Admin])?;
    let mut out = String::new();
    state.metrics.render(&mut out);
    out.push_str("# HELP baylens_cases Cases by lane and status.\n# TYPE baylens_cases gauge\n");
    for (lane, status, n) in state.store.cases_by_lane().await? {
        let _ = writeln!(
            out,
            "baylens_cases{{lane=\"{lane}\",status=\"{status}\"}} {n}"
        );
    }
    out.push_str("# HELP baylens_agent_queue_depth Reports waiting in each agent's outbox, from its last heartbeat.\n# TYPE baylens_agent_queue_depth gauge\n");
    for agent in state.store.list_agents().await? {
        if let (Some(depth), None) = (agent.queue_depth, &agent.revoked_at) {
            let _ = writeln!(
                out,
                "baylens_agent_queue_depth{{agent=\"{}\",bay=\"{}\"}} {depth}",
                agent.name, agent.bay
            );
        }
    }
    out.push_str("# HELP baylens_event_subscribers Live queue pages connected.\n# TYPE baylens_event_subscribers gauge\n");
    let _ = writeln!(
        out,
        "baylens_event_subscribers {}",
        state.events.receiver_count()
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out))
}
