//! Case figures: release-time rows (WCO Time Release Study intervals) and counts by lane.

use serde::Serialize;
use sqlx::Row;

use super::{Store, User};
use crate::auth::Role;

/// The timestamps of one case, for release-time figures (WCO TRS intervals).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReleaseRow {
    /// Case id.
    pub case_id: i64,
    /// Bay.
    pub bay: String,
    /// Lane.
    pub lane: String,
    /// Declaration lodged (ms), if matched.
    pub lodged_at: Option<i64>,
    /// Scan captured (ms).
    pub captured_at: i64,
    /// Report received (ms).
    pub received_at: i64,
    /// First decision (ms).
    pub decided_at: Option<i64>,
    /// Release (ms).
    pub released_at: Option<i64>,
}

impl Store {
    /// Timestamps of cases captured in `[from_ms, to_ms)` that `user` may see.
    pub async fn release_rows(
        &self,
        user: &User,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<ReleaseRow>, sqlx::Error> {
        let bay = match (user.role, &user.bay) {
            (Role::Supervisor | Role::Admin, _) => String::new(),
            (Role::Officer, Some(bay)) => bay.clone(),
            // Agencies see only what is shared with them, case by case; officers need a bay.
            (Role::Agency | Role::Metrics, _) | (Role::Officer, None) => return Ok(Vec::new()),
        };
        let rows = sqlx::query(
            "SELECT c.id, c.bay, c.lane, d.lodged_at, c.captured_at, c.received_at, c.decided_at, c.released_at
             FROM cases c LEFT JOIN declarations d ON d.id = c.declaration_id
             WHERE c.captured_at >= $1 AND c.captured_at < $2 AND ($3 = '' OR c.bay = $3)
             ORDER BY c.captured_at",
        )
        .bind(from_ms)
        .bind(to_ms)
        .bind(bay)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| ReleaseRow {
                case_id: r.get(0),
                bay: r.get(1),
                lane: r.get(2),
                lodged_at: r.get(3),
                captured_at: r.get(4),
                received_at: r.get(5),
                decided_at: r.get(6),
                released_at: r.get(7),
            })
            .collect())
    }

    /// Number of cases per lane, for `/metrics`.
    pub async fn cases_by_lane(&self) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
        let rows = sqlx::query("SELECT lane, status, COUNT(*) FROM cases GROUP BY lane, status")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    /// Number of cases.
    pub async fn count_cases(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT COUNT(*) FROM cases")
            .fetch_one(&self.pool)
            .await
    }
}
