//! DICOS files in the drop folder (`*.dcs`, `*.dcm`).
//!
//! A DICOS file is read once its size and modification time are the same at two polls. Files
//! are grouped by Series Instance UID; a group with as many images as its scan has (one, or a
//! high- and a low-energy image) is converted into a `baylens.scan/1` scan written into the
//! drop folder (images first, sidecar last), and the DICOS files move to `done/`. The drop
//! folder then takes the scan like any other. A file that is not a usable DICOS DX image, a
//! group that does not convert, and a dual-energy image whose partner has not come within
//! [`MISSING_IMAGE_GRACE`] move to `rejected/` with a `<file>.reason`.
//!
//! After a crash between writing the scan and moving the DICOS files, the same scan id comes
//! out again: a scan already in the drop folder or in `done/` is not written twice.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use baylens_dicos::dx;
use baylens_protocol::BayId;

use super::dicos::{Converted, convert_files, is_dicos_name, read_capped, write_into};
use super::drop_folder::MISSING_IMAGE_GRACE;
use crate::AgentError;

type Stat = Option<(u64, SystemTime)>;

#[derive(Debug)]
struct Seen {
    stat: Stat,
    first_seen: Instant,
    /// The series and the number of images of its scan, once the file was stable and read.
    header: Option<(String, u32)>,
}

/// What became of DICOS files at one poll.
#[derive(Debug)]
pub enum Intake {
    /// Converted into a scan now waiting in the drop folder.
    Converted {
        /// Its scan id.
        scan_id: String,
        /// The DICOS files (now in `done/`).
        files: Vec<PathBuf>,
        /// What was left out, for the log.
        notes: Vec<String>,
    },
    /// Refused; the files are in `rejected/`.
    Rejected {
        /// The DICOS files.
        files: Vec<PathBuf>,
        /// Why.
        reason: String,
    },
}

/// The DICOS side of the drop folder, between polls.
#[derive(Debug)]
pub struct DicosIntake {
    dir: PathBuf,
    seen: HashMap<PathBuf, Seen>,
}

fn stat(path: &Path) -> Stat {
    let m = fs::metadata(path).ok()?;
    Some((m.len(), m.modified().ok()?))
}

/// Moves `path` into `folder`, as `<name>.<n>` when a file of its name is there already.
pub fn keep_in(path: &Path, folder: &Path) -> std::io::Result<()> {
    let Some(name) = path.file_name() else {
        return Ok(());
    };
    let mut dest = folder.join(name);
    let mut n = 1;
    while dest.exists() {
        dest = folder.join(format!("{}.{n}", name.to_string_lossy()));
        n += 1;
    }
    fs::rename(path, &dest)
}

fn move_to(path: &Path, folder: &Path) -> Result<(), AgentError> {
    keep_in(path, folder).map_err(AgentError::io(format!(
        "moving {} to {}",
        path.display(),
        folder.display()
    )))
}

impl DicosIntake {
    /// Watches `dir`, the drop folder (opened by [`super::drop_folder::DropFolder::open`]).
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            seen: HashMap::new(),
        }
    }

    /// Looks at the folder once; converts or refuses the DICOS scans that are complete.
    pub fn poll(&mut self, bay: &BayId, max_bytes: u64) -> Result<Vec<Intake>, AgentError> {
        let now = Instant::now();
        let entries = fs::read_dir(&self.dir)
            .map_err(AgentError::io(format!("listing {}", self.dir.display())))?;
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter(|e| is_dicos_name(&e.file_name().to_string_lossy()))
            .map(|e| e.path())
            .collect();
        files.sort();
        let mut out = Vec::new();
        let mut seen = HashMap::new();
        let mut series: BTreeMap<String, (u32, Vec<PathBuf>)> = BTreeMap::new();
        for path in files {
            let now_stat = stat(&path);
            let mut entry = self.seen.remove(&path).unwrap_or(Seen {
                stat: None,
                first_seen: now,
                header: None,
            });
            let stable = entry.stat.is_some() && entry.stat == now_stat;
            if !stable {
                entry.stat = now_stat;
                entry.header = None;
                seen.insert(path, entry);
                continue;
            }
            if entry.header.is_none() {
                match read_header(&path, max_bytes) {
                    Ok(h) => entry.header = Some(h),
                    Err(reason) => {
                        self.refuse(std::slice::from_ref(&path), &reason)?;
                        out.push(Intake::Rejected {
                            files: vec![path],
                            reason,
                        });
                        continue;
                    }
                }
            }
            if let Some((uid, count)) = &entry.header {
                let group = series.entry(uid.clone()).or_insert((*count, Vec::new()));
                group.1.push(path.clone());
            }
            seen.insert(path, entry);
        }
        for (uid, (count, paths)) in series {
            let oldest = paths
                .iter()
                .filter_map(|p| seen.get(p).map(|s| s.first_seen))
                .min()
                .unwrap_or(now);
            let waited_too_long = now.duration_since(oldest) >= MISSING_IMAGE_GRACE;
            if (paths.len() as u32) < count && !waited_too_long {
                continue;
            }
            for p in &paths {
                seen.remove(p);
            }
            let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
            let result = if (paths.len() as u32) < count {
                Err(format!(
                    "series {uid}: {} of its {count} images came within {} s",
                    paths.len(),
                    MISSING_IMAGE_GRACE.as_secs()
                ))
            } else {
                convert_files(&refs, bay, max_bytes).map_err(|r| r.0)
            };
            match result {
                Ok(converted) => {
                    self.place(&converted)?;
                    let done = self.dir.join("done");
                    for p in &paths {
                        move_to(p, &done)?;
                    }
                    out.push(Intake::Converted {
                        scan_id: converted.scan_id,
                        files: paths,
                        notes: converted.notes,
                    });
                }
                Err(reason) => {
                    self.refuse(&paths, &reason)?;
                    out.push(Intake::Rejected {
                        files: paths,
                        reason,
                    });
                }
            }
        }
        self.seen = seen;
        Ok(out)
    }

    /// [`Self::poll`], with what became of each scan logged.
    pub fn take(&mut self, bay: &BayId, max_bytes: u64) -> Result<(), AgentError> {
        for intake in self.poll(bay, max_bytes)? {
            match intake {
                Intake::Converted {
                    scan_id,
                    files,
                    notes,
                } => {
                    tracing::info!(scan_id, ?files, "DICOS scan converted");
                    for note in notes {
                        tracing::warn!(scan_id, "DICOS: {note}");
                    }
                }
                Intake::Rejected { files, reason } => {
                    tracing::warn!(?files, "DICOS scan rejected: {reason}");
                }
            }
        }
        Ok(())
    }

    /// Writes a converted scan into the drop folder unless it is there or in `done/` already.
    fn place(&self, converted: &Converted) -> Result<(), AgentError> {
        let sidecar = converted.sidecar_name();
        if self.dir.join("done").join(&sidecar).exists() {
            return Ok(());
        }
        write_into(&self.dir, converted).map_err(AgentError::io(format!(
            "writing {} into {}",
            sidecar,
            self.dir.display()
        )))
    }

    fn refuse(&self, paths: &[PathBuf], reason: &str) -> Result<(), AgentError> {
        let rejected = self.dir.join("rejected");
        for p in paths {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let why = rejected.join(format!("{name}.reason"));
            fs::write(&why, format!("{reason}\n"))
                .map_err(AgentError::io(format!("writing {}", why.display())))?;
            move_to(p, &rejected)?;
        }
        Ok(())
    }
}

fn read_header(path: &Path, max_bytes: u64) -> Result<(String, u32), String> {
    let bytes = read_capped(path, max_bytes).map_err(|r| r.0)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let h = dx::read_header(&bytes).map_err(|e| format!("{name}: {e}"))?;
    Ok((h.series_uid, h.images_in_scan))
}
