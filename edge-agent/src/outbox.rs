//! The durable outbox: SQLite in WAL mode with `synchronous = FULL`, plus the scan's files under
//! `data_dir/scans/<scan_id>/`.
//!
//! A scan is acknowledged (moved out of the drop folder) only after its files are fsynced and its
//! row is committed, so a crash at any moment leaves either the original in the drop folder or a
//! complete copy in the store. Delivery state lives in the same row, so a restart resumes exactly
//! where it stopped.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use baylens_protocol::{ScanId, ScanReport};
use chrono::Utc;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::AgentError;

/// A file to keep with the scan.
#[derive(Debug, Clone, Copy)]
pub struct StoredFile<'a> {
    /// Bare file name inside the scan's folder.
    pub name: &'a str,
    /// Contents.
    pub bytes: &'a [u8],
}

/// A report waiting for delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    /// The scan.
    pub scan_id: ScanId,
    /// The report exactly as stored (sent byte for byte on every attempt).
    pub report_json: String,
    /// The preview PNG.
    pub preview_path: PathBuf,
    /// The heat-map layer PNG (may be missing).
    pub heat_path: PathBuf,
    /// Attempts so far.
    pub attempts: u32,
}

/// What `accept` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Stored now.
    New,
    /// This exact scan (same image bytes) was already stored: a re-drop after a crash.
    AlreadyStored,
    /// A different scan with the same id was already stored.
    Conflict,
}

/// The outbox.
#[derive(Debug, Clone)]
pub struct Outbox {
    pool: SqlitePool,
    scans_dir: PathBuf,
}

/// Name of the preview file in each scan folder.
pub const PREVIEW_FILE: &str = "preview.png";
/// Name of the heat-map layer in each scan folder (absent for scans stored by older agents).
pub const HEAT_FILE: &str = "heat.png";

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

impl Outbox {
    /// Opens (creating and migrating) the store under `data_dir`.
    pub async fn open(data_dir: &Path) -> Result<Self, AgentError> {
        let scans_dir = data_dir.join("scans");
        fs::create_dir_all(&scans_dir)
            .map_err(AgentError::io(format!("creating {}", scans_dir.display())))?;
        let db = data_dir.join("agent.db");
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", db.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool, scans_dir })
    }

    /// Folder of one scan's files.
    pub fn scan_dir(&self, scan_id: &ScanId) -> PathBuf {
        self.scans_dir.join(scan_id.as_str())
    }

    /// Stores a scan's files and its report durably. Returns only after both are on disk.
    pub async fn accept(
        &self,
        report: &ScanReport,
        high_sha256: &str,
        files: &[StoredFile<'_>],
    ) -> Result<Accepted, AgentError> {
        if let Some(row) = sqlx::query("SELECT high_sha256 FROM scans WHERE scan_id = ?")
            .bind(report.scan_id.as_str())
            .fetch_optional(&self.pool)
            .await?
        {
            let existing: String = row.get(0);
            return Ok(if existing == high_sha256 {
                Accepted::AlreadyStored
            } else {
                Accepted::Conflict
            });
        }
        let dir = self.scan_dir(&report.scan_id);
        let files: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|f| (f.name.to_owned(), f.bytes.to_vec()))
            .collect();
        let dir_for_write = dir.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            fs::create_dir_all(&dir_for_write)?;
            for (name, bytes) in &files {
                write_synced(&dir_for_write.join(name), bytes)?;
            }
            // The directory entry must be durable too, or a crash could lose the names.
            fs::File::open(&dir_for_write)?.sync_all()
        })
        .await
        .map_err(|e| AgentError::Io {
            context: "store task".into(),
            source: std::io::Error::other(e),
        })?
        .map_err(AgentError::io(format!(
            "writing scan files into {}",
            dir.display()
        )))?;
        let report_json = serde_json::to_string(report).map_err(|e| AgentError::Io {
            context: "encoding report".into(),
            source: e.into(),
        })?;
        sqlx::query(
            "INSERT INTO scans (scan_id, report_id, high_sha256, captured_at, accepted_at, report_json, state, next_attempt_ms)
             VALUES (?, ?, ?, ?, ?, ?, 'pending', ?)",
        )
        .bind(report.scan_id.as_str())
        .bind(report.report_id.as_str())
        .bind(high_sha256)
        .bind(report.captured_at.to_rfc3339())
        .bind(Utc::now().to_rfc3339())
        .bind(report_json)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(Accepted::New)
    }

    /// The oldest pending report whose next attempt is due.
    pub async fn next_due(&self) -> Result<Option<Pending>, AgentError> {
        let row = sqlx::query(
            "SELECT scan_id, report_json, attempts FROM scans
             WHERE state = 'pending' AND next_attempt_ms <= ? ORDER BY accepted_at, scan_id LIMIT 1",
        )
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let scan_id: String = row.get(0);
        let scan_id = ScanId::parse(&scan_id)
            .map_err(|e| AgentError::Config(format!("corrupt outbox row: {e}")))?;
        Ok(Some(Pending {
            preview_path: self.scan_dir(&scan_id).join(PREVIEW_FILE),
            heat_path: self.scan_dir(&scan_id).join(HEAT_FILE),
            scan_id,
            report_json: row.get(1),
            attempts: row.get::<i64, _>(2).try_into().unwrap_or(u32::MAX),
        }))
    }

    /// Milliseconds until the earliest pending report is due (None if nothing is pending).
    pub async fn ms_until_next_due(&self) -> Result<Option<i64>, AgentError> {
        let next: Option<i64> =
            sqlx::query_scalar("SELECT MIN(next_attempt_ms) FROM scans WHERE state = 'pending'")
                .fetch_one(&self.pool)
                .await?;
        Ok(next.map(|t| (t - now_ms()).max(0)))
    }

    /// Marks a report delivered.
    pub async fn mark_delivered(&self, scan_id: &ScanId) -> Result<(), AgentError> {
        sqlx::query("UPDATE scans SET state = 'delivered', delivered_at = ?, last_error = NULL WHERE scan_id = ?")
            .bind(Utc::now().to_rfc3339())
            .bind(scan_id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a failed attempt and when to try again.
    pub async fn mark_retry(
        &self,
        scan_id: &ScanId,
        error: &str,
        delay_ms: i64,
    ) -> Result<(), AgentError> {
        sqlx::query("UPDATE scans SET attempts = attempts + 1, last_error = ?, next_attempt_ms = ? WHERE scan_id = ?")
            .bind(error)
            .bind(now_ms() + delay_ms)
            .bind(scan_id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a permanent refusal by the server. The row and files stay for the operator.
    pub async fn mark_refused(&self, scan_id: &ScanId, error: &str) -> Result<(), AgentError> {
        sqlx::query("UPDATE scans SET state = 'refused', attempts = attempts + 1, last_error = ? WHERE scan_id = ?")
            .bind(error)
            .bind(scan_id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Counts of rows by state: (pending, delivered, refused).
    pub async fn counts(&self) -> Result<(i64, i64, i64), AgentError> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(state = 'pending'), 0), COALESCE(SUM(state = 'delivered'), 0), COALESCE(SUM(state = 'refused'), 0) FROM scans",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.get(0), row.get(1), row.get(2)))
    }
}
