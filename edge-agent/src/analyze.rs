//! `edge-agent analyze`: the whole bay pipeline on scans from disk, without a server: decode,
//! concealment model, calibration (cargo mass, material classes), manifest verification against
//! an optional declaration, report with risk and lane.
//!
//! The JSON it prints (`--json`) is an array with one object per sidecar, in argument order:
//!
//! ```json
//! [{"sidecar": "scans/BAY01-s1-000000.json",
//!   "report": { ...baylens.report/1, as sent to the server... },
//!   "cargo": {"mass_kg": 8123.4, "opaque_fraction": 0.0, "fill_fraction": 0.41,
//!             "mass_by_class_kg": {"organic": 7000.0, "mixed": 900.0, "inorganic": 200.0,
//!                                  "metal": 23.4, "opaque": 0.0, "unclassified": 12.0}}}]
//! ```
//!
//! `cargo` is `null` when no container was found in the scan. A scan that cannot be read gets
//! `{"sidecar": ..., "error": "..."}` instead, and the exit status is then 2.

use std::path::Path;

use baylens_models::concealment::NAME as MODEL_NAME;
use baylens_models::{ConcealmentModel, ConcealmentOutput};
use baylens_protocol::{Declaration, ReportId, ScanReport};
use chrono::Utc;
use serde_json::{Value, json};

use crate::analysis::{add_findings, build_report};
use crate::calibration::{Calibration, CargoEstimate, attenuation, estimate_cargo};
use crate::ingest::Rejection;
use crate::ingest::scan::{LoadedScan, load_scan};
use crate::manifest::{ManifestInput, Tolerances, verify};

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

/// Runs the concealment model on a loaded scan's high-energy image and builds the scan's report
/// from it (the agent and `analyze` both start here).
pub fn model_report(
    loaded: &LoadedScan,
    model: &mut ConcealmentModel,
) -> Result<(ConcealmentOutput, ScanReport), Rejection> {
    let (high, meta) = loaded.high();
    let output = model
        .analyse(&high.samples, high.width, high.height, meta.air, meta.dark)
        .map_err(|e| Rejection(format!("analysis failed: {e}")))?;
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

/// Analyses one scan; the JSON object described in the module docs.
pub fn analyze_one(
    sidecar: &Path,
    model: &mut ConcealmentModel,
    calibration: &Calibration,
    declaration: Option<&Declaration>,
) -> Result<Value, Rejection> {
    let loaded = load_scan(sidecar, MAX_IMAGE_BYTES)?;
    let (_, mut report) = model_report(&loaded, model)?;
    let (high, high_meta) = loaded.high();
    let (w, h) = (high.width as usize, high.height as usize);
    let cargo = loaded.low().and_then(|(low, low_meta)| {
        let ah = attenuation(&high.samples, high_meta.air, high_meta.dark);
        let al = attenuation(&low.samples, low_meta.air, low_meta.dark);
        estimate_cargo(&ah, &al, w, h, loaded.sidecar.pixel_pitch_mm, calibration)
    });
    let findings = verify(
        ManifestInput {
            declaration,
            container_code: loaded.sidecar.container_code.as_ref(),
            cargo: cargo.as_ref(),
        },
        w,
        Tolerances::default(),
    );
    add_findings(&mut report, findings);
    Ok(json!({
        "sidecar": sidecar.display().to_string(),
        "report": report,
        "cargo": cargo.as_ref().map(cargo_json),
    }))
}
