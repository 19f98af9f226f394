//! A case's DICOS Threat Detection Report (`baylens_dicos`), for screening systems and agencies
//! that read DICOS: the bay's findings as potential threat objects, with the alarm decision.
//! Whoever may read the case may read its TDR.

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use baylens_protocol::ScanReport;

use super::cases::visible_case;
use crate::auth::Principal;
use crate::error::{ApiError, Result};
use crate::extract::P;
use crate::{AppState, MAX_SMALL_BODY_BYTES};

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/cases/{id}/tdr", get(tdr))
        .layer(DefaultBodyLimit::max(MAX_SMALL_BODY_BYTES))
}

async fn tdr(
    State(state): State<AppState>,
    principal: Principal,
    P(id): P<i64>,
) -> Result<Response> {
    visible_case(&state, principal, id).await?;
    let detail = state
        .store
        .case_detail(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let report: ScanReport = serde_json::from_value(detail.report)
        .map_err(|e| ApiError::Internal(format!("case {id}: stored report: {e}")))?;
    let bytes = baylens_dicos::tdr(&report).map_err(ApiError::Internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, baylens_dicos::MEDIA_TYPE.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"case-{id}.tdr.dcm\""),
            ),
        ],
        bytes,
    )
        .into_response())
}
