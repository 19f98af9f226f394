//! Officers' annotations from the tablet (seal intact or broken, examination result, a note, a
//! photo): validated, stored durably in the agent's database, then delivered to the server as
//! part of the case (`POST /api/v1/scans/{scan_id}/annotations`), with retries and backoff like
//! reports. The server attributes them to the officer's own account.
//!
//! The container code the camera read over a truck pass (`camera::live`) waits in the same
//! queue and goes to `POST /api/v1/scans/{scan_id}/camera-code`, where the server compares it
//! with the scanner's code and the declaration's.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use baylens_protocol::camera_code::CameraCode;
use serde::{Deserialize, Serialize};
use sqlx::{Row, SqlitePool};
use tokio::sync::Notify;

use crate::AgentError;
use crate::uplink::Uplink;

/// Largest photo, bytes.
pub const MAX_PHOTO_BYTES: usize = 8 * 1024 * 1024;
/// Longest note, characters.
pub const MAX_NOTE_CHARS: usize = 2000;

/// What the tablet sends.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TabletBody {
    seal: Option<String>,
    examination: Option<String>,
    note: Option<String>,
    /// A JPEG or PNG, base64.
    photo_base64: Option<String>,
}

/// One annotation, as stored and as sent to the server (the photo as base64 there).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Annotation {
    /// Unique id; the server ignores a second delivery of the same id.
    pub annotation_id: String,
    /// The scan (case) it is about.
    pub scan_id: String,
    /// The officer's user name on the server.
    pub officer: String,
    /// When the officer recorded it.
    pub recorded_at: chrono::DateTime<chrono::Utc>,
    /// `intact` or `broken`.
    pub seal: Option<String>,
    /// `consistent` or `discrepancy`.
    pub examination: Option<String>,
    /// Free text.
    pub note: Option<String>,
    /// The photo's bytes (stored beside the JSON; sent as `photo_base64`).
    #[serde(skip)]
    pub photo: Option<Vec<u8>>,
}

impl Annotation {
    /// Validates what a tablet sent.
    pub fn from_tablet(officer: &str, scan_id: &str, body: &[u8]) -> Result<Self, String> {
        let b: TabletBody = serde_json::from_slice(body).map_err(|e| {
            format!("expected {{\"seal\", \"examination\", \"note\", \"photo_base64\"}}: {e}")
        })?;
        if let Some(s) = &b.seal
            && !matches!(s.as_str(), "intact" | "broken")
        {
            return Err(format!("seal must be intact or broken, got {:?}", cut(s)));
        }
        if let Some(e) = &b.examination
            && !matches!(e.as_str(), "consistent" | "discrepancy")
        {
            return Err(format!(
                "examination must be consistent or discrepancy, got {:?}",
                cut(e)
            ));
        }
        let note = b
            .note
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty());
        if note
            .as_ref()
            .is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS)
        {
            return Err(format!(
                "the note is longer than {MAX_NOTE_CHARS} characters"
            ));
        }
        if (b.seal.as_deref() == Some("broken") || b.examination.as_deref() == Some("discrepancy"))
            && note.is_none()
        {
            return Err("a broken seal or a discrepancy needs a note saying what was found".into());
        }
        let photo = match b.photo_base64 {
            None => None,
            Some(p) => {
                let p = p.split_once("base64,").map_or(p.as_str(), |(_, d)| d);
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(p.trim())
                    .map_err(|e| format!("photo_base64 is not base64: {e}"))?;
                if bytes.len() > MAX_PHOTO_BYTES {
                    return Err(format!(
                        "the photo is {} bytes; at most {MAX_PHOTO_BYTES}",
                        bytes.len()
                    ));
                }
                if !(bytes.starts_with(&[0xFF, 0xD8, 0xFF])
                    || bytes.starts_with(b"\x89PNG\r\n\x1a\n"))
                {
                    return Err("the photo must be a JPEG or PNG".into());
                }
                Some(bytes)
            }
        };
        if b.seal.is_none() && b.examination.is_none() && note.is_none() && photo.is_none() {
            return Err(
                "nothing to record: give a seal state, an examination result, a note or a photo"
                    .into(),
            );
        }
        Ok(Self {
            annotation_id: uuid::Uuid::new_v4().to_string(),
            scan_id: scan_id.to_owned(),
            officer: officer.to_owned(),
            recorded_at: chrono::Utc::now(),
            seal: b.seal,
            examination: b.examination,
            note,
            photo,
        })
    }
}

fn cut(s: &str) -> String {
    s.chars().take(40).collect()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// An annotation or camera reading due for delivery.
struct Due {
    id: String,
    scan_id: String,
    route: &'static str,
    body: serde_json::Value,
    attempts: i64,
}

/// The annotations table in the agent's database (annotations and camera readings).
#[derive(Debug, Clone)]
pub struct AnnotationStore {
    pool: SqlitePool,
    wake: Arc<Notify>,
}

impl AnnotationStore {
    /// Over the outbox's pool (migrated by `Outbox::open`).
    pub fn new(pool: SqlitePool) -> Self {
        Self {
            pool,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Stores an annotation durably (the database is in WAL mode with full sync).
    pub async fn add(&self, a: &Annotation) -> Result<(), AgentError> {
        sqlx::query(
            "INSERT INTO annotations (annotation_id, scan_id, body_json, photo, created_ms, state, next_attempt_ms)
             VALUES (?, ?, ?, ?, ?, 'pending', 0)",
        )
        .bind(&a.annotation_id)
        .bind(&a.scan_id)
        .bind(serde_json::to_string(a).unwrap_or_default())
        .bind(a.photo.as_deref())
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stores a camera reading of a scan's container for the server (durably, like an
    /// annotation).
    pub async fn add_camera_code(&self, c: &CameraCode) -> Result<(), AgentError> {
        sqlx::query(
            "INSERT INTO annotations (annotation_id, scan_id, body_json, photo, created_ms, state, next_attempt_ms, kind)
             VALUES (?, ?, ?, NULL, ?, 'pending', 0, 'camera_code')",
        )
        .bind(&c.reading_id)
        .bind(c.scan_id.as_str())
        .bind(serde_json::to_string(c).unwrap_or_default())
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        self.wake();
        Ok(())
    }

    /// Whether the agent took this scan.
    pub async fn scan_known(&self, scan_id: &str) -> Result<bool, AgentError> {
        Ok(sqlx::query("SELECT 1 FROM scans WHERE scan_id = ?")
            .bind(scan_id)
            .fetch_optional(&self.pool)
            .await?
            .is_some())
    }

    /// Annotations not yet delivered (camera readings not counted).
    pub async fn pending(&self) -> Result<i64, AgentError> {
        Ok(sqlx::query(
            "SELECT COUNT(*) FROM annotations WHERE state = 'pending' AND kind = 'annotation'",
        )
        .fetch_one(&self.pool)
        .await?
        .get(0))
    }

    /// Wakes the delivery loop.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The next addition due: its id, scan, route on the server, body and attempts so far.
    async fn next_due(&self) -> Result<Option<Due>, AgentError> {
        let row = sqlx::query(
            "SELECT annotation_id, scan_id, kind, body_json, photo, attempts FROM annotations
             WHERE state = 'pending' AND next_attempt_ms <= ? ORDER BY created_ms LIMIT 1",
        )
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let mut body: serde_json::Value = serde_json::from_str(row.get::<&str, _>(3))
            .map_err(|e| AgentError::Config(format!("stored annotation unreadable: {e}")))?;
        if let Some(photo) = row.get::<Option<Vec<u8>>, _>(4) {
            body["photo_base64"] = base64::engine::general_purpose::STANDARD
                .encode(photo)
                .into();
        }
        Ok(Some(Due {
            id: row.get(0),
            scan_id: row.get(1),
            route: if row.get::<&str, _>(2) == "camera_code" {
                "camera-code"
            } else {
                "annotations"
            },
            body,
            attempts: row.get(5),
        }))
    }

    async fn mark(
        &self,
        id: &str,
        state: &str,
        delay_ms: i64,
        error: Option<&str>,
    ) -> Result<(), AgentError> {
        sqlx::query(
            "UPDATE annotations SET state = ?, attempts = attempts + 1, next_attempt_ms = ?, last_error = ?
             WHERE annotation_id = ?",
        )
        .bind(state)
        .bind(now_ms() + delay_ms)
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Delivers annotations to the server until `stop` is set: in order, each retried with
    /// backoff (a case the server does not have yet is waited for: its report is on the way).
    pub async fn deliver(
        &self,
        client: Uplink,
        max_backoff: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            let next = match self.next_due().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!("annotation store: {e}");
                    None
                }
            };
            let Some(a) = next else {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    () = self.wake.notified() => {}
                    () = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
                continue;
            };
            let outcome = tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                o = client.to_case(&a.scan_id, a.route, &a.body) => o,
            };
            let backoff = || {
                let ms = 1000i64.saturating_mul(1 << a.attempts.clamp(0, 16));
                ms.min(max_backoff.as_millis() as i64)
            };
            let marked = match outcome {
                crate::uplink::Attempt::Delivered(_) => {
                    tracing::info!(id = %a.id, scan_id = %a.scan_id, "delivered to the case: {}", a.route);
                    self.mark(&a.id, "delivered", 0, None).await
                }
                crate::uplink::Attempt::Retry(e) => {
                    tracing::debug!(id = %a.id, "{} not delivered yet: {e}", a.route);
                    self.mark(&a.id, "pending", backoff(), Some(&e)).await
                }
                crate::uplink::Attempt::Refused(e) => {
                    tracing::error!(id = %a.id, "the server refused {} (kept at the bay): {e}", a.route);
                    self.mark(&a.id, "refused", 0, Some(&e)).await
                }
            };
            if let Err(e) = marked {
                tracing::error!("annotation store: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tablet_bodies_are_checked() {
        let ok = Annotation::from_tablet(
            "off1",
            "S1",
            br#"{"seal": "intact", "examination": "consistent"}"#,
        )
        .unwrap();
        assert_eq!(ok.seal.as_deref(), Some("intact"));
        for (body, says) in [
            (&br#"{"seal": "cracked"}"#[..], "seal must be"),
            (br#"{"examination": "discrepancy"}"#, "needs a note"),
            (br#"{}"#, "nothing to record"),
            (br#"{"seal": "intact", "colour": "red"}"#, "unknown field"),
            (br#"{"photo_base64": "aGVsbG8="}"#, "JPEG or PNG"),
            (br#"{"photo_base64": "%%%"}"#, "not base64"),
        ] {
            let e = Annotation::from_tablet("off1", "S1", body).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
        let png = base64::engine::general_purpose::STANDARD.encode(b"\x89PNG\r\n\x1a\nrest");
        let with_photo = Annotation::from_tablet(
            "off1",
            "S1",
            format!(r#"{{"photo_base64": "data:image/png;base64,{png}"}}"#).as_bytes(),
        )
        .unwrap();
        assert!(with_photo.photo.is_some());
    }
}
