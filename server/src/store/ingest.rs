//! Group commit for report ingest. Every new case must be durable before its report is answered
//! 2xx, and on SQLite each commit costs an fsync of the WAL. So one writer task takes all the
//! reports waiting at that moment (up to [`BATCH`]), inserts them in one transaction, commits
//! once, and then answers each. Under load the fsyncs are shared; alone, a report waits for
//! nothing but its own commit.

use sqlx::{Any, AnyPool, Row, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::{Backend, now_ms};

/// Reports waiting for the writer at most.
pub const QUEUE: usize = 4096;
/// Reports per transaction at most.
pub const BATCH: usize = 256;

/// A case row to insert.
#[derive(Debug, Clone)]
pub struct NewCase {
    /// Report id.
    pub report_id: String,
    /// Scan id.
    pub scan_id: String,
    /// Bay.
    pub bay: String,
    /// Reporting agent.
    pub agent_id: i64,
    /// Capture time (ms).
    pub captured_at: i64,
    /// Container code.
    pub container_code: Option<String>,
    /// Matched (or stated) declaration reference.
    pub declaration_ref: Option<String>,
    /// Matched declaration.
    pub declaration_id: Option<i64>,
    /// Scan risk.
    pub scan_risk: f64,
    /// Case risk.
    pub risk: f64,
    /// Lane.
    pub lane: &'static str,
    /// Model name.
    pub model_name: String,
    /// Model sha256.
    pub model_sha256: String,
    /// Number of findings.
    pub findings_count: i64,
    /// The report as received.
    pub report_json: String,
}

/// What inserting did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// A new case with this id.
    New(i64),
    /// This report was stored before, as this case.
    SameReport(i64),
    /// The scan already has a case from another report.
    OtherReport(i64),
}

/// A report waiting for the writer.
#[derive(Debug)]
pub struct Job {
    row: NewCase,
    reply: oneshot::Sender<Result<Inserted, String>>,
}

impl super::Store {
    /// Inserts a case through the group-commit writer; returns after its transaction commits.
    pub async fn commit_case(&self, row: NewCase) -> Result<Inserted, sqlx::Error> {
        let (reply, answer) = oneshot::channel();
        self.ingest
            .send(Job { row, reply })
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        answer
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?
            .map_err(sqlx::Error::Protocol)
    }
}

/// The writer task: runs until every sender is gone.
pub async fn writer(pool: AnyPool, backend: Backend, mut jobs: mpsc::Receiver<Job>) {
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        match insert_batch(&pool, backend, &batch).await {
            Ok(outcomes) => {
                for (job, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = job.reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                // Nothing of the batch was committed; every report gets the error (5xx) and
                // its agent sends it again.
                tracing::error!(reports = batch.len(), "ingest batch failed: {e}");
                for job in batch {
                    let _ = job.reply.send(Err(e.to_string()));
                }
            }
        }
    }
}

async fn insert_batch(
    pool: &AnyPool,
    backend: Backend,
    batch: &[Job],
) -> Result<Vec<Inserted>, sqlx::Error> {
    let mut tx: Transaction<'static, Any> = match backend {
        Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await?,
        Backend::Postgres => pool.begin().await?,
    };
    let now = now_ms();
    let mut outcomes = Vec::with_capacity(batch.len());
    for job in batch {
        let r = &job.row;
        let inserted = sqlx::query(
            "INSERT INTO cases (report_id, scan_id, bay, agent_id, captured_at, received_at, container_code,
                                declaration_ref, declaration_id, scan_risk, risk, lane, status, model_name,
                                model_sha256, findings_count, report_json)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'open', $13, $14, $15, $16)
             ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(&r.report_id)
        .bind(&r.scan_id)
        .bind(&r.bay)
        .bind(r.agent_id)
        .bind(r.captured_at)
        .bind(now)
        .bind(r.container_code.as_deref())
        .bind(r.declaration_ref.as_deref())
        .bind(r.declaration_id)
        .bind(r.scan_risk)
        .bind(r.risk)
        .bind(r.lane)
        .bind(&r.model_name)
        .bind(&r.model_sha256)
        .bind(r.findings_count)
        .bind(&r.report_json)
        .fetch_optional(&mut *tx)
        .await?;
        let outcome = match inserted {
            Some(row) => Inserted::New(row.get(0)),
            None => {
                let existing = sqlx::query(
                    "SELECT id, report_id FROM cases WHERE report_id = $1 OR scan_id = $2",
                )
                .bind(&r.report_id)
                .bind(&r.scan_id)
                .fetch_one(&mut *tx)
                .await?;
                let report_id: String = existing.get(1);
                if report_id == r.report_id {
                    Inserted::SameReport(existing.get(0))
                } else {
                    Inserted::OtherReport(existing.get(0))
                }
            }
        };
        outcomes.push(outcome);
    }
    tx.commit().await?;
    Ok(outcomes)
}
