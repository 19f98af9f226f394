//! The bay's local copy of the advance declarations (TFA Art. 7 pre-arrival processing).
//!
//! A background task asks the server every `declaration_sync_secs` for declarations of this
//! bay (or of no bay) expected from two days ago to seven days ahead, lodged since the last one
//! it holds (`GET /api/v1/declarations/sync?since=`), and keeps them in the agent's SQLite
//! store, so scans are checked against their declarations while the server is unreachable.
//!
//! A scan finds its declaration the way the server does: by the reference the scanner sent,
//! else by container code, the declaration whose expected arrival is nearest the capture time
//! within ±7 days.

use baylens_protocol::Declaration;
use baylens_protocol::risk::PreArrival;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::{Row, SqlitePool};

use crate::AgentError;

/// How far from the capture time a declaration's expected arrival may be, by container code.
pub const MATCH_WINDOW_MS: i64 = 7 * 86_400_000;
/// Declarations expected longer ago than this are dropped from the cache.
pub const KEEP_MS: i64 = 14 * 86_400_000;

/// One declaration as the server's sync endpoint sends it.
#[derive(Debug, Clone, Deserialize)]
pub struct SyncedDeclaration {
    /// The declaration as lodged.
    pub declaration: Declaration,
    /// Its pre-arrival risk in [0, 1].
    pub pre_risk: f64,
    /// Why.
    pub risk_reasons: Vec<String>,
    /// When it was lodged (RFC 3339).
    pub lodged_at: DateTime<Utc>,
}

/// The sync endpoint's answer (fields the agent does not use are ignored: the server may add
/// some).
#[derive(Debug, Clone, Deserialize)]
pub struct SyncAnswer {
    /// The declarations.
    pub declarations: Vec<SyncedDeclaration>,
}

/// A declaration found for a scan.
#[derive(Debug, Clone, PartialEq)]
pub struct Matched {
    /// The declaration.
    pub declaration: Declaration,
    /// Its pre-arrival risk.
    pub pre: PreArrival,
}

/// The cache, in the agent's own database.
#[derive(Debug, Clone)]
pub struct DeclarationCache {
    pool: SqlitePool,
}

impl DeclarationCache {
    /// The cache in the outbox's database (migrated by [`crate::outbox::Outbox::open`]).
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    /// Stores what a sync brought (newer copies replace older ones), drops declarations expected
    /// more than [`KEEP_MS`] ago, and records the sync. Returns how many were stored.
    pub async fn store(&self, answer: &SyncAnswer) -> Result<usize, AgentError> {
        let now = Utc::now();
        let mut tx = self.pool.begin().await?;
        for d in &answer.declarations {
            let json = serde_json::to_string(&d.declaration)
                .map_err(|e| AgentError::Config(format!("declaration: {e}")))?;
            let reasons = serde_json::to_string(&d.risk_reasons)
                .map_err(|e| AgentError::Config(format!("declaration: {e}")))?;
            sqlx::query(
                "INSERT INTO declarations (reference, container_code, expected_arrival_ms,
                     lodged_at_ms, pre_risk, risk_reasons, declaration_json, synced_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (reference) DO UPDATE SET container_code = excluded.container_code,
                     expected_arrival_ms = excluded.expected_arrival_ms,
                     lodged_at_ms = excluded.lodged_at_ms, pre_risk = excluded.pre_risk,
                     risk_reasons = excluded.risk_reasons,
                     declaration_json = excluded.declaration_json, synced_at = excluded.synced_at",
            )
            .bind(&d.declaration.reference)
            .bind(d.declaration.container_code.as_deref())
            .bind(d.declaration.expected_arrival.timestamp_millis())
            .bind(d.lodged_at.timestamp_millis())
            .bind(d.pre_risk.clamp(0.0, 1.0))
            .bind(reasons)
            .bind(json)
            .bind(now.to_rfc3339())
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM declarations WHERE expected_arrival_ms < ?")
            .bind(now.timestamp_millis() - KEEP_MS)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE server_contact SET last_sync = ?, last_contact = ?, last_error = NULL WHERE id = 1",
        )
        .bind(now.to_rfc3339())
        .bind(now.to_rfc3339())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(answer.declarations.len())
    }

    /// Lodging time of the newest declaration held (the next sync asks for newer ones).
    pub async fn newest_lodged(&self) -> Result<Option<DateTime<Utc>>, AgentError> {
        let ms: Option<i64> = sqlx::query("SELECT MAX(lodged_at_ms) FROM declarations")
            .fetch_one(&self.pool)
            .await?
            .get(0);
        Ok(ms.and_then(DateTime::from_timestamp_millis))
    }

    /// When the last sync succeeded, if ever.
    pub async fn last_sync(&self) -> Result<Option<String>, AgentError> {
        Ok(
            sqlx::query("SELECT last_sync FROM server_contact WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?
                .and_then(|r| r.get(0)),
        )
    }

    /// Declarations held.
    pub async fn count(&self) -> Result<i64, AgentError> {
        Ok(sqlx::query("SELECT COUNT(*) FROM declarations")
            .fetch_one(&self.pool)
            .await?
            .get(0))
    }

    /// The declaration of a scan: by `reference`, else by `container_code` nearest `captured`.
    pub async fn find(
        &self,
        reference: Option<&str>,
        container_code: Option<&str>,
        captured: DateTime<Utc>,
    ) -> Result<Option<Matched>, AgentError> {
        const COLUMNS: &str = "declaration_json, pre_risk, risk_reasons";
        let mut row = None;
        if let Some(r) = reference {
            row = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM declarations WHERE reference = ?"
            ))
            .bind(r)
            .fetch_optional(&self.pool)
            .await?;
        }
        if row.is_none()
            && let Some(code) = container_code
        {
            let at = captured.timestamp_millis();
            row = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM declarations
                 WHERE container_code = ? AND expected_arrival_ms BETWEEN ? AND ?
                 ORDER BY ABS(expected_arrival_ms - ?) LIMIT 1"
            ))
            .bind(code)
            .bind(at - MATCH_WINDOW_MS)
            .bind(at + MATCH_WINDOW_MS)
            .bind(at)
            .fetch_optional(&self.pool)
            .await?;
        }
        let Some(row) = row else { return Ok(None) };
        let json: String = row.get(0);
        let pre: f64 = row.get(1);
        let reasons: String = row.get(2);
        let declaration: Declaration = serde_json::from_str(&json)
            .map_err(|e| AgentError::Config(format!("cached declaration unreadable: {e}")))?;
        let reasons: Vec<String> = serde_json::from_str(&reasons).unwrap_or_default();
        Ok(Some(Matched {
            declaration,
            pre: PreArrival::Scored(pre as f32, reasons),
        }))
    }

    /// Records a failed contact with the server.
    pub async fn record_error(&self, error: &str) -> Result<(), AgentError> {
        sqlx::query("UPDATE server_contact SET last_error = ? WHERE id = 1")
            .bind(error.chars().take(500).collect::<String>())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a successful contact with the server (any request it answered).
    pub async fn record_contact(&self) -> Result<(), AgentError> {
        sqlx::query("UPDATE server_contact SET last_contact = ? WHERE id = 1")
            .bind(Utc::now().to_rfc3339())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Last contact and last error.
    pub async fn contact(&self) -> Result<(Option<String>, Option<String>), AgentError> {
        let row = sqlx::query("SELECT last_contact, last_error FROM server_contact WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map_or((None, None), |r| (r.get(0), r.get(1))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::Outbox;

    fn declaration(reference: &str, code: &str, arrival: &str) -> SyncedDeclaration {
        let json = serde_json::json!({
            "contract": "baylens.declaration/1", "reference": reference,
            "declarant": {"name": "A", "id": "T1"}, "office": "KEMBA",
            "container_code": code, "expected_arrival": arrival,
            "gross_mass_kg": 1000.0,
            "items": [{"hs_code": "520812", "description": "Cotton fabric", "packages": 50,
                       "gross_mass_kg": 1000.0}]
        });
        SyncedDeclaration {
            declaration: serde_json::from_value(json).unwrap(),
            pre_risk: 0.3,
            risk_reasons: vec!["tobacco".into()],
            lodged_at: Utc::now(),
        }
    }

    #[tokio::test]
    async fn finds_by_reference_then_by_container_nearest_the_scan_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).await.unwrap();
        let cache = DeclarationCache::new(outbox.pool().clone());
        let now = Utc::now();
        let day = chrono::Duration::days(1);
        let answer = SyncAnswer {
            declarations: vec![
                declaration("R1", "CSQU3054383", &(now + day).to_rfc3339()),
                declaration("R2", "CSQU3054383", &(now - day * 3).to_rfc3339()),
                declaration("R3", "MSCU1234566", &now.to_rfc3339()),
            ],
        };
        assert_eq!(cache.store(&answer).await.unwrap(), 3);
        drop(outbox);
        // Offline: a new process finds them in its own store.
        let outbox = Outbox::open(dir.path()).await.unwrap();
        let cache = DeclarationCache::new(outbox.pool().clone());
        assert_eq!(cache.count().await.unwrap(), 3);
        assert!(cache.last_sync().await.unwrap().is_some());
        let by_ref = cache
            .find(Some("R2"), Some("MSCU1234566"), now)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(by_ref.declaration.reference, "R2");
        let by_code = cache
            .find(None, Some("CSQU3054383"), now)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(by_code.declaration.reference, "R1", "nearest arrival wins");
        assert_eq!(by_code.pre, PreArrival::Scored(0.3, vec!["tobacco".into()]));
        let unknown_ref = cache
            .find(Some("R9"), Some("CSQU3054383"), now - day * 3)
            .await
            .unwrap();
        assert_eq!(unknown_ref.unwrap().declaration.reference, "R2");
        assert!(
            cache
                .find(None, Some("CSQU3054383"), now + day * 30)
                .await
                .unwrap()
                .is_none()
        );
        assert!(cache.find(None, None, now).await.unwrap().is_none());
    }
}
