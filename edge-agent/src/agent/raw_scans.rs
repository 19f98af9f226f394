//! Raw scans on request: with every declaration sync the agent asks the server which of its
//! bay's scans it wants in full (a dataset export asks for the cleared and judged ones it
//! lacks) and uploads each from `done/` as a tar of the sidecar and the images it names, as
//! the scanner delivered them. A scan no longer here (removed by an operator), or one the
//! server refuses, is reported missing, so the server stops asking. Best effort: what fails is asked for again next time.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use tokio::sync::watch;

use crate::uplink::{Attempt, Uplink, classify};

/// Largest raw scan sent: the server's limit, less room for the tar's headers and padding.
const MAX_RAW_BYTES: u64 = 2 * 64 * 1024 * 1024 * 2 + 1024 * 1024 - 64 * 1024;

/// Answers the server's requests every `every` until `stop`.
pub(super) fn spawn(
    client: Uplink,
    done_dir: PathBuf,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = tick.tick() => {}
            }
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                () = answer(&client, &done_dir) => {}
            }
        }
    })
}

/// One round: every scan asked for, uploaded or reported missing.
async fn answer(client: &Uplink, done_dir: &Path) {
    let wanted = match client.raw_wanted().await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::debug!("raw scan requests not fetched: {e}");
            return;
        }
    };
    for scan_id in wanted {
        let dir = done_dir.to_owned();
        let id = scan_id.clone();
        let packed = tokio::task::spawn_blocking(move || pack(&dir, &id))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        let outcome = match packed {
            Ok(tar) => match client.upload_raw(&scan_id, tar).await {
                // Refused for good (the scan breaks the contract, or is too large): say so,
                // so the server stops asking rather than this scan blocking the others.
                Attempt::Refused(why) => {
                    tracing::warn!(%scan_id, "raw scan refused: {why}");
                    client
                        .raw_missing(&scan_id, &format!("refused by the server: {why}"))
                        .await
                }
                other => other,
            },
            Err(why) => {
                tracing::warn!(%scan_id, "raw scan asked for but not available: {why}");
                client.raw_missing(&scan_id, &why).await
            }
        };
        match outcome {
            Attempt::Delivered(bytes) => tracing::info!(%scan_id, bytes, "raw scan uploaded"),
            Attempt::Refused(why) => tracing::warn!(%scan_id, "raw scan refused: {why}"),
            Attempt::Retry(why) => {
                tracing::debug!(%scan_id, "raw scan not delivered, asked again later: {why}");
                return;
            }
        }
    }
}

impl Uplink {
    /// The scans of this bay whose raw scans the server asks for.
    async fn raw_wanted(&self) -> Result<Vec<String>, String> {
        let r = self
            .request(Method::GET, "/api/v1/agents/raw-wanted", 64 * 1024)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !r.status().is_success() {
            return Err(format!("HTTP {}", r.status()));
        }
        let v: Value = r.json().await.map_err(|e| e.to_string())?;
        Ok(v["scan_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|id| id.as_str().map(str::to_owned))
            .collect())
    }

    /// Uploads a raw scan (a tar from [`pack`]).
    async fn upload_raw(&self, scan_id: &str, tar: Vec<u8>) -> Attempt {
        let len = tar.len() as u64;
        let sent = self
            .request(Method::PUT, &format!("/api/v1/scans/{scan_id}/raw"), len)
            .header(reqwest::header::CONTENT_TYPE, "application/x-tar")
            .body(tar)
            .send()
            .await;
        settle(sent, len, "raw scan").await
    }

    /// Tells the server a raw scan cannot be provided.
    async fn raw_missing(&self, scan_id: &str, reason: &str) -> Attempt {
        let sent = self
            .request(Method::POST, "/api/v1/agents/raw-missing", 4096)
            .json(&serde_json::json!({ "scan_id": scan_id, "reason": reason }))
            .send()
            .await;
        settle(sent, 0, "raw scan missing").await
    }
}

async fn settle(sent: reqwest::Result<reqwest::Response>, len: u64, what: &str) -> Attempt {
    match sent {
        Ok(r) if r.status().is_success() => Attempt::Delivered(len),
        Ok(r) => {
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            classify(status, &body, what)
        }
        Err(e) => Attempt::Retry(format!("{what}: {e}")),
    }
}

/// The sidecar of `scan_id` in `done`: `<scan_id>.json` if it is that scan's, else the first
/// sidecar naming it, in `done` or one of its folders (scans whose file names clashed).
fn find_sidecar(done: &Path, scan_id: &str) -> Result<(PathBuf, Vec<u8>, Value), String> {
    let is_it = |path: &Path| -> Option<(Vec<u8>, Value)> {
        let bytes = std::fs::read(path).ok()?;
        let v: Value = serde_json::from_slice(&bytes).ok()?;
        (v["scan_id"].as_str() == Some(scan_id)).then_some((bytes, v))
    };
    let direct = done.join(format!("{scan_id}.json"));
    if let Some((bytes, v)) = is_it(&direct) {
        return Ok((direct, bytes, v));
    }
    // Then every sidecar in done/, and in the folders of scans whose names clashed.
    let mut folders = vec![done.to_owned()];
    while let Some(folder) = folders.pop() {
        let entries =
            std::fs::read_dir(&folder).map_err(|e| format!("{}: {e}", folder.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() && folder == done {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "json")
                && let Some((bytes, v)) = is_it(&path)
            {
                return Ok((path, bytes, v));
            }
        }
    }
    Err(format!(
        "no sidecar of scan {scan_id} in {}",
        done.display()
    ))
}

/// The raw scan `scan_id` from `done` as a tar: the sidecar, then each image it names (beside
/// it).
pub fn pack(done: &Path, scan_id: &str) -> Result<Vec<u8>, String> {
    let (path, bytes, sidecar) = find_sidecar(done, scan_id)?;
    let beside = path.parent().unwrap_or(done).to_owned();
    let mut files = vec![(
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        bytes,
    )];
    let mut total = files[0].1.len() as u64;
    for image in sidecar["images"].as_array().into_iter().flatten() {
        let name = image["file"]
            .as_str()
            .filter(|n| !n.contains('/') && !n.contains('\\') && !n.starts_with('.'))
            .ok_or_else(|| format!("{}: an image has no bare file name", path.display()))?;
        let image_path = beside.join(name);
        let bytes =
            std::fs::read(&image_path).map_err(|e| format!("{}: {e}", image_path.display()))?;
        total += bytes.len() as u64;
        if total > MAX_RAW_BYTES {
            return Err(format!(
                "scan {scan_id} is larger than {MAX_RAW_BYTES} bytes"
            ));
        }
        files.push((name.to_owned(), bytes));
    }
    let mut builder = tar::Builder::new(Vec::new());
    for (name, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, &name, bytes.as_slice())
            .map_err(|e| format!("packing {name}: {e}"))?;
    }
    builder.into_inner().map_err(|e| format!("packing: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_the_sidecar_and_its_images_and_refuses_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let sidecar = serde_json::json!({
            "scan_id": "BAY01-7",
            "images": [{"file": "a.png"}, {"file": "b.png"}],
        });
        std::fs::write(dir.path().join("scan7.json"), sidecar.to_string()).unwrap();
        std::fs::write(dir.path().join("a.png"), b"\x89PNGa").unwrap();
        assert!(pack(dir.path(), "BAY01-7").unwrap_err().contains("b.png"));
        std::fs::write(dir.path().join("b.png"), b"\x89PNGb").unwrap();
        let tar = pack(dir.path(), "BAY01-7").unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["scan7.json", "a.png", "b.png"]);
        assert!(
            pack(dir.path(), "BAY01-8")
                .unwrap_err()
                .contains("no sidecar")
        );
        // A later scan that reused the names, kept in a folder of its own, keeps its image.
        let own = dir.path().join("scan7.1");
        std::fs::create_dir(&own).unwrap();
        let later = serde_json::json!({"scan_id": "BAY01-9", "images": [{"file": "a.png"}]});
        std::fs::write(own.join("scan7.json"), later.to_string()).unwrap();
        std::fs::write(own.join("a.png"), b"\x89PNGlater").unwrap();
        let tar = pack(dir.path(), "BAY01-9").unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut image = Vec::new();
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            if e.path().unwrap().to_string_lossy() == "a.png" {
                std::io::Read::read_to_end(&mut e, &mut image).unwrap();
            }
        }
        assert_eq!(image, b"\x89PNGlater");
    }
}
