//! The agent's model-update loop: every `check_secs`, the current release from the server; a
//! new one is downloaded, verified and installed (`crate::updates`), and the scan loop switches
//! to it at the next scan.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baylens_models::ConcealmentModel;
use baylens_models::concealment::NAME as MODEL_NAME;

use crate::updates::ModelUpdatesConfig;
use crate::uplink::Uplink;

/// Checks for, fetches and installs model releases until `stop` turns true. An installed model
/// goes into `next_model`, its hash into `running_sha`.
pub(super) async fn watch(
    client: Uplink,
    updates: ModelUpdatesConfig,
    data_dir: PathBuf,
    threads: usize,
    next_model: Arc<Mutex<Option<ConcealmentModel>>>,
    running_sha: Arc<Mutex<String>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut every = tokio::time::interval(Duration::from_secs(updates.check_secs));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Releases (by signature) refused or rolled back are not fetched again.
    let mut refused = std::collections::HashSet::new();
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = every.tick() => {}
        }
        let current = running_sha.lock().map(|s| s.clone()).unwrap_or_default();
        let release = match client.model_release(MODEL_NAME).await {
            Ok(Some(r)) if r.sha256 != current && !refused.contains(&r.signature) => r,
            Ok(_) => continue,
            Err(e) => {
                tracing::debug!("model release check failed: {e}");
                continue;
            }
        };
        let file = match client.model_file(MODEL_NAME, &release).await {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(sha256 = %release.sha256, "model download failed, retrying later: {e}");
                continue;
            }
        };
        let (dir, key, sha, signature) = (
            data_dir.clone(),
            updates.public_key.clone(),
            release.sha256.clone(),
            release.signature.clone(),
        );
        let installed = tokio::task::spawn_blocking(move || {
            crate::updates::install(&dir, &release, &file, &key, threads)
        })
        .await;
        match installed {
            Ok(Ok(model)) => {
                tracing::info!(sha256 = %sha, "model update verified and installed");
                if let Ok(mut slot) = next_model.lock() {
                    *slot = Some(model);
                }
                if let Ok(mut s) = running_sha.lock() {
                    s.clone_from(&sha);
                }
            }
            Ok(Err(e)) => {
                tracing::error!(sha256 = %sha, "{e}");
                // By release, not by file: the same file re-signed (a new serial)
                // is a new release.
                refused.insert(signature);
            }
            Err(e) => tracing::error!("model installer failed: {e}"),
        }
    }
}
