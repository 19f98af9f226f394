//! The drop folder: scanners write image(s) and a sidecar here; the agent takes a scan only when
//! it is complete and has stopped changing.
//!
//! A scan is *ready* when its sidecar and every image the sidecar names exist and all their sizes
//! and modification times are the same as at the previous poll. Names starting with `.` are
//! ignored, so scanners that write `.name.tmp` and rename are taken at the first poll after the
//! rename of the sidecar. Taken scans move to `done/`, refused ones to `rejected/` with a
//! `.reason` file; nothing is deleted.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::AgentError;

/// How long a sidecar may name an image that does not appear before the scan is refused.
pub const MISSING_IMAGE_GRACE: Duration = Duration::from_secs(60);
/// How long an image that no sidecar names may sit in the folder before it is moved aside.
pub const ORPHAN_IMAGE_GRACE: Duration = Duration::from_secs(300);

/// A scan whose files have stopped changing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyScan {
    /// The sidecar file.
    pub sidecar: PathBuf,
    /// The image files the sidecar names (empty if the sidecar could not be read).
    pub images: Vec<PathBuf>,
}

/// Something the folder wants moved aside without analysis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stray {
    /// An image no sidecar has named for [`ORPHAN_IMAGE_GRACE`].
    OrphanImage(PathBuf),
}

type Fingerprint = Vec<(PathBuf, Option<(u64, SystemTime)>)>;

#[derive(Debug)]
struct Watch {
    fingerprint: Fingerprint,
    first_seen: Instant,
}

/// State of the drop folder between polls.
#[derive(Debug)]
pub struct DropFolder {
    dir: PathBuf,
    done: PathBuf,
    rejected: PathBuf,
    watched: HashMap<PathBuf, Watch>,
    orphans: HashMap<PathBuf, Instant>,
}

fn stat(path: &Path) -> Option<(u64, SystemTime)> {
    let m = fs::metadata(path).ok()?;
    Some((m.len(), m.modified().ok()?))
}

/// Image file names named by a sidecar, read leniently: validation proper happens later, and a
/// sidecar that cannot be read here is still taken (and then refused with the precise reason).
fn named_images(sidecar: &Path) -> Vec<String> {
    let Ok(bytes) = fs::read(sidecar) else {
        return Vec::new();
    };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Vec::new();
    };
    value
        .get("images")
        .and_then(|v| v.as_array())
        .map(|images| {
            images
                .iter()
                .filter_map(|i| i.get("file").and_then(|f| f.as_str()))
                // Only bare names; anything else is refused later by the contract check.
                .filter(|f| !f.is_empty() && !f.contains(['/', '\\']) && *f != "." && *f != "..")
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn is_image_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".png") || lower.ends_with(".tif") || lower.ends_with(".tiff")
}

impl DropFolder {
    /// Opens (creating if needed) the drop folder and its `done/` and `rejected/` subfolders.
    pub fn open(dir: &Path) -> Result<Self, AgentError> {
        let done = dir.join("done");
        let rejected = dir.join("rejected");
        for d in [dir, &done, &rejected] {
            fs::create_dir_all(d).map_err(AgentError::io(format!("creating {}", d.display())))?;
        }
        Ok(Self {
            dir: dir.to_owned(),
            done,
            rejected,
            watched: HashMap::new(),
            orphans: HashMap::new(),
        })
    }

    /// Scans the folder once. Returns the scans that became ready since the previous poll, oldest
    /// sidecar name first, and image files that no sidecar claims any more.
    pub fn poll(&mut self) -> Result<(Vec<ReadyScan>, Vec<Stray>), AgentError> {
        let now = Instant::now();
        let mut sidecars = Vec::new();
        let mut images = Vec::new();
        let entries = fs::read_dir(&self.dir)
            .map_err(AgentError::io(format!("listing {}", self.dir.display())))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            if name.ends_with(".json") {
                sidecars.push(entry.path());
            } else if is_image_name(&name) {
                images.push(entry.path());
            }
        }
        sidecars.sort();

        let mut ready = Vec::new();
        let mut claimed = HashSet::new();
        let mut still_watched = HashMap::new();
        for sidecar in sidecars {
            let names = named_images(&sidecar);
            let image_paths: Vec<PathBuf> = names.iter().map(|n| self.dir.join(n)).collect();
            claimed.extend(image_paths.iter().cloned());
            let mut fingerprint: Fingerprint = vec![(sidecar.clone(), stat(&sidecar))];
            fingerprint.extend(image_paths.iter().map(|p| (p.clone(), stat(p))));
            let previous = self.watched.remove(&sidecar);
            let first_seen = previous.as_ref().map_or(now, |w| w.first_seen);
            let stable = previous.is_some_and(|w| w.fingerprint == fingerprint);
            let complete = fingerprint.iter().all(|(_, s)| s.is_some());
            if stable && (complete || now.duration_since(first_seen) >= MISSING_IMAGE_GRACE) {
                ready.push(ReadyScan {
                    sidecar,
                    images: image_paths,
                });
            } else {
                still_watched.insert(
                    sidecar,
                    Watch {
                        fingerprint,
                        first_seen,
                    },
                );
            }
        }
        self.watched = still_watched;

        let mut strays = Vec::new();
        let mut orphans = HashMap::new();
        for image in images.into_iter().filter(|i| !claimed.contains(i)) {
            let since = self.orphans.get(&image).copied().unwrap_or(now);
            if now.duration_since(since) >= ORPHAN_IMAGE_GRACE {
                strays.push(Stray::OrphanImage(image));
            } else {
                orphans.insert(image, since);
            }
        }
        self.orphans = orphans;
        Ok((ready, strays))
    }

    /// Moves a processed scan's files into `done/`. A scanner that reuses file names would
    /// overwrite an earlier scan's files there and pair its sidecar with another scan's
    /// images; such a scan goes into a folder of its own instead, `done/<sidecar stem>.<n>/`.
    pub fn finish(&self, scan: &ReadyScan) -> Result<(), AgentError> {
        let files = || scan.images.iter().chain(std::iter::once(&scan.sidecar));
        let clash = files().any(|p| p.file_name().is_some_and(|n| self.done.join(n).exists()));
        let target = if clash {
            let stem = scan
                .sidecar
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let dir = (1..)
                .map(|n| self.done.join(format!("{stem}.{n}")))
                .find(|d| !d.exists())
                .unwrap_or_else(|| self.done.join(stem));
            fs::create_dir_all(&dir)
                .map_err(AgentError::io(format!("creating {}", dir.display())))?;
            dir
        } else {
            self.done.clone()
        };
        for path in files() {
            move_into(path, &target)?;
        }
        Ok(())
    }

    /// Moves a refused scan's files into `rejected/` and writes `<sidecar stem>.reason`.
    pub fn reject(&self, scan: &ReadyScan, reason: &str) -> Result<(), AgentError> {
        let stem = scan
            .sidecar
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.write_reason(&stem, reason)?;
        for path in scan.images.iter().chain(std::iter::once(&scan.sidecar)) {
            move_into(path, &self.rejected)?;
        }
        Ok(())
    }

    /// Moves a stray file into `rejected/` with its reason.
    pub fn reject_stray(&self, stray: &Stray) -> Result<(), AgentError> {
        let Stray::OrphanImage(path) = stray;
        let name = path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.write_reason(
            &name,
            &format!(
                "{name}: no sidecar named this image within {} s",
                ORPHAN_IMAGE_GRACE.as_secs()
            ),
        )?;
        move_into(path, &self.rejected)
    }

    fn write_reason(&self, stem: &str, reason: &str) -> Result<(), AgentError> {
        let path = self.rejected.join(format!("{stem}.reason"));
        fs::write(&path, format!("{reason}\n"))
            .map_err(AgentError::io(format!("writing {}", path.display())))
    }
}

fn move_into(path: &Path, folder: &Path) -> Result<(), AgentError> {
    let Some(name) = path.file_name() else {
        return Ok(());
    };
    if !path.exists() {
        return Ok(()); // an image the sidecar named but the scanner never wrote
    }
    let dest = folder.join(name);
    fs::rename(path, &dest).map_err(AgentError::io(format!(
        "moving {} to {}",
        path.display(),
        dest.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sidecar_naming(images: &[&str]) -> String {
        let list: Vec<String> = images
            .iter()
            .map(|i| format!("{{\"file\": \"{i}\"}}"))
            .collect();
        format!("{{\"images\": [{}]}}", list.join(","))
    }

    #[test]
    fn a_scan_is_ready_only_after_its_files_stop_changing() {
        let dir = tempfile::tempdir().unwrap();
        let mut folder = DropFolder::open(dir.path()).unwrap();
        fs::write(dir.path().join("s.json"), sidecar_naming(&["s.png"])).unwrap();
        // Image not there yet: never ready.
        assert!(folder.poll().unwrap().0.is_empty());
        assert!(folder.poll().unwrap().0.is_empty());
        fs::write(dir.path().join("s.png"), b"part").unwrap();
        assert!(
            folder.poll().unwrap().0.is_empty(),
            "changed since last poll"
        );
        let (ready, _) = folder.poll().unwrap();
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].images, vec![dir.path().join("s.png")]);
    }

    #[test]
    fn a_growing_image_is_not_taken() {
        let dir = tempfile::tempdir().unwrap();
        let mut folder = DropFolder::open(dir.path()).unwrap();
        fs::write(dir.path().join("s.json"), sidecar_naming(&["s.png"])).unwrap();
        fs::write(dir.path().join("s.png"), b"a").unwrap();
        assert!(folder.poll().unwrap().0.is_empty());
        fs::write(dir.path().join("s.png"), b"ab").unwrap();
        assert!(folder.poll().unwrap().0.is_empty());
        assert_eq!(folder.poll().unwrap().0.len(), 1);
    }

    #[test]
    fn hidden_temporary_files_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut folder = DropFolder::open(dir.path()).unwrap();
        fs::write(dir.path().join(".s.json.tmp"), "{").unwrap();
        fs::write(dir.path().join(".s.png.tmp"), "x").unwrap();
        folder.poll().unwrap();
        let (ready, strays) = folder.poll().unwrap();
        assert!(ready.is_empty() && strays.is_empty());
    }

    #[test]
    fn finish_and_reject_move_files_and_keep_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let mut folder = DropFolder::open(dir.path()).unwrap();
        for s in ["a", "b"] {
            fs::write(
                dir.path().join(format!("{s}.json")),
                sidecar_naming(&[&format!("{s}.png")]),
            )
            .unwrap();
            fs::write(dir.path().join(format!("{s}.png")), b"img").unwrap();
        }
        folder.poll().unwrap();
        let (ready, _) = folder.poll().unwrap();
        assert_eq!(ready.len(), 2);
        folder.finish(&ready[0]).unwrap();
        folder.reject(&ready[1], "b.png: 8-bit grayscale").unwrap();
        assert!(dir.path().join("done/a.json").exists() && dir.path().join("done/a.png").exists());
        assert!(dir.path().join("rejected/b.png").exists());
        let reason = fs::read_to_string(dir.path().join("rejected/b.reason")).unwrap();
        assert_eq!(reason.trim(), "b.png: 8-bit grayscale");
        assert!(!dir.path().join("a.json").exists() && !dir.path().join("b.json").exists());
    }

    #[test]
    fn a_scan_that_reuses_file_names_keeps_its_own_files_in_done() {
        let dir = tempfile::tempdir().unwrap();
        let mut folder = DropFolder::open(dir.path()).unwrap();
        for image in [b"first".as_slice(), b"second".as_slice()] {
            fs::write(dir.path().join("a.png"), image).unwrap();
            fs::write(dir.path().join("a.json"), sidecar_naming(&["a.png"])).unwrap();
            folder.poll().unwrap();
            let (ready, _) = folder.poll().unwrap();
            assert_eq!(ready.len(), 1);
            folder.finish(&ready[0]).unwrap();
        }
        assert_eq!(fs::read(dir.path().join("done/a.png")).unwrap(), b"first");
        assert_eq!(
            fs::read(dir.path().join("done/a.1/a.png")).unwrap(),
            b"second"
        );
        assert!(dir.path().join("done/a.1/a.json").exists());
    }

    #[test]
    fn an_unreadable_sidecar_still_becomes_ready_so_it_can_be_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut folder = DropFolder::open(dir.path()).unwrap();
        fs::write(dir.path().join("bad.json"), "{not json").unwrap();
        folder.poll().unwrap();
        let (ready, _) = folder.poll().unwrap();
        assert_eq!(ready.len(), 1);
        assert!(ready[0].images.is_empty());
    }
}
