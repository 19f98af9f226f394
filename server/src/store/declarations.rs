//! Advance declarations: lodging (with the pre-arrival risk), lookup, and per-bay sync.

use baylens_protocol::Declaration;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{Store, from_ms, ms_to_rfc3339, now_ms};
use crate::risk;

/// A stored declaration with what the server added at lodging.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeclarationRow {
    /// Id.
    pub id: i64,
    /// The declaration as lodged (normalised).
    pub declaration: Declaration,
    /// Pre-arrival risk in [0, 1].
    pub pre_risk: f64,
    /// Why.
    pub risk_reasons: Vec<String>,
    /// When it was lodged.
    pub lodged_at: String,
    /// Who lodged it.
    pub lodged_by: String,
}

/// What lodging did.
#[derive(Debug, Clone, PartialEq)]
pub enum Lodged {
    /// Stored.
    Created(DeclarationRow),
    /// The same reference with the same content was lodged before (idempotent retry).
    Unchanged(DeclarationRow),
    /// The reference exists with different content.
    Conflict,
}

const COLUMNS: &str = "id, body, pre_risk, risk_reasons, lodged_at, lodged_by";

fn from_row(r: &AnyRow) -> Result<DeclarationRow, sqlx::Error> {
    let body: &str = r.get(1);
    let reasons: &str = r.get(3);
    Ok(DeclarationRow {
        id: r.get(0),
        declaration: serde_json::from_str(body).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        pre_risk: r.get(2),
        risk_reasons: serde_json::from_str(reasons).unwrap_or_default(),
        lodged_at: ms_to_rfc3339(r.get(4)),
        lodged_by: r.get(5),
    })
}

impl Store {
    /// Lodges a validated declaration, scoring its pre-arrival risk. Audited.
    pub async fn lodge_declaration(
        &self,
        actor: &str,
        d: &Declaration,
    ) -> Result<Lodged, sqlx::Error> {
        let (mut tx, _lock) = self.begin_audited().await?;
        let lodged = self.lodge_in(&mut tx, actor, d).await?;
        tx.commit().await?;
        Ok(lodged)
    }

    /// Lodges several declarations in one transaction: all of them, or (on a conflict or an
    /// error) none. Returns each outcome; on the first conflict, nothing is stored.
    pub async fn lodge_declarations(
        &self,
        actor: &str,
        ds: &[Declaration],
    ) -> Result<Result<Vec<Lodged>, String>, sqlx::Error> {
        let (mut tx, _lock) = self.begin_audited().await?;
        let mut out = Vec::with_capacity(ds.len());
        for d in ds {
            let lodged = self.lodge_in(&mut tx, actor, d).await?;
            if lodged == Lodged::Conflict {
                tx.rollback().await?;
                return Ok(Err(d.reference.clone()));
            }
            out.push(lodged);
        }
        tx.commit().await?;
        Ok(Ok(out))
    }

    async fn lodge_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        actor: &str,
        d: &Declaration,
    ) -> Result<Lodged, sqlx::Error> {
        let body = serde_json::to_string(d).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        let existing = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM declarations WHERE reference = $1"
        ))
        .bind(&d.reference)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(row) = existing {
            let existing = from_row(&row)?;
            return Ok(if existing.declaration == *d {
                Lodged::Unchanged(existing)
            } else {
                Lodged::Conflict
            });
        }
        let prior: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM declarations WHERE declarant_id = $1")
                .bind(&d.declarant.id)
                .fetch_one(&mut **tx)
                .await?;
        let now = now_ms();
        let (pre_risk, reasons) = risk::pre_arrival(d, prior, from_ms(now));
        // Audited transactions run one at a time, so the reference cannot appear between the
        // check above and this insert.
        let row = sqlx::query(
            "INSERT INTO declarations (reference, declarant_id, office, bay, container_code, expected_arrival,
                 declared_empty, gross_mass_kg, pre_risk, risk_reasons, body, lodged_at, lodged_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             RETURNING id",
        )
        .bind(&d.reference)
        .bind(&d.declarant.id)
        .bind(&d.office)
        .bind(d.bay.as_deref())
        .bind(d.container_code.as_deref())
        .bind(d.expected_arrival.timestamp_millis())
        .bind(i64::from(d.declared_empty))
        .bind(d.gross_mass_kg)
        .bind(pre_risk)
        .bind(serde_json::to_string(&reasons).unwrap_or_default())
        .bind(&body)
        .bind(now)
        .bind(actor)
        .fetch_one(&mut **tx)
        .await?;
        self.audit_in(
            tx,
            actor,
            "declaration.lodge",
            &format!("declaration:{}", d.reference),
            &serde_json::json!({"pre_risk": pre_risk, "reasons": reasons}),
        )
        .await?;
        Ok(Lodged::Created(DeclarationRow {
            id: row.get(0),
            declaration: d.clone(),
            pre_risk,
            risk_reasons: reasons,
            lodged_at: ms_to_rfc3339(now),
            lodged_by: actor.to_owned(),
        }))
    }

    /// The declaration with this reference.
    pub async fn declaration(
        &self,
        reference: &str,
    ) -> Result<Option<DeclarationRow>, sqlx::Error> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM declarations WHERE reference = $1"
        ))
        .bind(reference)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Declarations expected at `bay` (or at no bay in particular) arriving between `from_ms`
    /// and `to_ms`, lodged after `since_ms`: what an agent caches for offline matching.
    pub async fn declarations_for_bay(
        &self,
        bay: Option<&str>,
        from_ms: i64,
        to_ms: i64,
        since_ms: i64,
        limit: i64,
    ) -> Result<Vec<DeclarationRow>, sqlx::Error> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM declarations
             WHERE ($1 = '' OR bay = $1 OR bay IS NULL)
               AND expected_arrival >= $2 AND expected_arrival <= $3 AND lodged_at > $4
             ORDER BY expected_arrival LIMIT $5"
        ))
        .bind(bay.unwrap_or(""))
        .bind(from_ms)
        .bind(to_ms)
        .bind(since_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// The declaration a scan belongs to: by reference when the scanner knew it and the
    /// declaration is for this bay (or names none) and names the container read (or none), else
    /// the one of this bay (or none named) for the same container whose expected arrival is
    /// nearest the capture time (±7 days). A reference that names another bay or container is
    /// no match: the second value says why, for the case's findings.
    pub async fn match_declaration(
        &self,
        reference: Option<&str>,
        container_code: Option<&str>,
        bay: &str,
        captured_ms: i64,
    ) -> Result<(Option<(i64, String, f64)>, Option<String>), sqlx::Error> {
        let mut conflict = None;
        if let Some(reference) = reference {
            let row = sqlx::query(
                "SELECT id, reference, pre_risk, bay, container_code FROM declarations
                 WHERE reference = $1",
            )
            .bind(reference)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(r) = row {
                let (their_bay, their_code): (Option<String>, Option<String>) =
                    (r.get(3), r.get(4));
                conflict = match (their_bay, their_code) {
                    (Some(b), _) if b != bay => Some(format!(
                        "The scan names declaration {reference}, which is for another bay: not matched."
                    )),
                    (_, Some(c)) if container_code.is_some_and(|read| read != c) => Some(format!(
                        "The scan names declaration {reference}, which declares container {c}, \
                         but container {} was scanned: not matched, check the documents.",
                        container_code.unwrap_or_default()
                    )),
                    _ => return Ok((Some((r.get(0), r.get(1), r.get(2))), None)),
                };
            }
        }
        let Some(code) = container_code else {
            return Ok((None, conflict));
        };
        let week = 7 * 86_400_000;
        let rows = sqlx::query(
            "SELECT id, reference, pre_risk, expected_arrival FROM declarations
             WHERE container_code = $1 AND expected_arrival >= $2 AND expected_arrival <= $3
               AND (bay IS NULL OR bay = $4)",
        )
        .bind(code)
        .bind(captured_ms - week)
        .bind(captured_ms + week)
        .bind(bay)
        .fetch_all(&self.pool)
        .await?;
        let matched = rows
            .iter()
            .min_by_key(|r| (r.get::<i64, _>(3) - captured_ms).abs())
            .map(|r| (r.get(0), r.get(1), r.get(2)));
        Ok((matched, conflict))
    }
}
