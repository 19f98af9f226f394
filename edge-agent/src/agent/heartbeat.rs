//! The heartbeat: every [`HEARTBEAT_SECS`] the agent tells the server its version, models and
//! what an operator watches on the fleet page: outbox depth and oldest unsent scan, camera,
//! free disk, scans today, declarations cached, and its clock. Best effort: a lost heartbeat
//! only delays the next.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baylens_models::concealment::NAME as MODEL_NAME;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::bay::BayState;
use crate::declarations::DeclarationCache;
use crate::outbox::Outbox;
use crate::uplink::Uplink;

/// Seconds between heartbeats to the server.
pub const HEARTBEAT_SECS: u64 = 60;

/// What the heartbeat reads.
pub(super) struct Sources {
    pub outbox: Outbox,
    pub cache: DeclarationCache,
    pub bay: Arc<BayState>,
    pub running_sha: Arc<Mutex<String>>,
    pub data_dir: PathBuf,
    pub min_free_disk_bytes: u64,
}

impl Sources {
    /// The heartbeat's body (`Heartbeat` on the server).
    async fn heartbeat(&self) -> Value {
        let depth = self.outbox.counts().await.map(|c| c.0).unwrap_or(0);
        let sha = self
            .running_sha
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        // The installed release's serial, if that is the model running.
        let serial = crate::updates::active(&self.data_dir)
            .filter(|r| r.sha256 == sha)
            .map(|r| r.serial);
        let midnight = chrono::Utc::now()
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .unwrap_or_else(chrono::Utc::now);
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "models": {MODEL_NAME: sha},
            "queue_depth": u32::try_from(depth).unwrap_or(u32::MAX),
            "oldest_unsent_at": self.outbox.oldest_pending().await.ok().flatten(),
            "camera": self.bay.camera().state,
            "free_disk_bytes": fs4::available_space(&self.data_dir).ok(),
            "min_free_disk_bytes": self.min_free_disk_bytes,
            "scans_today": self.outbox.accepted_since(midnight).await.ok(),
            "declarations_cached": self.cache.count().await.ok(),
            "model_serial": serial,
            "sent_at": chrono::Utc::now().to_rfc3339(),
        })
    }
}

/// Sends a heartbeat at once and then every [`HEARTBEAT_SECS`] until `stop`.
pub(super) fn spawn(
    sources: Sources,
    client: Uplink,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(HEARTBEAT_SECS));
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = every.tick() => {}
            }
            let body = sources.heartbeat().await;
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                sent = client.heartbeat(&body) => {
                    if let Err(e) = sent {
                        tracing::debug!("heartbeat not delivered: {e}");
                    }
                }
            }
        }
    })
}
