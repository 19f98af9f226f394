//! Other administrations' bundle-signing keys that this server trusts, and the cases imported
//! from their signed bundles. Imported cases are read-only: nothing but the import writes them.

use serde::Serialize;
use sqlx::Row;

use super::{Store, ms_to_rfc3339, now_ms};
use crate::bundle::{Manifest, PublicKey};

/// A trusted key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrustedKey {
    /// The key's id.
    pub key_id: String,
    /// The name this server gives the sender (shown as the imported cases' origin).
    pub name: String,
    /// The issuer the key file names.
    pub issuer: String,
    /// The public key, hex.
    pub public_key: String,
    /// When it was trusted.
    pub added_at: String,
    /// Who trusted it.
    pub added_by: String,
}

/// An imported case.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportedCase {
    /// Id here.
    pub id: i64,
    /// The sender, as this server names its key.
    pub origin: String,
    /// The signing key's id.
    pub key_id: String,
    /// The case's id at the sender.
    pub origin_case_id: i64,
    /// Scan id.
    pub scan_id: String,
    /// Container code, if known.
    pub container_code: Option<String>,
    /// sha256 of the bundle file it came in.
    pub bundle_sha256: String,
    /// When it was imported.
    pub imported_at: String,
    /// Who imported it.
    pub imported_by: String,
    /// The bundle's signed manifest.
    pub manifest: Manifest,
}

/// The outcome of an import.
#[derive(Debug, Clone, PartialEq)]
pub enum Imported {
    /// Stored under this id.
    Created(i64),
    /// The same bundle was imported before, under this id.
    Existing(i64),
}

impl Store {
    /// Trusts `key` under `name`. Audited as `key.trust`. Returns false when the key was
    /// trusted already.
    pub async fn trust_key(
        &self,
        actor: &str,
        name: &str,
        key: &PublicKey,
    ) -> Result<bool, sqlx::Error> {
        let (mut tx, _lock) = self.begin_audited().await?;
        let inserted = sqlx::query(
            "INSERT INTO trusted_keys (key_id, public_key, name, issuer, added_at, added_by)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(&key.key_id)
        .bind(&key.public_key)
        .bind(name)
        .bind(&key.issuer)
        .bind(now_ms())
        .bind(actor)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Ok(false);
        }
        let detail =
            serde_json::json!({"name": name, "issuer": key.issuer, "public_key": key.public_key});
        self.audit_in(
            &mut tx,
            actor,
            "key.trust",
            &format!("key:{}", key.key_id),
            &detail,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Every trusted key, by name.
    pub async fn trusted_keys(&self) -> Result<Vec<TrustedKey>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT key_id, name, issuer, public_key, added_at, added_by FROM trusted_keys ORDER BY name, key_id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| TrustedKey {
                key_id: r.get(0),
                name: r.get(1),
                issuer: r.get(2),
                public_key: r.get(3),
                added_at: ms_to_rfc3339(r.get(4)),
                added_by: r.get(5),
            })
            .collect())
    }

    /// The trusted key with id `key_id`.
    pub async fn trusted_key(&self, key_id: &str) -> Result<Option<TrustedKey>, sqlx::Error> {
        Ok(self
            .trusted_keys()
            .await?
            .into_iter()
            .find(|k| k.key_id == key_id))
    }

    /// Records an imported case whose bundle was verified and whose files are stored. Audited
    /// as `bundle.import`.
    pub async fn record_import(
        &self,
        user: &super::User,
        origin: &str,
        manifest: &Manifest,
        bundle_sha256: &str,
    ) -> Result<Imported, sqlx::Error> {
        let (mut tx, _lock) = self.begin_audited().await?;
        let existing: Option<i64> =
            sqlx::query_scalar("SELECT id FROM imported_cases WHERE bundle_sha256 = $1")
                .bind(bundle_sha256)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(id) = existing {
            return Ok(Imported::Existing(id));
        }
        let manifest_json = serde_json::to_string(manifest).unwrap_or_default();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO imported_cases (bundle_sha256, key_id, origin, origin_case_id, scan_id,
                 container_code, manifest, imported_at, imported_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(bundle_sha256)
        .bind(&manifest.key_id)
        .bind(origin)
        .bind(manifest.case.id)
        .bind(&manifest.case.scan_id)
        .bind(&manifest.case.container_code)
        .bind(&manifest_json)
        .bind(now_ms())
        .bind(user.id)
        .fetch_one(&mut *tx)
        .await?;
        let detail = serde_json::json!({
            "origin": origin,
            "key_id": manifest.key_id,
            "bundle_sha256": bundle_sha256,
            "origin_case_id": manifest.case.id,
            "scan_id": manifest.case.scan_id,
        });
        self.audit_in(
            &mut tx,
            &format!("user:{}", user.username),
            "bundle.import",
            &format!("import:{id}"),
            &detail,
        )
        .await?;
        tx.commit().await?;
        Ok(Imported::Created(id))
    }

    /// Imported cases, newest first.
    pub async fn imported_cases(&self, limit: i64) -> Result<Vec<ImportedCase>, sqlx::Error> {
        self.imported_where("TRUE", None, limit).await
    }

    /// One imported case.
    pub async fn imported_case(&self, id: i64) -> Result<Option<ImportedCase>, sqlx::Error> {
        Ok(self
            .imported_where("i.id = $1", Some(id), 1)
            .await?
            .into_iter()
            .next())
    }

    async fn imported_where(
        &self,
        condition: &str,
        id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<ImportedCase>, sqlx::Error> {
        let sql = format!(
            "SELECT i.id, i.origin, i.key_id, i.origin_case_id, i.scan_id, i.container_code,
                 i.bundle_sha256, i.imported_at, u.username, i.manifest
             FROM imported_cases i JOIN users u ON u.id = i.imported_by
             WHERE {condition} ORDER BY i.id DESC LIMIT {limit}"
        );
        let mut query = sqlx::query(&sql);
        if let Some(id) = id {
            query = query.bind(id);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(ImportedCase {
                    id: r.get(0),
                    origin: r.get(1),
                    key_id: r.get(2),
                    origin_case_id: r.get(3),
                    scan_id: r.get(4),
                    container_code: r.get(5),
                    bundle_sha256: r.get(6),
                    imported_at: ms_to_rfc3339(r.get(7)),
                    imported_by: r.get(8),
                    manifest: serde_json::from_str(r.get::<&str, _>(9))
                        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                })
            })
            .collect()
    }
}
