//! Raw scans and dataset exports (issue "feedback loop"). A case's raw scan (sidecar and 16-bit
//! images as the bay received them, one tar) is written once, like other evidence: its object
//! key and sha256 are kept with the case and the write is audited. Bays upload it only when
//! asked ([`Store::want_raw`], which a dataset export calls for what it lacks); they poll
//! [`Store::raw_wanted`]. Export jobs started from the UI keep their progress here, so every
//! replica shows it.

use serde::Serialize;
use sqlx::Row;

use super::evidence::EvidenceWrite;
use super::{Store, User, ms_to_rfc3339, now_ms};

/// What the export needs of one case.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetCase {
    /// Case id.
    pub case_id: i64,
    /// Scan id.
    pub scan_id: String,
    /// Bay.
    pub bay: String,
    /// green, yellow or red.
    pub lane: String,
    /// The case's status (`released`, `seized`, …).
    pub status: String,
    /// Capture time (ms).
    pub captured_at: i64,
    /// The model that ran (name).
    pub model_name: String,
    /// The report as the bay sent it.
    pub report_json: String,
    /// The declaration's body (`baylens.declaration/1`), when the case has one.
    pub declaration: Option<String>,
    /// Examination results, oldest first (`consistent`, `discrepancy`).
    pub examinations: Vec<String>,
    /// The raw scan's object key and sha256, once uploaded.
    pub raw: Option<(String, String)>,
}

/// A dataset export started from the UI.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportJob {
    /// Id.
    pub id: i64,
    /// Who started it.
    pub requested_by: String,
    /// When (RFC 3339).
    pub requested_at: String,
    /// Its parameters (`from`, `to`, `bay`, `keep_names`).
    pub params: serde_json::Value,
    /// `running`, `done` or `failed`.
    pub state: String,
    /// Cases written so far.
    pub done: i64,
    /// Cases to write.
    pub total: i64,
    /// What was written (or why it failed), once finished.
    pub summary: Option<serde_json::Value>,
    /// sha256 of the tar to download, once done.
    pub sha256: Option<String>,
    /// When it finished (RFC 3339).
    pub finished_at: Option<String>,
    #[serde(skip)]
    /// Where the tar is kept.
    pub object_key: Option<String>,
}

impl Store {
    /// Records the raw scan of case `case_id`, already stored under `key` with hash `sha256`,
    /// unless the case has a different one. Allowed after a decision: raw scans are asked for
    /// when a case is closed. The record and its audit entry commit together.
    pub async fn record_raw(
        &self,
        actor: &str,
        case_id: i64,
        key: &str,
        sha256: &str,
    ) -> Result<EvidenceWrite, sqlx::Error> {
        let (mut tx, _lock) = self.begin_audited().await?;
        let old: Option<String> = sqlx::query_scalar("SELECT raw_sha256 FROM cases WHERE id = $1")
            .bind(case_id)
            .fetch_one(&mut *tx)
            .await?;
        if let Some(old) = old {
            return Ok(if old == sha256 {
                EvidenceWrite::Same
            } else {
                EvidenceWrite::Refused(format!(
                    "case {case_id} already has its raw scan (sha256 {old}); evidence is never \
                     replaced"
                ))
            });
        }
        sqlx::query("UPDATE cases SET raw_key = $1, raw_sha256 = $2 WHERE id = $3")
            .bind(key)
            .bind(sha256)
            .bind(case_id)
            .execute(&mut *tx)
            .await?;
        self.audit_in(
            &mut tx,
            actor,
            "evidence.raw",
            &format!("case:{case_id}"),
            &serde_json::json!({ "sha256": sha256, "object_key": key }),
        )
        .await?;
        tx.commit().await?;
        Ok(EvidenceWrite::Stored)
    }

    /// Asks the bays for the raw scans of `case_ids` that they have not uploaded and were not
    /// asked for yet; returns how many were newly asked for.
    pub async fn want_raw(&self, case_ids: &[i64]) -> Result<u64, sqlx::Error> {
        let now = now_ms();
        let mut asked = 0;
        for chunk in case_ids.chunks(500) {
            let list = super::id_list(chunk);
            asked += sqlx::query(&format!(
                "UPDATE cases SET raw_wanted_at = $1
                 WHERE id IN ({list}) AND raw_key IS NULL AND raw_wanted_at IS NULL"
            ))
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected();
        }
        Ok(asked)
    }

    /// The bay cannot provide case `case_id`'s raw scan (`reason`): stop asking (audited;
    /// a later export asks again).
    pub async fn raw_missing(
        &self,
        actor: &str,
        case_id: i64,
        reason: &str,
    ) -> Result<(), sqlx::Error> {
        let (mut tx, _lock) = self.begin_audited().await?;
        let asked = sqlx::query(
            "UPDATE cases SET raw_wanted_at = NULL WHERE id = $1 AND raw_key IS NULL
                 AND raw_wanted_at IS NOT NULL",
        )
        .bind(case_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if asked > 0 {
            self.audit_in(
                &mut tx,
                actor,
                "evidence.raw_missing",
                &format!("case:{case_id}"),
                &serde_json::json!({ "reason": reason }),
            )
            .await?;
        }
        tx.commit().await
    }

    /// Scan ids of bay `bay` whose raw scans are asked for and not yet uploaded, oldest
    /// request first, at most `limit`.
    pub async fn raw_wanted(&self, bay: &str, limit: i64) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT scan_id FROM cases
             WHERE bay = $1 AND raw_wanted_at IS NOT NULL AND raw_key IS NULL
             ORDER BY raw_wanted_at, id LIMIT $2",
        )
        .bind(bay)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    /// The closed or examined cases captured in `[from_ms, to_ms)`, of one bay when given,
    /// oldest first: what a dataset export chooses from.
    pub async fn dataset_cases(
        &self,
        from_ms: i64,
        to_ms: i64,
        bay: Option<&str>,
    ) -> Result<Vec<DatasetCase>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT c.id, c.scan_id, c.bay, c.lane, c.status, c.captured_at, c.model_name,
                 c.report_json, d.body, c.raw_key, c.raw_sha256
             FROM cases c LEFT JOIN declarations d ON d.id = c.declaration_id
             WHERE c.captured_at >= $1 AND c.captured_at < $2 AND ($3 = '' OR c.bay = $3)
                 AND (c.status IN ('released', 'seized')
                     OR EXISTS (SELECT 1 FROM case_events e WHERE e.case_id = c.id AND e.kind = 'examination'))
             ORDER BY c.captured_at, c.id",
        )
        .bind(from_ms)
        .bind(to_ms)
        .bind(bay.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        let mut by_case = self.examinations_between(from_ms, to_ms).await?;
        Ok(rows
            .iter()
            .map(|r| {
                let case_id: i64 = r.get(0);
                let raw = match (
                    r.get::<Option<String>, _>(9),
                    r.get::<Option<String>, _>(10),
                ) {
                    (Some(key), Some(sha)) => Some((key, sha)),
                    _ => None,
                };
                DatasetCase {
                    case_id,
                    scan_id: r.get(1),
                    bay: r.get(2),
                    lane: r.get(3),
                    status: r.get(4),
                    captured_at: r.get(5),
                    model_name: r.get(6),
                    report_json: r.get(7),
                    declaration: r.get(8),
                    examinations: by_case.remove(&case_id).unwrap_or_default(),
                    raw,
                }
            })
            .collect())
    }

    /// Starts an export job for `user` (audited `dataset.export`); returns its id.
    pub async fn create_export(
        &self,
        user: &User,
        params: &serde_json::Value,
    ) -> Result<i64, sqlx::Error> {
        let (mut tx, _lock) = self.begin_audited().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO dataset_exports (requested_by, requested_at, params, state)
             VALUES ($1, $2, $3, 'running') RETURNING id",
        )
        .bind(user.id)
        .bind(now_ms())
        .bind(params.to_string())
        .fetch_one(&mut *tx)
        .await?;
        self.audit_in(
            &mut tx,
            &user.username,
            "dataset.export",
            &format!("export:{id}"),
            params,
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Records a running job's progress.
    pub async fn export_progress(&self, id: i64, done: i64, total: i64) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE dataset_exports SET done = $1, total = $2 WHERE id = $3 AND state = 'running'",
        )
        .bind(done)
        .bind(total)
        .bind(id)
        .execute(&self.pool)
        .await
        .map(drop)
    }

    /// Ends a job: done with its tar (`key`, `sha256`) and summary, or failed with the reason
    /// in `summary`.
    pub async fn finish_export(
        &self,
        id: i64,
        done: Option<(&str, &str)>,
        summary: &serde_json::Value,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE dataset_exports SET state = $1, object_key = $2, sha256 = $3, summary = $4,
                 finished_at = $5 WHERE id = $6",
        )
        .bind(if done.is_some() { "done" } else { "failed" })
        .bind(done.map(|d| d.0))
        .bind(done.map(|d| d.1))
        .bind(summary.to_string())
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await
        .map(drop)
    }

    /// Marks jobs left running by a server that stopped as failed (called at start-up by a
    /// server on SQLite, the only one that can have been running them).
    pub async fn fail_interrupted_exports(&self) -> Result<u64, sqlx::Error> {
        sqlx::query(
            "UPDATE dataset_exports SET state = 'failed', finished_at = $1,
                 summary = '{\"error\":\"the server stopped during the export; start it again\"}'
             WHERE state = 'running'",
        )
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map(|r| r.rows_affected())
    }

    /// The newest export jobs, at most `limit`.
    pub async fn exports(&self, limit: i64) -> Result<Vec<ExportJob>, sqlx::Error> {
        self.export_rows("ORDER BY x.id DESC LIMIT $1", limit).await
    }

    /// One export job.
    pub async fn export_job(&self, id: i64) -> Result<Option<ExportJob>, sqlx::Error> {
        Ok(self
            .export_rows("WHERE x.id = $1", id)
            .await?
            .into_iter()
            .next())
    }

    async fn export_rows(&self, tail: &str, arg: i64) -> Result<Vec<ExportJob>, sqlx::Error> {
        let rows = sqlx::query(&format!(
            "SELECT x.id, u.username, x.requested_at, x.params, x.state, x.done, x.total,
                 x.summary, x.sha256, x.finished_at, x.object_key
             FROM dataset_exports x JOIN users u ON u.id = x.requested_by {tail}"
        ))
        .bind(arg)
        .fetch_all(&self.pool)
        .await?;
        let json = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
        Ok(rows
            .into_iter()
            .map(|r| ExportJob {
                id: r.get(0),
                requested_by: r.get(1),
                requested_at: ms_to_rfc3339(r.get(2)),
                params: json(r.get(3)).unwrap_or_default(),
                state: r.get(4),
                done: r.get(5),
                total: r.get(6),
                summary: json(r.get(7)),
                sha256: r.get(8),
                finished_at: r.get::<Option<i64>, _>(9).map(ms_to_rfc3339),
                object_key: r.get(10),
            })
            .collect())
    }
}
