//! Signed model updates (see `baylens_protocol::release`).
//!
//! With `[model_updates]` in the config, the agent asks the server every `check_secs` for the
//! current release of its model (`GET /api/v1/models/{name}/release`). A release it does not run
//! yet is downloaded (`GET /api/v1/models/{name}/{sha256}`) and installed only if:
//!
//! 1. the file's size and sha256 match the release and the release's ed25519 signature verifies
//!    under the configured public key (a tampered file, a forged release or a wrong key is
//!    refused, logged, and not retried until the server offers another release);
//! 2. its signed serial is above the highest this bay has installed (kept in
//!    `data_dir/models/serial`), so an old release, however well signed, cannot be put back, and
//!    its signed expiry, if any, has not passed;
//! 3. it passes the self-check: it loads in ONNX Runtime, keeps the input's shape, gives
//!    probabilities in [0, 1], and flags nothing on an empty (air-only) scan. A model that fails
//!    is deleted and the running one stays: the update is rolled back.
//!
//! Installed releases live in `data_dir/models/`: `<sha256>.onnx`, `active.json` (the running
//! release) and `previous.json` (the one before, kept with its file). At start the agent loads
//! the active release if it still verifies and passes the self-check, else the previous one,
//! else the model shipped with the agent.

use std::path::{Path, PathBuf};

use baylens_models::ConcealmentModel;
use baylens_models::concealment::{NAME, THRESHOLD};
use baylens_protocol::release::{ModelRelease, ReleaseError};
use serde::Deserialize;

/// Largest model file downloaded, bytes.
pub const MAX_MODEL_BYTES: u64 = 256 * 1024 * 1024;

/// The `[model_updates]` section of the agent's config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelUpdatesConfig {
    /// The model owner's ed25519 public key, 64 hex characters.
    pub public_key: String,
    /// How often the server is asked for a new release, seconds.
    #[serde(default = "default_check_secs")]
    pub check_secs: u64,
}

fn default_check_secs() -> u64 {
    3600
}

/// Why an update was not installed.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// Signature, key or file check failed: never installed.
    #[error("model update refused: {0}")]
    Refused(#[from] ReleaseError),
    /// The release's serial is not above the highest installed: a rollback.
    #[error(
        "model update refused: release serial {serial} is not above {highest}, the highest this \
         bay has installed (an older release put back?)"
    )]
    Rollback {
        /// The offered release's serial.
        serial: u64,
        /// The highest serial installed here.
        highest: u64,
    },
    /// The release is for another model.
    #[error("model update refused: release is for model {0:?}, this agent runs {NAME:?}")]
    WrongModel(String),
    /// It verified but failed the self-check; the running model stays.
    #[error("model update {sha256} failed its self-check and was rolled back: {why}")]
    SelfCheck {
        /// The release's file hash.
        sha256: String,
        /// What failed.
        why: String,
    },
    /// The store could not be written.
    #[error("model update: {0}")]
    Io(String),
}

/// Where installed releases live.
pub fn releases_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("models")
}

/// The highest release serial this bay has installed (0: none), from `models/serial` and the
/// kept releases, whichever is higher.
pub fn highest_serial(data_dir: &Path) -> u64 {
    let dir = releases_dir(data_dir);
    let recorded = std::fs::read_to_string(dir.join("serial"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    ["active.json", "previous.json"]
        .iter()
        .filter_map(|f| read_release(&dir.join(f)))
        .map(|r| r.serial)
        .fold(recorded, u64::max)
}

fn file_of(data_dir: &Path, sha256: &str) -> PathBuf {
    releases_dir(data_dir).join(format!("{sha256}.onnx"))
}

/// Loads a release's file and checks that it behaves like a concealment model.
pub fn self_check(path: &Path, sha256: &str, threads: usize) -> Result<ConcealmentModel, String> {
    let mut model =
        ConcealmentModel::load_file(path, sha256, threads).map_err(|e| e.to_string())?;
    // An empty portal: air everywhere, a little noise. Nothing may be flagged.
    let (w, h) = (256u32, 64u32);
    let air: Vec<u16> = (0..w * h).map(|i| 60_000 - (i % 7) as u16 * 40).collect();
    let out = model
        .analyse(&air, w, h, 60_000, 100)
        .map_err(|e| e.to_string())?;
    if out.heatmap.dim() != (h as usize, w as usize) {
        return Err(format!(
            "output shape {:?} for a {w} x {h} scan",
            out.heatmap.dim()
        ));
    }
    if !out
        .heatmap
        .iter()
        .all(|p| p.is_finite() && (0.0..=1.0).contains(p))
    {
        return Err("outputs outside [0, 1]".into());
    }
    if out.max_probability > THRESHOLD || !out.detections.is_empty() {
        return Err(format!(
            "flags an empty scan (max probability {:.3})",
            out.max_probability
        ));
    }
    Ok(model)
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn read_release(path: &Path) -> Option<ModelRelease> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// The release running now, if it came as an update.
pub fn active(data_dir: &Path) -> Option<ModelRelease> {
    read_release(&releases_dir(data_dir).join("active.json"))
}

/// Verifies `file` against `release`, stores it, self-checks it and makes it the active
/// release (the active one becomes `previous.json`). Returns the loaded model.
pub fn install(
    data_dir: &Path,
    release: &ModelRelease,
    file: &[u8],
    public_key: &str,
    threads: usize,
) -> Result<ConcealmentModel, UpdateError> {
    release.verify(file, public_key)?;
    if release.name != NAME {
        return Err(UpdateError::WrongModel(release.name.clone()));
    }
    release.check_expiry(chrono::Utc::now())?;
    let highest = highest_serial(data_dir);
    if release.serial <= highest {
        return Err(UpdateError::Rollback {
            serial: release.serial,
            highest,
        });
    }
    let dir = releases_dir(data_dir);
    std::fs::create_dir_all(&dir)
        .map_err(|e| UpdateError::Io(format!("{}: {e}", dir.display())))?;
    let path = file_of(data_dir, &release.sha256);
    write_synced(&path, file).map_err(|e| UpdateError::Io(format!("{}: {e}", path.display())))?;
    let model = match self_check(&path, &release.sha256, threads) {
        Ok(m) => m,
        Err(why) => {
            let _ = std::fs::remove_file(&path);
            return Err(UpdateError::SelfCheck {
                sha256: release.sha256.clone(),
                why,
            });
        }
    };
    let (active_json, previous_json) = (dir.join("active.json"), dir.join("previous.json"));
    if let Some(current) = read_release(&active_json) {
        // The one before the previous is no longer needed.
        if let Some(old) = read_release(&previous_json)
            && old.sha256 != current.sha256
            && old.sha256 != release.sha256
        {
            let _ = std::fs::remove_file(file_of(data_dir, &old.sha256));
        }
        std::fs::rename(&active_json, &previous_json)
            .map_err(|e| UpdateError::Io(format!("{}: {e}", previous_json.display())))?;
    }
    let json = serde_json::to_vec_pretty(release).map_err(|e| UpdateError::Io(e.to_string()))?;
    write_synced(&active_json, &json)
        .map_err(|e| UpdateError::Io(format!("{}: {e}", active_json.display())))?;
    let serial = dir.join("serial");
    write_synced(&serial, format!("{}\n", release.serial).as_bytes())
        .map_err(|e| UpdateError::Io(format!("{}: {e}", serial.display())))?;
    Ok(model)
}

/// At start: the active release if it still verifies and passes the self-check, else the
/// previous one; `None` means the model shipped with the agent.
pub fn load_installed(
    data_dir: &Path,
    public_key: &str,
    threads: usize,
) -> Option<(ConcealmentModel, ModelRelease)> {
    let dir = releases_dir(data_dir);
    for which in ["active.json", "previous.json"] {
        let Some(release) = read_release(&dir.join(which)) else {
            continue;
        };
        let path = file_of(data_dir, &release.sha256);
        let checked = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                release
                    .verify(&bytes, public_key)
                    .map_err(|e| e.to_string())
            })
            .and_then(|()| self_check(&path, &release.sha256, threads));
        match checked {
            Ok(model) => return Some((model, release)),
            Err(why) => tracing::error!(
                sha256 = %release.sha256,
                "installed model release ({which}) not usable, falling back: {why}"
            ),
        }
    }
    None
}
