//! A scanner's physics from its phantom scan, for projection on a scanner that is not one of
//! the simulator's profiles (`scanner-sim tip --phantom SIDECAR`).
//!
//! The phantom (`baylens.phantom/1`) gives, per step, a material and its thickness along the
//! beam; its scan gives each step's attenuation in both energies. Within the profile model of
//! [`crate::profile`] (`A' = A / (1 + k·A)`, `μ_low' = μ_low · s · R^e`):
//! - the high energy's hardening `k_h` is the least-squares fit of `A'_h` against `μ_h·t`;
//! - for each candidate `k_l`, unhardened low attenuations give `ln(A_l / μ_l·t) = ln s + e·ln R`
//!   over the steps (R the material's table ratio), a straight line; the `k_l` whose line fits
//!   best gives `s` and `e`;
//! - photons per unobstructed pixel come from the noise in the air box (see [`photons`]).

use std::path::Path;

use baylens_protocol::cargo_space::attenuation;
use baylens_protocol::phantom::PhantomDescription;

use super::{Cleared, load};
use crate::materials::{ALUMINIUM, LEAD, Material, PLASTIC, STEEL, WATER};
use crate::profile::{SCANNER_SIM, ScannerProfile};
use crate::render::Detector;

/// Columns between the two readings of a noise pair: beyond any blur's reach.
const PAIR: usize = 12;
/// Lags (pixels, each way) over which neighbouring detector elements may share noise
/// (crosstalk); further lags add more estimation noise than they hold.
const LAGS: usize = 1;

/// What the fit found, to print.
#[derive(Debug, Clone)]
pub struct Fit {
    /// The profile to project with.
    pub profile: ScannerProfile,
    /// Root-mean-square residual of the high and the low energy over the steps (attenuation).
    pub rms: [f64; 2],
    /// Steps used.
    pub steps: usize,
}

fn material(name: &str) -> Option<Material> {
    match name {
        "polyethylene" => Some(PLASTIC),
        "water" => Some(WATER),
        "aluminium" => Some(ALUMINIUM),
        "steel" => Some(STEEL),
        "lead" => Some(LEAD),
        _ => None,
    }
}

/// The median of `att` over the middle half of `[x, y, w, h]`.
fn middle_median(att: &[f32], width: usize, [x, y, w, h]: [u32; 4]) -> Option<f64> {
    let (x, y, w, h) = (x as usize, y as usize, w as usize, h as usize);
    let (c0, c1, r0, r1) = (x + w / 4, x + w - w / 4, y + h / 4, y + h - h / 4);
    let mut v: Vec<f32> = (r0..r1)
        .flat_map(|r| (c0..c1).map(move |c| (r, c)))
        .filter_map(|(r, c)| att.get(r * width + c).copied())
        .collect();
    if v.is_empty() {
        return None;
    }
    let k = v.len() / 2;
    Some(f64::from(*v.select_nth_unstable_by(k, f32::total_cmp).1))
}

/// Photons per unobstructed pixel from the readings in the air box. Each reading is paired
/// with the one [`PAIR`] columns on in its row, which has the same channel gain and
/// independent noise: their difference carries twice the noise and no gain. A blur after
/// detection (crosstalk) would spread a pixel's noise over its neighbours but keep its sum, so
/// the noise variance of one pixel, `1/N` in transmission, is half the sum of the difference's
/// autocovariances over the lags crosstalk reaches ([`LAGS`]).
fn photons(readings: &[u16], width: usize, air: u16, dark: u16, b: [u32; 4]) -> Option<f64> {
    let (x, y, w, h) = (b[0] as usize, b[1] as usize, b[2] as usize, b[3] as usize);
    if w <= PAIR + 2 * LAGS || h <= 2 * LAGS + 4 {
        return None;
    }
    let span = f64::from(air.saturating_sub(dark)).max(1.0);
    let t = |r: usize, c: usize| (f64::from(readings[r * width + c]) - f64::from(dark)) / span;
    let (uw, uh) = (w - PAIR, h);
    let mut u: Vec<f64> = (0..uh)
        .flat_map(|r| (0..uw).map(move |c| (r, c)))
        .map(|(r, c)| t(y + r, x + c) - t(y + r, x + c + PAIR))
        .collect();
    let mean = u.iter().sum::<f64>() / u.len() as f64;
    u.iter_mut().for_each(|v| *v -= mean);
    let lag = LAGS as isize;
    let mut total = 0.0;
    for dy in -lag..=lag {
        for dx in -lag..=lag {
            let (mut sum, mut n) = (0.0, 0usize);
            for r in LAGS..uh - LAGS {
                for c in LAGS..uw - LAGS {
                    let (r2, c2) = ((r as isize + dy) as usize, (c as isize + dx) as usize);
                    sum += u[r * uw + c] * u[r2 * uw + c2];
                    n += 1;
                }
            }
            total += sum / n as f64;
        }
    }
    (total > 0.0).then(|| 2.0 / total)
}

/// Fits the scanner's physics from its phantom scan (`sidecar`, with `<scan_id>.phantom.json`
/// beside it). Errors name the file or the step.
pub fn fit(sidecar: &Path) -> Result<Fit, String> {
    let scan: Cleared = load(sidecar)?;
    let dir = sidecar.parent().unwrap_or(Path::new("."));
    let desc_path = dir.join(format!("{}.phantom.json", scan.sidecar.scan_id.as_str()));
    let bytes = std::fs::read(&desc_path)
        .map_err(|e| format!("{}: cannot read: {e}", desc_path.display()))?;
    let desc = PhantomDescription::from_json(&bytes)
        .map_err(|e| format!("{}: {e}", desc_path.display()))?;
    let (hi, lo) = (
        scan.sidecar.high(),
        scan.sidecar.low().expect("load checks it"),
    );
    let att = [
        attenuation(&scan.high, hi.air, hi.dark),
        attenuation(&scan.low, lo.air, lo.dark),
    ];
    // Per step: (x_h = μ_h·t, x_l = μ_l·t, measured A'_h, A'_l, ln R).
    let mut steps = Vec::new();
    for (i, s) in desc.steps.iter().enumerate() {
        let m = material(&s.material)
            .ok_or_else(|| format!("step {}: unknown material {:?}", i + 1, s.material))?;
        let rho = s.density();
        let (xh, xl) = (
            m.mu_per_mm(true, rho) * s.thickness_mm,
            m.mu_per_mm(false, rho) * s.thickness_mm,
        );
        let a = [0, 1].map(|e| middle_median(&att[e], scan.w, s.box_px));
        let (Some(ah), Some(al)) = (a[0], a[1]) else {
            return Err(format!("step {}: its box lies outside the scan", i + 1));
        };
        // A starved step says nothing about the curve.
        if ah < 7.0 && al < 7.0 {
            steps.push((xh, xl, ah, al, m.energy_ratio().ln()));
        }
    }
    if steps.len() < 4 {
        return Err(format!(
            "{}: only {} usable steps; the fit needs 4",
            desc_path.display(),
            steps.len()
        ));
    }
    let grid = (0..=600).map(|i| f64::from(i) * 0.0005);
    let harden = |x: f64, k: f64| x / (1.0 + k * x);
    let sq = |k: f64| -> f64 {
        steps
            .iter()
            .map(|&(xh, _, ah, _, _)| (ah - harden(xh, k)).powi(2))
            .sum()
    };
    let k_h = grid
        .clone()
        .min_by(|&a, &b| sq(a).total_cmp(&sq(b)))
        .unwrap_or(0.0);
    // For a k_l: the line ln(x_l'/x_l) = ln s + e ln R, and its residual in attenuation.
    let line = |k: f64| -> Option<(f64, f64, f64)> {
        let pts: Vec<(f64, f64)> = steps
            .iter()
            .map(|&(_, xl, _, al, ln_r)| {
                let ka = k * al;
                (ka < 0.95).then(|| (ln_r, ((al / (1.0 - ka)) / xl).ln()))
            })
            .collect::<Option<_>>()?;
        let n = pts.len() as f64;
        let (mx, my) = (
            pts.iter().map(|p| p.0).sum::<f64>() / n,
            pts.iter().map(|p| p.1).sum::<f64>() / n,
        );
        let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
        let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        let e = if sxx > 0.0 { sxy / sxx } else { 0.0 };
        let ln_s = my - e * mx;
        let res: f64 = steps
            .iter()
            .map(|&(_, xl, _, al, ln_r)| (al - harden(xl * (ln_s + e * ln_r).exp(), k)).powi(2))
            .sum();
        Some((res, ln_s.exp(), e))
    };
    let (res_l, k_l, scale, exponent) = grid
        .filter_map(|k| line(k).map(|(r, s, e)| (r, k, s, e)))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .ok_or("no hardening fits the low-energy steps")?;
    let air_box = desc
        .air_box_px
        .unwrap_or([0, 0, scan.w as u32, (scan.h / 10) as u32]);
    let n = [(&scan.high, hi), (&scan.low, lo)].map(|(r, img)| {
        photons(r, scan.w, img.air, img.dark, air_box).ok_or_else(|| {
            format!(
                "{}: the air box is too small to read the noise",
                desc_path.display()
            )
        })
    });
    let [n_h, n_l] = [n[0].clone()?, n[1].clone()?];
    let detector = |energy_mev, air, dark, photons_in_air| Detector {
        energy_mev,
        photons_in_air,
        air,
        dark,
    };
    let profile = ScannerProfile {
        name: "phantom fit",
        description: "fitted from the site's phantom scan",
        high: detector(hi.energy_mev, hi.air, hi.dark, n_h),
        low: detector(lo.energy_mev, lo.air, lo.dark, n_l),
        ratio_scale: scale,
        ratio_exponent: exponent,
        hardening_high: k_h,
        hardening_low: k_l,
        psf_centre: SCANNER_SIM.psf_centre,
        psf_passes: SCANNER_SIM.psf_passes,
        gain_spread: 0.0,
        read_noise: 0.0,
        pitch_mm: scan.sidecar.pitch_mm(),
    };
    let rms_h = (sq(k_h) / steps.len() as f64).sqrt();
    Ok(Fit {
        profile,
        rms: [rms_h, (res_l / steps.len() as f64).sqrt()],
        steps: steps.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{GANTRY_C, PORTAL_B};
    use crate::render::RenderOptions;
    use crate::write::{ScanMeta, write_atomic, write_scan};

    #[test]
    fn a_phantom_scan_gives_back_the_scanners_physics() {
        for truth in [PORTAL_B, GANTRY_C] {
            let dir = tempfile::tempdir().unwrap();
            let (scan, desc) = crate::phantom::phantom(
                RenderOptions::for_profile(truth),
                &mut crate::scan_rng(1, 0),
            );
            let meta = ScanMeta {
                scan_id: baylens_protocol::ScanId::parse("BAY01-ph").unwrap(),
                bay: baylens_protocol::BayId::parse("BAY01").unwrap(),
                captured_at: chrono::Utc::now(),
                container_code: None,
                declaration_ref: None,
            };
            let files = write_scan(dir.path(), &scan, &meta, false).unwrap();
            let json = serde_json::to_vec(&desc).unwrap();
            write_atomic(dir.path(), "BAY01-ph.phantom.json", &json).unwrap();
            let f = fit(&files.sidecar).unwrap();
            let p = f.profile;
            let name = truth.name;
            assert!(
                (p.hardening_high - truth.hardening_high).abs() < 0.0015,
                "{name}: {p:?}"
            );
            assert!(
                (p.hardening_low - truth.hardening_low).abs() < 0.0025,
                "{name}: {p:?}"
            );
            assert!(
                (p.ratio_scale / truth.ratio_scale - 1.0).abs() < 0.03,
                "{name}: {p:?}"
            );
            assert!(
                (p.ratio_exponent - truth.ratio_exponent).abs() < 0.2,
                "{name}: {p:?}"
            );
            for (got, want) in [
                (p.high.photons_in_air, truth.high.photons_in_air),
                (p.low.photons_in_air, truth.low.photons_in_air),
            ] {
                assert!(
                    (got / want - 1.0).abs() < 0.15,
                    "{name}: photons {got} vs {want}"
                );
            }
        }
    }
}
