//! From a scene to detector readings: fan-beam ray sums through every solid (see
//! [`crate::geometry`]), then the detector: a point-spread blur, Poisson photon noise, a gain per
//! detector channel (stripes), electronic noise, air and dark offsets, 16-bit readings, and now
//! and then the defects real scanners have (dead channels, a truck that slows down in the beam).

use rand::Rng;
use rand_distr::{Distribution, Normal, Poisson, StandardNormal};
use serde::Serialize;

pub use crate::grid::{Grid, RaySums};
use crate::profile::{SCANNER_SIM, ScannerProfile};
use crate::scene::Scene;

/// Detector settings for one beam energy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detector {
    /// Nominal beam energy, MeV.
    pub energy_mev: f64,
    /// Photons reaching an unobstructed pixel; sets the noise level.
    pub photons_in_air: f64,
    /// Reading with nothing in the beam.
    pub air: u16,
    /// Reading with the beam off.
    pub dark: u16,
}

/// The high-energy beam of the simulated linac.
pub const HIGH: Detector = Detector {
    energy_mev: 6.0,
    photons_in_air: 40_000.0,
    air: 60_000,
    dark: 300,
};

/// The low-energy beam: fewer photons, so noisier.
pub const LOW: Detector = Detector {
    energy_mev: 4.0,
    photons_in_air: 25_000.0,
    air: 52_000,
    dark: 280,
};

/// Standard deviation of the per-channel gain after the scanner's own flat-field correction.
pub const GAIN_SPREAD: f64 = 0.005;
/// Electronic (read-out) noise, in reading units.
pub const READ_NOISE: f64 = 2.0;
/// Above this many expected photons, Poisson noise is drawn from its normal approximation
/// (the two differ by less than the 16-bit quantisation there, and the normal is 5x faster).
pub const NORMAL_APPROX_ABOVE: f64 = 64.0;

/// Rendering settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RenderOptions {
    /// Pixel pitch at the centre plane, mm. 10 mm by default: a 40' container on a truck is
    /// about 1,900 columns, what drive-through portals deliver. Horizontal, and vertical too
    /// unless `pitch_vertical_mm` is set.
    pub pitch_mm: f64,
    /// Pitch between detector rows at the centre plane, mm, when it differs from `pitch_mm`.
    pub pitch_vertical_mm: Option<f64>,
    /// Allow dead channels and motion stretch (on by default; tests switch them off to measure
    /// clean statistics).
    pub defects: bool,
    /// The scanner: spectrum, hardening, detector (see [`crate::profile`]).
    pub profile: ScannerProfile,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            pitch_mm: 10.0,
            pitch_vertical_mm: None,
            defects: true,
            profile: SCANNER_SIM,
        }
    }
}

impl RenderOptions {
    /// A profile at its own pitch, defects on.
    pub fn for_profile(profile: ScannerProfile) -> Self {
        let [x, y] = profile.pitch_mm;
        Self {
            pitch_mm: x,
            pitch_vertical_mm: (y != x).then_some(y),
            defects: true,
            profile,
        }
    }
}

/// Detector defects present in a scan (part of its ground truth).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Defects {
    /// Detector rows that read dark (dead channels).
    pub dead_rows: Vec<u32>,
    /// Columns `[first, last)` where the truck slowed down and the image is stretched, and the
    /// stretch factor (columns per nominal column).
    pub stretch: Option<(u32, u32, f64)>,
}

/// A rendered scan: readings of both energies and the truth mask, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedScan {
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Nominal pixel pitch at the centre plane, mm (horizontal).
    pub pitch_mm: f64,
    /// Pitch between detector rows at the centre plane, mm.
    pub pitch_vertical_mm: f64,
    /// The high-energy detector (air and dark readings for the sidecar).
    pub high_detector: Detector,
    /// The low-energy detector.
    pub low_detector: Detector,
    /// High-energy readings.
    pub high: Vec<u16>,
    /// Low-energy readings.
    pub low: Vec<u16>,
    /// 1 where concealed goods or a false structure are, else 0.
    pub concealment_mask: Vec<u8>,
    /// Bounding box `[x, y, width, height]` of each truth item, by item index.
    pub item_boxes: Vec<Option<[u32; 4]>>,
    /// Defects drawn into this scan.
    pub defects: Defects,
}

/// The x position (mm) of each image column, and the column's width: uniform, except over a
/// stretch where the truck moved slower than the scanner assumed.
fn columns(length_mm: f64, pitch: f64, stretch: Option<(f64, f64, f64)>) -> (Vec<f64>, Vec<f64>) {
    let (mut xs, mut ws) = (Vec::new(), Vec::new());
    let mut x = 0.0;
    while x < length_mm {
        let step = match stretch {
            Some((a, b, f)) if (a..b).contains(&x) => pitch / f,
            _ => pitch,
        };
        xs.push(x + step / 2.0);
        ws.push(step);
        x += step;
    }
    (xs, ws)
}

/// Renders a scene into noisy 16-bit detector readings. Deterministic for a given `rng` state.
pub fn render(scene: &Scene, options: RenderOptions, rng: &mut impl Rng) -> SimulatedScan {
    let pitch = options.pitch_mm;
    let pitch_v = options.pitch_vertical_mm.unwrap_or(pitch);
    let profile = options.profile;
    let layout = scene.layout;
    let mut defects = Defects::default();
    let stretch = (options.defects && rng.random_bool(0.1)).then(|| {
        let len = rng.random_range(1_500.0..=4_000.0);
        let start = rng.random_range(0.0..=(layout.length_mm - len));
        (start, start + len, rng.random_range(1.3..=2.0))
    });
    let (xs, col_width) = columns(layout.length_mm, pitch, stretch);
    let h = (layout.height_mm / pitch_v).round() as usize;
    if let Some((a, b, f)) = stretch {
        let col = |x: f64| xs.partition_point(|&c| c < x) as u32;
        defects.stretch = Some((col(a), col(b), f));
    }
    if options.defects && rng.random_bool(0.15) {
        for _ in 0..rng.random_range(1..=2) {
            defects.dead_rows.push(rng.random_range(0..h as u32));
        }
    }

    let grid = Grid::new(xs, col_width, h, pitch_v);
    let sums = grid.ray_sums(&scene.solids, scene.truth.items.len(), &profile);
    let (w, mut att_high, mut att_low, mask, boxes) = (
        grid.width(),
        sums.high,
        sums.low,
        sums.mask,
        sums.item_boxes,
    );
    // Numerical dust from adding and removing material (hollow drums, displaced cargo).
    for a in att_high.iter_mut().chain(att_low.iter_mut()) {
        *a = a.max(0.0);
    }
    profile.harden(&mut att_high, true);
    profile.harden(&mut att_low, false);
    let item_boxes = boxes
        .into_iter()
        .map(|b| b.map(|[x0, y0, x1, y1]| [x0, y0, x1 - x0 + 1, y1 - y0 + 1]))
        .collect();
    let high = detect(
        &att_high,
        (w, h),
        profile.high,
        &profile,
        &defects.dead_rows,
        rng,
    );
    let low = detect(
        &att_low,
        (w, h),
        profile.low,
        &profile,
        &defects.dead_rows,
        rng,
    );
    SimulatedScan {
        width: w as u32,
        height: h as u32,
        pitch_mm: pitch,
        pitch_vertical_mm: pitch_v,
        high_detector: profile.high,
        low_detector: profile.low,
        high,
        low,
        concealment_mask: mask,
        item_boxes,
        defects,
    }
}

/// The detector: expected photon counts, a 3-tap point-spread blur in both directions ([1 2 1]/4
/// on the training scanner), photon noise, a gain per detector channel (row), read-out noise,
/// and the air/dark scaling to 16 bits. Dead channels read dark.
fn detect(
    attenuation: &[f32],
    (w, h): (usize, usize),
    det: Detector,
    profile: &ScannerProfile,
    dead_rows: &[u32],
    rng: &mut impl Rng,
) -> Vec<u16> {
    let n0 = det.photons_in_air as f32;
    let expected: Vec<f32> = attenuation.iter().map(|a| n0 * (-a).exp()).collect();
    let mut blurred = expected;
    for _ in 0..profile.psf_passes {
        blurred = blur_3tap(&blurred, w, h, profile.psf_centre);
    }
    let gain_noise = Normal::new(1.0, profile.gain_spread.max(0.0)).expect("valid deviation");
    let gains: Vec<f64> = (0..h).map(|_| gain_noise.sample(rng)).collect();
    let span = f64::from(det.air - det.dark);
    let mut out = Vec::with_capacity(w * h);
    for (row, values) in blurred.chunks_exact(w).enumerate() {
        let dead = dead_rows.contains(&(row as u32));
        let scale = span * gains[row] / det.photons_in_air;
        for &lambda in values {
            let lambda = f64::from(lambda);
            let photons = if dead {
                0.0
            } else if lambda > NORMAL_APPROX_ABOVE {
                let z: f64 = StandardNormal.sample(rng);
                lambda + lambda.sqrt() * z
            } else if lambda > 0.0 {
                Poisson::new(lambda).map(|p| p.sample(rng)).unwrap_or(0.0)
            } else {
                0.0
            };
            let z: f64 = StandardNormal.sample(rng);
            let reading = f64::from(det.dark) + scale * photons + profile.read_noise * z;
            out.push(reading.round().clamp(0.0, 65535.0) as u16);
        }
    }
    out
}

/// The kernel `[(1 - c) / 2, c, (1 - c) / 2]` along rows, then down columns.
pub(crate) fn blur_3tap(values: &[f32], w: usize, h: usize, centre: f32) -> Vec<f32> {
    let side = (1.0 - centre) / 2.0;
    let mut horizontal = vec![0.0; values.len()];
    for (src, dst) in values.chunks_exact(w).zip(horizontal.chunks_exact_mut(w)) {
        for c in 0..w {
            let left = src[c.saturating_sub(1)];
            let right = src[(c + 1).min(w - 1)];
            dst[c] = side * left + centre * src[c] + side * right;
        }
    }
    let mut out = vec![0.0; values.len()];
    for r in 0..h {
        let up = &horizontal[r.saturating_sub(1) * w..][..w];
        let mid = &horizontal[r * w..][..w];
        let down = &horizontal[(r + 1).min(h - 1) * w..][..w];
        for (c, o) in out[r * w..][..w].iter_mut().enumerate() {
            *o = side * up[c] + centre * mid[c] + side * down[c];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{ContainerType, Layout, cuboid};
    use crate::materials::{ALUMINIUM, CELLULOSE, LEAD, Material, STEEL, WATER};
    use crate::scan_rng;
    use crate::scene::{Scenario, SceneOptions, Truth, build};

    const CLEAN: RenderOptions = RenderOptions {
        pitch_mm: 10.0,
        pitch_vertical_mm: None,
        defects: false,
        profile: SCANNER_SIM,
    };

    fn attenuation(reading: u16, det: Detector) -> f64 {
        let t = (f64::from(reading) - f64::from(det.dark)) / f64::from(det.air - det.dark);
        -t.max(1e-6).ln()
    }

    /// An empty, truckless 20' scene with extra solids: a bench for physics checks.
    fn bench_scene(extra: Vec<crate::geometry::Solid>) -> Scene {
        let layout = Layout::new(ContainerType::Twenty, false);
        let mut scene = build(
            Scenario::Empty,
            SceneOptions {
                container: Some(ContainerType::Twenty),
                truck: Some(false),
            },
            &mut scan_rng(1, 0),
        );
        scene.layout = layout;
        scene.solids.extend(extra);
        scene
    }

    fn mean_attenuation(
        scan: &SimulatedScan,
        det: Detector,
        cols: [u32; 2],
        rows: [u32; 2],
    ) -> f64 {
        let readings = if det == HIGH { &scan.high } else { &scan.low };
        let mut s = 0.0;
        let mut n = 0.0;
        for r in rows[0]..rows[1] {
            for c in cols[0]..cols[1] {
                s += attenuation(readings[(r * scan.width + c) as usize], det);
                n += 1.0;
            }
        }
        s / n
    }

    #[test]
    fn open_air_reads_the_air_value_with_poisson_noise() {
        let scene = bench_scene(vec![]);
        let scan = render(&scene, CLEAN, &mut scan_rng(1, 1));
        // Row 2 lies above the container: only air.
        let w = scan.width as usize;
        let row: Vec<f64> = scan.high[2 * w..3 * w]
            .iter()
            .map(|&r| (f64::from(r) - 300.0) / (60_000.0 - 300.0))
            .collect();
        let mean = row.iter().sum::<f64>() / row.len() as f64;
        let sd = (row.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / row.len() as f64).sqrt();
        assert!((mean - 1.0).abs() < 0.02, "mean transmission in air {mean}");
        // Poisson: relative sd 1/sqrt(40,000) = 0.005 (the blur acts on the beam before the
        // photons are counted, so it does not smooth the noise); read noise adds 3e-5 and the
        // channel gain is constant along a row.
        assert!((0.0046..0.0054).contains(&sd), "sd {sd}");
    }

    #[test]
    fn attenuation_grows_with_thickness_and_density_and_follows_beer_lambert() {
        let slab = |x: f64, depth: f64, m: Material, d: f64| {
            cuboid(
                [x, x + 400.0],
                [-depth / 2.0, depth / 2.0],
                [900.0, 1_500.0],
                m,
                d,
            )
        };
        let scene = bench_scene(vec![
            slab(1_000.0, 500.0, WATER, 1.0),
            slab(2_000.0, 1_000.0, WATER, 1.0),
            slab(3_000.0, 500.0, WATER, 2.0),
        ]);
        let scan = render(&scene, CLEAN, &mut scan_rng(2, 0));
        // Rows around 1.2 m, where the rays are almost horizontal (source at 1.3 m).
        let rows = [scan.height - 125, scan.height - 115];
        let at = |x0: u32| mean_attenuation(&scan, HIGH, [x0 + 10, x0 + 30], rows);
        let background = at(500);
        let (thin, thick, dense) = (
            at(100) - background,
            at(200) - background,
            at(300) - background,
        );
        let expected = WATER.mu_per_mm(true, 1.0) * 500.0;
        assert!(
            (thin - expected).abs() < 0.05 * expected,
            "thin {thin} vs {expected}"
        );
        assert!(
            (thick / thin - 2.0).abs() < 0.1,
            "thick/thin {}",
            thick / thin
        );
        assert!(
            (dense / thin - 2.0).abs() < 0.1,
            "dense/thin {}",
            dense / thin
        );
    }

    #[test]
    fn the_low_high_attenuation_ratio_orders_materials_by_atomic_number() {
        // Equal areal mass of four materials, each thick enough for a clean ratio.
        let materials = [CELLULOSE, ALUMINIUM, STEEL, LEAD];
        let solids = materials
            .iter()
            .enumerate()
            .map(|(k, m)| {
                let x = 800.0 + 1_200.0 * k as f64;
                let depth = 600.0 / m.density; // 60 g/cm² for every material
                cuboid(
                    [x, x + 600.0],
                    [-depth / 2.0, depth / 2.0],
                    [900.0, 1_500.0],
                    *m,
                    m.density,
                )
            })
            .collect();
        let scan = render(&bench_scene(solids), CLEAN, &mut scan_rng(3, 0));
        let rows = [scan.height - 125, scan.height - 115];
        let ratios: Vec<f64> = (0..4)
            .map(|k| {
                let c = (800 + 1_200 * k) / 10 + 10;
                let low = mean_attenuation(&scan, LOW, [c, c + 40], rows)
                    - mean_attenuation(&scan, LOW, [c + 80, c + 100], rows);
                let high = mean_attenuation(&scan, HIGH, [c, c + 40], rows)
                    - mean_attenuation(&scan, HIGH, [c + 80, c + 100], rows);
                low / high
            })
            .collect();
        for k in 0..3 {
            assert!(ratios[k] > ratios[k + 1], "ratios {ratios:?}");
        }
    }

    #[test]
    fn the_fan_beam_makes_objects_near_the_source_project_taller() {
        let block = |y: [f64; 2]| cuboid([2_000.0, 2_400.0], y, [1_800.0, 2_100.0], STEEL, 2.0);
        let near = render(
            &bench_scene(vec![block([-1_100.0, -900.0])]),
            CLEAN,
            &mut scan_rng(4, 0),
        );
        let far = render(
            &bench_scene(vec![block([900.0, 1_100.0])]),
            CLEAN,
            &mut scan_rng(4, 0),
        );
        let rows_above = |scan: &SimulatedScan| {
            let c = 220usize;
            (0..scan.height as usize)
                .filter(|&r| attenuation(scan.high[r * scan.width as usize + c], HIGH) > 0.8)
                .count()
        };
        assert!(
            rows_above(&near) > rows_above(&far) + 2,
            "{} vs {}",
            rows_above(&near),
            rows_above(&far)
        );
    }

    #[test]
    fn truth_boxes_and_masks_cover_what_was_hidden() {
        for i in 0..20 {
            let mut rng = scan_rng(5, i);
            let scene = build(Scenario::Concealment, SceneOptions::default(), &mut rng);
            let scan = render(&scene, RenderOptions::default(), &mut rng);
            let Truth { items, .. } = &scene.truth;
            for (k, item) in items.iter().enumerate().filter(|(_, it)| it.concealed) {
                let [x, y, bw, bh] = scan.item_boxes[k].expect("hidden items are in the beam");
                let inside = (y..y + bh)
                    .flat_map(|r| (x..x + bw).map(move |c| (r * scan.width + c) as usize))
                    .filter(|&p| scan.concealment_mask[p] == 1)
                    .count();
                assert!(
                    inside as u32 >= bw * bh / 2,
                    "scan {i} item {}",
                    item.description
                );
            }
            assert_eq!(scan.high.len(), (scan.width * scan.height) as usize);
        }
    }

    #[test]
    fn defects_show_up_as_dead_rows_and_stretched_columns() {
        let mut seen_dead = false;
        let mut seen_stretch = false;
        for i in 0..60 {
            let mut rng = scan_rng(6, i);
            let opts = SceneOptions {
                container: Some(ContainerType::Twenty),
                truck: Some(false),
            };
            let scene = build(Scenario::Honest, opts, &mut rng);
            let scan = render(&scene, RenderOptions::default(), &mut rng);
            let nominal = (scene.layout.length_mm / 10.0).ceil() as u32;
            for &row in &scan.defects.dead_rows {
                seen_dead = true;
                let w = scan.width as usize;
                let r = &scan.high[row as usize * w..][..w];
                assert!(
                    r.iter().all(|&v| v < HIGH.dark + 20),
                    "dead row {row} reads light"
                );
            }
            match scan.defects.stretch {
                Some(_) => {
                    seen_stretch = true;
                    assert!(scan.width > nominal + 10);
                }
                None => assert!(scan.width.abs_diff(nominal) <= 1),
            }
        }
        assert!(seen_dead && seen_stretch);
    }

    #[test]
    fn same_seed_same_scan_different_seed_different_scan() {
        let make = |seed| {
            let mut rng = scan_rng(seed, 0);
            let scene = build(Scenario::Concealment, SceneOptions::default(), &mut rng);
            render(&scene, RenderOptions::default(), &mut rng)
        };
        assert_eq!(make(11), make(11));
        assert_ne!(make(11).high, make(12).high);
    }
}
