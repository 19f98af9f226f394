//! Commissioning a new scanner: `edge-agent calibrate`.
//!
//! - [`phantom`]: from one scan of a step wedge (`baylens.phantom/1`), the scanner's
//!   thickness-dependent dual-energy curves, mass attenuation coefficients and noise limits.
//! - [`cleared`]: from scans the site's officers cleared, with their declarations, the site's
//!   manifest tolerances and the concealment model's operating point, for a target share of
//!   false alarms.
//!
//! Both write a calibration file (`crate::calibration::Calibration`) that the agent loads
//! through `calibration_file`, and `edge-agent analyze --calibration` takes.

pub mod cleared;
pub mod fit;
pub mod phantom;
#[cfg(test)]
mod phantom_tests;

use std::path::{Path, PathBuf};

use baylens_protocol::phantom::PhantomDescription;

use crate::analyze::{MAX_IMAGE_BYTES, dual_attenuation};
use crate::ingest::scan::load_scan;

/// The phantom file beside a phantom scan's sidecar: `<stem>.phantom.json`.
pub fn description_path(sidecar: &Path) -> PathBuf {
    let stem = sidecar
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    sidecar.with_file_name(format!("{stem}.phantom.json"))
}

/// Calibrates from a phantom scan on disk and its description (see [`phantom`]).
pub fn calibrate_phantom(
    sidecar: &Path,
    description: &Path,
    scanner: Option<&str>,
) -> Result<phantom::PhantomFit, String> {
    let bytes = std::fs::read(description).map_err(|e| {
        format!(
            "cannot read the phantom file {}: {e}",
            description.display()
        )
    })?;
    let d = PhantomDescription::from_json(&bytes)
        .map_err(|e| format!("phantom file {}: {e}", description.display()))?;
    let loaded = load_scan(sidecar, MAX_IMAGE_BYTES)
        .map_err(|e| format!("phantom scan {}: {e}", sidecar.display()))?;
    let Some((ah, al)) = dual_attenuation(&loaded) else {
        return Err(format!(
            "phantom scan {}: a single-energy scan cannot calibrate material classes; the \
             scanner must send both energies",
            sidecar.display()
        ));
    };
    let (high, _) = loaded.high();
    let scan = phantom::PhantomScan {
        att_high: &ah,
        att_low: &al,
        width: high.width as usize,
        height: high.height as usize,
        pitch_mm: loaded.sidecar.pitch_mm(),
    };
    let (steps, photons) = phantom::measure(&scan, &d)
        .map_err(|e| format!("phantom {}: {e}", description.display()))?;
    let scanner = scanner.map_or_else(
        || format!("scanner of bay {}", loaded.sidecar.bay.as_str()),
        str::to_owned,
    );
    phantom::fit(&steps, photons, scan.pitch_mm, &scanner, &d.name)
        .map_err(|e| format!("phantom {}: {e}", description.display()))
}
