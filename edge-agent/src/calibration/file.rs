//! One scanner's calibration file (TOML): the constants that turn its readings into areal mass
//! and material classes, and, once the site has commissioned it, its own manifest tolerances and
//! the concealment model's operating point.
//!
//! Coefficients that depend on how much material a ray crossed are curves: a number (constant)
//! or a list of polynomial coefficients in the cargo's net high-energy attenuation `A`
//! (`[c0, c1, c2]` is `c0 + c1·A + c2·A²`). A polychromatic beam hardens in thick material, so
//! on a real scanner the low/high ratio of one material falls with thickness and the effective
//! μ/ρ does too; `edge-agent calibrate --phantom` fits those curves from a step wedge.

use std::path::Path;

use baylens_models::OperatingPoint;
use serde::Deserialize;

use crate::manifest::Tolerances;
use crate::material_map::MaterialClass;

/// The committed calibration of the simulated scanner.
pub const SCANNER_SIM: &str = include_str!("../../../assets/calibration/scanner-sim.toml");

/// Smoothing half-size when a file gives none, mm at the mid-plane (3 pixels at 10 mm).
pub const DEFAULT_SMOOTHING_MM: f64 = 30.0;

/// A coefficient that may vary with the net high-energy attenuation.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "CurveText")]
pub struct Curve(pub Vec<f64>);

#[derive(Deserialize)]
#[serde(untagged)]
enum CurveText {
    Constant(f64),
    Polynomial(Vec<f64>),
}

impl From<CurveText> for Curve {
    fn from(t: CurveText) -> Self {
        match t {
            CurveText::Constant(c) => Self(vec![c]),
            CurveText::Polynomial(p) => Self(p),
        }
    }
}

impl Curve {
    /// The value at net high-energy attenuation `a`.
    pub fn at(&self, a: f64) -> f64 {
        self.0.iter().rev().fold(0.0, |acc, c| acc * a + c)
    }

    /// As TOML: a number when constant, else a list.
    pub fn to_toml(&self) -> String {
        match self.0.as_slice() {
            [c] => format!("{c:.6}"),
            cs => format!(
                "[{}]",
                cs.iter()
                    .map(|c| format!("{c:.6e}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// The concealment model's operating point for this scanner (`[concealment]`).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConcealmentSettings {
    /// Pixel probability threshold.
    pub threshold: f32,
    /// Least region, m² at the mid-plane.
    pub min_region_m2: Option<f64>,
}

/// The constants of one scanner.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// Which scanner this file describes.
    pub scanner: String,
    /// μ/ρ at the high energy assumed for organic (and mixed) goods, cm²/g.
    pub mu_rho_organic: Curve,
    /// μ/ρ at the high energy assumed for inorganic goods, cm²/g.
    pub mu_rho_inorganic: Curve,
    /// μ/ρ at the high energy assumed for metal, cm²/g.
    pub mu_rho_metal: Curve,
    /// Lowest low/high attenuation ratio of organic goods.
    pub ratio_organic_min: Curve,
    /// Lowest ratio of the mixed band (organic and light inorganic not told apart).
    pub ratio_mixed_min: Curve,
    /// Lowest ratio of inorganic goods; below it, metal.
    pub ratio_inorganic_min: Curve,
    /// μ/ρ at the high energy of heavy metal (lead, tungsten), cm²/g, for metal pixels whose
    /// ratio lies below `ratio_heavy_max`; without it, all metal is weighed as steel.
    #[serde(default)]
    pub mu_rho_heavy: Option<Curve>,
    /// Ratio below which metal is weighed as heavy metal (with `mu_rho_heavy`).
    #[serde(default)]
    pub ratio_heavy_max: Option<Curve>,
    /// Net high-energy attenuation below which nothing is classified.
    pub min_net_attenuation: f64,
    /// High-energy attenuation above which a pixel is opaque.
    pub opaque_attenuation: f64,
    /// Half-size of the box average before classification, pixels (older files).
    #[serde(default)]
    pub smoothing_radius: Option<usize>,
    /// Half-size of the box average before classification, mm at the mid-plane (turned into
    /// pixels at each scan's pitch).
    #[serde(default)]
    pub smoothing_mm: Option<f64>,
    /// The site's manifest tolerances (from `edge-agent calibrate --cleared`); keys left out
    /// keep their defaults.
    #[serde(default)]
    pub tolerances: Option<Tolerances>,
    /// The concealment model's operating point (from `edge-agent calibrate --cleared`).
    #[serde(default)]
    pub concealment: Option<ConcealmentSettings>,
}

impl Calibration {
    /// The simulator's calibration (`assets/calibration/scanner-sim.toml`).
    pub fn scanner_sim() -> Self {
        Self::parse(SCANNER_SIM).expect("the committed calibration parses (tested)")
    }

    /// Parses and checks a calibration file's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let c: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        c.validate()?;
        Ok(c)
    }

    fn validate(&self) -> Result<(), String> {
        let curves = [
            ("mu_rho_organic", &self.mu_rho_organic),
            ("mu_rho_inorganic", &self.mu_rho_inorganic),
            ("mu_rho_metal", &self.mu_rho_metal),
            ("ratio_organic_min", &self.ratio_organic_min),
            ("ratio_mixed_min", &self.ratio_mixed_min),
            ("ratio_inorganic_min", &self.ratio_inorganic_min),
        ];
        let heavy = [
            ("mu_rho_heavy", self.mu_rho_heavy.as_ref()),
            ("ratio_heavy_max", self.ratio_heavy_max.as_ref()),
        ];
        if self.mu_rho_heavy.is_some() != self.ratio_heavy_max.is_some() {
            return Err("give mu_rho_heavy and ratio_heavy_max together, or neither".into());
        }
        for (name, c) in curves
            .into_iter()
            .chain(heavy.into_iter().filter_map(|(n, c)| c.map(|c| (n, c))))
        {
            if c.0.is_empty() || c.0.len() > 4 || !c.0.iter().all(|v| v.is_finite()) {
                return Err(format!(
                    "{name} must be a number or a list of 1 to 4 finite coefficients"
                ));
            }
        }
        if !(self.min_net_attenuation > 0.0 && self.opaque_attenuation > self.min_net_attenuation) {
            return Err("need 0 < min_net_attenuation < opaque_attenuation".into());
        }
        // The curves must make sense wherever they are used.
        for k in 0..=20 {
            let a = self.min_net_attenuation
                + (self.opaque_attenuation - self.min_net_attenuation) * f64::from(k) / 20.0;
            let mu = [
                self.mu_rho_organic.at(a),
                self.mu_rho_inorganic.at(a),
                self.mu_rho_metal.at(a),
            ];
            if !mu.iter().all(|v| v.is_finite() && *v > 0.0) {
                return Err(format!(
                    "mass attenuation coefficients must be positive (at attenuation {a:.2})"
                ));
            }
            let (o, m, i) = (
                self.ratio_organic_min.at(a),
                self.ratio_mixed_min.at(a),
                self.ratio_inorganic_min.at(a),
            );
            if !(o > m && m > i) {
                return Err(format!(
                    "ratio boundaries must fall: organic > mixed > inorganic (metal below), \
                     at attenuation {a:.2} they are {o:.4}, {m:.4}, {i:.4}"
                ));
            }
            if let (Some(mu), Some(r)) = (&self.mu_rho_heavy, &self.ratio_heavy_max)
                && !(mu.at(a) > 0.0 && r.at(a) < i)
            {
                return Err(format!(
                    "heavy metal needs a positive mu_rho_heavy and ratio_heavy_max below the \
                     inorganic boundary (at attenuation {a:.2})"
                ));
            }
        }
        match (self.smoothing_radius, self.smoothing_mm) {
            (Some(_), Some(_)) => {
                return Err("give smoothing_radius or smoothing_mm, not both".into());
            }
            (Some(r), None) if r > 20 => {
                return Err("smoothing_radius must be at most 20 pixels".into());
            }
            (None, Some(mm)) if !(mm.is_finite() && mm > 0.0 && mm <= 200.0) => {
                return Err("smoothing_mm must be in (0, 200] mm".into());
            }
            _ => {}
        }
        if let Some(t) = &self.tolerances
            && let Some((name, v)) = t
                .named()
                .into_iter()
                .find(|(_, v)| !(v.is_finite() && *v >= 0.0))
        {
            return Err(format!(
                "tolerances.{name} must be a non-negative number, got {v}"
            ));
        }
        self.operating_point()
            .validate()
            .map_err(|e| format!("concealment: {e}"))?;
        Ok(())
    }

    /// Reads a calibration file.
    pub fn load(path: &Path) -> Result<Self, String> {
        Self::load_with_text(path).map(|(c, _)| c)
    }

    /// Reads a calibration file, keeping its text (to write it back with more in it).
    pub fn load_with_text(path: &Path) -> Result<(Self, String), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read calibration {}: {e}", path.display()))?;
        let c = Self::parse(&text).map_err(|e| format!("calibration {}: {e}", path.display()))?;
        Ok((c, text))
    }

    /// μ/ρ at the high energy for a material class, at net high-energy attenuation `a` and
    /// low/high ratio `ratio` (which tells heavy metal from steel where the file can).
    pub fn mu_rho(&self, class: MaterialClass, a: f64, ratio: f64) -> f64 {
        // Outside the fitted range a curve may wander: hold it at its ends.
        let a = a.clamp(self.min_net_attenuation, self.opaque_attenuation);
        let curve = match class {
            MaterialClass::Inorganic => &self.mu_rho_inorganic,
            MaterialClass::Metal => match (&self.mu_rho_heavy, &self.ratio_heavy_max) {
                (Some(heavy), Some(bound)) if ratio < bound.at(a) => heavy,
                _ => &self.mu_rho_metal,
            },
            // An opaque pixel's mass is a lower bound: weigh it as the material with the most
            // attenuation per gram the file knows.
            MaterialClass::Opaque => self.mu_rho_heavy.as_ref().unwrap_or(&self.mu_rho_metal),
            _ => &self.mu_rho_organic,
        };
        curve.at(a)
    }

    /// The ratio boundaries (organic, mixed, inorganic minimum) at net attenuation `a`.
    pub fn ratio_bounds(&self, a: f64) -> [f64; 3] {
        let a = a.clamp(self.min_net_attenuation, self.opaque_attenuation);
        [
            self.ratio_organic_min.at(a),
            self.ratio_mixed_min.at(a),
            self.ratio_inorganic_min.at(a),
        ]
    }

    /// Smoothing half-size in pixels for a scan of this pitch (horizontal, vertical), mm.
    pub fn smoothing_px(&self, [px, py]: [f64; 2]) -> usize {
        match (self.smoothing_radius, self.smoothing_mm) {
            (Some(r), _) => r,
            (None, mm) => {
                let mm = mm.unwrap_or(DEFAULT_SMOOTHING_MM);
                ((mm / (px * py).sqrt()).round() as usize).clamp(1, 20)
            }
        }
    }

    /// The site's manifest tolerances: the defaults, with what the site fitted.
    pub fn tolerances(&self) -> Tolerances {
        self.tolerances.unwrap_or_default()
    }

    /// The concealment model's operating point on this scanner.
    pub fn operating_point(&self) -> OperatingPoint {
        let mut op = OperatingPoint::default();
        if let Some(c) = &self.concealment {
            op.threshold = c.threshold;
            if let Some(m) = c.min_region_m2 {
                op.min_region_m2 = m;
            }
        }
        op
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_calibration_parses_and_bad_files_are_refused() {
        let c = Calibration::scanner_sim();
        let [o, _, i] = c.ratio_bounds(1.0);
        assert!(o > i);
        assert_eq!(c.smoothing_px([10.0, 10.0]), 3);
        assert_eq!(c.smoothing_px([5.0, 5.0]), 6);
        let broken = SCANNER_SIM.replace("ratio_mixed_min = 1.2200", "ratio_mixed_min = 1.3");
        assert!(
            Calibration::parse(&broken)
                .unwrap_err()
                .contains("must fall")
        );
        let unknown = format!("{SCANNER_SIM}\nfudge = 2\n");
        assert!(
            Calibration::parse(&unknown)
                .unwrap_err()
                .contains("unknown field")
        );
        let both = format!("{SCANNER_SIM}\nsmoothing_radius = 3\n");
        assert!(Calibration::parse(&both).unwrap_err().contains("not both"));
        let bad_op = format!("{SCANNER_SIM}\n[concealment]\nthreshold = 1.5\n");
        assert!(
            Calibration::parse(&bad_op)
                .unwrap_err()
                .contains("threshold")
        );
    }

    #[test]
    fn curves_are_numbers_or_polynomials_and_site_sections_apply() {
        let text = SCANNER_SIM.replace(
            "mu_rho_organic = 0.0272",
            "mu_rho_organic = [0.0272, -0.001]",
        ) + "\n[tolerances]\nmass_relative = 0.1\n\n[concealment]\nthreshold = 0.9\n";
        let c = Calibration::parse(&text).unwrap();
        assert!((c.mu_rho(MaterialClass::Organic, 2.0, 1.23) - 0.0252).abs() < 1e-9);
        // Heavy metal is weighed as lead, steel as steel.
        let shipped = Calibration::scanner_sim();
        assert_eq!(shipped.mu_rho(MaterialClass::Metal, 2.0, 0.99), 0.0427);
        assert_eq!(shipped.mu_rho(MaterialClass::Metal, 2.0, 1.10), 0.0305);
        let half = SCANNER_SIM.replace("mu_rho_heavy = 0.0427\n", "");
        assert!(Calibration::parse(&half).unwrap_err().contains("together"));
        assert_eq!(c.tolerances().mass_relative, 0.1);
        assert_eq!(
            c.tolerances().fill_relative,
            Tolerances::default().fill_relative
        );
        assert_eq!(c.operating_point().threshold, 0.9);
        let negative = format!("{SCANNER_SIM}\n[tolerances]\nmass_relative = -0.1\n");
        let e = Calibration::parse(&negative).unwrap_err();
        assert!(e.contains("tolerances.mass_relative"), "{e}");
        let unknown = format!("{SCANNER_SIM}\n[tolerances]\nmass_slack = 0.1\n");
        assert!(
            Calibration::parse(&unknown)
                .unwrap_err()
                .contains("mass_slack")
        );
        assert_eq!(Curve(vec![1.5]).to_toml(), "1.500000");
        assert_eq!(Curve(vec![1.0, 2.0, 3.0]).at(2.0), 17.0);
    }
}
