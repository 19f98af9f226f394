//! Dataset export (issue "feedback loop"): decisions become data. From the cases of a period
//! (and bay), [`export`] writes
//!
//! - `cleared/`: the raw scans of cases released without a discrepancy, with their
//!   declarations in `cleared/declarations/`, the layout `edge-agent calibrate --cleared` (and
//!   the site adaptation) reads;
//! - `labelled/`: the raw scans of cases whose findings were judged (examined, released or
//!   seized), with `labelled/annotations.json` in COCO form: one category per finding kind, a
//!   box per finding with a place, and each finding's outcome (`confirmed`: a discrepancy was
//!   found; `refuted`: examined clean or released). Findings without a place (mass, material
//!   share) are listed on their image;
//! - `manifest.json` (format `baylens.dataset/1`: the period, the counts and the sha256 of
//!   every file) and `SHA256SUMS` (for `sha256sum -c`).
//!
//! Declarant names and ids, vehicle plates and declaration references are replaced by
//! pseudonyms unless `keep_names` is set: keyed by a secret drawn for this export, so they stay
//! consistent within one dataset and cannot be linked across two. Scans are renamed
//! `<scan_id>.json` and `<scan_id>.<energy>.<ext>` so files of different bays never clash.
//!
//! Raw scans stay at the bays until asked for: the export asks the bays for the ones it lacks
//! ([`Store::want_raw`]) and counts them as awaited; a second export once they have arrived
//! includes them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use baylens_protocol::ScanReport;
use object_store::path::Path as ObjectPath;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::store::datasets::DatasetCase;
use crate::store::{Store, ms_to_rfc3339};

/// The dataset format.
pub const FORMAT: &str = "baylens.dataset/1";

/// What to export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Params {
    /// Scans captured at or after (ms).
    pub from_ms: i64,
    /// Scans captured before (ms).
    pub to_ms: i64,
    /// Only this bay.
    pub bay: Option<String>,
    /// Keep declarant names, ids, plates and references (default: pseudonyms).
    pub keep_names: bool,
}

/// Parses `YYYY-MM-DD` (the start of the day, or of the next day for an end) or RFC 3339.
pub fn parse_time(s: &str, end: bool) -> Result<i64, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|day| crate::store::day_bound(day, end))
        .map(|t| t.timestamp_millis())
        .ok_or_else(|| format!("{s:?} is neither a date (YYYY-MM-DD) nor an RFC 3339 time"))
}

/// The export parameters of a request or command line; errors say what is wrong.
pub fn params(from: &str, to: &str, bay: Option<&str>, keep_names: bool) -> Result<Params, String> {
    let from_ms = parse_time(from, false).map_err(|e| format!("from: {e}"))?;
    let to_ms = parse_time(to, true).map_err(|e| format!("to: {e}"))?;
    if from_ms >= to_ms {
        return Err("from must be before to".into());
    }
    let bay = bay.map(str::trim).filter(|b| !b.is_empty());
    if let Some(b) = bay {
        baylens_protocol::BayId::parse(b).map_err(|e| format!("bay: {e}"))?;
    }
    Ok(Params {
        from_ms,
        to_ms,
        bay: bay.map(str::to_owned),
        keep_names,
    })
}

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Cleared scans written.
    pub cleared: u64,
    /// Judged cases written with their labels.
    pub labelled: u64,
    /// Boxes in `labelled/annotations.json`.
    pub boxes: u64,
    /// Cases chosen whose raw scans the bays have not uploaded yet.
    pub awaiting_raw: u64,
    /// Of those, asked for by this export (the rest were asked for before).
    pub raw_requested: u64,
    /// Cleared cases left out because no declaration is known for them.
    pub cleared_without_declaration: u64,
    /// Files written, manifest excluded.
    pub files: u64,
}

/// Where an export writes: a folder (the CLI) or a tar file (the UI's background job).
pub trait Sink {
    /// Writes file `path` (relative, `/`-separated).
    fn put(&mut self, path: &str, bytes: &[u8]) -> std::io::Result<()>;
}

/// Writes into a folder that must be new or empty.
#[derive(Debug)]
pub struct DirSink(PathBuf);

impl DirSink {
    /// Opens `dir`, creating it; refuses a folder that holds anything.
    pub fn new(dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let used = std::fs::read_dir(dir)
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
            .next()
            .is_some();
        if used {
            return Err(format!(
                "{} is not empty; export into a new folder",
                dir.display()
            ));
        }
        Ok(Self(dir.to_owned()))
    }
}

impl Sink for DirSink {
    fn put(&mut self, path: &str, bytes: &[u8]) -> std::io::Result<()> {
        let target = self.0.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(target, bytes)
    }
}

/// Appends to a tar file.
pub struct TarSink<W: Write>(pub tar::Builder<W>);

impl<W: Write> std::fmt::Debug for TarSink<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TarSink")
    }
}

impl<W: Write> Sink for TarSink<W> {
    fn put(&mut self, path: &str, bytes: &[u8]) -> std::io::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        self.0.append_data(&mut header, path, bytes)
    }
}

/// Counts and hashes what goes into a sink, for the manifest.
struct Writer<'a> {
    sink: &'a mut (dyn Sink + Send),
    files: BTreeMap<String, (String, u64)>,
}

impl Writer<'_> {
    fn put(&mut self, path: &str, bytes: &[u8]) -> Result<(), String> {
        self.sink
            .put(path, bytes)
            .map_err(|e| format!("writing {path}: {e}"))?;
        let sha = hex::encode(Sha256::digest(bytes));
        self.files
            .insert(path.to_owned(), (sha, bytes.len() as u64));
        Ok(())
    }
}

/// Pseudonyms keyed by a secret of this export.
struct Pseudonyms {
    key: Option<[u8; 32]>,
}

impl Pseudonyms {
    fn of(&self, what: &str, value: &str) -> String {
        let Some(key) = &self.key else {
            return value.to_owned();
        };
        let mut h = Sha256::new();
        h.update(key);
        h.update(what.as_bytes());
        h.update([0x1f]);
        h.update(value.as_bytes());
        let tag = hex::encode_upper(&h.finalize()[..6]);
        match what {
            "declarant.name" => format!("Declarant {tag}"),
            "vehicle.registration" => format!("PLATE{tag}"),
            "reference" => format!("ANON-{tag}"),
            _ => format!("ANON{tag}"),
        }
    }

    /// The declaration body with its names replaced.
    fn declaration(&self, body: &str) -> Result<Value, String> {
        let mut d: Value =
            serde_json::from_str(body).map_err(|e| format!("stored declaration: {e}"))?;
        // Only what is there is replaced: a pointer never adds a missing field.
        for (pointer, what) in [
            ("/reference", "reference"),
            ("/declarant/name", "declarant.name"),
            ("/declarant/id", "declarant.id"),
            ("/vehicle/registration", "vehicle.registration"),
        ] {
            if let Some(at) = d.pointer_mut(pointer)
                && let Some(value) = at.as_str().map(str::to_owned)
            {
                *at = Value::String(self.of(what, &value));
            }
        }
        Ok(d)
    }
}

/// A raw scan read back from its tar: the sidecar and the images it names.
struct Raw {
    sidecar: Value,
    images: HashMap<String, Vec<u8>>,
}

fn read_raw(tar_bytes: &[u8]) -> Result<Raw, String> {
    let mut sidecar = None;
    let mut images = HashMap::new();
    let mut archive = tar::Archive::new(tar_bytes);
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let name = entry
            .path()
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .into_owned();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).map_err(|e| e.to_string())?;
        if name.ends_with(".json") {
            sidecar = Some(serde_json::from_slice(&bytes).map_err(|e| e.to_string())?);
        } else {
            images.insert(name, bytes);
        }
    }
    let sidecar = sidecar.ok_or("no sidecar")?;
    Ok(Raw { sidecar, images })
}

/// Whether a case counts as cleared: released with no discrepancy found.
fn cleared(c: &DatasetCase) -> bool {
    c.status == "released" && !confirmed(c)
}

/// Whether its findings stand confirmed (a discrepancy found, or seized).
fn confirmed(c: &DatasetCase) -> bool {
    crate::outcomes::discrepancy_found(&c.status, &c.examinations)
}

/// Exports the period's cases into `sink` (see the module docs), calling `progress(done,
/// total)` after each case. Errors name the case.
pub async fn export(
    store: &Store,
    params: &Params,
    sink: &mut (dyn Sink + Send),
    mut progress: impl FnMut(u64, u64) + Send,
) -> Result<Summary, String> {
    let cases = store
        .dataset_cases(params.from_ms, params.to_ms, params.bay.as_deref())
        .await
        .map_err(|e| format!("database: {e}"))?;
    let mut summary = Summary::default();
    let reports: Vec<Option<ScanReport>> = cases
        .iter()
        .map(|c| ScanReport::from_json(c.report_json.as_bytes()).ok())
        .collect();
    let chosen: Vec<usize> = (0..cases.len())
        .filter(|&i| {
            let labelled = reports[i].as_ref().is_some_and(|r| !r.findings.is_empty());
            let usable_cleared = cleared(&cases[i]) && cases[i].declaration.is_some();
            if cleared(&cases[i]) && cases[i].declaration.is_none() {
                summary.cleared_without_declaration += 1;
            }
            labelled || usable_cleared
        })
        .collect();
    let missing: Vec<i64> = chosen
        .iter()
        .filter(|&&i| cases[i].raw.is_none())
        .map(|&i| cases[i].case_id)
        .collect();
    summary.awaiting_raw = missing.len() as u64;
    summary.raw_requested = store
        .want_raw(&missing)
        .await
        .map_err(|e| format!("database: {e}"))?;

    let names = Pseudonyms {
        key: (!params.keep_names).then(rand::random),
    };
    let mut out = Writer {
        sink,
        files: BTreeMap::new(),
    };
    let mut coco = Coco::default();
    let mut declarations_written: HashSet<(&str, String)> = HashSet::new();
    let total = chosen.len() as u64;
    for (n, &i) in chosen.iter().enumerate() {
        let c = &cases[i];
        progress(n as u64, total);
        let Some((key, sha)) = &c.raw else { continue };
        let bytes = match store.images.get(&ObjectPath::from(key.as_str())).await {
            Ok(got) => got.bytes().await,
            Err(e) => Err(e),
        }
        .map_err(|e| format!("case {}: raw scan: {e}", c.case_id))?;
        if hex::encode(Sha256::digest(&bytes)) != *sha {
            return Err(format!(
                "case {}: the stored raw scan does not match its recorded sha256 {sha}; the \
                 image store was altered",
                c.case_id
            ));
        }
        let raw = read_raw(&bytes).map_err(|e| format!("case {}: raw scan: {e}", c.case_id))?;
        let declaration = c
            .declaration
            .as_deref()
            .map(|body| names.declaration(body))
            .transpose()
            .map_err(|e| format!("case {}: {e}", c.case_id))?;
        let reference = declaration
            .as_ref()
            .and_then(|d| d["reference"].as_str().map(str::to_owned));
        let labelled = reports[i].as_ref().filter(|r| !r.findings.is_empty());
        let mut folders = Vec::new();
        if cleared(c) && declaration.is_some() {
            folders.push("cleared");
            summary.cleared += 1;
        }
        if labelled.is_some() {
            folders.push("labelled");
            summary.labelled += 1;
        }
        for folder in folders {
            let high = write_scan(
                &mut out,
                folder,
                &c.scan_id,
                &raw,
                reference.as_deref(),
                params.keep_names,
            )?;
            if let (Some(d), Some(r)) = (&declaration, &reference)
                && declarations_written.insert((folder, r.clone()))
            {
                let text = serde_json::to_string_pretty(d).map_err(|e| e.to_string())?;
                out.put(
                    &format!("{folder}/declarations/{}.json", r.replace('/', "_")),
                    text.as_bytes(),
                )?;
            }
            if folder == "labelled"
                && let Some(report) = labelled
            {
                summary.boxes += coco.add(c, report, &high, confirmed(c));
            }
        }
    }
    progress(total, total);
    if !coco.images.is_empty() {
        let text = serde_json::to_string_pretty(&coco.finish(params)).map_err(|e| e.to_string())?;
        out.put("labelled/annotations.json", text.as_bytes())?;
    }
    summary.files = out.files.len() as u64;
    let sums: String = out
        .files
        .iter()
        .map(|(path, (sha, _))| format!("{sha}  {path}\n"))
        .collect();
    let manifest = json!({
        "format": FORMAT,
        "generated_at": chrono::Utc::now().to_rfc3339(),
        "from": ms_to_rfc3339(params.from_ms),
        "to": ms_to_rfc3339(params.to_ms),
        "bay": params.bay,
        "anonymised": !params.keep_names,
        "summary": summary,
        "files": out.files.iter().map(|(path, (sha, bytes))| json!({
            "path": path, "sha256": sha, "bytes": bytes,
        })).collect::<Vec<_>>(),
    });
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| e.to_string())?;
    out.sink
        .put("manifest.json", text.as_bytes())
        .map_err(|e| format!("writing manifest.json: {e}"))?;
    out.sink
        .put("SHA256SUMS", sums.as_bytes())
        .map_err(|e| format!("writing SHA256SUMS: {e}"))?;
    Ok(summary)
}

/// Writes a scan as `<folder>/<scan_id>.json` and `<folder>/<scan_id>.<energy>.<ext>`, the
/// sidecar naming its declaration by `reference` (the exported one, a pseudonym unless names
/// are kept; a reference of the scanner's own to no known declaration is dropped then);
/// returns the high-energy image's path in the folder.
fn write_scan(
    out: &mut Writer<'_>,
    folder: &str,
    scan_id: &str,
    raw: &Raw,
    reference: Option<&str>,
    keep_names: bool,
) -> Result<String, String> {
    let mut sidecar = raw.sidecar.clone();
    let mut high = String::new();
    if let Some(images) = sidecar["images"].as_array_mut() {
        for image in images {
            let file = image["file"].as_str().unwrap_or_default().to_owned();
            let energy = image["energy"].as_str().unwrap_or("high").to_owned();
            let ext = file
                .rsplit('.')
                .next()
                .unwrap_or("png")
                .to_ascii_lowercase();
            let name = format!("{scan_id}.{energy}.{ext}");
            let bytes = raw
                .images
                .get(&file)
                .ok_or_else(|| format!("scan {scan_id}: raw scan lacks image {file}"))?;
            out.put(&format!("{folder}/{name}"), bytes)?;
            if energy == "high" {
                high = name.clone();
            }
            image["file"] = Value::String(name);
        }
    }
    if let Some(obj) = sidecar.as_object_mut() {
        match reference {
            Some(r) => {
                obj.insert("declaration_ref".into(), Value::String(r.to_owned()));
            }
            None if !keep_names => {
                obj.remove("declaration_ref");
            }
            None => {}
        }
    }
    let text = serde_json::to_string_pretty(&sidecar).map_err(|e| e.to_string())?;
    out.put(&format!("{folder}/{scan_id}.json"), text.as_bytes())?;
    Ok(high)
}

/// The COCO document of the labelled cases.
#[derive(Default)]
struct Coco {
    images: Vec<Value>,
    annotations: Vec<Value>,
    categories: BTreeMap<String, u64>,
}

impl Coco {
    /// Adds a case's image and boxes; returns the number of boxes.
    fn add(&mut self, c: &DatasetCase, report: &ScanReport, file: &str, confirmed: bool) -> u64 {
        let image_id = self.images.len() as u64 + 1;
        let outcome = if confirmed { "confirmed" } else { "refuted" };
        let mut unplaced = Vec::new();
        let mut boxes = 0;
        for f in &report.findings {
            let kind = serde_json::to_value(f.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let next = self.categories.len() as u64 + 1;
            let category_id = *self.categories.entry(kind.clone()).or_insert(next);
            match &f.region {
                Some(r) => {
                    boxes += 1;
                    self.annotations.push(json!({
                        "id": self.annotations.len() + 1,
                        "image_id": image_id,
                        "category_id": category_id,
                        "bbox": [r.x, r.y, r.width, r.height],
                        "area": u64::from(r.width) * u64::from(r.height),
                        "iscrowd": 0,
                        "score": f.score,
                        "outcome": outcome,
                    }));
                }
                None => unplaced.push(json!({"kind": kind, "score": f.score, "outcome": outcome})),
            }
        }
        self.images.push(json!({
            "id": image_id,
            "file_name": file,
            "width": report.width,
            "height": report.height,
            "scan_id": c.scan_id,
            "case_id": c.case_id,
            "bay": c.bay,
            "lane": c.lane,
            "status": c.status,
            "examinations": c.examinations,
            "captured_at": ms_to_rfc3339(c.captured_at),
            "model": c.model_name,
            "outcome": outcome,
            "unplaced_findings": unplaced,
        }));
        boxes
    }

    fn finish(self, params: &Params) -> Value {
        json!({
            "info": {
                "description": "BayLens labelled cases: findings with the outcome officers recorded",
                "format": FORMAT,
                "from": ms_to_rfc3339(params.from_ms),
                "to": ms_to_rfc3339(params.to_ms),
            },
            "images": self.images,
            "annotations": self.annotations,
            "categories": self.categories.iter().map(|(name, id)| json!({
                "id": id, "name": name, "supercategory": "finding",
            })).collect::<Vec<_>>(),
        })
    }
}
