//! Cases: one per scan report, with the risk that combines scan and declaration, and
//! everything people do to them (decisions, examination results, notes, assignment, sharing).

use baylens_protocol::ScanReport;
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
    /// Image layers the bay sent besides the preview (see [`LAYERS`]).
    pub layers: Vec<String>,
}

/// Image layers a bay may send, bottom to top as the viewer stacks them.
pub const LAYERS: [&str; 4] = ["material", "heat", "expected", "findings"];

/// Sort orders of the case list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseSort {
    /// Highest risk first (default).
    #[default]
    Risk,
    /// Newest scan first.
    Newest,
    /// Oldest scan first.
    Oldest,
}

/// Case list filters; all optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFilter {
    /// Only this bay.
    pub bay: Option<String>,
    /// Only this lane.
    pub lane: Option<String>,
    /// Only this status.
    pub status: Option<String>,
    /// Captured at or after (RFC 3339).
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// Captured before (RFC 3339).
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// Container code, or its beginning.
    pub container: Option<String>,
    /// Order.
    #[serde(default)]
    pub sort: CaseSort,
    /// Page size, 1..=500 (default 100).
    pub limit: Option<i64>,
    /// Rows to skip.
    pub offset: Option<i64>,
}

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

enum Bind {
    Text(String),
    Int(i64),
}

const SUMMARY_COLUMNS: &str =
    "c.id, c.scan_id, c.bay, c.captured_at, c.received_at, c.container_code, c.declaration_ref,
     c.scan_risk, c.risk, c.lane, c.status, c.findings_count, c.model_name,
     CASE WHEN c.preview_key IS NULL THEN 0 ELSE 1 END, u.username";

fn summary_from_row(r: &AnyRow) -> CaseSummary {
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
    }
}

/// The smallest string of `0-9A-Z` greater than every string that starts with `prefix` (in
/// byte order, and in any collation that orders digits before letters), or `None` when
/// `prefix` is all `Z` (or empty).
pub fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '0'..='8' | 'A'..='Y' => Some(char::from(last as u8 + 1)),
            '9' => Some('A'),
            _ => None,
        };
        if let Some(n) = next {
            chars.push(n);
            return Some(chars.into_iter().collect());
        }
    }
    None
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
        let matched = self
            .match_declaration(
                report.declaration_ref.as_deref(),
                report.container_code.as_ref().map(|c| c.as_str()),
                captured,
            )
            .await?;
        // The bay's own risk includes its (possibly stale) copy of the declaration's score:
        // combine the scan part with the server's.
        let scan_risk = f64::from(report.scan_risk());
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
            findings_count: report.findings.len() as i64,
            report_json: raw.to_owned(),
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

    /// Records the object key of a case's preview.
    pub async fn set_preview(&self, case_id: i64, key: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE cases SET preview_key = $1 WHERE id = $2")
            .bind(key)
            .bind(case_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records (or replaces) the object key of a case's image layer.
    pub async fn set_layer(&self, case_id: i64, name: &str, key: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO case_layers (case_id, name, object_key, uploaded_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (case_id, name) DO UPDATE SET object_key = excluded.object_key, uploaded_at = excluded.uploaded_at",
        )
        .bind(case_id)
        .bind(name)
        .bind(key)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The object key of a case's image layer.
    pub async fn layer_key(&self, case_id: i64, name: &str) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT object_key FROM case_layers WHERE case_id = $1 AND name = $2")
            .bind(case_id)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
    }

    /// Cases `user` may see, filtered and sorted.
    pub async fn list_cases(
        &self,
        user: &User,
        filter: &CaseFilter,
    ) -> Result<Vec<CaseSummary>, sqlx::Error> {
        let mut clauses: Vec<String> = Vec::new();
        let mut binds: Vec<Bind> = Vec::new();
        let mut push = |clause: &str, value: Bind| {
            binds.push(value);
            clauses.push(clause.replace("$?", &format!("${}", binds.len())));
        };
        match user.role {
            Role::Supervisor | Role::Admin => {}
            Role::Officer => push(
                "c.bay = $?",
                Bind::Text(user.bay.clone().unwrap_or_default()),
            ),
            Role::Agency => push(
                "EXISTS (SELECT 1 FROM case_shares s WHERE s.case_id = c.id AND s.user_id = $?)",
                Bind::Int(user.id),
            ),
        }
        if let Some(bay) = &filter.bay {
            push("c.bay = $?", Bind::Text(bay.clone()));
        }
        if let Some(lane) = &filter.lane {
            push("c.lane = $?", Bind::Text(lane.clone()));
        }
        if let Some(status) = &filter.status {
            push("c.status = $?", Bind::Text(status.clone()));
        }
        if let Some(from) = filter.from {
            push("c.captured_at >= $?", Bind::Int(from.timestamp_millis()));
        }
        if let Some(to) = filter.to {
            push("c.captured_at < $?", Bind::Int(to.timestamp_millis()));
        }
        if let Some(container) = &filter.container {
            let prefix: String = container
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .map(|c| c.to_ascii_uppercase())
                .collect();
            // A range rather than LIKE, so the container index serves it (SQLite's LIKE is
            // case-insensitive and cannot use a plain index).
            push("c.container_code >= $?", Bind::Text(prefix.clone()));
            if let Some(next) = prefix_successor(&prefix) {
                push("c.container_code < $?", Bind::Text(next));
            }
        }
        let order = match filter.sort {
            CaseSort::Risk => "c.risk DESC, c.captured_at DESC, c.id DESC",
            CaseSort::Newest => "c.captured_at DESC, c.id DESC",
            CaseSort::Oldest => "c.captured_at ASC, c.id ASC",
        };
        let where_sql = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let n = binds.len();
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM cases c LEFT JOIN users u ON u.id = c.assigned_to
             {where_sql} ORDER BY {order} LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        );
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = match b {
                Bind::Text(s) => q.bind(s),
                Bind::Int(i) => q.bind(i),
            };
        }
        let rows = q
            .bind(filter.limit.unwrap_or(100).clamp(1, 500))
            .bind(filter.offset.unwrap_or(0).max(0))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(summary_from_row).collect())
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
        Ok(Some(CaseDetail {
            summary,
            report,
            declaration,
            events,
            shared_with,
            layers,
        }))
    }

    /// The bay and preview key of a case.
    pub async fn case_preview(
        &self,
        case_id: i64,
    ) -> Result<Option<(String, Option<String>)>, sqlx::Error> {
        let row = sqlx::query("SELECT bay, preview_key FROM cases WHERE id = $1")
            .bind(case_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
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
            (Role::Agency, _) | (Role::Officer, None) => return Ok(Vec::new()),
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

#[cfg(test)]
mod tests {
    use super::prefix_successor;

    #[test]
    fn the_successor_bounds_every_code_with_the_prefix() {
        assert_eq!(prefix_successor("MSCU0042").as_deref(), Some("MSCU0043"));
        assert_eq!(prefix_successor("MSCU9").as_deref(), Some("MSCUA"));
        assert_eq!(prefix_successor("MSZZ").as_deref(), Some("MT"));
        assert_eq!(prefix_successor("ZZ"), None);
        let p = "MSCU0042";
        let next = prefix_successor(p).unwrap();
        for code in ["MSCU0042", "MSCU00420000", "MSCU0042ZZZZ", "MSCU00429999"] {
            assert!(code >= p && code < next.as_str(), "{code}");
        }
        assert!("MSCU0043" >= next.as_str() && "MSCU0041Z" < p);
    }
}
