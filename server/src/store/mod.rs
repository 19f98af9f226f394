//! The server's store. One set of SQL serves both backends through sqlx's `Any` driver:
//!
//! - **SQLite** (default): `data_dir/baylens.db`, WAL, `synchronous = FULL`, foreign keys on.
//! - **PostgreSQL**: when a `postgres://` URL is configured, for several server replicas.
//!
//! Every query uses `$N` placeholders (which both drivers read) and portable types only:
//! BIGINT, DOUBLE PRECISION and TEXT; times are Unix milliseconds and JSON is TEXT. The two
//! migration folders (`migrations/sqlite`, `migrations/postgres`) differ only in how an id is
//! generated; `tests/store.rs` checks that they define the same tables and columns.
//!
//! Images go through [`object_store`] (local filesystem by default; `s3://` with the `s3`
//! feature). New cases are written by one group-commit writer ([`ingest`]); changes people
//! make are written in audited transactions ([`Store::begin_audited`]).

pub mod audit;
pub mod camera_codes;
pub mod cases;
pub mod datasets;
pub mod declarations;
pub mod evidence;
pub mod fleet;
pub mod imports;
pub mod ingest;
pub mod logins;
pub mod models;
pub mod queue;
pub mod stats;
pub mod tokens;
pub mod users;

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Connection, Executor};
use tokio::sync::{Mutex, OwnedMutexGuard};

pub use audit::{AuditCheck, AuditEntry, AuditVerdict};
pub use cases::{CaseDetail, CaseEvent, CaseSummary, Decision, Ingested};
pub use declarations::{DeclarationRow, Lodged};
pub use fleet::Heartbeat;
pub use queue::{CaseFilter, CaseSort};
pub use stats::ReleaseRow;
pub use users::{Agent, AgentInfo, User};

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// Database, image store, and the lock that keeps the audit chain linear.
#[derive(Debug, Clone)]
pub struct Store {
    /// The pool.
    pub pool: AnyPool,
    /// Which database.
    pub backend: Backend,
    /// Scan images (previews and layers).
    pub images: Arc<dyn ObjectStore>,
    audit_lock: Arc<Mutex<()>>,
    /// How far this process has found the audit chain intact (see [`Store::verify_audit_recent`]).
    audit_checkpoint: Arc<Mutex<audit::Checkpoint>>,
    /// The database URL (for PostgreSQL's LISTEN connection).
    url: String,
    /// The group-commit writer of new cases.
    ingest: tokio::sync::mpsc::Sender<ingest::Job>,
    /// Where this site draws its lanes (`server serve --lane-yellow/--lane-red`).
    pub lanes: baylens_protocol::risk::LaneThresholds,
}

/// PostgreSQL channel on which every replica hears of new cases.
pub const CASES_CHANNEL: &str = "baylens_cases";

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// A stored time as a UTC date-time.
pub fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// The start of `day` (UTC), or of the day after it when `end` (an inclusive last day as an
/// exclusive bound).
pub fn day_bound(day: chrono::NaiveDate, end: bool) -> Option<DateTime<Utc>> {
    let day = if end { day.succ_opt()? } else { day };
    Some(day.and_hms_opt(0, 0, 0)?.and_utc())
}

/// `ids` as a list for `IN (…)`: numbers only, so nothing can be injected.
pub(crate) fn id_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

/// A stored time as RFC 3339 with seconds.
pub fn ms_to_rfc3339(ms: i64) -> String {
    from_ms(ms).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Store {
    /// Opens the embedded SQLite store in `data_dir` (creating and migrating it), with images
    /// under `data_dir/images/`.
    pub async fn open(data_dir: &Path) -> Result<Self, sqlx::Error> {
        std::fs::create_dir_all(data_dir).map_err(sqlx::Error::Io)?;
        let url = format!(
            "sqlite://{}?mode=rwc",
            data_dir.join("baylens.db").display()
        );
        Self::open_url(&url, data_dir).await
    }

    /// Opens the database at `url` (`sqlite://…` or `postgres://…`), migrating it, with images
    /// under `data_dir/images/`.
    pub async fn open_url(url: &str, data_dir: &Path) -> Result<Self, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let images_dir = data_dir.join("images");
        std::fs::create_dir_all(&images_dir).map_err(sqlx::Error::Io)?;
        // The database, scans and evidence: the server's user only, whatever the umask.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let private = std::fs::Permissions::from_mode(0o700);
            if let Err(e) = std::fs::set_permissions(data_dir, private) {
                tracing::warn!("cannot restrict {} to its owner: {e}", data_dir.display());
            }
        }
        let images = LocalFileSystem::new_with_prefix(&images_dir)
            .map_err(|e| sqlx::Error::Configuration(Box::new(e)))?;
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(sqlx::Error::Configuration(
                "database URL must start with sqlite: or postgres://".into(),
            ));
        };
        let options: AnyConnectOptions = url.parse()?;
        // One direct connection first: a pool would retry until its timeout and then report
        // only "timed out"; this surfaces the real cause (refused, auth, no such database).
        options.connect().await?.close().await?;
        let pool = AnyPoolOptions::new()
            .acquire_timeout(std::time::Duration::from_secs(10))
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute(sqlx::raw_sql(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                        ))
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let migrator = match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        migrator
            .run(&pool)
            .await
            .map_err(|e| sqlx::Error::Migrate(Box::new(e)))?;
        let (ingest, jobs) = tokio::sync::mpsc::channel(ingest::QUEUE);
        tokio::spawn(ingest::writer(pool.clone(), backend, jobs));
        Ok(Self {
            pool,
            backend,
            images: Arc::new(images),
            audit_lock: Arc::new(Mutex::new(())),
            audit_checkpoint: Arc::default(),
            url: url.to_owned(),
            ingest,
            lanes: baylens_protocol::risk::LaneThresholds::default(),
        })
    }

    /// Begins a write transaction that will append to the audit log. The returned guard keeps
    /// audited transactions of this process in single file until it is dropped, which the
    /// caller does after committing; on PostgreSQL a transaction-scoped advisory lock does the
    /// same across replicas, and on SQLite `BEGIN IMMEDIATE` takes the write lock up front, so
    /// a transaction that reads before it writes cannot fail with "database is locked".
    pub async fn begin_audited(
        &self,
    ) -> Result<(sqlx::Transaction<'static, sqlx::Any>, OwnedMutexGuard<()>), sqlx::Error> {
        let guard = self.audit_lock.clone().lock_owned().await;
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock(6346)")
                    .execute(&mut *tx)
                    .await?;
                tx
            }
        };
        Ok((tx, guard))
    }

    /// Keeps images at `url` instead of `DATA_DIR/images`: `file:///absolute/path`, or, in a
    /// build with the `s3` feature, `s3://bucket/prefix` (credentials, region and endpoint from
    /// the usual `AWS_*` environment variables, so S3-compatible stores such as MinIO or Ceph
    /// work too).
    pub fn with_images_url(mut self, url: &str) -> Result<Self, sqlx::Error> {
        let config = |e: String| sqlx::Error::Configuration(e.into());
        let parsed =
            url::Url::parse(url).map_err(|e| config(format!("images URL {url:?}: {e}")))?;
        let images: Arc<dyn ObjectStore> = if parsed.scheme() == "file" {
            let dir = parsed
                .to_file_path()
                .map_err(|()| config(format!("images URL {url:?} is not an absolute file path")))?;
            std::fs::create_dir_all(&dir).map_err(sqlx::Error::Io)?;
            Arc::new(
                LocalFileSystem::new_with_prefix(&dir)
                    .map_err(|e| config(format!("images folder {}: {e}", dir.display())))?,
            )
        } else {
            let aws_env = std::env::vars()
                .filter(|(k, _)| k.starts_with("AWS_"))
                .map(|(k, v)| (k.to_ascii_lowercase(), v));
            let (store, prefix) = object_store::parse_url_opts(&parsed, aws_env).map_err(|e| {
                config(format!(
                    "images URL {url:?}: {e} (file:// or s3://; s3:// needs the s3 feature, on by default)"
                ))
            })?;
            Arc::new(object_store::prefix::PrefixStore::new(store, prefix))
        };
        self.images = images;
        Ok(self)
    }

    /// Announces a new case to every replica (PostgreSQL `NOTIFY`); a no-op on SQLite, where
    /// the one server process announces it itself.
    pub async fn announce_case(&self, case_id: i64) -> Result<(), sqlx::Error> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT CAST(pg_notify($1, $2) AS TEXT)")
                .bind(CASES_CHANNEL)
                .bind(case_id.to_string())
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Forwards every replica's new cases into `events` for as long as the runtime runs
    /// (PostgreSQL only; reconnects after a pause when the connection drops).
    pub fn forward_announcements(
        &self,
        events: tokio::sync::broadcast::Sender<cases::CaseSummary>,
    ) {
        if self.backend != Backend::Postgres {
            return;
        }
        let store = self.clone();
        tokio::spawn(async move {
            loop {
                match sqlx::postgres::PgListener::connect(&store.url).await {
                    Ok(mut listener) => {
                        if let Err(e) = listener.listen(CASES_CHANNEL).await {
                            tracing::warn!("LISTEN {CASES_CHANNEL} failed: {e}");
                        } else {
                            while let Ok(n) = listener.recv().await {
                                let Ok(id) = n.payload().parse::<i64>() else {
                                    continue;
                                };
                                if let Ok(Some(case)) = store.case_summary(id).await {
                                    let _ = events.send(case);
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!("connecting the case listener failed: {e}"),
                }
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
        });
    }

    /// A cheap round trip, for `/readyz`.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
