//! Evidence images of a case: the preview, the layers (heat map, material map, expected cargo,
//! findings) and officers' photos. Each is written once: its object key and sha256 are kept with
//! the case and every write is audited, so the audit chain covers the hashes. A second, different
//! image for the same slot is refused (save the full-resolution preview that follows a bay's
//! thumbnail, once), and so is any image once a decision is recorded; the same
//! image again (an agent's retry) changes nothing.

use sqlx::Row;

use super::{Store, now_ms};

/// The slot name of a case's preview (layers use their own names).
pub const PREVIEW: &str = "preview";
/// The slot names of officers' photos start with this (then the annotation id).
pub const PHOTO_PREFIX: &str = "photo-";

/// What became of an evidence image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvidenceWrite {
    /// Recorded (and audited).
    Stored,
    /// The same image was already recorded: nothing changed.
    Same,
    /// Refused: the reason.
    Refused(String),
}

impl Store {
    /// Records image `name` ([`PREVIEW`] or a layer's name) of case `case_id`, already stored
    /// under `key` with hash `sha256`, unless the case already has a different one or was
    /// decided. The record and its audit entry commit together.
    pub async fn store_evidence(
        &self,
        actor: &str,
        case_id: i64,
        name: &str,
        key: &str,
        sha256: &str,
        supersedes: Option<&str>,
    ) -> Result<EvidenceWrite, sqlx::Error> {
        let (mut tx, _lock) = self.begin_audited().await?;
        let case = sqlx::query(
            "SELECT decision, preview_key, preview_sha256, preview_thumbnail_sha256
             FROM cases WHERE id = $1",
        )
        .bind(case_id)
        .fetch_one(&mut *tx)
        .await?;
        let decision: Option<String> = case.get(0);
        let existing: Option<(String, Option<String>)> = if name == PREVIEW {
            case.get::<Option<String>, _>(1).map(|k| (k, case.get(2)))
        } else {
            sqlx::query(
                "SELECT object_key, sha256 FROM case_layers WHERE case_id = $1 AND name = $2",
            )
            .bind(case_id)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| (r.get(0), r.get(1)))
        };
        // The one replacement allowed: the full-resolution preview after the thumbnail the bay
        // sent first (the caller checked the sizes); both stay stored and audited.
        let upgraded_before = case.get::<Option<String>, _>(3).is_some();
        let upgrade = !upgraded_before
            && name == PREVIEW
            && existing.as_ref().is_some_and(|(_, old)| {
                // A preview stored before hashes were kept has none: "".
                supersedes == Some(old.as_deref().unwrap_or("")) && old.as_deref() != Some(sha256)
            });
        if let Some((_, old)) = existing.as_ref().filter(|_| !upgrade) {
            return Ok(if old.as_deref() == Some(sha256) {
                EvidenceWrite::Same
            } else {
                EvidenceWrite::Refused(format!(
                    "case {case_id} already has its {name} image (sha256 {}); evidence is never \
                     replaced",
                    old.as_deref().unwrap_or("not recorded")
                ))
            });
        }
        // Scan evidence closes with a decision; officers' photos (a physical examination is a
        // decision) do not.
        // Officers' photos and the camera's frames are what the bay saw, not the scan's
        // analysis: they may still come after a decision.
        let from_the_bay =
            name.starts_with(PHOTO_PREFIX) || name.starts_with(super::camera_codes::CAMERA_PREFIX);
        if let Some(decision) = decision.filter(|_| !from_the_bay) {
            return Ok(EvidenceWrite::Refused(format!(
                "case {case_id} was decided ({decision}); its evidence is closed"
            )));
        }
        if name == PREVIEW {
            let thumbnail = existing.as_ref().and_then(|(_, old)| old.clone());
            sqlx::query(
                "UPDATE cases SET preview_key = $1, preview_sha256 = $2,
                        preview_thumbnail_sha256 = $3 WHERE id = $4",
            )
            .bind(key)
            .bind(sha256)
            .bind(thumbnail)
            .bind(case_id)
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query(
                "INSERT INTO case_layers (case_id, name, object_key, uploaded_at, sha256)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(case_id)
            .bind(name)
            .bind(key)
            .bind(now_ms())
            .bind(sha256)
            .execute(&mut *tx)
            .await?;
        }
        self.audit_in(
            &mut tx,
            actor,
            "evidence.store",
            &format!("case:{case_id}"),
            &serde_json::json!({
                "image": name,
                "sha256": sha256,
                "object_key": key,
                "supersedes": existing.and_then(|(_, old)| old),
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(EvidenceWrite::Stored)
    }

    /// The object key of a case's image layer.
    pub async fn layer_key(&self, case_id: i64, name: &str) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT object_key FROM case_layers WHERE case_id = $1 AND name = $2")
            .bind(case_id)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
    }

    /// Every evidence image of a case: (slot name, object key, recorded sha256), the preview
    /// first, then the layers and photos by name.
    pub async fn evidence_objects(
        &self,
        case_id: i64,
    ) -> Result<Vec<(String, String, Option<String>)>, sqlx::Error> {
        let mut out: Vec<(String, String, Option<String>)> = self
            .preview_record(case_id)
            .await?
            .map(|(key, sha)| (PREVIEW.to_owned(), key, sha))
            .into_iter()
            .collect();
        let layers = sqlx::query(
            "SELECT name, object_key, sha256 FROM case_layers WHERE case_id = $1 ORDER BY name",
        )
        .bind(case_id)
        .fetch_all(&self.pool)
        .await?;
        out.extend(layers.iter().map(|r| (r.get(0), r.get(1), r.get(2))));
        Ok(out)
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

    /// The object key and sha256 of a case's preview, if it has one (the hash is `None` for a
    /// preview stored before hashes were kept).
    pub async fn preview_record(
        &self,
        case_id: i64,
    ) -> Result<Option<(String, Option<String>)>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT preview_key, preview_sha256 FROM cases WHERE id = $1 AND preview_key IS NOT NULL",
        )
        .bind(case_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    /// Whether an officer's annotation was already recorded (checked before its photo is
    /// written, so that a repeated delivery writes nothing).
    pub async fn annotation_recorded(&self, annotation_id: &str) -> Result<bool, sqlx::Error> {
        let found: Option<String> = sqlx::query_scalar(
            "SELECT annotation_id FROM bay_annotations WHERE annotation_id = $1",
        )
        .bind(annotation_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }
}
