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
//!
//! The `/audit` page does not re-hash the whole chain on every load: it checks the rows added
//! since the last row this process found intact, that this row is unchanged, and walks the
//! whole chain again at least every [`FULL_CHECK_EVERY`] ([`Store::verify_audit_recent`]).
//! `server audit verify` and `GET /api/v1/audit/verify` always walk all of it.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{Any, Row, Transaction};

use super::{Store, ms_to_rfc3339, now_ms};

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Longest the incremental check trusts an earlier full walk of the chain.
pub const FULL_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// The last row found intact, and when the whole chain was last walked.
#[derive(Debug, Default)]
pub(crate) struct Checkpoint {
    seq: i64,
    hash: String,
    full_at: Option<std::time::Instant>,
}

/// What an incremental check did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCheck {
    /// The verdict on the chain.
    pub verdict: AuditVerdict,
    /// Rows hashed by this check (all of them on a full walk).
    pub checked: i64,
    /// Whether this check walked the whole chain.
    pub full: bool,
}

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
        let mut checkpoint = self.audit_checkpoint.lock().await;
        Ok(self.verify_fully(&mut checkpoint).await?.verdict)
    }

    /// Checks what was appended since the last row this process found intact (and that this
    /// row is still as it was), walking the whole chain again when it never has or did so
    /// more than [`FULL_CHECK_EVERY`] ago. Concurrent calls wait for each other.
    pub async fn verify_audit_recent(&self) -> Result<AuditCheck, sqlx::Error> {
        let mut checkpoint = self.audit_checkpoint.lock().await;
        let due = checkpoint
            .full_at
            .is_none_or(|at| at.elapsed() >= FULL_CHECK_EVERY);
        if due || checkpoint.seq == 0 {
            return self.verify_fully(&mut checkpoint).await;
        }
        let broken = |seq: i64, reason: &str| AuditCheck {
            verdict: AuditVerdict::Broken {
                seq,
                reason: reason.into(),
            },
            checked: 1,
            full: false,
        };
        let row = sqlx::query(
            "SELECT at, actor, action, subject, detail, prev_hash, hash FROM audit_log WHERE seq = $1",
        )
        .bind(checkpoint.seq)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else {
            return Ok(broken(
                checkpoint.seq,
                "this row, found intact before, is gone",
            ));
        };
        let recomputed = chain_hash(
            r.get(5),
            checkpoint.seq,
            r.get(0),
            r.get(1),
            r.get(2),
            r.get(3),
            r.get(4),
        );
        if r.get::<&str, _>(6) != checkpoint.hash || recomputed != checkpoint.hash {
            return Ok(broken(
                checkpoint.seq,
                "this row changed since it was found intact",
            ));
        }
        let (verdict, checked) = self
            .walk_chain(checkpoint.seq, checkpoint.hash.clone())
            .await?;
        if let AuditVerdict::Intact { rows, head } = &verdict {
            checkpoint.seq = *rows;
            checkpoint.hash.clone_from(head);
        }
        Ok(AuditCheck {
            verdict,
            checked: checked + 1,
            full: false,
        })
    }

    async fn verify_fully(&self, checkpoint: &mut Checkpoint) -> Result<AuditCheck, sqlx::Error> {
        let (verdict, checked) = self.walk_chain(0, GENESIS.to_owned()).await?;
        if let AuditVerdict::Intact { rows, head } = &verdict {
            *checkpoint = Checkpoint {
                seq: *rows,
                hash: head.clone(),
                full_at: Some(std::time::Instant::now()),
            };
        }
        Ok(AuditCheck {
            verdict,
            checked,
            full: true,
        })
    }

    /// Walks the chain from the row after `after`, whose hash is `prev`; returns the verdict
    /// and how many rows it hashed.
    async fn walk_chain(
        &self,
        after: i64,
        mut prev: String,
    ) -> Result<(AuditVerdict, i64), sqlx::Error> {
        use futures_util::TryStreamExt;
        let mut rows = sqlx::query(
            "SELECT seq, at, actor, action, subject, detail, prev_hash, hash FROM audit_log
             WHERE seq > $1 ORDER BY seq",
        )
        .bind(after)
        .fetch(&self.pool);
        let mut expected_seq = after + 1;
        let checked = |expected_seq: i64| expected_seq - after;
        while let Some(r) = rows.try_next().await? {
            let seq: i64 = r.get(0);
            let reason = if seq != expected_seq {
                Some(format!("row {expected_seq} is missing (next row is {seq})"))
            } else if r.get::<&str, _>(6) != prev {
                Some("its prev_hash does not match the row before".into())
            } else {
                None
            };
            if let Some(reason) = reason {
                let verdict = AuditVerdict::Broken {
                    seq: expected_seq,
                    reason,
                };
                return Ok((verdict, checked(expected_seq)));
            }
            let hash = chain_hash(&prev, seq, r.get(1), r.get(2), r.get(3), r.get(4), r.get(5));
            if hash != r.get::<&str, _>(7) {
                let verdict = AuditVerdict::Broken {
                    seq,
                    reason: "its contents do not match its hash (the row was edited)".into(),
                };
                return Ok((verdict, checked(expected_seq)));
            }
            prev = hash;
            expected_seq += 1;
        }
        let verdict = AuditVerdict::Intact {
            rows: expected_seq - 1,
            head: prev,
        };
        Ok((verdict, checked(expected_seq) - 1))
    }
}
