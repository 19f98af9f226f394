//! `edge-agent calibrate --cleared DIR`: what the fit of the site's settings needs from a
//! folder of scans (the fit itself is [`super::fit`]). Every scan is analysed once: the model's
//! heat map at each threshold tried, the calibrated cargo estimate, and the declaration it was
//! cleared (or lodged) against. Then [`flagged`] says whether a load leaves the green lane under
//! given settings, with `verify` and the model's regions, so the fit cannot drift from what the
//! agent does; and [`per_scenario`] counts that per scenario of a simulator's `truth.json`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use baylens_models::{ConcealmentModel, OperatingPoint};
use baylens_protocol::risk::{LaneThresholds, PreArrival, assess};
use baylens_protocol::{Declaration, Finding, FindingKind, Lane, ScanSidecar};
use chrono::Utc;

use crate::analyze::{MAX_IMAGE_BYTES, model_output, scan_cargo};
use crate::calibration::{Calibration, CargoEstimate};
use crate::ingest::scan::load_scan;
use crate::manifest::{Check, ManifestInput, Tolerances, checks};

/// Thresholds tried for the concealment model, ascending.
pub const THRESHOLDS: [f32; 14] = [
    0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995, 0.998, 0.999,
];
/// Index into [`THRESHOLDS`] of the model card's threshold.
pub fn default_threshold_index() -> usize {
    THRESHOLDS
        .iter()
        .position(|&t| t == baylens_models::concealment::THRESHOLD)
        .expect("the model card's threshold is one of THRESHOLDS")
}

/// One analysed scan: what every check needs, computed once.
#[derive(Debug)]
pub struct Analysed {
    /// The scan's id.
    pub scan_id: String,
    /// The declaration it was cleared (or lodged) against.
    pub declaration: Declaration,
    /// Calibrated cargo, if a container was found.
    pub cargo: Option<CargoEstimate>,
    /// Width in pixels.
    pub width: usize,
    /// Pitch, mm.
    pub pitch_mm: [f64; 2],
    /// Per entry of [`THRESHOLDS`]: whether the model flags a region at it.
    pub flagged_at: Vec<bool>,
}

/// The declarations of a cleared-scan folder (`DIR/declarations/*.json`, the layout of
/// `scanner-sim generate`), by reference and by container code; none when there is no such
/// folder.
pub fn declarations(dir: &Path) -> Result<HashMap<String, Declaration>, String> {
    let folder = dir.join("declarations");
    if !folder.is_dir() {
        return Ok(HashMap::new());
    }
    declarations_in(&folder)
}

/// Every `*.json` declaration in `folder`, checked, by reference and by container code. Errors
/// name the file. Each is checked as at its expected arrival: cleared scans are history, and a
/// declaration older than the lodging window (30 days) is still the one the load was cleared
/// against.
pub fn declarations_in(folder: &Path) -> Result<HashMap<String, Declaration>, String> {
    let entries =
        std::fs::read_dir(folder).map_err(|e| format!("cannot read {}: {e}", folder.display()))?;
    let mut out = HashMap::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        let at = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["expected_arrival"].as_str().map(str::to_owned))
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
            .map_or_else(Utc::now, |t| t.with_timezone(&Utc));
        let d = Declaration::from_json(&text, at).map_err(|errors| {
            let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
            format!("{}: {}", path.display(), list.join("; "))
        })?;
        if let Some(code) = &d.container_code {
            out.insert(code.clone(), d.clone());
        }
        out.insert(d.reference.clone(), d);
    }
    Ok(out)
}

/// The declaration of a scan among `all`: by its `declaration_ref`, else by container code.
pub fn declaration_for<'a>(
    sidecar: &ScanSidecar,
    all: &'a HashMap<String, Declaration>,
) -> Option<&'a Declaration> {
    sidecar
        .declaration_ref
        .as_ref()
        .and_then(|r| all.get(r))
        .or_else(|| {
            sidecar
                .container_code
                .as_ref()
                .and_then(|c| all.get(c.as_str()))
        })
}

/// The sidecars of a folder (`*.json` other than declarations, truth and phantom files); an
/// error when there are none.
pub fn sidecars(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let out = baylens_protocol::sidecar::sidecars_in(dir)?;
    if out.is_empty() {
        return Err(format!(
            "{} holds no scans (sidecar .json files)",
            dir.display()
        ));
    }
    Ok(out)
}

/// Analyses one scan for fitting (see the module docs). Errors name the file.
pub fn analyse(
    sidecar: &Path,
    model: &mut ConcealmentModel,
    calibration: &Calibration,
    all: &HashMap<String, Declaration>,
) -> Result<Analysed, String> {
    let name = sidecar.display();
    let loaded = load_scan(sidecar, MAX_IMAGE_BYTES).map_err(|e| format!("{name}: {e}"))?;
    let declaration = declaration_for(&loaded.sidecar, all)
        .ok_or_else(|| {
            format!(
                "{name}: no declaration found for it (by declaration_ref or container code) in \
                 the folder's declarations/"
            )
        })?
        .clone();
    let pitch_mm = loaded.sidecar.pitch_mm();
    let op = calibration.operating_point();
    let out = model_output(&loaded, model, op).map_err(|e| format!("{name}: {e}"))?;
    let flagged_at = THRESHOLDS
        .iter()
        .map(|&threshold| {
            let at = OperatingPoint {
                threshold,
                min_region_m2: op.min_region_m2,
            };
            !at.regions(out.heatmap.view(), pitch_mm).is_empty()
        })
        .collect();
    Ok(Analysed {
        scan_id: loaded.sidecar.scan_id.as_str().to_owned(),
        declaration,
        cargo: scan_cargo(&loaded, calibration),
        width: loaded.high().0.width as usize,
        pitch_mm,
        flagged_at,
    })
}

/// Analyses every scan of a folder against the declarations in its `declarations/`. Errors name
/// the file.
pub fn analyse_folder(
    dir: &Path,
    model: &mut ConcealmentModel,
    calibration: &Calibration,
) -> Result<Vec<Analysed>, String> {
    let all = declarations(dir)?;
    sidecars(dir)?
        .iter()
        .map(|s| analyse(s, model, calibration, &all))
        .collect()
}

/// The manifest findings of one analysed scan under `tol`, with the check that raised each.
pub fn manifest_findings(a: &Analysed, tol: Tolerances) -> Vec<(Check, Finding)> {
    checks(
        ManifestInput {
            declaration: Some(&a.declaration),
            container_code: None,
            cargo: a.cargo.as_ref(),
            unreadable_code: None,
            pitch_mm: a.pitch_mm,
        },
        a.width,
        tol,
    )
}

/// Whether a scan leaves the green lane: the model at `threshold` (an entry of [`THRESHOLDS`]
/// or the default) and the manifest under `tol`.
pub fn flagged(
    a: &Analysed,
    threshold_index: usize,
    tol: Tolerances,
    lanes: LaneThresholds,
) -> bool {
    let mut findings: Vec<Finding> = manifest_findings(a, tol)
        .into_iter()
        .map(|(_, f)| f)
        .collect();
    if a.flagged_at[threshold_index] {
        findings.push(Finding {
            kind: FindingKind::ConcealedObject,
            score: THRESHOLDS[threshold_index],
            region: None,
            message: String::new(),
        });
    }
    let (risk, _) = assess(&findings, &PreArrival::Unscored, lanes);
    lanes.lane(risk) != Lane::Green
}

/// Detection and false alarms per scenario on scans with a `truth.json` (scanner-sim's), with
/// the given settings: `(scenario, flagged, total)`, scenarios in first-seen order.
pub fn per_scenario(
    scans: &[Analysed],
    scenarios: &HashMap<String, String>,
    threshold_index: usize,
    tol: Tolerances,
    lanes: LaneThresholds,
) -> Vec<(String, usize, usize)> {
    let mut out: Vec<(String, usize, usize)> = Vec::new();
    for a in scans {
        let scenario = scenarios
            .get(&a.scan_id)
            .cloned()
            .unwrap_or_else(|| "unknown".into());
        let hit = flagged(a, threshold_index, tol, lanes);
        match out.iter_mut().find(|r| r.0 == scenario) {
            Some(r) => {
                r.1 += usize::from(hit);
                r.2 += 1;
            }
            None => out.push((scenario, usize::from(hit), 1)),
        }
    }
    out
}

/// Scenario per scan id from a scanner-sim `truth.json`.
pub fn truth_scenarios(dir: &Path) -> Result<HashMap<String, String>, String> {
    let path = dir.join("truth.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let scenario = r["scenario"].as_str()?;
            // A load the scenario left nothing wrong with (undeclared goods of no package, say)
            // is a clean load, not a miss.
            let clean = r["anomalies"].as_array().is_some_and(Vec::is_empty)
                && !matches!(scenario, "honest" | "empty");
            let label = if clean {
                format!("{scenario} (nothing to find)")
            } else {
                scenario.to_owned()
            };
            Some((r["scan_id"].as_str()?.to_owned(), label))
        })
        .collect())
}
