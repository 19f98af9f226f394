//! The calibration phantom (`baylens.phantom/1`): a step wedge of plates of known materials and
//! thicknesses, scanned like a truck, and the file that says where each step lies in that scan.
//!
//! A site builds one from plates it can buy: polyethylene blocks (or water tanks), aluminium,
//! steel and lead plates, stacked along the beam to several thicknesses and set on a cart that
//! is pulled or driven through the scanner. After scanning it, the site marks each step's box in
//! the image (any image viewer gives pixel coordinates) and writes this file next to the scan's
//! sidecar as `<scan_id>.phantom.json`. `edge-agent calibrate --phantom` reads both.
//!
//! ```json
//! {"contract": "baylens.phantom/1",
//!  "name": "BAY01 step wedge, plates bought 2026-11",
//!  "air_box_px": [20, 40, 60, 60],
//!  "steps": [
//!    {"material": "polyethylene", "thickness_mm": 100, "box_px": [40, 140, 40, 60]},
//!    {"material": "steel", "thickness_mm": 50, "density_g_cm3": 7.85, "box_px": [400, 140, 40, 60]}]}
//! ```
//!
//! `box_px` is `[x, y, width, height]` in the scan's pixels, inside the plate (the calibration
//! uses the middle of each box, away from blurred edges). `thickness_mm` is the length of
//! material along the beam. `density_g_cm3` is optional: without it the material's handbook
//! density is used. `air_box_px` is a region with nothing in the beam, optional: without it the
//! top rows of the scan are taken as air.

use serde::{Deserialize, Serialize};

use crate::ProtocolError;

/// The contract version this build reads and writes.
pub const PHANTOM_CONTRACT: &str = "baylens.phantom/1";

/// Materials a phantom step may be made of, with their handbook densities (g/cm³).
pub const MATERIALS: [(&str, f64); 5] = [
    ("polyethylene", 0.94),
    ("water", 1.0),
    ("aluminium", 2.70),
    ("steel", 7.85),
    ("lead", 11.35),
];

/// One step of the wedge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhantomStep {
    /// One of [`MATERIALS`].
    pub material: String,
    /// Material along the beam, mm.
    pub thickness_mm: f64,
    /// Measured density of the plates, g/cm³ (default: the handbook value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub density_g_cm3: Option<f64>,
    /// Where the step is in the scan: `[x, y, width, height]`, pixels.
    pub box_px: [u32; 4],
}

impl PhantomStep {
    /// Density used for the step, g/cm³.
    pub fn density(&self) -> f64 {
        self.density_g_cm3.unwrap_or_else(|| {
            MATERIALS
                .iter()
                .find(|(m, _)| *m == self.material)
                .map_or(f64::NAN, |(_, d)| *d)
        })
    }

    /// Areal mass along the beam, g/cm².
    pub fn areal_mass(&self) -> f64 {
        self.density() * self.thickness_mm / 10.0
    }
}

/// The phantom file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhantomDescription {
    /// Always [`PHANTOM_CONTRACT`].
    pub contract: String,
    /// What this phantom is (for the calibration file's record).
    pub name: String,
    /// A region with nothing in the beam, `[x, y, width, height]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub air_box_px: Option<[u32; 4]>,
    /// The steps.
    pub steps: Vec<PhantomStep>,
}

impl PhantomDescription {
    /// Parses and checks a phantom file.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let d: Self = serde_json::from_slice(bytes).map_err(|e| ProtocolError::Malformed {
            document: "phantom",
            reason: e.to_string(),
        })?;
        if d.contract != PHANTOM_CONTRACT {
            return Err(ProtocolError::UnsupportedContract {
                found: d.contract,
                expected: PHANTOM_CONTRACT,
            });
        }
        if d.steps.is_empty() {
            return Err(ProtocolError::invalid("steps", "a phantom needs steps"));
        }
        for (i, s) in d.steps.iter().enumerate() {
            let field = |f: &str| format!("steps[{i}].{f}");
            if !MATERIALS.iter().any(|(m, _)| *m == s.material) {
                let known: Vec<&str> = MATERIALS.iter().map(|(m, _)| *m).collect();
                return Err(ProtocolError::invalid(
                    field("material"),
                    format!("{:?} is not one of {}", s.material, known.join(", ")),
                ));
            }
            if !(s.thickness_mm.is_finite() && s.thickness_mm > 0.0 && s.thickness_mm <= 3_000.0) {
                return Err(ProtocolError::invalid(
                    field("thickness_mm"),
                    format!("must be in (0, 3000] mm, got {}", s.thickness_mm),
                ));
            }
            if let Some(rho) = s.density_g_cm3
                && !(rho.is_finite() && rho > 0.0 && rho <= 25.0)
            {
                return Err(ProtocolError::invalid(
                    field("density_g_cm3"),
                    format!("must be in (0, 25] g/cm³, got {rho}"),
                ));
            }
            if s.box_px[2] < 3 || s.box_px[3] < 3 {
                return Err(ProtocolError::invalid(
                    field("box_px"),
                    "must be at least 3 x 3 pixels",
                ));
            }
        }
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> serde_json::Value {
        serde_json::json!({"contract": "baylens.phantom/1", "name": "wedge",
            "steps": [{"material": "steel", "thickness_mm": 50, "box_px": [10, 10, 20, 20]}]})
    }

    fn error_of(v: &serde_json::Value) -> String {
        PhantomDescription::from_json(v.to_string().as_bytes())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_good_phantom_parses_with_handbook_densities() {
        let d = PhantomDescription::from_json(doc().to_string().as_bytes()).unwrap();
        assert_eq!(d.steps[0].density(), 7.85);
        assert!((d.steps[0].areal_mass() - 39.25).abs() < 1e-9);
    }

    #[test]
    fn bad_phantoms_name_the_step_and_field() {
        let mut v = doc();
        v["steps"][0]["material"] = "wood".into();
        assert!(
            error_of(&v).contains("steps[0].material"),
            "{}",
            error_of(&v)
        );
        let mut v = doc();
        v["steps"][0]["thickness_mm"] = (-1.0).into();
        assert!(error_of(&v).contains("steps[0].thickness_mm"));
        let mut v = doc();
        v["steps"][0]["box_px"] = serde_json::json!([0, 0, 1, 9]);
        assert!(error_of(&v).contains("steps[0].box_px"));
        let mut v = doc();
        v["steps"][0]["colour"] = "red".into();
        assert!(error_of(&v).contains("colour"));
        let mut v = doc();
        v["contract"] = "baylens.phantom/2".into();
        assert!(error_of(&v).contains("unsupported"));
        let mut v = doc();
        v["steps"] = serde_json::json!([]);
        assert!(error_of(&v).contains("steps"));
    }
}
