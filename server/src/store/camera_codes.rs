//! The container code a bay's camera read over a truck pass, one per case. On arrival it is
//! compared with the scanner's code and the matched declaration's; when it disagrees, the case
//! gets a `container_code_mismatch` finding with both readings (in its report, which the case
//! page, the TDR and the bundle show), and its scan risk, risk and lane are raised as for any
//! finding. The frames that read the code are the case's evidence images (stored by the
//! caller before this, see `routes::camera_codes`).

use baylens_protocol::camera_code::{CameraCode, disagreement};
use baylens_protocol::{Finding, FindingKind};
use serde::Serialize;
use sqlx::Row;

use super::cases::{DECLARATION_CONFLICT_SCORE, with_finding};
use super::{Agent, Store, ms_to_rfc3339, now_ms};
use crate::risk;

/// The slot names of a camera reading's frames start with this (then the reading id and the
/// frame's number).
pub const CAMERA_PREFIX: &str = "camera-";

/// A case's camera reading, as the case shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CameraReading {
    /// The bay's id for the reading.
    pub reading_id: String,
    /// The code the camera read.
    pub code: String,
    /// The pass's confidence.
    pub confidence: f64,
    /// Frames read in the pass.
    pub frames: i64,
    /// Frames whose own reading is the code.
    pub agreeing: i64,
    /// Size/type code read beside it.
    pub size_type: Option<String>,
    /// When the bay accepted it (RFC 3339).
    pub read_at: String,
    /// When the server received it (RFC 3339).
    pub received_at: String,
    /// The finding's message when it disagreed with the scanner's or the declaration's code.
    pub mismatch: Option<String>,
    /// The frames' evidence slots (`/api/v1/cases/{id}/layers/{name}`).
    pub frames_evidence: Vec<String>,
}

/// What recording a camera reading did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameraRecorded {
    /// Recorded now; the mismatch finding's message if one was raised.
    New(Option<String>),
    /// This reading was recorded before: nothing changed.
    Same,
    /// Refused: why.
    Refused(String),
}

impl Store {
    /// Whether a camera reading with this id was recorded (checked before its frames are
    /// stored, so a retried delivery writes nothing).
    pub async fn camera_code_recorded(&self, reading_id: &str) -> Result<bool, sqlx::Error> {
        Ok(
            sqlx::query("SELECT 1 FROM camera_codes WHERE reading_id = $1")
                .bind(reading_id)
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }

    /// Records the camera's reading of case `case_id`, whose frames are stored already as the
    /// evidence slots `frames`; raises the mismatch finding when it disagrees. The reading, the
    /// case's update and the audit entry commit together.
    pub async fn record_camera_code(
        &self,
        agent: &Agent,
        case_id: i64,
        reading: &CameraCode,
        frames: &[String],
    ) -> Result<CameraRecorded, sqlx::Error> {
        let (mut tx, _lock) = self.begin_audited().await?;
        if let Some(r) = sqlx::query("SELECT reading_id FROM camera_codes WHERE case_id = $1")
            .bind(case_id)
            .fetch_optional(&mut *tx)
            .await?
        {
            let other: String = r.get(0);
            return Ok(if other == reading.reading_id {
                CameraRecorded::Same
            } else {
                CameraRecorded::Refused(format!(
                    "case {case_id} already has the camera's reading {other}; a case keeps its first"
                ))
            });
        }
        let case = sqlx::query(
            "SELECT c.container_code, c.report_json, c.scan_risk, d.reference, d.container_code, d.pre_risk
             FROM cases c LEFT JOIN declarations d ON d.id = c.declaration_id WHERE c.id = $1",
        )
        .bind(case_id)
        .fetch_one(&mut *tx)
        .await?;
        let scanner: Option<String> = case.get(0);
        let declared: Option<(String, String)> = match (
            case.get::<Option<String>, _>(3),
            case.get::<Option<String>, _>(4),
        ) {
            (Some(reference), Some(code)) => Some((reference, code)),
            _ => None,
        };
        let mismatch = disagreement(
            reading,
            scanner.as_deref(),
            declared.as_ref().map(|(r, c)| (r.as_str(), c.as_str())),
        );
        if let Some(message) = &mismatch {
            let finding = Finding {
                kind: FindingKind::ContainerCodeMismatch,
                score: DECLARATION_CONFLICT_SCORE,
                region: None,
                message: message.clone(),
            };
            // The report is amended as JSON, so that nothing of it is lost in a round trip.
            let mut report: serde_json::Value =
                serde_json::from_str(case.get::<&str, _>(1)).unwrap_or_default();
            if let Some(findings) = report
                .get_mut("findings")
                .and_then(serde_json::Value::as_array_mut)
            {
                findings.push(serde_json::to_value(&finding).unwrap_or_default());
            }
            let scan_risk = with_finding(case.get(2), DECLARATION_CONFLICT_SCORE);
            let risk = risk::case_risk(scan_risk, case.get(5));
            sqlx::query(
                "UPDATE cases SET report_json = $1, scan_risk = $2, risk = $3, lane = $4,
                 findings_count = findings_count + 1 WHERE id = $5",
            )
            .bind(report.to_string())
            .bind(scan_risk)
            .bind(risk)
            .bind(self.lanes.lane(risk as f32).as_str())
            .bind(case_id)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO camera_codes (reading_id, case_id, code, confidence, frames, agreeing,
             size_type, read_at, received_at, mismatch, frames_json)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&reading.reading_id)
        .bind(case_id)
        .bind(reading.code.as_str())
        .bind(f64::from(reading.confidence))
        .bind(i64::from(reading.frames))
        .bind(i64::from(reading.agreeing))
        .bind(reading.size_type.as_deref())
        .bind(reading.read_at.timestamp_millis())
        .bind(now_ms())
        .bind(mismatch.as_deref())
        .bind(serde_json::to_string(frames).unwrap_or_default())
        .execute(&mut *tx)
        .await?;
        self.audit_in(
            &mut tx,
            &format!("agent:{}", agent.name),
            "case.camera_code",
            &format!("case:{case_id}"),
            &serde_json::json!({
                "reading_id": reading.reading_id, "code": reading.code.as_str(),
                "confidence": reading.confidence, "frames": reading.frames,
                "agreeing": reading.agreeing, "scanner_code": scanner,
                "declaration": declared.as_ref().map(|(r, c)| serde_json::json!({"reference": r, "container_code": c})),
                "mismatch": mismatch, "evidence": frames,
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(CameraRecorded::New(mismatch))
    }

    /// The camera's reading of a case, if the bay sent one.
    pub async fn camera_code(&self, case_id: i64) -> Result<Option<CameraReading>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT reading_id, code, confidence, frames, agreeing, size_type, read_at, received_at,
             mismatch, frames_json FROM camera_codes WHERE case_id = $1",
        )
        .bind(case_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| CameraReading {
            reading_id: r.get(0),
            code: r.get(1),
            confidence: r.get(2),
            frames: r.get(3),
            agreeing: r.get(4),
            size_type: r.get(5),
            read_at: ms_to_rfc3339(r.get(6)),
            received_at: ms_to_rfc3339(r.get(7)),
            mismatch: r.get(8),
            frames_evidence: serde_json::from_str(r.get::<&str, _>(9)).unwrap_or_default(),
        }))
    }
}
