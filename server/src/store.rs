//! The server's store: SQLite (WAL, `synchronous = FULL`) with numbered migrations run at start,
//! and images under `data_dir/images/`. Every query lives here.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use baylens_protocol::ScanReport;
use chrono::{Duration, Utc};
use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::auth::{Role, hash_password, hash_token, new_token};

/// Database plus image folder.
#[derive(Debug, Clone)]
pub struct Store {
    /// The pool.
    pub pool: SqlitePool,
    /// Where previews are kept.
    pub images_dir: PathBuf,
}

/// A case row as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CaseSummary {
    /// Case id.
    pub id: i64,
    /// Scan id.
    pub scan_id: String,
    /// Bay.
    pub bay: String,
    /// Capture time (RFC 3339).
    pub captured_at: String,
    /// Container code, if known.
    pub container_code: Option<String>,
    /// Declaration reference, if known.
    pub declaration_ref: Option<String>,
    /// Risk in [0, 1].
    pub risk: f64,
    /// green, yellow or red.
    pub lane: String,
    /// open, ...
    pub status: String,
    /// Number of findings.
    pub findings_count: i64,
    /// Model that produced the findings.
    pub model_name: String,
    /// Whether a preview image has arrived.
    pub has_image: bool,
    /// The full report from the bay.
    pub report: serde_json::Value,
}

/// A logged-in or token-holding user.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// Id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// Bay, for officers.
    pub bay: Option<String>,
}

/// An edge agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Agent {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// The one bay it may report for.
    pub bay: String,
}

/// What storing a report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// New case.
    Created(i64),
    /// Same report id seen before.
    Duplicate(i64),
    /// The scan already has a case from a different report.
    ScanConflict(i64),
}

/// How long a login session lasts.
pub const SESSION_HOURS: i64 = 12;

impl Store {
    /// Opens (creating and migrating) the store in `data_dir`.
    pub async fn open(data_dir: &Path) -> Result<Self, sqlx::Error> {
        let images_dir = data_dir.join("images");
        std::fs::create_dir_all(&images_dir).map_err(sqlx::Error::Io)?;
        let options = SqliteConnectOptions::from_str(&format!(
            "sqlite://{}",
            data_dir.join("baylens.db").display()
        ))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(std::time::Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| sqlx::Error::Migrate(Box::new(e)))?;
        Ok(Self { pool, images_dir })
    }

    /// Adds a user; returns its id.
    pub async fn add_user(
        &self,
        username: &str,
        password: &str,
        role: Role,
        bay: Option<&str>,
    ) -> Result<i64, sqlx::Error> {
        let hash = hash_password(password);
        let row = sqlx::query("INSERT INTO users (username, password_hash, role, bay, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id")
            .bind(username)
            .bind(hash)
            .bind(role.as_str())
            .bind(bay)
            .bind(Utc::now().to_rfc3339())
            .fetch_one(&self.pool)
            .await?;
        Ok(row.get(0))
    }

    /// The user with this name and its password hash.
    pub async fn user_by_name(
        &self,
        username: &str,
    ) -> Result<Option<(User, String)>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT id, username, role, bay, password_hash FROM users WHERE username = ?",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|r| user_from_row(&r).map(|u| (u, r.get(4)))))
    }

    /// Registers an agent and returns its token, which is not stored and cannot be shown again.
    pub async fn add_agent(&self, name: &str, bay: &str) -> Result<String, sqlx::Error> {
        let token = new_token("bla_");
        sqlx::query("INSERT INTO agents (name, bay, token_hash, created_at) VALUES (?, ?, ?, ?)")
            .bind(name)
            .bind(bay)
            .bind(hash_token(&token))
            .bind(Utc::now().to_rfc3339())
            .execute(&self.pool)
            .await?;
        Ok(token)
    }

    /// The agent holding this token.
    pub async fn agent_by_token(&self, token: &str) -> Result<Option<Agent>, sqlx::Error> {
        let row = sqlx::query("SELECT id, name, bay FROM agents WHERE token_hash = ?")
            .bind(hash_token(token))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| Agent {
            id: r.get(0),
            name: r.get(1),
            bay: r.get(2),
        }))
    }

    /// Starts a session for a user; returns the session token.
    pub async fn new_session(&self, user_id: i64) -> Result<String, sqlx::Error> {
        let token = new_token("bls_");
        sqlx::query("INSERT INTO sessions (token_hash, user_id, expires_at) VALUES (?, ?, ?)")
            .bind(hash_token(&token))
            .bind(user_id)
            .bind((Utc::now() + Duration::hours(SESSION_HOURS)).to_rfc3339())
            .execute(&self.pool)
            .await?;
        Ok(token)
    }

    /// The user of a live session.
    pub async fn user_by_session(&self, token: &str) -> Result<Option<User>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT u.id, u.username, u.role, u.bay FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = ? AND s.expires_at > ?",
        )
        .bind(hash_token(token))
        .bind(Utc::now().to_rfc3339())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|r| user_from_row(&r)))
    }

    /// Ends a session.
    pub async fn end_session(&self, token: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = ?")
            .bind(hash_token(token))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stores a report as a case, once per report id. The insert is committed before this
    /// returns, so a 2xx answer means the case survives a crash.
    pub async fn ingest_report(
        &self,
        agent: &Agent,
        report: &ScanReport,
        raw: &str,
    ) -> Result<Ingested, sqlx::Error> {
        let inserted = sqlx::query(
            "INSERT INTO cases (report_id, scan_id, bay, agent_id, captured_at, received_at, container_code, declaration_ref,
                                risk, lane, model_name, model_sha256, findings_count, report_json)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(report.report_id.as_str())
        .bind(report.scan_id.as_str())
        .bind(report.bay.as_str())
        .bind(agent.id)
        .bind(report.captured_at.to_rfc3339())
        .bind(Utc::now().to_rfc3339())
        .bind(report.container_code.as_ref().map(|c| c.as_str()))
        .bind(report.declaration_ref.as_deref())
        .bind(f64::from(report.risk))
        .bind(report.lane.as_str())
        .bind(&report.model.name)
        .bind(&report.model.sha256)
        .bind(report.findings.len() as i64)
        .bind(raw)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = inserted {
            return Ok(Ingested::Created(row.get(0)));
        }
        let existing =
            sqlx::query("SELECT id, report_id FROM cases WHERE report_id = ? OR scan_id = ?")
                .bind(report.report_id.as_str())
                .bind(report.scan_id.as_str())
                .fetch_one(&self.pool)
                .await?;
        let report_id: String = existing.get(1);
        if report_id == report.report_id.as_str() {
            Ok(Ingested::Duplicate(existing.get(0)))
        } else {
            Ok(Ingested::ScanConflict(existing.get(0)))
        }
    }

    /// The case of a scan, with its bay.
    pub async fn case_of_scan(&self, scan_id: &str) -> Result<Option<(i64, String)>, sqlx::Error> {
        let row = sqlx::query("SELECT id, bay FROM cases WHERE scan_id = ?")
            .bind(scan_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    /// Records where a case's preview is.
    pub async fn set_preview(&self, case_id: i64, path: &Path) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE cases SET preview_path = ? WHERE id = ?")
            .bind(path.to_string_lossy().into_owned())
            .bind(case_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Cases visible to `user`, highest risk first, newest first within a risk.
    pub async fn list_cases(
        &self,
        user: &User,
        limit: i64,
    ) -> Result<Vec<CaseSummary>, sqlx::Error> {
        let bay_filter = match user.role {
            Role::Supervisor | Role::Admin => None,
            Role::Officer => Some(user.bay.clone().unwrap_or_default()),
            // Agencies see only cases shared with them; sharing arrives with the server issue.
            Role::Agency => return Ok(Vec::new()),
        };
        let rows = sqlx::query(
            "SELECT id, scan_id, bay, captured_at, container_code, declaration_ref, risk, lane, status, findings_count,
                    model_name, preview_path IS NOT NULL, report_json
             FROM cases WHERE (?1 IS NULL OR bay = ?1) ORDER BY risk DESC, captured_at DESC LIMIT ?2",
        )
        .bind(bay_filter)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| CaseSummary {
                id: r.get(0),
                scan_id: r.get(1),
                bay: r.get(2),
                captured_at: r.get(3),
                container_code: r.get(4),
                declaration_ref: r.get(5),
                risk: r.get(6),
                lane: r.get(7),
                status: r.get(8),
                findings_count: r.get(9),
                model_name: r.get(10),
                has_image: r.get(11),
                report: serde_json::from_str(r.get::<&str, _>(12))
                    .unwrap_or(serde_json::Value::Null),
            })
            .collect())
    }

    /// A case's bay and preview path.
    pub async fn case_preview(
        &self,
        case_id: i64,
    ) -> Result<Option<(String, Option<String>)>, sqlx::Error> {
        let row = sqlx::query("SELECT bay, preview_path FROM cases WHERE id = ?")
            .bind(case_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    /// Number of cases.
    pub async fn count_cases(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT COUNT(*) FROM cases")
            .fetch_one(&self.pool)
            .await
    }
}

fn user_from_row(r: &sqlx::sqlite::SqliteRow) -> Option<User> {
    Some(User {
        id: r.get(0),
        username: r.get(1),
        role: Role::parse(r.get(2))?,
        bay: r.get(3),
    })
}
