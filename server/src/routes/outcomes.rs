//! Outcomes of the risk lanes and the model's findings, from decisions and examination results
//! (`crate::outcomes`), as JSON or CSV, for supervisors and admins.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use serde::Deserialize;

use crate::AppState;
use crate::MAX_SMALL_BODY_BYTES;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, Result};
use crate::extract::Q;
use crate::outcomes::{Outcomes, compute, csv};
use crate::store::now_ms;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/outcomes", get(outcomes))
        .layer(DefaultBodyLimit::max(MAX_SMALL_BODY_BYTES))
}

/// Which cases.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeQuery {
    /// Scans captured at or after (default: 12 weeks before `to`).
    pub from: Option<chrono::DateTime<Utc>>,
    /// Scans captured before (default: now).
    pub to: Option<chrono::DateTime<Utc>>,
    /// Only this bay.
    pub bay: Option<String>,
    /// Only this model (its name).
    pub model: Option<String>,
    /// `json` (default) or `csv` (one row per group).
    pub format: Option<String>,
}

/// The outcome figures of the query's period.
pub async fn outcome_data(state: &AppState, q: &OutcomeQuery) -> Result<Outcomes> {
    let to = q.to.map_or(now_ms() + 1, |t| t.timestamp_millis());
    let from = q
        .from
        .map_or(to - 12 * 7 * 86_400_000, |t| t.timestamp_millis());
    if from >= to {
        return Err(ApiError::Unprocessable("from must be before to".into()));
    }
    let rows = state
        .store
        .outcome_rows(from, to, q.bay.as_deref(), q.model.as_deref())
        .await?;
    tokio::task::spawn_blocking(move || compute(&rows))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))
}

async fn outcomes(
    State(state): State<AppState>,
    principal: Principal,
    Q(q): Q<OutcomeQuery>,
) -> Result<Response> {
    principal.user_with(&[Role::Supervisor, Role::Admin])?;
    let format = q.format.as_deref().unwrap_or("json");
    if format != "json" && format != "csv" {
        return Err(ApiError::Unprocessable(format!(
            "format must be json or csv, got {:?}",
            format.chars().take(20).collect::<String>()
        )));
    }
    let o = outcome_data(&state, &q).await?;
    if format == "csv" {
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"baylens-outcomes.csv\"",
                ),
            ],
            csv(&o),
        )
            .into_response());
    }
    Ok(Json(o).into_response())
}
