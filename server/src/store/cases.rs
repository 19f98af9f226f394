//! Cases: one per scan report, with the risk that combines scan and declaration, and
//! everything people do to them (decisions, examination results, notes, assignment, sharing).

use baylens_protocol::{Finding, FindingKind, ScanReport};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{DeclarationRow, Store, User, ms_to_rfc3339, now_ms};
use crate::auth::Role;
use crate::risk;
use crate::store::Agent;
use crate::store::ingest::{Inserted, NewCase};

/// What storing a report did.
#[derive(Debug, Clone, PartialEq)]
pub enum Ingested {
    /// New case.
    Created(Box<CaseSummary>),
    /// Same report id seen before.
    Duplicate(i64),
    /// The scan already has a case from a different report.
    ScanConflict(i64),
}

/// A supervisor's decision on a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Goods may leave.
    Release,
    /// Check the documents before deciding.
    DocumentaryCheck,
    /// Open the container.
    PhysicalExamination,
    /// Keep the goods until further notice.
    Hold,
    /// Seize the goods.
    Seize,
}

impl Decision {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Release => "release",
            Self::DocumentaryCheck => "documentary_check",
            Self::PhysicalExamination => "physical_examination",
            Self::Hold => "hold",
            Self::Seize => "seize",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Release,
            Self::DocumentaryCheck,
            Self::PhysicalExamination,
            Self::Hold,
            Self::Seize,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
    }

    /// The case status after this decision.
    pub fn status(self) -> &'static str {
        match self {
            Self::Release => "released",
            Self::Seize => "seized",
            Self::Hold => "held",
            Self::DocumentaryCheck => "documentary_check",
            Self::PhysicalExamination => "physical_examination",
        }
    }

    /// Every decision but release must be explained.
    pub fn needs_note(self) -> bool {
        self != Self::Release
    }
}

/// Score of the finding raised when a scan names a declaration for another container or bay.
pub const DECLARATION_CONFLICT_SCORE: f32 = 0.8;

/// A scan risk raised by one more finding of `score` (independent alarms: their misses multiply).
pub fn with_finding(scan_risk: f64, score: f32) -> f64 {
    1.0 - (1.0 - scan_risk) * (1.0 - f64::from(score))
}

/// Case statuses that end the case.
pub const FINAL_STATUSES: [&str; 2] = ["released", "seized"];

/// A case row as lists show it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CaseSummary {
    /// Case id.
    pub id: i64,
    /// Scan id.
    pub scan_id: String,
    /// Bay.
    pub bay: String,
    /// Capture time (RFC 3339).
    pub captured_at: String,
    /// When the report reached the server.
    pub received_at: String,
    /// Container code, if known.
    pub container_code: Option<String>,
    /// Matched declaration, if any.
    pub declaration_ref: Option<String>,
    /// Risk from the scan alone.
    pub scan_risk: f64,
    /// Case risk in [0, 1] (scan and declaration).
    pub risk: f64,
    /// green, yellow or red.
    pub lane: String,
    /// open, documentary_check, physical_examination, held, seized, released.
    pub status: String,
    /// Number of findings.
    pub findings_count: i64,
    /// Model that produced the findings.
    pub model_name: String,
    /// Whether a preview image has arrived.
    pub has_image: bool,
    /// Assigned officer or supervisor.
    pub assigned_to: Option<String>,
}

/// Something a person did to a case.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CaseEvent {
    /// When.
    pub at: String,
    /// Who.
    pub username: String,
    /// decision, examination, note, assignment, share.
    pub kind: String,
    /// The decision, result, assignee or agency.
    pub value: Option<String>,
    /// Free text.
    pub note: Option<String>,
}

/// Everything about one case.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CaseDetail {
    /// The summary.
    #[serde(flatten)]
    pub summary: CaseSummary,
    /// The bay's report as sent.
    pub report: serde_json::Value,
    /// The matched declaration.
    pub declaration: Option<DeclarationRow>,
    /// History, oldest first.
    pub events: Vec<CaseEvent>,
    /// Agencies it is shared with.
    pub shared_with: Vec<String>,
    /// Image layers the bay sent besides the preview (see [`LAYERS`]), officers' photos and
    /// the camera's frames.
    pub layers: Vec<String>,
    /// The container code the bay's camera read, if the bay sent one.
    pub camera_code: Option<super::camera_codes::CameraReading>,
}

/// Image layers a bay may send, bottom to top as the viewer stacks them.
pub const LAYERS: [&str; 4] = ["material", "heat", "expected", "findings"];

pub(super) const SUMMARY_COLUMNS: &str =
    "c.id, c.scan_id, c.bay, c.captured_at, c.received_at, c.container_code, c.declaration_ref,
     c.scan_risk, c.risk, c.lane, c.status, c.findings_count, c.model_name,
     CASE WHEN c.preview_key IS NULL THEN 0 ELSE 1 END, u.username";

pub(super) fn summary_from_row(r: &AnyRow) -> CaseSummary {
    CaseSummary {
        id: r.get(0),
        scan_id: r.get(1),
        bay: r.get(2),
        captured_at: ms_to_rfc3339(r.get(3)),
        received_at: ms_to_rfc3339(r.get(4)),
        container_code: r.get(5),
        declaration_ref: r.get(6),
        scan_risk: r.get(7),
        risk: r.get(8),
        lane: r.get(9),
        status: r.get(10),
        findings_count: r.get(11),
        model_name: r.get(12),
        has_image: r.get::<i64, _>(13) != 0,
        assigned_to: r.get(14),
    }
}

/// Whether `user` may see a case of `bay` (shared with the user's agency or not).
pub fn can_see(user: &User, bay: &str, shared_with_user: bool) -> bool {
    match user.role {
        Role::Supervisor | Role::Admin => true,
        Role::Officer => user.bay.as_deref() == Some(bay),
        Role::Agency => shared_with_user,
        Role::Metrics => false,
    }
}

impl Store {
    /// Stores a report as a case, once per report id, matched to its declaration and scored.
    /// The insert is committed before this returns, so a 2xx answer means the case survives
    /// a crash.
    pub async fn ingest_report(
        &self,
        agent: &Agent,
        report: &ScanReport,
        raw: &str,
    ) -> Result<Ingested, sqlx::Error> {
        let captured = report.captured_at.timestamp_millis();
        let (matched, conflict) = self
            .match_declaration(
                report.declaration_ref.as_deref(),
                report.container_code.as_ref().map(|c| c.as_str()),
                report.bay.as_str(),
                captured,
            )
            .await?;
        // A reference that names another container or bay is a finding of the case (kept in
        // its report), and raises the scan's part of the risk like any finding.
        let mut report_json = raw.to_owned();
        let mut findings_count = report.findings.len() as i64;
        let mut scan_risk = f64::from(report.scan_risk());
        if let Some(message) = conflict {
            let finding = Finding {
                kind: FindingKind::ContainerCodeMismatch,
                score: DECLARATION_CONFLICT_SCORE,
                region: None,
                message,
            };
            let mut amended = report.clone();
            amended.findings.push(finding);
            report_json = serde_json::to_string(&amended).unwrap_or(report_json);
            findings_count += 1;
            scan_risk = with_finding(scan_risk, DECLARATION_CONFLICT_SCORE);
        }
        // The bay's own risk includes its (possibly stale) copy of the declaration's score:
        // combine the scan part with the server's.
        let risk = risk::case_risk(scan_risk, matched.as_ref().map(|m| m.2));
        let lane = self.lanes.lane(risk as f32);
        let row = NewCase {
            report_id: report.report_id.as_str().to_owned(),
            scan_id: report.scan_id.as_str().to_owned(),
            bay: report.bay.as_str().to_owned(),
            agent_id: agent.id,
            captured_at: captured,
            container_code: report
                .container_code
                .as_ref()
                .map(|c| c.as_str().to_owned()),
            declaration_ref: matched
                .as_ref()
                .map(|m| m.1.clone())
                .or_else(|| report.declaration_ref.clone()),
            declaration_id: matched.as_ref().map(|m| m.0),
            scan_risk,
            risk,
            lane: lane.as_str(),
            model_name: report.model.name.clone(),
            model_sha256: report.model.sha256.clone(),
            findings_count,
            report_json,
        };
        // Committed together with the other reports of the same few milliseconds (group
        // commit: one fsync for the batch); answered only after that commit.
        let outcome = self.commit_case(row).await?;
        // `last_seen_at` comes from heartbeats: a second write per report would cost a second
        // fsync on the ingest path.
        match outcome {
            Inserted::New(id) => {
                let summary = self
                    .case_summary(id)
                    .await?
                    .ok_or(sqlx::Error::RowNotFound)?;
                Ok(Ingested::Created(Box::new(summary)))
            }
            Inserted::SameReport(id) => Ok(Ingested::Duplicate(id)),
            Inserted::OtherReport(id) => Ok(Ingested::ScanConflict(id)),
        }
    }

    /// One case's summary, without a visibility check.
    pub async fn case_summary(&self, id: i64) -> Result<Option<CaseSummary>, sqlx::Error> {
        let row = sqlx::query(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM cases c LEFT JOIN users u ON u.id = c.assigned_to WHERE c.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(summary_from_row))
    }

    /// The case of a scan, with its bay.
    pub async fn case_of_scan(&self, scan_id: &str) -> Result<Option<(i64, String)>, sqlx::Error> {
        let row = sqlx::query("SELECT id, bay FROM cases WHERE scan_id = $1")
            .bind(scan_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    /// Whether the case exists and `user` may see it: `None` if there is no such case.
    pub async fn case_access(&self, user: &User, id: i64) -> Result<Option<bool>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT c.bay, (SELECT COUNT(*) FROM case_shares s WHERE s.case_id = c.id AND s.user_id = $2)
             FROM cases c WHERE c.id = $1",
        )
        .bind(id)
        .bind(user.id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| can_see(user, r.get::<&str, _>(0), r.get::<i64, _>(1) > 0)))
    }

    /// Everything about a case (no visibility check: call [`Store::case_access`] first).
    pub async fn case_detail(&self, id: i64) -> Result<Option<CaseDetail>, sqlx::Error> {
        let Some(summary) = self.case_summary(id).await? else {
            return Ok(None);
        };
        let row = sqlx::query(
            "SELECT c.report_json, d.reference FROM cases c LEFT JOIN declarations d ON d.id = c.declaration_id WHERE c.id = $1",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        let report = serde_json::from_str(row.get::<&str, _>(0)).unwrap_or_default();
        let declaration = match row.get::<Option<String>, _>(1) {
            Some(reference) => self.declaration(&reference).await?,
            None => None,
        };
        let events = sqlx::query(
            "SELECT e.at, u.username, e.kind, e.value, e.note FROM case_events e JOIN users u ON u.id = e.user_id
             WHERE e.case_id = $1 ORDER BY e.id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| CaseEvent {
            at: ms_to_rfc3339(r.get(0)),
            username: r.get(1),
            kind: r.get(2),
            value: r.get(3),
            note: r.get(4),
        })
        .collect();
        let shared_with = sqlx::query(
            "SELECT u.username FROM case_shares s JOIN users u ON u.id = s.user_id WHERE s.case_id = $1 ORDER BY u.username",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
        let mut layers: Vec<String> =
            sqlx::query("SELECT name FROM case_layers WHERE case_id = $1")
                .bind(id)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
        layers.sort_by_key(|l| LAYERS.iter().position(|x| x == l));
        let camera_code = self.camera_code(id).await?;
        Ok(Some(CaseDetail {
            summary,
            report,
            declaration,
            events,
            shared_with,
            layers,
            camera_code,
        }))
    }

    /// Records a decision. Returns the new status, or `Err(status)` when the case is already
    /// closed. The event, the case update and the audit entry commit together.
    pub async fn decide(
        &self,
        user: &User,
        case_id: i64,
        decision: Decision,
        note: Option<&str>,
    ) -> Result<Result<&'static str, String>, sqlx::Error> {
        let (mut tx, _lock) = self.begin_audited().await?;
        let status: String = sqlx::query_scalar("SELECT status FROM cases WHERE id = $1")
            .bind(case_id)
            .fetch_one(&mut *tx)
            .await?;
        if FINAL_STATUSES.contains(&status.as_str()) {
            return Ok(Err(status));
        }
        let now = now_ms();
        let new_status = decision.status();
        // The status condition repeats the check above inside the write itself.
        let updated = sqlx::query(
            "UPDATE cases SET status = $1, decision = $2, decided_at = COALESCE(decided_at, $3),
                 released_at = CASE WHEN $4 = 1 THEN $3 ELSE released_at END
             WHERE id = $5 AND status <> 'released' AND status <> 'seized'",
        )
        .bind(new_status)
        .bind(decision.as_str())
        .bind(now)
        .bind(i64::from(decision == Decision::Release))
        .bind(case_id)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() != 1 {
            return Ok(Err(status));
        }
        self.event_in(
            &mut tx,
            user,
            case_id,
            "decision",
            Some(decision.as_str()),
            note,
            now,
        )
        .await?;
        self.audit_in(
            &mut tx,
            &format!("user:{}", user.username),
            "case.decision",
            &format!("case:{case_id}"),
            &serde_json::json!({"decision": decision.as_str(), "note": note, "from_status": status}),
        )
        .await?;
        tx.commit().await?;
        Ok(Ok(new_status))
    }

    /// Records an event of `kind` (examination, note, assignment, share), audited.
    pub async fn add_event(
        &self,
        user: &User,
        case_id: i64,
        kind: &str,
        value: Option<&str>,
        note: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        let (mut tx, _lock) = self.begin_audited().await?;
        self.event_in(&mut tx, user, case_id, kind, value, note, now_ms())
            .await?;
        if kind == "assignment" {
            sqlx::query(
                "UPDATE cases SET assigned_to = (SELECT id FROM users WHERE username = $1) WHERE id = $2",
            )
            .bind(value)
            .bind(case_id)
            .execute(&mut *tx)
            .await?;
        }
        if kind == "share" {
            sqlx::query(
                "INSERT INTO case_shares (case_id, user_id, shared_at)
                 SELECT $1, id, $2 FROM users WHERE username = $3 ON CONFLICT DO NOTHING",
            )
            .bind(case_id)
            .bind(now_ms())
            .bind(value)
            .execute(&mut *tx)
            .await?;
        }
        self.audit_in(
            &mut tx,
            &format!("user:{}", user.username),
            &format!("case.{kind}"),
            &format!("case:{case_id}"),
            &serde_json::json!({"value": value, "note": note}),
        )
        .await?;
        tx.commit().await
    }

    /// Records an officer's annotation relayed by a bay agent: its events, attributed to the
    /// officer, and its id, in one audited transaction. Returns false (and records nothing)
    /// when this annotation id was recorded before.
    pub async fn record_annotation(
        &self,
        annotation_id: &str,
        officer: &User,
        case_id: i64,
        events: &[(&str, Option<&str>, Option<&str>)],
        at: i64,
    ) -> Result<bool, sqlx::Error> {
        let (mut tx, _lock) = self.begin_audited().await?;
        let inserted = sqlx::query(
            "INSERT INTO bay_annotations (annotation_id, case_id, officer_id, received_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT (annotation_id) DO NOTHING",
        )
        .bind(annotation_id)
        .bind(case_id)
        .bind(officer.id)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Ok(false);
        }
        for (kind, value, note) in events {
            self.event_in(&mut tx, officer, case_id, kind, *value, *note, at)
                .await?;
            self.audit_in(
                &mut tx,
                &format!("user:{}", officer.username),
                &format!("case.{kind}"),
                &format!("case:{case_id}"),
                &serde_json::json!({"value": value, "note": note, "annotation_id": annotation_id, "via": "bay tablet"}),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    #[allow(clippy::too_many_arguments)]
    async fn event_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        user: &User,
        case_id: i64,
        kind: &str,
        value: Option<&str>,
        note: Option<&str>,
        at: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO case_events (case_id, at, user_id, kind, value, note) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(case_id)
        .bind(at)
        .bind(user.id)
        .bind(kind)
        .bind(value)
        .bind(note)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}
