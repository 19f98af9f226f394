//! Case figures: release-time rows (WCO Time Release Study intervals), outcome rows (what
//! examinations and decisions made of each case, for `crate::outcomes`) and counts by lane.

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

/// What is known of one case for the outcome figures.
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeRow {
    /// Case id.
    pub case_id: i64,
    /// Bay.
    pub bay: String,
    /// green, yellow or red.
    pub lane: String,
    /// The case's status.
    pub status: String,
    /// Model name.
    pub model_name: String,
    /// Model file sha256.
    pub model_sha256: String,
    /// Capture time (ms).
    pub captured_at: i64,
    /// Examination results recorded, oldest first (`consistent`, `discrepancy`).
    pub examinations: Vec<String>,
    /// The kinds of the report's findings (each once); empty when the case has no outcome yet.
    pub finding_kinds: Vec<String>,
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

    /// What became of the cases captured in `[from_ms, to_ms)`, of one bay and one model when
    /// given: lane, status, examination results and (for cases with an outcome) finding kinds.
    pub async fn outcome_rows(
        &self,
        from_ms: i64,
        to_ms: i64,
        bay: Option<&str>,
        model: Option<&str>,
    ) -> Result<Vec<OutcomeRow>, sqlx::Error> {
        // Reports are read only where their findings can be judged: an examination result or
        // a closed case.
        let rows = sqlx::query(
            "SELECT c.id, c.bay, c.lane, c.status, c.model_name, c.model_sha256, c.captured_at,
                 CASE WHEN c.findings_count > 0 AND (c.status IN ('released', 'seized')
                     OR EXISTS (SELECT 1 FROM case_events e WHERE e.case_id = c.id AND e.kind = 'examination'))
                 THEN c.report_json END
             FROM cases c
             WHERE c.captured_at >= $1 AND c.captured_at < $2 AND ($3 = '' OR c.bay = $3)
                 AND ($4 = '' OR c.model_name = $4)
             ORDER BY c.captured_at, c.id",
        )
        .bind(from_ms)
        .bind(to_ms)
        .bind(bay.unwrap_or(""))
        .bind(model.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        let mut by_case = self.examinations_between(from_ms, to_ms).await?;
        Ok(rows
            .iter()
            .map(|r| {
                let id: i64 = r.get(0);
                let mut finding_kinds: Vec<String> = r
                    .get::<Option<&str>, _>(7)
                    .and_then(|json| serde_json::from_str::<serde_json::Value>(json).ok())
                    .and_then(|report| {
                        report["findings"].as_array().map(|fs| {
                            fs.iter()
                                .filter_map(|f| f["kind"].as_str().map(str::to_owned))
                                .collect()
                        })
                    })
                    .unwrap_or_default();
                finding_kinds.sort();
                finding_kinds.dedup();
                OutcomeRow {
                    case_id: id,
                    bay: r.get(1),
                    lane: r.get(2),
                    status: r.get(3),
                    model_name: r.get(4),
                    model_sha256: r.get(5),
                    captured_at: r.get(6),
                    examinations: by_case.remove(&id).unwrap_or_default(),
                    finding_kinds,
                }
            })
            .collect())
    }

    /// The examination results of the cases captured in `[from_ms, to_ms)`, by case, oldest
    /// first.
    pub async fn examinations_between(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<std::collections::HashMap<i64, Vec<String>>, sqlx::Error> {
        let exams = sqlx::query(
            "SELECT e.case_id, e.value FROM case_events e JOIN cases c ON c.id = e.case_id
             WHERE e.kind = 'examination' AND c.captured_at >= $1 AND c.captured_at < $2
             ORDER BY e.id",
        )
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await?;
        let mut by_case: std::collections::HashMap<i64, Vec<String>> = Default::default();
        for e in &exams {
            if let Some(value) = e.get::<Option<String>, _>(1) {
                by_case.entry(e.get(0)).or_default().push(value);
            }
        }
        Ok(by_case)
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
