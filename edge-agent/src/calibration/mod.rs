//! Calibration: detector readings to transmission, attenuation and areal mass, the container's
//! place in the scan, and the cargo's estimated mass. Pure functions over plain data.
//!
//! # Method
//! 1. **Transmission and attenuation**, per energy: `T = clamp((I − dark) / (air − dark), 1e-6, 1)`,
//!    `A = −ln T`. Air and dark come from the sidecar (the scanner measures them every scan).
//! 2. **The container**: its end walls are the outermost columns that are dark over most of
//!    their height (the steel end wall lies along the ray for the full 2.35 m width); its floor
//!    is where the rows stop being light (floor boards and underframe); its top likewise under
//!    the roof. Dead detector channels are replaced by their neighbours first.
//! 3. **The cargo alone**: each row's baseline is the 2nd percentile of the (7 × 7 averaged)
//!    attenuation across the container's length: side walls and roof are uniform along the
//!    container, so what remains above the baseline is cargo. Containers are never loaded so
//!    full that 2 % of their length has no gap in a row (doors, pallet gaps).
//! 4. **Areal mass**: `ρt = A_net / (μ/ρ)` in g/cm², with μ/ρ at the high energy for the pixel's
//!    material class (see [`crate::material_map`]); times the pixel's area at the centre plane,
//!    summed, it is the cargo's mass. Opaque pixels give a lower bound and are counted.
//!
//! The constants of one scanner live in a TOML file ([`Calibration`], module `file`); the
//! committed `assets/calibration/scanner-sim.toml` is the simulator's, and
//! `edge-agent calibrate` makes one for any other scanner (`crate::commission`).

mod file;

pub use file::{Calibration, ConcealmentSettings, Curve, DEFAULT_SMOOTHING_MM, SCANNER_SIM};

pub use baylens_protocol::cargo_space::{
    BASELINE_QUANTILE, CargoSpace, attenuation, locate_cargo_space, patch_dead_rows, quantile,
};

use crate::material_map::{MaterialClass, classify};

/// Box average with half-size `r` (edges use the pixels that exist). Separable: each row's
/// window sums along x (from a prefix sum, in f64), then a running sum of those down the
/// columns, kept for the `2r + 1` rows in the window only, so the scan is read once and nothing
/// the size of the scan is allocated but the result.
pub fn box_mean(values: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; w * h];
    if w == 0 || h == 0 {
        return out;
    }
    let ring_len = 2 * r + 2;
    let mut ring = vec![0.0f64; ring_len * w];
    let mut prefix = vec![0.0f64; w + 1];
    let mut row_sums = |y: usize, dst: &mut [f64]| {
        for (x, &v) in values[y * w..(y + 1) * w].iter().enumerate() {
            prefix[x + 1] = prefix[x] + f64::from(v);
        }
        for (x, d) in dst.iter_mut().enumerate() {
            *d = prefix[(x + r + 1).min(w)] - prefix[x.saturating_sub(r)];
        }
    };
    let mut column = vec![0.0f64; w];
    // How many columns each window spans (fewer at the edges), as reciprocals: a multiply per
    // pixel instead of a divide.
    let inv_cols: Vec<f64> = (0..w)
        .map(|x| 1.0 / ((x + r + 1).min(w) - x.saturating_sub(r)) as f64)
        .collect();
    for y in 0..(r + 1).min(h) {
        let slot = &mut ring[(y % ring_len) * w..(y % ring_len + 1) * w];
        row_sums(y, slot);
        for (c, s) in column.iter_mut().zip(slot.iter()) {
            *c += s;
        }
    }
    for y in 0..h {
        let inv_rows = 1.0 / ((y + r + 1).min(h) - y.saturating_sub(r)) as f64;
        for ((o, c), ic) in out[y * w..(y + 1) * w]
            .iter_mut()
            .zip(&column)
            .zip(&inv_cols)
        {
            *o = (c * (inv_rows * ic)) as f32;
        }
        // Slide the window down one row: the row below enters, the top row leaves.
        if y + r + 1 < h {
            let entering = y + r + 1;
            let slot = &mut ring[(entering % ring_len) * w..(entering % ring_len + 1) * w];
            row_sums(entering, slot);
            for (c, s) in column.iter_mut().zip(slot.iter()) {
                *c += s;
            }
        }
        if y >= r {
            let leaving = y - r;
            let slot = &ring[(leaving % ring_len) * w..(leaving % ring_len + 1) * w];
            for (c, s) in column.iter_mut().zip(slot) {
                *c -= s;
            }
        }
    }
    out
}

/// Per row of the cargo space, the container's own attenuation: the 2nd percentile across the
/// cargo space's columns of the smoothed attenuation.
pub fn row_baseline(smoothed: &[f32], w: usize, space: &CargoSpace) -> Vec<f32> {
    (space.top..space.floor)
        .map(|r| {
            quantile(
                &smoothed[r * w + space.x0..r * w + space.x1],
                BASELINE_QUANTILE,
            )
        })
        .collect()
}

/// What the calibration makes of one scan's cargo.
#[derive(Debug, Clone, PartialEq)]
pub struct CargoEstimate {
    /// Where the cargo space is.
    pub space: CargoSpace,
    /// Estimated cargo mass, kg (a lower bound where pixels are opaque).
    pub mass_kg: f64,
    /// Share of the cargo space's pixels that are opaque.
    pub opaque_fraction: f64,
    /// Share of the cargo space holding material (net attenuation above the minimum).
    pub fill_fraction: f64,
    /// Estimated mass per material class, kg: organic, mixed, inorganic, metal, opaque.
    pub mass_by_class: [f64; 5],
    /// Mass in pixels too thin to classify (signed: noise sums to about zero), kg.
    pub unclassified_kg: f64,
    /// Material class of every pixel of the scan, row-major ([`MaterialClass`] as `u8`; `None`
    /// outside the cargo space).
    pub classes: Vec<u8>,
    /// Estimated mass per column of the cargo space (`space.x0..space.x1`), kg (signed, like
    /// `unclassified_kg`; opaque pixels count their lower bound).
    pub column_kg: Vec<f64>,
    /// Pixels holding material per column of the cargo space.
    pub column_filled: Vec<u32>,
}

/// Estimates the cargo's mass and material classes from both energies' attenuation. `pitch_mm`
/// is `[horizontal, vertical]` at the mid-plane.
pub fn estimate_cargo(
    att_high: &[f32],
    att_low: &[f32],
    w: usize,
    h: usize,
    pitch_mm: [f64; 2],
    cal: &Calibration,
) -> Option<CargoEstimate> {
    // The two energies are independent until classification: one thread each.
    let r = cal.smoothing_px(pitch_mm);
    let prepare = |att: &[f32]| {
        let patched = patch_dead_rows(att, w, h);
        let smoothed = box_mean(&patched, w, h, r);
        (patched, smoothed)
    };
    let ((att_high, sh), (_, sl)) = std::thread::scope(|s| {
        let low = s.spawn(|| prepare(att_low));
        let high = prepare(att_high);
        (
            high,
            low.join().expect("low-energy preparation does not panic"),
        )
    });
    let att_high = &att_high;
    let space = locate_cargo_space(att_high, w, h, pitch_mm[0])?;
    let (base_h, base_l) = std::thread::scope(|s| {
        let low = s.spawn(|| row_baseline(&sl, w, &space));
        (
            row_baseline(&sh, w, &space),
            low.join().expect("baseline does not panic"),
        )
    });
    let pixel_cm2 = pitch_mm[0] / 10.0 * (pitch_mm[1] / 10.0);
    let mut classes = vec![MaterialClass::None as u8; w * h];
    let (mut mass_by_class, mut unclassified_kg) = ([0.0f64; 5], 0.0f64);
    let (mut opaque, mut filled) = (0usize, 0usize);
    let mut column_kg = vec![0.0f64; space.x1 - space.x0];
    let mut column_filled = vec![0u32; space.x1 - space.x0];
    for (i, row) in (space.top..space.floor).enumerate() {
        for c in space.x0..space.x1 {
            let p = row * w + c;
            let net_h = f64::from(att_high[p] - base_h[i]);
            let smooth_net_h = f64::from(sh[p] - base_h[i]);
            let class = classify(
                smooth_net_h,
                f64::from(sl[p] - base_l[i]),
                f64::from(sh[p]),
                cal,
            );
            classes[p] = class as u8;
            opaque += usize::from(class == MaterialClass::Opaque);
            filled += usize::from(class != MaterialClass::None);
            column_filled[c - space.x0] += u32::from(class != MaterialClass::None);
            // Signed: noise averages out instead of piling up.
            let ratio = f64::from(sl[p] - base_l[i]) / smooth_net_h;
            let grams = net_h / cal.mu_rho(class, smooth_net_h, ratio) * pixel_cm2;
            column_kg[c - space.x0] += grams / 1000.0;
            if let Some(slot) = class.index() {
                mass_by_class[slot] += grams / 1000.0;
            } else {
                unclassified_kg += grams / 1000.0;
            }
        }
    }
    let n = space.pixels().max(1) as f64;
    Some(CargoEstimate {
        space,
        mass_kg: (mass_by_class.iter().sum::<f64>() + unclassified_kg).max(0.0),
        opaque_fraction: opaque as f64 / n,
        fill_fraction: filled as f64 / n,
        mass_by_class,
        unclassified_kg,
        classes,
        column_kg,
        column_filled,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use baylens_protocol::{BayId, ScanId};
    use scanner_sim::render::{HIGH, LOW};
    use scanner_sim::{Scenario, ScenarioChoice, SimOptions, generate};

    pub(crate) fn simulated(scenario: Scenario, seed: u64, i: u64) -> scanner_sim::Generated {
        generate(
            SimOptions::new(ScenarioChoice::Fixed(scenario)),
            seed,
            i,
            ScanId::parse("T").unwrap(),
            BayId::parse("BAY01").unwrap(),
            chrono::Utc::now(),
        )
    }

    pub(crate) fn estimate(g: &scanner_sim::Generated) -> Option<CargoEstimate> {
        let (w, h) = (g.scan.width as usize, g.scan.height as usize);
        let ah = attenuation(&g.scan.high, HIGH.air, HIGH.dark);
        let al = attenuation(&g.scan.low, LOW.air, LOW.dark);
        estimate_cargo(
            &ah,
            &al,
            w,
            h,
            [g.scan.pitch_mm, g.scan.pitch_vertical_mm],
            &Calibration::scanner_sim(),
        )
    }

    #[test]
    fn attenuation_is_zero_in_air_and_capped_when_dark() {
        let a = attenuation(&[60_000, 300, 30_150], 60_000, 300);
        assert!(a[0].abs() < 1e-6);
        assert!((a[1] - 13.8155).abs() < 1e-3);
        assert!((a[2] - std::f32::consts::LN_2).abs() < 1e-3);
    }

    #[test]
    fn box_mean_of_a_constant_is_the_constant_and_it_smooths_a_spike() {
        let mut v = vec![1.0f32; 15 * 9];
        assert!(
            box_mean(&v, 15, 9, 2)
                .iter()
                .all(|x| (x - 1.0).abs() < 1e-6)
        );
        v[4 * 15 + 7] = 26.0;
        let m = box_mean(&v, 15, 9, 2);
        assert!((m[4 * 15 + 7] - 2.0).abs() < 1e-5);
    }

    #[test]
    fn box_mean_matches_the_definition_at_every_pixel_and_edge() {
        let (w, h) = (23, 17);
        let v: Vec<f32> = (0..w * h).map(|i| ((i * 7919) % 97) as f32 / 7.0).collect();
        for r in [0, 1, 3, 9, 30] {
            let m = box_mean(&v, w, h, r);
            for y in 0..h {
                for x in 0..w {
                    let (y0, y1) = (y.saturating_sub(r), (y + r + 1).min(h));
                    let (x0, x1) = (x.saturating_sub(r), (x + r + 1).min(w));
                    let mut sum = 0.0f64;
                    for yy in y0..y1 {
                        for xx in x0..x1 {
                            sum += f64::from(v[yy * w + xx]);
                        }
                    }
                    let want = (sum / ((y1 - y0) * (x1 - x0)) as f64) as f32;
                    assert!((m[y * w + x] - want).abs() < 1e-5, "r {r} at {x},{y}");
                }
            }
        }
    }

    #[test]
    fn the_cargo_space_is_found_inside_the_container_in_every_layout() {
        for i in 0..24 {
            let g = simulated(Scenario::Empty, 31, i);
            let (w, h) = (g.scan.width as usize, g.scan.height as usize);
            let ah = patch_dead_rows(&attenuation(&g.scan.high, HIGH.air, HIGH.dark), w, h);
            let s = locate_cargo_space(&ah, w, h, g.scan.pitch_mm)
                .unwrap_or_else(|| panic!("scan {i}"));
            let [el, _, eh] = g.truth.container.exterior();
            let length_px = el / g.scan.pitch_mm;
            // Inside the walls, most of the container's length.
            let stretch = g.scan.defects.stretch.map_or(1.0, |(_, _, f)| f);
            assert!(
                (s.x1 - s.x0) as f64 > 0.9 * length_px - 40.0
                    && ((s.x1 - s.x0) as f64) < length_px * stretch,
                "scan {i}: {s:?}, length {length_px}"
            );
            let height_px = (s.floor - s.top) as f64 * g.scan.pitch_mm;
            assert!(
                height_px > 0.8 * eh && height_px < 1.25 * eh,
                "scan {i}: {s:?}"
            );
        }
        // No container, no cargo space.
        assert!(locate_cargo_space(&[0.0; 200 * 100], 200, 100, 10.0).is_none());
    }

    #[test]
    fn estimated_cargo_mass_follows_the_true_mass() {
        let mut errors = Vec::new();
        for i in 0..40 {
            let g = simulated(Scenario::Honest, 41, i);
            let e = estimate(&g).expect("a container is found");
            if e.opaque_fraction > 0.005 || g.truth.cargo_mass_kg < 500.0 {
                continue; // opaque loads give a lower bound only
            }
            let packing: Vec<_> = g
                .truth
                .items
                .iter()
                .map(|it| (it.packing, it.material))
                .collect();
            errors.push((
                e.mass_kg / g.truth.cargo_mass_kg - 1.0,
                i,
                e.mass_kg,
                g.truth.cargo_mass_kg,
                packing,
            ));
        }
        errors.sort_by(|a, b| a.0.abs().total_cmp(&b.0.abs()));
        let median = errors[errors.len() / 2].0.abs();
        let within = errors.iter().filter(|e| e.0.abs() < 0.15).count();
        println!("mass error over {} scans: median {median:.3}", errors.len());
        for e in errors.iter().filter(|e| e.0.abs() > 0.1) {
            println!("  {e:?}");
        }
        assert!(errors.len() >= 20);
        assert!(median < 0.08, "median relative error {median}");
        assert!(
            within * 10 >= errors.len() * 9,
            "{within} of {} within 15 %",
            errors.len()
        );
    }

    #[test]
    fn an_empty_container_weighs_almost_nothing() {
        for i in 0..10 {
            let e = estimate(&simulated(Scenario::Empty, 43, i)).unwrap();
            assert!(e.mass_kg < 300.0, "scan {i}: {} kg", e.mass_kg);
            assert!(e.fill_fraction < 0.02, "scan {i}: fill {}", e.fill_fraction);
        }
    }
}
