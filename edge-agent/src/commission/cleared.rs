//! `edge-agent calibrate --cleared DIR`: the site's manifest tolerances and the concealment
//! model's operating point, from scans its officers cleared.
//!
//! # Method
//! Every cleared scan is analysed once (model heat map, calibrated cargo estimate, the
//! declaration it was cleared against). Then, starting from the shipped defaults, while more
//! of those loads would leave the green lane than the site's target share (1 % by default),
//! the check that flags the most of them (concealment, mass, material share, fill, undeclared
//! region, declared empty) is loosened just enough to flag one fewer, by bisection on the check
//! itself (`verify` and the model's regions, so the fit cannot drift from what the agent
//! does). What was loosened then gets a safety margin, since the next loads are not the ones
//! fitted. A setting is never made tighter than the shipped default: the largest deviation
//! among a few hundred cleared loads underestimates the next few hundred's, and on the
//! development profile (`mobile-d`) tightening to it doubled the false alarms on fresh loads
//! (0 → 2 of 30 honest loads, a mass and a material finding) for one more detection in 90. The
//! cleared scans loosen what this scanner needs loosened; the phantom calibration is what
//! makes the checks sharp.
//!
//! The command then says what the fitted settings still flag on the cleared scans, and, given
//! `--anomalies DIR` (scans with anomalies of the same scanner, `truth.json` beside them), what
//! detection they cost against the shipped defaults.

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

/// Margin on each fitted tolerance.
const MARGIN: f64 = 1.15;

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

/// One tolerance the fit sets: the check it belongs to, where it lives, its bounds.
struct Knob {
    check: Check,
    name: &'static str,
    get: fn(&mut Tolerances) -> &mut f64,
    max: f64,
}

impl Knob {
    /// Its value in `t`.
    fn value(&self, mut t: Tolerances) -> f64 {
        *(self.get)(&mut t)
    }

    /// `t` with it set to `v`.
    fn with(&self, mut t: Tolerances, v: f64) -> Tolerances {
        *(self.get)(&mut t) = v;
        t
    }
}

const KNOBS: [Knob; 6] = [
    Knob {
        check: Check::Mass,
        name: "mass_relative",
        get: |t| &mut t.mass_relative,
        max: 3.0,
    },
    Knob {
        check: Check::Material,
        name: "class_share",
        get: |t| &mut t.class_share,
        max: 1.0,
    },
    Knob {
        check: Check::Fill,
        name: "fill_relative",
        get: |t| &mut t.fill_relative,
        max: 5.0,
    },
    Knob {
        check: Check::UndeclaredRegion,
        name: "region_min_kg",
        get: |t| &mut t.region_min_kg,
        max: 40_000.0,
    },
    Knob {
        check: Check::Stowage,
        name: "stowage_relative",
        get: |t| &mut t.stowage_relative,
        max: 20.0,
    },
    Knob {
        check: Check::DeclaredEmpty,
        name: "empty_max_kg",
        get: |t| &mut t.empty_max_kg,
        max: 10_000.0,
    },
];

/// What the fit chose.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteFit {
    /// The fitted tolerances.
    pub tolerances: Tolerances,
    /// Index into [`THRESHOLDS`] of the fitted threshold.
    pub threshold_index: usize,
    /// One line per setting: what it is, the default, how many cleared scans each flags.
    pub lines: Vec<String>,
    /// Share of the cleared scans the fitted settings leave out of the green lane.
    pub flagged_share: f64,
}

/// Fits the tolerances and the threshold (see the module docs).
pub fn fit(scans: &[Analysed], target: f64, lanes: LaneThresholds) -> SiteFit {
    let n = scans.len().max(1);
    let allowed = (target * n as f64).floor() as usize;
    let defaults = Tolerances::default();
    let default_index = default_threshold_index();
    let count = |check: Check, t: Tolerances| {
        scans
            .iter()
            .filter(|a| manifest_findings(a, t).iter().any(|(c, _)| *c == check))
            .count()
    };
    let flags_at = |i: usize| scans.iter().filter(|a| a.flagged_at[i]).count();
    let union = |t: Tolerances, i: usize| scans.iter().filter(|a| flagged(a, i, t, lanes)).count();
    let (mut tol, mut threshold_index) = (defaults, default_index);
    // Greedy: while too many cleared loads leave the green lane, loosen the check that flags
    // the most of them, just enough that it flags as many fewer as there are loads too many
    // (at least one fewer).
    for _ in 0..4 * n {
        let excess = union(tol, threshold_index).saturating_sub(allowed);
        if excess == 0 {
            break;
        }
        // A check already at its widest has nothing more to give.
        let knob_counts: Vec<usize> = KNOBS
            .iter()
            .map(|k| {
                if k.value(tol) >= k.max {
                    0
                } else {
                    count(k.check, tol)
                }
            })
            .collect();
        let model = if threshold_index + 1 < THRESHOLDS.len() {
            flags_at(threshold_index)
        } else {
            0
        };
        let (worst, &most) = knob_counts
            .iter()
            .enumerate()
            .max_by_key(|(_, c)| **c)
            .expect("there are knobs");
        if most.max(model) == 0 {
            break;
        }
        if model >= most {
            threshold_index += 1;
            continue;
        }
        let knob = &KNOBS[worst];
        let at = |v: f64| count(knob.check, knob.with(tol, v));
        let goal = most.saturating_sub(excess).min(most - 1);
        let (mut lo, mut hi) = (knob.value(tol), knob.max);
        if at(hi) > goal {
            // Cannot be loosened further: set it to its widest and go on with the others.
            tol = knob.with(tol, hi);
            continue;
        }
        for _ in 0..30 {
            let mid = 0.5 * (lo + hi);
            if at(mid) <= goal {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        tol = knob.with(tol, hi);
    }
    // A margin on what was loosened: the next loads are not the ones fitted.
    let mut lines = Vec::new();
    for knob in &KNOBS {
        let (default, fitted) = (knob.value(defaults), knob.value(tol));
        let value = if fitted > default {
            (fitted * MARGIN).min(knob.max)
        } else {
            default
        };
        tol = knob.with(tol, value);
        lines.push(format!(
            "{:<15} {:>9.3} (default {:>9.3}): flags {} of {n} cleared loads (default: {})",
            knob.name,
            value,
            default,
            count(knob.check, tol),
            count(knob.check, defaults),
        ));
    }
    lines.push(format!(
        "{:<15} {:>9.3} (default {:>9.3}): flags {} of {n} cleared loads (default: {})",
        "threshold",
        THRESHOLDS[threshold_index],
        THRESHOLDS[default_index],
        flags_at(threshold_index),
        flags_at(default_index)
    ));
    let flagged_share = union(tol, threshold_index) as f64 / n as f64;
    SiteFit {
        tolerances: tol,
        threshold_index,
        lines,
        flagged_share,
    }
}

/// The calibration text with the fit's `[tolerances]` and `[concealment]` sections (any earlier
/// ones, and everything after them, replaced).
pub fn with_site_sections(calibration_text: &str, fit: &SiteFit, record: &str) -> String {
    let marker = "# Site settings fitted by `edge-agent calibrate --cleared`";
    let cut = [marker, "\n[tolerances]", "\n[concealment]"]
        .iter()
        .filter_map(|m| calibration_text.find(m))
        .min()
        .unwrap_or(calibration_text.len());
    let t = fit.tolerances;
    let mut out = calibration_text[..cut].trim_end().to_owned();
    out.push_str(&format!(
        "\n\n{marker}\n# {record}\n\n[tolerances]\nmass_relative = {:.4}\nclass_share = {:.4}\n\
         fill_relative = {:.4}\nregion_min_kg = {:.1}\nstowage_relative = {:.4}\n\
         empty_max_kg = {:.1}\n\n[concealment]\n\
         threshold = {}\n",
        t.mass_relative,
        t.class_share,
        t.fill_relative,
        t.region_min_kg,
        t.stowage_relative,
        t.empty_max_kg,
        THRESHOLDS[fit.threshold_index]
    ));
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A load the model flags at every threshold below index `flagged_up_to` (no cargo: the
    /// manifest checks have nothing to say).
    fn load(flagged_up_to: usize) -> Analysed {
        let declaration = Declaration::from_json(
            include_str!("../../../assets/declarations/example.json"),
            "2027-05-30T00:00:00Z".parse().unwrap(),
        )
        .unwrap();
        Analysed {
            scan_id: "s".into(),
            declaration,
            cargo: None,
            width: 10,
            pitch_mm: [10.0; 2],
            flagged_at: (0..THRESHOLDS.len()).map(|i| i < flagged_up_to).collect(),
        }
    }

    #[test]
    fn the_threshold_moves_up_only_as_far_as_the_target_needs() {
        let lanes = LaneThresholds::default();
        let d = default_threshold_index();
        // 100 loads, 3 flagged at the default threshold, 1 of them at the next step too: 1 %
        // allows that one, so the threshold moves one step and no further.
        let mut scans: Vec<Analysed> = (0..97).map(|_| load(0)).collect();
        scans.extend([load(d + 1), load(d + 1), load(d + 2)]);
        let fit1 = fit(&scans, 0.01, lanes);
        assert_eq!(fit1.threshold_index, d + 1, "{:?}", fit1.lines);
        assert!(fit1.flagged_share <= 0.01);
        // A target of 3 % needs nothing moved, and nothing is tightened.
        let fit3 = fit(&scans, 0.03, lanes);
        assert_eq!(fit3.threshold_index, d);
        assert_eq!(fit3.tolerances, Tolerances::default());
    }

    #[test]
    fn site_sections_replace_earlier_ones() {
        let fit = SiteFit {
            tolerances: Tolerances::default(),
            threshold_index: 9,
            lines: vec![],
            flagged_share: 0.0,
        };
        let base = crate::calibration::SCANNER_SIM;
        let once = with_site_sections(base, &fit, "first");
        let twice = with_site_sections(&once, &fit, "second");
        assert_eq!(twice.matches("[tolerances]").count(), 1);
        assert!(twice.contains("second") && !twice.contains("first"));
        let c = Calibration::parse(&twice).unwrap();
        assert_eq!(c.operating_point().threshold, THRESHOLDS[9]);
        assert_eq!(c.tolerances(), Tolerances::default());
    }
}
