//! The append-only, hash-chained audit log.
//!
//! Row `n` stores `hash_n = sha256(hash_{n-1} ‖ n ‖ at ‖ actor ‖ action ‖ subject ‖ detail)`
//! (fields separated by a 0x1f byte, `hash_0` = 64 zeros). Editing any field of any row, or
//! deleting or reordering rows, breaks the chain at that row, which [`Store::verify_audit`]
//! reports. Appends happen in transactions from [`Store::begin_audited`], serialised until
//! commit by a lock within the process and, on PostgreSQL, an advisory lock across replicas;
//! the primary key on `seq` is the last line of defence.
//!
//! Cutting rows off the *end* of the log leaves a valid, shorter chain; operators who need
//! to detect that publish the head hash (`server audit verify` prints it) somewhere else.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{Any, Row, Transaction};

use super::{Store, ms_to_rfc3339, now_ms};

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When (RFC 3339).
    pub at: String,
    /// Who: `user:NAME`, `agent:NAME` or `cli`.
    pub actor: String,
    /// What, e.g. `case.decision`.
    pub action: String,
    /// On what, e.g. `case:42`.
    pub subject: String,
    /// Details as JSON.
    pub detail: serde_json::Value,
    /// This row's hash.
    pub hash: String,
}

/// The outcome of checking the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditVerdict {
    /// Every row links to the one before; the head hash and row count.
    Intact {
        /// Number of rows.
        rows: i64,
        /// Hash of the last row.
        head: String,
    },
    /// The first row where the chain breaks, and why.
    Broken {
        /// The row's `seq` (or the expected `seq` where a row is missing).
        seq: i64,
        /// What is wrong.
        reason: String,
    },
}

fn chain_hash(
    prev: &str,
    seq: i64,
    at: i64,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &str,
) -> String {
    let mut h = Sha256::new();
    for part in [
        prev.as_bytes(),
        seq.to_string().as_bytes(),
        at.to_string().as_bytes(),
        actor.as_bytes(),
        action.as_bytes(),
        subject.as_bytes(),
        detail.as_bytes(),
    ] {
        h.update(part);
        h.update([0x1f]);
    }
    hex::encode(h.finalize())
}

impl Store {
    /// Appends an entry in its own transaction.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &serde_json::Value,
    ) -> Result<(), sqlx::Error> {
        let (mut tx, _lock) = self.begin_audited().await?;
        self.audit_in(&mut tx, actor, action, subject, detail)
            .await?;
        tx.commit().await
    }

    /// Appends an entry inside the caller's transaction, so the entry and the change it
    /// records commit together or not at all. The transaction must come from
    /// [`Store::begin_audited`], whose guard serialises appends until the commit.
    pub async fn audit_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &serde_json::Value,
    ) -> Result<(), sqlx::Error> {
        let head = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut **tx)
            .await?;
        let (prev_seq, prev_hash) = head.map_or((0, GENESIS.to_owned()), |r| (r.get(0), r.get(1)));
        let seq = prev_seq + 1;
        let at = now_ms();
        let detail = detail.to_string();
        let hash = chain_hash(&prev_hash, seq, at, actor, action, subject, &detail);
        sqlx::query(
            "INSERT INTO audit_log (seq, at, actor, action, subject, detail, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(seq)
        .bind(at)
        .bind(actor)
        .bind(action)
        .bind(subject)
        .bind(&detail)
        .bind(&prev_hash)
        .bind(&hash)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// The newest entries, optionally only those about `subject`.
    pub async fn audit_entries(
        &self,
        subject: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT seq, at, actor, action, subject, detail, hash FROM audit_log
             WHERE ($1 = '' OR subject = $1) ORDER BY seq DESC LIMIT $2",
        )
        .bind(subject.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| AuditEntry {
                seq: r.get(0),
                at: ms_to_rfc3339(r.get(1)),
                actor: r.get(2),
                action: r.get(3),
                subject: r.get(4),
                detail: serde_json::from_str(r.get::<&str, _>(5))
                    .unwrap_or(serde_json::Value::Null),
                hash: r.get(6),
            })
            .collect())
    }

    /// Walks the whole chain from the first row.
    pub async fn verify_audit(&self) -> Result<AuditVerdict, sqlx::Error> {
        use futures_util::TryStreamExt;
        let mut rows = sqlx::query(
            "SELECT seq, at, actor, action, subject, detail, prev_hash, hash FROM audit_log ORDER BY seq",
        )
        .fetch(&self.pool);
        let mut expected_seq = 1;
        let mut prev = GENESIS.to_owned();
        while let Some(r) = rows.try_next().await? {
            let seq: i64 = r.get(0);
            if seq != expected_seq {
                return Ok(AuditVerdict::Broken {
                    seq: expected_seq,
                    reason: format!("row {expected_seq} is missing (next row is {seq})"),
                });
            }
            let stored_prev: String = r.get(6);
            if stored_prev != prev {
                return Ok(AuditVerdict::Broken {
                    seq,
                    reason: "its prev_hash does not match the row before".into(),
                });
            }
            let hash = chain_hash(&prev, seq, r.get(1), r.get(2), r.get(3), r.get(4), r.get(5));
            if hash != r.get::<&str, _>(7) {
                return Ok(AuditVerdict::Broken {
                    seq,
                    reason: "its contents do not match its hash (the row was edited)".into(),
                });
            }
            prev = hash;
            expected_seq += 1;
        }
        Ok(AuditVerdict::Intact {
            rows: expected_seq - 1,
            head: prev,
        })
    }
}
