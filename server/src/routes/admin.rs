//! Users and roles (admin), the audit log (supervisor, admin) and release-time figures
//! (WCO Time Release Study intervals, TFA Art. 7.6).

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use chrono::{Datelike, Utc};
use serde::{Deserialize, Serialize};

use super::agents::json_body;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, Result};
use crate::extract::{P, Q};
use crate::store::{AuditEntry, AuditVerdict, ReleaseRow, User, from_ms, ms_to_rfc3339, now_ms};
use crate::{AppState, MAX_SMALL_BODY_BYTES};

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/users", get(list_users).post(add_user))
        .route("/api/v1/users/{username}/role", put(set_role))
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/audit/verify", get(verify))
        .route("/api/v1/release-times", get(release_times))
        .route("/api/v1/openapi.json", get(openapi))
        .layer(DefaultBodyLimit::max(MAX_SMALL_BODY_BYTES))
}

/// The OpenAPI 3.1 document of this API (`server/openapi.json`).
pub const OPENAPI: &str = include_str!("../../openapi.json");

async fn openapi(principal: Principal) -> Result<Response> {
    principal.any_user()?;
    Ok(([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response())
}

async fn list_users(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<User>>> {
    principal.user_with(&[Role::Admin])?;
    Ok(Json(state.store.list_users().await?))
}

/// Body of `POST /api/v1/users`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    username: String,
    password: String,
    role: String,
    bay: Option<String>,
}

/// Checks a role and bay pair.
pub fn role_and_bay(role: &str, bay: Option<&str>) -> Result<Role> {
    let role = Role::parse(role).ok_or_else(|| {
        ApiError::Unprocessable(format!(
            "unknown role {:?}; use officer, supervisor, admin, agency or metrics",
            role.chars().take(40).collect::<String>()
        ))
    })?;
    match (role, bay) {
        (Role::Officer, None) => Err(ApiError::Unprocessable("an officer needs a bay".into())),
        (Role::Officer, Some(b)) => {
            baylens_protocol::BayId::parse(b)
                .map_err(|e| ApiError::Unprocessable(format!("bay: {e}")))?;
            Ok(role)
        }
        (_, Some(_)) => Err(ApiError::Unprocessable(format!(
            "only officers have a bay, not {}",
            role.as_str()
        ))),
        (_, None) => Ok(role),
    }
}

/// Checks a login name.
pub fn valid_username(name: &str) -> Result<()> {
    if (3..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        Ok(())
    } else {
        Err(ApiError::Unprocessable(
            "username must be 3 to 64 characters of A-Z a-z 0-9 . - _".into(),
        ))
    }
}

async fn add_user(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<User>)> {
    let admin = principal.user_with(&[Role::Admin])?;
    let new: NewUser = json_body(&headers, &body)?;
    valid_username(&new.username)?;
    let role = role_and_bay(&new.role, new.bay.as_deref())?;
    super::accounts::valid_password(&new.password)?;
    let id = state
        .store
        .add_user(
            &format!("user:{}", admin.username),
            &new.username,
            &new.password,
            role,
            new.bay.as_deref(),
        )
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                ApiError::Conflict(format!("user {} exists", new.username))
            }
            e => e.into(),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(User {
            id,
            username: new.username,
            role,
            bay: new.bay,
        }),
    ))
}

/// Body of a role change.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleBody {
    role: String,
    bay: Option<String>,
}

async fn set_role(
    State(state): State<AppState>,
    principal: Principal,
    P(username): P<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode> {
    let admin = principal.user_with(&[Role::Admin])?;
    let b: RoleBody = json_body(&headers, &body)?;
    let role = role_and_bay(&b.role, b.bay.as_deref())?;
    if username == admin.username && role != Role::Admin {
        return Err(ApiError::Unprocessable(
            "an admin cannot demote themselves; ask another admin".into(),
        ));
    }
    if state
        .store
        .set_role(
            &format!("user:{}", admin.username),
            &username,
            role,
            b.bay.as_deref(),
        )
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}

/// Query of the audit list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    /// Only entries about this subject, e.g. `case:42`.
    subject: Option<String>,
    /// At most this many (default 200, at most 1000).
    limit: Option<i64>,
}

async fn audit(
    State(state): State<AppState>,
    principal: Principal,
    Q(q): Q<AuditQuery>,
) -> Result<Json<Vec<AuditEntry>>> {
    principal.user_with(&[Role::Supervisor, Role::Admin])?;
    Ok(Json(
        state
            .store
            .audit_entries(q.subject.as_deref(), q.limit.unwrap_or(200).clamp(1, 1000))
            .await?,
    ))
}

async fn verify(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<serde_json::Value>> {
    principal.user_with(&[Role::Supervisor, Role::Admin])?;
    Ok(Json(match state.store.verify_audit().await? {
        AuditVerdict::Intact { rows, head } => {
            serde_json::json!({"intact": true, "rows": rows, "head": head})
        }
        AuditVerdict::Broken { seq, reason } => {
            serde_json::json!({"intact": false, "seq": seq, "reason": reason})
        }
    }))
}

/// Query of the release-time figures.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseQuery {
    /// Scans captured at or after (default: 8 weeks ago).
    pub from: Option<chrono::DateTime<Utc>>,
    /// Scans captured before (default: now).
    pub to: Option<chrono::DateTime<Utc>>,
    /// `json` (default) or `csv` (one row per case).
    pub format: Option<String>,
}

/// Median and 90th percentile of one interval, in minutes, over `n` cases.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Stat {
    /// Cases with both ends of the interval.
    pub n: usize,
    /// Median, minutes.
    pub median_min: Option<f64>,
    /// 90th percentile, minutes.
    pub p90_min: Option<f64>,
}

/// Figures for one group (bay or lane, and ISO week).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Group {
    /// `bay` or `lane`.
    pub by: &'static str,
    /// The bay or lane.
    pub key: String,
    /// ISO week, e.g. `2026-W48`.
    pub week: String,
    /// Cases.
    pub cases: usize,
    /// Lodging to scan (how early traders lodge).
    pub lodging_to_scan: Stat,
    /// Scan to report received (the bay's link).
    pub scan_to_report: Stat,
    /// Report to first decision (review queue).
    pub report_to_decision: Stat,
    /// Scan to release (what the trader feels).
    pub scan_to_release: Stat,
}

/// Nearest-rank percentile of sorted minutes.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    Some((sorted[rank.min(sorted.len()) - 1] * 10.0).round() / 10.0)
}

fn stat(rows: &[&ReleaseRow], interval: impl Fn(&ReleaseRow) -> Option<i64>) -> Stat {
    let mut minutes: Vec<f64> = rows
        .iter()
        .filter_map(|r| interval(r))
        .map(|ms| ms as f64 / 60_000.0)
        .collect();
    minutes.sort_by(f64::total_cmp);
    Stat {
        n: minutes.len(),
        median_min: percentile(&minutes, 50.0),
        p90_min: percentile(&minutes, 90.0),
    }
}

fn iso_week(ms: i64) -> String {
    let w = from_ms(ms).iso_week();
    format!("{}-W{:02}", w.year(), w.week())
}

/// Groups rows per bay and per lane, per ISO week.
pub fn release_groups(rows: &[ReleaseRow]) -> Vec<Group> {
    let mut groups: std::collections::BTreeMap<(&'static str, String, String), Vec<&ReleaseRow>> =
        Default::default();
    for r in rows {
        let week = iso_week(r.captured_at);
        groups
            .entry(("bay", r.bay.clone(), week.clone()))
            .or_default()
            .push(r);
        groups
            .entry(("lane", r.lane.clone(), week))
            .or_default()
            .push(r);
    }
    groups
        .into_iter()
        .map(|((by, key, week), rs)| Group {
            by,
            key,
            week,
            cases: rs.len(),
            lodging_to_scan: stat(&rs, |r| r.lodged_at.map(|l| r.captured_at - l)),
            scan_to_report: stat(&rs, |r| Some(r.received_at - r.captured_at)),
            report_to_decision: stat(&rs, |r| r.decided_at.map(|d| d - r.received_at)),
            scan_to_release: stat(&rs, |r| r.released_at.map(|d| d - r.captured_at)),
        })
        .collect()
}

fn csv(rows: &[ReleaseRow]) -> String {
    let t = |ms: Option<i64>| ms.map(ms_to_rfc3339).unwrap_or_default();
    let mins = |a: Option<i64>, b: Option<i64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.1}", (b - a) as f64 / 60_000.0),
        _ => String::new(),
    };
    let mut out = String::from(
        "case_id,bay,lane,lodged_at,scanned_at,report_received_at,decided_at,released_at,lodging_to_scan_min,scan_to_report_min,report_to_decision_min,scan_to_release_min\n",
    );
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{}\n",
            r.case_id,
            r.bay,
            r.lane,
            t(r.lodged_at),
            t(Some(r.captured_at)),
            t(Some(r.received_at)),
            t(r.decided_at),
            t(r.released_at),
            mins(r.lodged_at, Some(r.captured_at)),
            mins(Some(r.captured_at), Some(r.received_at)),
            mins(Some(r.received_at), r.decided_at),
            mins(Some(r.captured_at), r.released_at),
        ));
    }
    out
}

/// The release-time rows and groups `user` may see for a query.
pub async fn release_data(
    state: &AppState,
    user: &User,
    q: &ReleaseQuery,
) -> Result<(Vec<ReleaseRow>, Vec<Group>)> {
    let to = q.to.map_or(now_ms() + 1, |t| t.timestamp_millis());
    let from = q
        .from
        .map_or(to - 8 * 7 * 86_400_000, |t| t.timestamp_millis());
    let rows = state.store.release_rows(user, from, to).await?;
    let groups = release_groups(&rows);
    Ok((rows, groups))
}

async fn release_times(
    State(state): State<AppState>,
    principal: Principal,
    Q(q): Q<ReleaseQuery>,
) -> Result<Response> {
    let user = principal.user_with(&[Role::Officer, Role::Supervisor, Role::Admin])?;
    let (rows, groups) = release_data(&state, &user, &q).await?;
    match q.format.as_deref().unwrap_or("json") {
        "json" => Ok(Json(serde_json::json!({ "groups": groups })).into_response()),
        "csv" => Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"baylens-release-times.csv\"",
                ),
            ],
            csv(&rows),
        )
            .into_response()),
        other => Err(ApiError::Unprocessable(format!(
            "format must be json or csv, got {:?}",
            other.chars().take(20).collect::<String>()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(5.0));
        assert_eq!(percentile(&v, 90.0), Some(9.0));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[7.0], 90.0), Some(7.0));
    }

    #[test]
    fn groups_split_by_bay_lane_and_week() {
        let base = 1_764_000_000_000; // 2025-11-24, a Monday
        let row =
            |id, bay: &str, lane: &str, offset_days: i64, release_min: Option<i64>| ReleaseRow {
                case_id: id,
                bay: bay.into(),
                lane: lane.into(),
                lodged_at: Some(base - 3_600_000),
                captured_at: base + offset_days * 86_400_000,
                received_at: base + offset_days * 86_400_000 + 60_000,
                decided_at: None,
                released_at: release_min.map(|m| base + offset_days * 86_400_000 + m * 60_000),
            };
        let rows = vec![
            row(1, "b1", "green", 0, Some(10)),
            row(2, "b1", "red", 1, Some(30)),
            row(3, "b2", "green", 8, None),
        ];
        let g = release_groups(&rows);
        let b1 = g.iter().find(|g| g.by == "bay" && g.key == "b1").unwrap();
        assert_eq!(b1.cases, 2);
        assert_eq!(b1.scan_to_release.median_min, Some(10.0));
        assert_eq!(b1.scan_to_release.p90_min, Some(30.0));
        assert_eq!(b1.scan_to_report.median_min, Some(1.0));
        let green: Vec<_> = g
            .iter()
            .filter(|g| g.by == "lane" && g.key == "green")
            .collect();
        assert_eq!(green.len(), 2, "two different weeks");
        assert!(
            csv(&rows)
                .lines()
                .nth(1)
                .unwrap()
                .starts_with("1,b1,green,")
        );
    }
}
