//! `edge-agent calibrate --phantom`: a scanner's calibration from one scan of a step wedge.
//!
//! # Method
//! 1. **Each step**, in the middle of its box (a fifth trimmed off each side, away from the
//!    blurred edges): the mean attenuation at both energies, less the air box's. A step that
//!    lies outside the image, shows nothing (a missing plate or a wrong box), is starved of
//!    photons (saturated), or straddles an edge (its two halves differ) is refused by name.
//! 2. **Noise**: the per-pixel spread of transmission in air along each row (gain stripes run
//!    along rows) gives the photons per pixel, `N₀ = 1/σ²`; a pixel is opaque below about ten
//!    photons, `A = ln(N₀/10)`, and the least attenuation worth classifying scales with the
//!    noise left after smoothing.
//! 3. **Mass**: for organic (polyethylene or water), light inorganic (aluminium) and metal
//!    (steel) steps, `A / ρt` against `A` is a line: beam hardening lowers the effective μ/ρ as
//!    material thickens (`A = μρt / (1 + βμρt)` gives `A/ρt = μ − βμ·A` exactly).
//! 4. **Material**: each material's ratio `R = A_low / A_high` against `A_high` is a line. The
//!    class boundaries sit between the lines at the same fractions as in the simulator's own
//!    calibration (organic above 46 % of the way from aluminium to polyethylene, 78 % to
//!    water; mixed above 20 %, 35 % to water; inorganic above 44 % of the way from steel to
//!    aluminium), so they follow the scanner's curves at every thickness. Lead must fall below
//!    the inorganic boundary; with two lead steps or more, metal below the line halfway between
//!    lead's and steel's ratios is weighed with lead's own `A / ρt` line (a load of lead weighed
//!    as steel comes out 40 % heavy).
//!
//! Every fit prints its residuals, so an operator sees a bad plate before trusting the file.

use baylens_protocol::phantom::{PhantomDescription, PhantomStep};

use crate::calibration::{Calibration, Curve, DEFAULT_SMOOTHING_MM};

/// Attenuation per pixel of the simulator's high-energy beam in air (40,000 photons).
const REFERENCE_NOISE: f64 = 0.005;
/// The simulator's least net attenuation worth classifying (at its noise).
const REFERENCE_MIN_NET: f64 = 0.3;

/// What one step measured.
#[derive(Debug, Clone, PartialEq)]
pub struct StepMeasure {
    /// Index in the phantom file.
    pub index: usize,
    /// Material name.
    pub material: String,
    /// Thickness along the beam, mm.
    pub thickness_mm: f64,
    /// Areal mass, g/cm².
    pub areal_mass: f64,
    /// Net high-energy attenuation.
    pub a_high: f64,
    /// Net low-energy attenuation.
    pub a_low: f64,
}

impl StepMeasure {
    /// Low/high ratio.
    pub fn ratio(&self) -> f64 {
        self.a_low / self.a_high
    }

    fn name(&self) -> String {
        format!(
            "steps[{}] ({} {} mm)",
            self.index, self.material, self.thickness_mm
        )
    }
}

/// Both energies' attenuation of the phantom scan, with its size and pitch.
#[derive(Debug, Clone, Copy)]
pub struct PhantomScan<'a> {
    /// High-energy attenuation, row-major.
    pub att_high: &'a [f32],
    /// Low-energy attenuation.
    pub att_low: &'a [f32],
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Pitch `[horizontal, vertical]`, mm.
    pub pitch_mm: [f64; 2],
}

/// A fitted calibration and how well it fits.
#[derive(Debug, Clone)]
pub struct PhantomFit {
    /// The calibration, as parsed back from [`PhantomFit::toml`].
    pub calibration: Calibration,
    /// The calibration file's text (with the fit's record as comments).
    pub toml: String,
    /// One line per step: measured and fitted values.
    pub residuals: Vec<String>,
    /// Photons per pixel in air at the high energy.
    pub photons_in_air: f64,
}

fn mean_sd(values: impl Iterator<Item = f64>) -> (f64, f64, usize) {
    let v: Vec<f64> = values.collect();
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt(), v.len())
}

/// Pixels of a box, trimmed by `trim` of its size on each side.
fn interior([x, y, w, h]: [u32; 4], trim: f64) -> (usize, usize, usize, usize) {
    let (dx, dy) = ((w as f64 * trim) as u32, (h as f64 * trim) as u32);
    (
        (x + dx) as usize,
        (y + dy) as usize,
        (x + w - dx) as usize,
        (y + h - dy) as usize,
    )
}

fn box_values(
    att: &[f32],
    width: usize,
    (x0, y0, x1, y1): (usize, usize, usize, usize),
) -> Vec<f64> {
    (y0..y1)
        .flat_map(|r| (x0..x1).map(move |c| f64::from(att[r * width + c])))
        .collect()
}

/// Least-squares line `y = c0 + c1 x` (a constant when the x values do not spread).
fn line(points: &[(f64, f64)]) -> Vec<f64> {
    let n = points.len() as f64;
    let (mx, my) = (
        points.iter().map(|p| p.0).sum::<f64>() / n,
        points.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if points.len() < 2 || sxx < 1e-9 {
        return vec![my];
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let slope = sxy / sxx;
    vec![my - slope * mx, slope]
}

/// Measures every step (see the module docs); errors name the step and what is wrong with it.
pub fn measure(
    scan: &PhantomScan<'_>,
    d: &PhantomDescription,
) -> Result<(Vec<StepMeasure>, f64), String> {
    let (w, h) = (scan.width, scan.height);
    let inside = |[x, y, bw, bh]: [u32; 4]| {
        u64::from(x) + u64::from(bw) <= w as u64 && u64::from(y) + u64::from(bh) <= h as u64
    };
    let air_box = d
        .air_box_px
        .unwrap_or([0, 0, w as u32, (h as u32 / 20).max(3)]);
    if !inside(air_box) {
        return Err(format!(
            "air_box_px {air_box:?} lies outside the {w} x {h} image"
        ));
    }
    let air = interior(air_box, 0.1);
    let (air_high, _, _) = mean_sd(box_values(scan.att_high, w, air).into_iter());
    let (air_low, _, _) = mean_sd(box_values(scan.att_low, w, air).into_iter());
    // Noise: transmission's spread along each row of the air box (gain is constant in a row).
    let mut variances = Vec::new();
    for r in air.1..air.3 {
        let t = (air.0..air.2).map(|c| (-f64::from(scan.att_high[r * w + c])).exp());
        let (_, sd, n) = mean_sd(t);
        if n >= 3 {
            variances.push(sd * sd);
        }
    }
    let sigma = (variances.iter().sum::<f64>() / variances.len().max(1) as f64).sqrt();
    if !(sigma > 0.0 && air_high.abs() < 0.1) {
        return Err(format!(
            "air_box_px {air_box:?} is not air (attenuation {air_high:.3}, spread {sigma:.5}): \
             mark a region with nothing in the beam"
        ));
    }
    let photons = 1.0 / (sigma * sigma);
    let starved = (photons / 20.0).ln();
    let mut out = Vec::new();
    for (index, step) in d.steps.iter().enumerate() {
        let PhantomStep {
            material,
            thickness_mm,
            box_px,
            ..
        } = step;
        let name = format!("steps[{index}] ({material} {thickness_mm} mm)");
        if !inside(*box_px) {
            return Err(format!(
                "{name}: box_px {box_px:?} lies outside the {w} x {h} image"
            ));
        }
        let core = interior(*box_px, 0.2);
        let high = box_values(scan.att_high, w, core);
        let low = box_values(scan.att_low, w, core);
        let (a_high, sd_high, _) = mean_sd(high.iter().copied());
        let (a_low, _, _) = mean_sd(low.iter().copied());
        let (net_high, net_low) = (a_high - air_high, a_low - air_low);
        if net_high < 5.0 * sigma.max(1e-3) {
            return Err(format!(
                "{name}: nothing in the beam there (attenuation {net_high:.3}): the step is \
                 missing or its box_px is wrong"
            ));
        }
        if a_high > starved || a_low > starved + 1.0 {
            return Err(format!(
                "{name}: saturated (attenuation {a_high:.2}, fewer than about 20 photons per \
                 pixel): use a thinner step"
            ));
        }
        // Both halves of the step must agree, or the box straddles an edge.
        let (x0, y0, x1, y1) = core;
        let mid = (x0 + x1) / 2;
        let (left, _, _) = mean_sd(box_values(scan.att_high, w, (x0, y0, mid, y1)).into_iter());
        let (right, _, _) = mean_sd(box_values(scan.att_high, w, (mid, y0, x1, y1)).into_iter());
        if (left - right).abs() > 0.05 * a_high + 4.0 * sd_high / (high.len() as f64 / 2.0).sqrt() {
            return Err(format!(
                "{name}: not uniform (attenuation {left:.3} on its left half, {right:.3} on \
                 its right): box_px {box_px:?} straddles an edge of the plate"
            ));
        }
        out.push(StepMeasure {
            index,
            material: material.clone(),
            thickness_mm: *thickness_mm,
            areal_mass: step.areal_mass(),
            a_high: net_high,
            a_low: net_low,
        });
    }
    Ok((out, photons))
}

/// Fits a calibration from the measured steps; `scanner` names the scanner in the file.
pub fn fit(
    steps: &[StepMeasure],
    photons_in_air: f64,
    pitch_mm: [f64; 2],
    scanner: &str,
    phantom_name: &str,
) -> Result<PhantomFit, String> {
    let of = |names: &[&str]| -> Vec<&StepMeasure> {
        steps
            .iter()
            .filter(|s| names.contains(&s.material.as_str()))
            .collect()
    };
    let (organic, uses_water) = {
        let pe = of(&["polyethylene"]);
        if pe.len() >= 2 {
            (pe, false)
        } else {
            (of(&["water"]), true)
        }
    };
    let (aluminium, steel, lead) = (of(&["aluminium"]), of(&["steel"]), of(&["lead"]));
    for (what, set) in [
        ("polyethylene or water", &organic),
        ("aluminium", &aluminium),
        ("steel", &steel),
    ] {
        if set.len() < 2 {
            return Err(format!(
                "the phantom needs at least two steps of {what} of different thickness, has {}",
                set.len()
            ));
        }
    }
    let mass_line = |set: &[&StepMeasure]| {
        line(
            &set.iter()
                .map(|s| (s.a_high, s.a_high / s.areal_mass))
                .collect::<Vec<_>>(),
        )
    };
    let ratio_line = |set: &[&StepMeasure]| {
        line(
            &set.iter()
                .map(|s| (s.a_high, s.ratio()))
                .collect::<Vec<_>>(),
        )
    };
    let (mu_org, mu_inorg, mu_metal) = (
        Curve(mass_line(&organic)),
        Curve(mass_line(&aluminium)),
        Curve(mass_line(&steel)),
    );
    let (r_org, r_alu, r_steel) = (
        ratio_line(&organic),
        ratio_line(&aluminium),
        ratio_line(&steel),
    );
    // Boundaries at fixed fractions between the lines (see the module docs).
    let between = |low: &[f64], high: &[f64], f: f64| {
        let at = |c: &[f64], k: usize| c.get(k).copied().unwrap_or(0.0);
        Curve(
            (0..2)
                .map(|k| at(low, k) + f * (at(high, k) - at(low, k)))
                .collect(),
        )
    };
    let (f_organic, f_mixed) = if uses_water {
        (0.78, 0.35)
    } else {
        (0.46, 0.20)
    };
    let organic_min = between(&r_alu, &r_org, f_organic);
    let mixed_min = between(&r_alu, &r_org, f_mixed);
    let inorganic_min = between(&r_steel, &r_alu, 0.44);
    // With two lead steps or more, heavy metal gets its own μ/ρ, below the line halfway between
    // lead's and steel's ratios.
    let heavy = (lead.len() >= 2).then(|| {
        (
            Curve(mass_line(&lead)),
            between(&ratio_line(&lead), &r_steel, 0.5),
        )
    });
    let noise = 1.0 / photons_in_air.sqrt();
    let opaque = (photons_in_air / 10.0).ln().clamp(3.0, 13.0);
    // The least net attenuation scales with the noise left after the same smoothing.
    let min_net = (REFERENCE_MIN_NET * noise / REFERENCE_NOISE).clamp(0.15, 0.8);
    let mut residuals = Vec::new();
    let mut worst_mass = 0.0f64;
    for s in steps {
        let (mu, r_line) = match (s.material.as_str(), &heavy) {
            ("polyethylene" | "water", _) => (&mu_org, Some(&r_org)),
            ("aluminium", _) => (&mu_inorg, Some(&r_alu)),
            ("steel", _) => (&mu_metal, Some(&r_steel)),
            (_, Some((mu_heavy, _))) => (mu_heavy, None),
            _ => (&mu_metal, None),
        };
        let mass = s.a_high / mu.at(s.a_high);
        let mass_err = mass / s.areal_mass - 1.0;
        if s.material != "lead" || heavy.is_some() {
            worst_mass = worst_mass.max(mass_err.abs());
        }
        let ratio_fit = r_line.map(|c| Curve(c.clone()).at(s.a_high));
        // Without two lead steps, lead only checks the inorganic boundary.
        let mass_note = if s.material == "lead" && heavy.is_none() {
            "lead: class check only".to_owned()
        } else {
            format!("estimated {mass:7.2} ({:+.1} %)", mass_err * 100.0)
        };
        residuals.push(format!(
            "{:<36} A_high {:6.3}  ratio {:.4}{}  areal mass {:7.2} g/cm², {mass_note}",
            s.name(),
            s.a_high,
            s.ratio(),
            ratio_fit.map_or(String::new(), |f| format!(" (line {f:.4})")),
            s.areal_mass,
        ));
    }
    for s in &lead {
        let bound = inorganic_min.at(s.a_high);
        if s.ratio() >= bound {
            return Err(format!(
                "{}: its ratio {:.4} is not below the inorganic boundary {bound:.4}: the lead \
                 step or the steel and aluminium steps are wrong",
                s.name(),
                s.ratio()
            ));
        }
    }
    let smoothing = DEFAULT_SMOOTHING_MM;
    let mut toml = format!(
        "# Calibration of {scanner}, fitted by `edge-agent calibrate --phantom` from {phantom_name:?}\n\
         # ({} steps, pitch {:.2} x {:.2} mm, about {photons_in_air:.0} photons per pixel in air).\n\
         # Curves are polynomials in the cargo's net high-energy attenuation A: [c0, c1] is c0 + c1 A.\n\
         # Largest mass error on a step: {:.1} %. Per step:\n",
        steps.len(),
        pitch_mm[0],
        pitch_mm[1],
        worst_mass * 100.0
    );
    for r in &residuals {
        toml.push_str(&format!("#   {r}\n"));
    }
    toml.push_str(&format!(
        "scanner = {scanner:?}\n\n\
         # Effective mass attenuation coefficient at the high energy, cm²/g, against A.\n\
         mu_rho_organic = {}\nmu_rho_inorganic = {}\nmu_rho_metal = {}\n\n\
         # Ratio lines of the phantom's materials (for the record): organic {}, aluminium {}, steel {}.\n\
         ratio_organic_min = {}\nratio_mixed_min = {}\nratio_inorganic_min = {}\n\n\
         min_net_attenuation = {min_net:.3}\nopaque_attenuation = {opaque:.3}\nsmoothing_mm = {smoothing:.1}\n{}",
        mu_org.to_toml(),
        mu_inorg.to_toml(),
        mu_metal.to_toml(),
        Curve(r_org.clone()).to_toml(),
        Curve(r_alu.clone()).to_toml(),
        Curve(r_steel.clone()).to_toml(),
        organic_min.to_toml(),
        mixed_min.to_toml(),
        inorganic_min.to_toml(),
        heavy.as_ref().map_or(String::new(), |(mu, bound)| format!(
            "\n# Heavy metal (from the lead steps): weighed with its own coefficient below this ratio.\n\
             mu_rho_heavy = {}\nratio_heavy_max = {}\n",
            mu.to_toml(),
            bound.to_toml()
        )),
    ));
    let calibration = Calibration::parse(&toml)
        .map_err(|e| format!("the fitted calibration is unusable: {e}"))?;
    Ok(PhantomFit {
        calibration,
        toml,
        residuals,
        photons_in_air,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_fit_exactly_and_fall_back_to_a_constant() {
        let c = line(&[(1.0, 3.0), (2.0, 5.0), (4.0, 9.0)]);
        assert!((c[0] - 1.0).abs() < 1e-9 && (c[1] - 2.0).abs() < 1e-9);
        assert_eq!(line(&[(1.0, 3.0), (1.0, 5.0)]), vec![4.0]);
    }

    #[test]
    fn too_few_steps_of_a_material_is_an_error_naming_it() {
        let step = |m: &str, a: f64| StepMeasure {
            index: 0,
            material: m.into(),
            thickness_mm: 10.0,
            areal_mass: 10.0,
            a_high: a,
            a_low: a * 1.2,
        };
        let steps = [
            step("polyethylene", 0.5),
            step("polyethylene", 1.0),
            step("steel", 1.0),
            step("steel", 2.0),
            step("aluminium", 1.0),
        ];
        let e = fit(&steps, 40_000.0, [10.0; 2], "x", "y").unwrap_err();
        assert!(e.contains("aluminium"), "{e}");
    }
}
