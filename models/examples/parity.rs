//! Rust against Python on any concealment model file, on scans from disk: the check
//! `models/train/adapt_site.py` runs on a site's adapted model before it is published.
//!
//! ```sh
//! cargo run --release -p baylens-models --example parity -- MODEL.onnx GOLDEN.json
//! ```
//!
//! `GOLDEN.json` (beside the scans it names) lists, per scan, sidecar file and samples `[row,
//! column, probability]` of the Python reference's output at the scan's own pixels (resampled
//! to the model's pitch and back as the agent does). The model's sha256 must be in
//! `MODEL.sha256`. Exits 1, naming the scan and pixel, if any sample differs by more than
//! 1e-3.

use std::path::Path;
use std::process::ExitCode;

use baylens_models::ConcealmentModel;
use baylens_models::concealment::{HighEnergyScan, OperatingPoint};
use baylens_protocol::ScanSidecar;

const TOLERANCE: f64 = 1e-3;

fn check(model: &Path, golden: &Path) -> Result<usize, String> {
    let mut net = ConcealmentModel::load_beside_sha256(model, 1).map_err(|e| e.to_string())?;
    let text = std::fs::read_to_string(golden)
        .map_err(|e| format!("{}: cannot read: {e}", golden.display()))?;
    let entries: Vec<serde_json::Value> =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", golden.display()))?;
    let dir = golden.parent().unwrap_or(Path::new("."));
    let mut checked = 0;
    for g in &entries {
        let name = g["sidecar"].as_str().ok_or("an entry without sidecar")?;
        let bytes = std::fs::read(dir.join(name)).map_err(|e| format!("{name}: {e}"))?;
        let sidecar =
            ScanSidecar::from_json(&bytes, chrono::Utc::now() + chrono::Duration::days(1))
                .map_err(|e| format!("{name}: {e}"))?;
        let high = sidecar.high();
        let img = image::open(dir.join(&high.file))
            .map_err(|e| format!("{}: {e}", high.file))?
            .into_luma16();
        let scan = HighEnergyScan {
            readings: img.as_raw(),
            width: img.width(),
            height: img.height(),
            air: high.air,
            dark: high.dark,
            pitch_mm: sidecar.pitch_mm(),
        };
        let out = net
            .analyse_scan(&scan, OperatingPoint::default())
            .map_err(|e| format!("{name}: {e}"))?;
        for s in g["samples"].as_array().ok_or("samples")? {
            let (r, c, want) = (
                s[0].as_u64().unwrap_or(0) as usize,
                s[1].as_u64().unwrap_or(0) as usize,
                s[2].as_f64().unwrap_or(f64::NAN),
            );
            let got = f64::from(out.heatmap[[r, c]]);
            if (got - want).abs() > TOLERANCE {
                return Err(format!(
                    "{name}: pixel ({r}, {c}): Rust {got:.5}, Python {want:.5}"
                ));
            }
            checked += 1;
        }
    }
    Ok(checked)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, golden] = args.as_slice() else {
        eprintln!("usage: parity MODEL.onnx GOLDEN.json");
        return ExitCode::from(2);
    };
    match check(Path::new(model), Path::new(golden)) {
        Ok(n) => {
            println!("parity: {n} samples agree within {TOLERANCE} ({model})");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("parity: {e}");
            ExitCode::FAILURE
        }
    }
}
