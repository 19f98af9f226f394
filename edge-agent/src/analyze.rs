//! `edge-agent analyze`: the whole bay pipeline on scans from disk, without a server: decode,
//! concealment model, calibration (cargo mass, material classes), manifest verification against
//! an optional declaration, report with risk and lane.
//!
//! The JSON it prints (`--json`) is an array with one object per sidecar, in argument order:
//!
//! ```json
//! [{"sidecar": "scans/BAY01-s1-000000.json",
//!   "report": { ...baylens.report/1, as sent to the server, with "breakdown" (risk per finding)... },
//!   "overlay": {"dir": "out/BAY01-s1-000000", "files": ["scan.png", "material.png",
//!               "expected.png", "heat.png", "findings.png", "overlay.json", "legend.svg"]},
//!   "cargo": {"mass_kg": 8123.4, "opaque_fraction": 0.0, "fill_fraction": 0.41,
//!             "mass_by_class_kg": {"organic": 7000.0, "mixed": 900.0, "inorganic": 200.0,
//!                                  "metal": 23.4, "opaque": 0.0, "unclassified": 12.0}}}]
//! ```
//!
//! `overlay` is `null` without `--overlay DIR` (see [`crate::overlay`] for the layers).
//! DICOS DX scans (`.dcs`/`.dcm`, the files of one series make one scan) are converted first
//! ([`crate::ingest::dicos`]); their object has `"dicos": [files]` and `"notes"` instead of
//! `"sidecar"`.
//! `cargo` is `null` when no container was found in the scan. A scan that cannot be read gets
//! `{"sidecar": ..., "error": "..."}` instead, and the exit status is then 2.

use std::path::{Path, PathBuf};

use baylens_models::concealment::NAME as MODEL_NAME;
use baylens_models::{ConcealmentModel, ConcealmentOutput, HighEnergyScan, OperatingPoint};
use baylens_protocol::risk::{LaneThresholds, PreArrival};
use baylens_protocol::{BayId, Declaration, ReportId, ScanReport};
use chrono::Utc;
use serde_json::{Value, json};

use crate::analysis::{build_report, finish_report};
use crate::calibration::{Calibration, CargoEstimate, attenuation, estimate_cargo};
use crate::expected::{self, Block, ExpectedLayout};
use crate::ingest::Rejection;
use crate::ingest::dicos::{convert_files, is_dicos_name, write_into};
use crate::ingest::scan::{LoadedScan, load_scan};
use crate::manifest::{ManifestInput, verify};
use crate::overlay;

/// Largest image file `analyze` reads (the agent's default limit).
pub const MAX_IMAGE_BYTES: u64 = 256 * 1024 * 1024;

fn cargo_json(c: &CargoEstimate) -> Value {
    let [organic, mixed, inorganic, metal, opaque] = c.mass_by_class;
    json!({
        "mass_kg": c.mass_kg,
        "opaque_fraction": c.opaque_fraction,
        "fill_fraction": c.fill_fraction,
        "mass_by_class_kg": {"organic": organic, "mixed": mixed, "inorganic": inorganic,
                             "metal": metal, "opaque": opaque, "unclassified": c.unclassified_kg},
    })
}

/// Runs the concealment model on a loaded scan's high-energy image, at the scan's pitch.
pub fn model_output(
    loaded: &LoadedScan,
    model: &mut ConcealmentModel,
    op: OperatingPoint,
) -> Result<ConcealmentOutput, Rejection> {
    let (high, meta) = loaded.high();
    let scan = HighEnergyScan {
        readings: &high.samples,
        width: high.width,
        height: high.height,
        air: meta.air,
        dark: meta.dark,
        pitch_mm: loaded.sidecar.pitch_mm(),
    };
    model
        .analyse_scan(&scan, op)
        .map_err(|e| Rejection(format!("analysis failed: {e}")))
}

/// Runs the concealment model on a loaded scan's high-energy image and builds the scan's report
/// from it (model findings only; [`analyse`] adds the rest).
pub fn model_report(
    loaded: &LoadedScan,
    model: &mut ConcealmentModel,
    op: OperatingPoint,
) -> Result<(ConcealmentOutput, ScanReport), Rejection> {
    let output = model_output(loaded, model, op)?;
    let (high, _) = loaded.high();
    let report_id =
        ReportId::parse(&uuid::Uuid::new_v4().to_string()).map_err(|e| Rejection(e.to_string()))?;
    let report = build_report(
        report_id,
        &loaded.sidecar,
        (high.width, high.height),
        MODEL_NAME,
        model.sha256(),
        &output,
        Utc::now(),
    );
    Ok((output, report))
}

/// Both energies' attenuation of a dual-energy scan (high, low), computed on two threads; `None`
/// for a single-energy scan.
pub fn dual_attenuation(loaded: &LoadedScan) -> Option<(Vec<f32>, Vec<f32>)> {
    let (high, high_meta) = loaded.high();
    let (low, low_meta) = loaded.low()?;
    Some(std::thread::scope(|s| {
        let al = s.spawn(|| attenuation(&low.samples, low_meta.air, low_meta.dark));
        let ah = attenuation(&high.samples, high_meta.air, high_meta.dark);
        (ah, al.join().expect("attenuation does not panic"))
    }))
}

/// The calibrated cargo estimate of a dual-energy scan (both energies' attenuation computed on
/// two threads), or `None` for a single-energy scan or when no container is found.
pub fn scan_cargo(loaded: &LoadedScan, calibration: &Calibration) -> Option<CargoEstimate> {
    let (high, _) = loaded.high();
    let (ah, al) = dual_attenuation(loaded)?;
    estimate_cargo(
        &ah,
        &al,
        high.width as usize,
        high.height as usize,
        loaded.sidecar.pitch_mm(),
        calibration,
    )
}

/// Everything the bay pipeline found out about one scan.
#[derive(Debug)]
pub struct Analysis {
    /// The report, with every finding, the risk breakdown and the lane.
    pub report: ScanReport,
    /// The concealment model's output.
    pub output: ConcealmentOutput,
    /// The calibrated cargo estimate (dual-energy scans with a container found).
    pub cargo: Option<CargoEstimate>,
    /// The declared goods laid out over the cargo space.
    pub layout: Option<ExpectedLayout>,
    /// The observed load, block by block.
    pub blocks: Vec<Block>,
}

/// The bay pipeline on a loaded scan: concealment model, calibration and material map, manifest
/// verification against `declaration`, risk with its breakdown, lane.
pub fn analyse(
    loaded: &LoadedScan,
    model: &mut ConcealmentModel,
    calibration: &Calibration,
    declaration: Option<&Declaration>,
    pre: &PreArrival,
    lanes: LaneThresholds,
) -> Result<Analysis, Rejection> {
    let (output, mut report) = model_report(loaded, model, calibration.operating_point())?;
    let (high, _) = loaded.high();
    let w = high.width as usize;
    let pitch = loaded.sidecar.pitch_mm();
    let cargo = scan_cargo(loaded, calibration);
    let unreadable = loaded
        .sidecar
        .unreadable_container_code
        .as_ref()
        .map(|(raw, why)| (raw.as_str(), why.as_str()));
    let findings = verify(
        ManifestInput {
            declaration,
            container_code: loaded.sidecar.container_code.as_ref(),
            cargo: cargo.as_ref(),
            unreadable_code: unreadable,
            pitch_mm: pitch,
        },
        w,
        calibration.tolerances(),
    );
    if report.declaration_ref.is_none() {
        report.declaration_ref = declaration.map(|d| d.reference.clone());
    }
    finish_report(&mut report, findings, pre, lanes);
    let blocks = cargo
        .as_ref()
        .map(|c| expected::blocks(c, w, pitch))
        .unwrap_or_default();
    let layout = match (declaration, &cargo) {
        (Some(d), Some(c)) => expected::layout_over(d, c, &blocks, pitch),
        _ => None,
    };
    Ok(Analysis {
        report,
        output,
        cargo,
        layout,
        blocks,
    })
}

impl Analysis {
    /// The overlay files (see [`crate::overlay`]): PNG layers, `overlay.json`, `legend.svg`.
    /// Layers without content (no dual energy, no declaration) are left out.
    pub fn overlay_files(&self, loaded: &LoadedScan) -> Result<Vec<(String, Vec<u8>)>, Rejection> {
        let (high, meta) = loaded.high();
        let (w, h) = (high.width, high.height);
        let (mut files, layers) = overlay::render_layers(
            (&high.samples, w, h, meta.air, meta.dark),
            self.cargo.as_ref(),
            self.layout.as_ref(),
            &self.output,
            &self.report.findings,
        )
        .map_err(|e| Rejection(format!("overlay layer failed: {e}")))?;
        let vector = overlay::vector(
            &self.report,
            loaded.sidecar.pitch_mm(),
            self.cargo.as_ref(),
            self.layout.as_ref(),
            &self.blocks,
            &layers,
        );
        files.push((
            "overlay.json".into(),
            serde_json::to_vec_pretty(&vector).map_err(|e| Rejection(e.to_string()))?,
        ));
        files.push(("legend.svg".into(), overlay::legend_svg().into_bytes()));
        Ok(files)
    }
}

/// Analyses one scan from disk; the JSON object described in the module docs. With
/// `overlay_dir`, the overlay files go to `overlay_dir/<scan_id>/`.
pub fn analyze_one(
    sidecar: &Path,
    model: &mut ConcealmentModel,
    calibration: &Calibration,
    declaration: Option<&Declaration>,
    lanes: LaneThresholds,
    overlay_dir: Option<&Path>,
) -> Result<Value, Rejection> {
    let loaded = load_scan(sidecar, MAX_IMAGE_BYTES)?;
    // A declaration from a file has no pre-arrival score; without one the scan is undeclared.
    let pre = if declaration.is_some() {
        PreArrival::Unscored
    } else {
        PreArrival::Undeclared
    };
    let analysis = analyse(&loaded, model, calibration, declaration, &pre, lanes)?;
    let overlay = match overlay_dir {
        Some(root) => {
            let dir = root.join(analysis.report.scan_id.as_str());
            std::fs::create_dir_all(&dir)
                .map_err(|e| Rejection(format!("creating {}: {e}", dir.display())))?;
            let files = analysis.overlay_files(&loaded)?;
            for (name, bytes) in &files {
                std::fs::write(dir.join(name), bytes)
                    .map_err(|e| Rejection(format!("writing {}: {e}", dir.join(name).display())))?;
            }
            json!({"dir": dir.display().to_string(),
                   "files": files.iter().map(|f| f.0.clone()).collect::<Vec<_>>()})
        }
        None => Value::Null,
    };
    Ok(json!({
        "sidecar": sidecar.display().to_string(),
        "report": analysis.report,
        "overlay": overlay,
        "cargo": analysis.cargo.as_ref().map(cargo_json),
    }))
}

/// One scan named on the command line: a sidecar, or the DICOS file(s) of one series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanInput {
    /// A `baylens.scan/1` sidecar.
    Sidecar(PathBuf),
    /// The DICOS DX file(s) of one scan, in argument order.
    Dicos(Vec<PathBuf>),
}

impl ScanInput {
    /// The paths, for messages and the JSON's `sidecar` / `dicos` field.
    pub fn label(&self) -> String {
        match self {
            Self::Sidecar(p) => p.display().to_string(),
            Self::Dicos(ps) => ps
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" + "),
        }
    }
}

/// Sorts the arguments into scans: DICOS files (`.dcs`, `.dcm`) of one series make one scan,
/// anything else is a sidecar. A file with no Series Instance UID is a scan of its own (and
/// fails with the reason when analysed).
pub fn scan_inputs(args: &[PathBuf]) -> Vec<ScanInput> {
    let mut out: Vec<ScanInput> = Vec::new();
    let mut series_at: std::collections::HashMap<String, usize> = Default::default();
    for path in args {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if !name.as_deref().is_some_and(is_dicos_name) {
            out.push(ScanInput::Sidecar(path.clone()));
            continue;
        }
        let series = std::fs::read(path)
            .ok()
            .and_then(|b| baylens_dicos::dx::series_of(&b));
        match series.as_ref().and_then(|s| series_at.get(s)) {
            Some(&i) => {
                if let ScanInput::Dicos(files) = &mut out[i] {
                    files.push(path.clone());
                }
            }
            None => {
                if let Some(s) = series {
                    series_at.insert(s, out.len());
                }
                out.push(ScanInput::Dicos(vec![path.clone()]));
            }
        }
    }
    out
}

/// [`analyze_one`] on a scan input: DICOS files are converted for bay `bay` into a temporary
/// folder first (see [`crate::ingest::dicos`]); the JSON then names them under `dicos`.
pub fn analyze_input(
    input: &ScanInput,
    bay: &BayId,
    model: &mut ConcealmentModel,
    calibration: &Calibration,
    declaration: Option<&Declaration>,
    lanes: LaneThresholds,
    overlay_dir: Option<&Path>,
) -> Result<Value, Rejection> {
    let files = match input {
        ScanInput::Sidecar(path) => {
            return analyze_one(path, model, calibration, declaration, lanes, overlay_dir);
        }
        ScanInput::Dicos(files) => files,
    };
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let converted = convert_files(&refs, bay, MAX_IMAGE_BYTES)?;
    let dir = std::env::temp_dir().join(format!("baylens-dicos-{}", uuid::Uuid::new_v4()));
    let result = std::fs::create_dir_all(&dir)
        .and_then(|()| write_into(&dir, &converted))
        .map_err(|e| Rejection(format!("cannot convert into {}: {e}", dir.display())))
        .and_then(|()| {
            let sidecar = dir.join(converted.sidecar_name());
            analyze_one(
                &sidecar,
                model,
                calibration,
                declaration,
                lanes,
                overlay_dir,
            )
        });
    let _ = std::fs::remove_dir_all(&dir);
    let mut value = result?;
    if let Some(obj) = value.as_object_mut() {
        obj.remove("sidecar");
        let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
        obj.insert("dicos".into(), json!(names));
        obj.insert("notes".into(), json!(converted.notes));
    }
    Ok(value)
}
