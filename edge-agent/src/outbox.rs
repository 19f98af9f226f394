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
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use baylens_protocol::{ScanId, ScanReport};
use chrono::{DateTime, Utc};
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
    /// The scan's folder, holding the layer PNGs (any may be missing).
    pub dir: PathBuf,
    /// The report's lane is green: it goes out with a thumbnail first (`thumb.png`, when the
    /// scan has one), the full resolution later.
    pub cleared: bool,
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
    /// Bytes of scan files held under `scans_dir`.
    usage: Arc<AtomicU64>,
}

/// Total size of the files under `dir`, recursively.
fn dir_bytes(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => dir_bytes(&e.path()),
                    Ok(_) => e.metadata().map_or(0, |m| m.len()),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Name of the preview file in each scan folder.
pub const PREVIEW_FILE: &str = "preview.png";
/// Layers sent after the preview, as `<layer>.png` in each scan folder (absent ones, from older
/// agents or single-energy scans, are skipped). The server's viewer stacks them in this order.
pub const LAYERS: [&str; 4] = ["material", "heat", "expected", "findings"];
/// Name of the thumbnail (the preview at a third of its size) sent first for cleared scans.
pub const THUMB_FILE: &str = "thumb.png";

/// Bytes and count of delivered scans' uplink, and the same for green-lane scans only.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct UplinkStats {
    /// Delivered scans with a byte count.
    pub delivered: i64,
    /// Mean bytes sent per delivered scan.
    pub mean_bytes: f64,
    /// Delivered green-lane (cleared) scans.
    pub cleared: i64,
    /// Mean bytes sent per cleared scan before it counted as delivered (report, thumbnail).
    pub mean_cleared_bytes: f64,
    /// Cleared scans whose full resolution followed.
    pub cleared_full: i64,
    /// Mean bytes of that follow-up.
    pub mean_cleared_full_bytes: f64,
}

/// Whether a stored report's lane is green.
fn is_green(report_json: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(report_json)
        .map(|v| v["lane"] == "green")
        .unwrap_or(false)
}

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
        // Scans, declarations and tokens live here: the agent's user only, whatever the umask.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Err(e) = fs::set_permissions(data_dir, fs::Permissions::from_mode(0o700)) {
                tracing::warn!("cannot restrict {} to its owner: {e}", data_dir.display());
            }
        }
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
        let usage = Arc::new(AtomicU64::new(dir_bytes(&scans_dir)));
        Ok(Self {
            pool,
            scans_dir,
            usage,
        })
    }

    /// Opens an existing store without creating or migrating it (for `edge-agent status`,
    /// which may run beside the agent).
    pub async fn open_existing(data_dir: &Path) -> Result<Self, AgentError> {
        let db = data_dir.join("agent.db");
        if !db.exists() {
            return Err(AgentError::Config(format!(
                "no agent store at {}: has the agent run with this config?",
                db.display()
            )));
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", db.display()))?
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        let scans_dir = data_dir.join("scans");
        let usage = Arc::new(AtomicU64::new(dir_bytes(&scans_dir)));
        Ok(Self {
            pool,
            scans_dir,
            usage,
        })
    }

    /// The database (the declaration cache lives in it too).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// What delivery has cost, in bytes.
    pub async fn uplink_stats(&self) -> Result<UplinkStats, AgentError> {
        let row = sqlx::query(
            "SELECT COUNT(sent_bytes), CAST(COALESCE(AVG(sent_bytes), 0) AS REAL),
                    COALESCE(SUM(sent_bytes IS NOT NULL AND json_extract(report_json, '$.lane') = 'green'), 0),
                    CAST(COALESCE(AVG(CASE WHEN json_extract(report_json, '$.lane') = 'green' THEN sent_bytes END), 0) AS REAL),
                    COUNT(CASE WHEN json_extract(report_json, '$.lane') = 'green' THEN full_bytes END),
                    CAST(COALESCE(AVG(CASE WHEN json_extract(report_json, '$.lane') = 'green' THEN full_bytes END), 0) AS REAL)
             FROM scans WHERE state = 'delivered'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(UplinkStats {
            delivered: row.try_get(0)?,
            mean_bytes: row.try_get(1)?,
            cleared: row.try_get(2)?,
            mean_cleared_bytes: row.try_get(3)?,
            cleared_full: row.try_get(4)?,
            mean_cleared_full_bytes: row.try_get(5)?,
        })
    }

    /// Capture time of the oldest scan not yet delivered, if any.
    pub async fn oldest_pending(&self) -> Result<Option<String>, AgentError> {
        Ok(sqlx::query(
            "SELECT captured_at FROM scans WHERE state = 'pending' ORDER BY accepted_at LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?
        .map(|r| r.get(0)))
    }

    /// Scans accepted at or after `since`.
    pub async fn accepted_since(&self, since: DateTime<Utc>) -> Result<u64, AgentError> {
        // accepted_at is RFC 3339 in UTC with one offset form, so text order is time order.
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM scans WHERE accepted_at >= ?")
            .bind(since.to_rfc3339())
            .fetch_one(&self.pool)
            .await?
            .get(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Bytes of scan files the outbox holds.
    pub fn usage_bytes(&self) -> u64 {
        self.usage.load(Ordering::SeqCst)
    }

    /// Deletes the files of delivered scans, oldest first, until the outbox holds at most
    /// `target` bytes. Pending and refused scans are never touched. Returns the bytes freed.
    pub async fn prune_delivered(&self, target: u64) -> Result<u64, AgentError> {
        let mut freed = 0;
        while self.usage_bytes() > target {
            let Some(row) = sqlx::query(
                "SELECT scan_id FROM scans WHERE state = 'delivered' AND pruned_at IS NULL
                 ORDER BY full_due, delivered_at, scan_id LIMIT 1",
            )
            .fetch_optional(&self.pool)
            .await?
            else {
                break;
            };
            let scan_id: String = row.get(0);
            let dir = self.scans_dir.join(&scan_id);
            let bytes = dir_bytes(&dir);
            if dir.exists() {
                fs::remove_dir_all(&dir)
                    .map_err(AgentError::io(format!("pruning {}", dir.display())))?;
            }
            sqlx::query("UPDATE scans SET pruned_at = ? WHERE scan_id = ?")
                .bind(Utc::now().to_rfc3339())
                .bind(&scan_id)
                .execute(&self.pool)
                .await?;
            self.usage
                .fetch_sub(bytes.min(self.usage_bytes()), Ordering::SeqCst);
            freed += bytes;
        }
        Ok(freed)
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
        let total: u64 = files.iter().map(|(_, b)| b.len() as u64).sum();
        let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
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
        })?;
        if let Err(e) = written {
            // A full disk leaves half a scan behind: remove it, so the retry starts clean
            // and the space comes back. The originals are still in the drop folder.
            let _ = fs::remove_dir_all(&dir);
            return Err(AgentError::Io {
                context: format!("writing scan files into {}", dir.display()),
                source: e,
            });
        }
        self.usage.fetch_add(total, Ordering::SeqCst);
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
        row.map(|r| self.pending_from(&r)).transpose()
    }

    /// A delivered scan whose full-resolution images are still owed and due, oldest first.
    pub async fn next_full_due(&self) -> Result<Option<Pending>, AgentError> {
        let row = sqlx::query(
            "SELECT scan_id, report_json, 0 FROM scans
             WHERE state = 'delivered' AND full_due = 1 AND pruned_at IS NULL AND full_next_ms <= ?
             ORDER BY delivered_at, scan_id LIMIT 1",
        )
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| self.pending_from(&r)).transpose()
    }

    /// A [`Pending`] from a row of `scan_id, report_json, attempts`.
    fn pending_from(&self, row: &sqlx::sqlite::SqliteRow) -> Result<Pending, AgentError> {
        let scan_id: String = row.get(0);
        let scan_id = ScanId::parse(&scan_id)
            .map_err(|e| AgentError::Config(format!("corrupt outbox row: {e}")))?;
        let report_json: String = row.get(1);
        Ok(Pending {
            preview_path: self.scan_dir(&scan_id).join(PREVIEW_FILE),
            dir: self.scan_dir(&scan_id),
            cleared: is_green(&report_json),
            scan_id,
            report_json,
            attempts: row.get::<i64, _>(2).try_into().unwrap_or(u32::MAX),
        })
    }

    /// Milliseconds until the next owed full-resolution upload is due (None if none is owed).
    pub async fn ms_until_full_due(&self) -> Result<Option<i64>, AgentError> {
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(full_next_ms) FROM scans WHERE state = 'delivered' AND full_due = 1 AND pruned_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(next.map(|t| (t - now_ms()).max(0)))
    }

    /// Records that a scan's full-resolution images reached the server.
    pub async fn mark_full_sent(&self, scan_id: &ScanId, bytes: u64) -> Result<(), AgentError> {
        sqlx::query("UPDATE scans SET full_due = 0, full_bytes = ? WHERE scan_id = ?")
            .bind(i64::try_from(bytes).unwrap_or(i64::MAX))
            .bind(scan_id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Puts off a scan's full-resolution upload by `delay_ms`.
    pub async fn mark_full_retry(&self, scan_id: &ScanId, delay_ms: i64) -> Result<(), AgentError> {
        sqlx::query("UPDATE scans SET full_next_ms = ? WHERE scan_id = ?")
            .bind(now_ms() + delay_ms)
            .bind(scan_id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
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
    pub async fn mark_delivered(
        &self,
        scan_id: &ScanId,
        sent_bytes: u64,
        full_due: bool,
    ) -> Result<(), AgentError> {
        sqlx::query("UPDATE scans SET state = 'delivered', delivered_at = ?, last_error = NULL, sent_bytes = ?, full_due = ? WHERE scan_id = ?")
            .bind(Utc::now().to_rfc3339())
            .bind(i64::try_from(sent_bytes).unwrap_or(i64::MAX))
            .bind(i64::from(full_due))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn report(n: u32) -> ScanReport {
        let now = Utc::now().to_rfc3339();
        ScanReport::from_json(
            serde_json::json!({
                "contract": "baylens.report/1", "report_id": format!("r-{n}"), "scan_id": format!("BAY01-{n}"),
                "bay": "BAY01", "captured_at": now, "analysed_at": now, "width": 4, "height": 2,
                "model": {"name": "m", "sha256": "ab", "max_probability": 0.0, "flagged_fraction": 0.0, "inference_ms": 1.0},
                "findings": [], "risk": 0.0, "lane": "green"
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn pruning_frees_only_delivered_scans_and_usage_follows() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).await.unwrap();
        let bytes = vec![7u8; 1000];
        for n in 1..=3 {
            let files = [StoredFile {
                name: PREVIEW_FILE,
                bytes: &bytes,
            }];
            outbox
                .accept(&report(n), &format!("sha{n}"), &files)
                .await
                .unwrap();
        }
        assert_eq!(outbox.usage_bytes(), 3000);
        outbox
            .mark_delivered(&ScanId::parse("BAY01-1").unwrap(), 1, false)
            .await
            .unwrap();
        // Asked to go to zero, it can only free the delivered scan.
        assert_eq!(outbox.prune_delivered(0).await.unwrap(), 1000);
        assert_eq!(outbox.usage_bytes(), 2000);
        assert!(!dir.path().join("scans/BAY01-1").exists());
        assert!(dir.path().join("scans/BAY01-2/preview.png").exists());
        assert!(dir.path().join("scans/BAY01-3/preview.png").exists());
        // A reopened outbox measures the same usage from disk.
        drop(outbox);
        assert_eq!(Outbox::open(dir.path()).await.unwrap().usage_bytes(), 2000);
    }
}
